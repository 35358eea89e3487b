"""End to end: a 30 s outage of the NGSI-LD broker in the middle of a stream of 5,000 uplinks.

The broker process "dies" (its runner is stopped: the port refuses connections) while the
network servers keep sending; 30 s later a new broker starts on the same port and the same
database file. Meanwhile the adapter must keep taking uplinks (they wait in its outbox), and
afterwards deliver the backlog by itself, so that the broker's temporal history holds every
observation exactly once: nothing lost, nothing recorded twice.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from adapter.demo.fleet import FleetDevice
from adapter.demo.mosquitto import MosquittoBroker
from tests.e2e.support import (
    BrokerReader,
    EmbeddedBroker,
    Publisher,
    Uplink,
    fleet_stream,
    history_problems,
    paced,
    running_adapter,
    start_of_stream,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration

UPLINKS = 5000
RATE = 125.0  # uplinks per second: the stream lasts 40 s
OUTAGE_AFTER_S = 5.0
OUTAGE_S = 30.0
SETTLE_S = 0.5  # for answers already on their way when the broker stopped
#: uplinks the adapter must take while the broker is down (30 s of the stream)
OUTAGE_UPLINKS = int(RATE * (OUTAGE_S - SETTLE_S))
#: short retry delays, so that the first attempt after the outage comes within a second
RETRY = {"retry_initial_s": 0.2, "retry_max_s": 1.0}


async def test_a_broker_outage_loses_and_duplicates_nothing(
    restartable_mosquitto: MosquittoBroker,
    broker: EmbeddedBroker,
    reader: BrokerReader,
    fleet: list[FleetDevice],
    tmp_path: Path,
) -> None:
    mosquitto = restartable_mosquitto
    config = write_config(tmp_path / "adapter.toml", fleet, mosquitto, broker.url, RETRY)
    stream = fleet_stream(fleet, UPLINKS, start=start_of_stream(ago=timedelta(minutes=20)))

    async with (
        running_adapter(config, mosquitto) as service,
        Publisher(mosquitto.address, service.http_port or 0) as lns,
    ):
        assert service.pipeline is not None and service.pipeline.outbox is not None
        outbox = service.pipeline.outbox

        async def send(uplink: Uplink) -> None:
            await lns.send(uplink.event)

        publishing = asyncio.create_task(paced(stream, RATE, send))
        try:
            await asyncio.sleep(OUTAGE_AFTER_S)
            delivered_before = outbox.metrics().delivered
            await broker.stop()
            await asyncio.sleep(SETTLE_S)
            # One synchronous step of the event loop: no uplink is handled between the two reads.
            at_stop = (service.events, outbox.depth(), outbox.metrics())
            # The outage lasts until the network servers sent OUTAGE_UPLINKS more (30 s at the
            # nominal pace; longer on a loaded machine): the test decides, not the clock.
            await wait_until(
                lambda: service.events - at_stop[0] >= OUTAGE_UPLINKS,
                "the adapter to keep taking uplinks during the outage",
                timeout=180,
            )
            before_restart = (service.events, outbox.depth(), outbox.metrics())
            await broker.start()
            # The backlog leaves by itself: the depth falls back to live traffic's (1 s of it).
            backlog_s = await wait_until(
                lambda: outbox.depth() <= 2 * RATE, "the backlog to leave", timeout=90, poll=0.01, fail=False
            )
            await publishing
        finally:
            publishing.cancel()
        await wait_until(lambda: service.events >= UPLINKS, "the adapter to take every uplink", timeout=30)
        drained = await service.drained(timeout_s=30)
        counters = service.pipeline.counters
        final = outbox.metrics()
        letters = service.pipeline.dead_letters.counts()

    events_at_stop, depth_at_stop, metrics_at_stop = at_stop
    events_before_restart, depth_before_restart, metrics_before_restart = before_restart
    ingested = events_before_restart - events_at_stop
    print(
        f"\noutage: {ingested} uplinks taken while the broker was down, outbox depth {depth_at_stop} -> "
        f"{depth_before_restart}; {metrics_before_restart.retried} entity sends retried; the backlog left "
        f"{'never' if backlog_s is None else f'within {backlog_s:.1f} s'} of the restart"
    )

    # The broker (a new process on the same database) holds each observation exactly once.
    problems, instances = await history_problems(reader, stream)
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems[:20])
    assert instances > 2 * UPLINKS

    # Delivery was flowing before the outage.
    assert 0 < delivered_before
    # During the outage the adapter kept taking uplinks at the network servers' pace, and each
    # one's two entities (observation, Device) waited in the outbox: none left, none was lost.
    assert ingested >= OUTAGE_UPLINKS
    assert depth_before_restart - depth_at_stop == 2 * ingested
    assert metrics_before_restart.delivered == metrics_at_stop.delivered
    assert metrics_before_restart.retried > metrics_at_stop.retried, "the writer kept probing the broker"
    # Afterwards the backlog left by itself, every entity acknowledged, none refused.
    assert backlog_s is not None, "the backlog was still there 90 s after the restart"
    assert drained, "the outbox did not drain"
    assert (counters["mapped"], counters["entities"], counters["duplicate"]) == (UPLINKS, 2 * UPLINKS, 0)
    assert (final.depth, final.delivered, final.refused) == (0, 2 * UPLINKS, 0)
    assert letters == {}
    assert {a["status"] for a in lns.webhook_answers} == {"mapped"}
