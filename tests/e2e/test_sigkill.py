"""End to end: the adapter process is killed (SIGKILL) in the middle of a stream, then restarted.

The adapter runs as production runs it, its own process (``ngsild-adapter listen``) with a
TOML configuration and its SQLite state; Mosquitto keeps its persistent sessions (the
messages queued while no adapter is connected, and those delivered to the dead one but never
acknowledged, which it sends again with the DUP flag). The webhook sender retries while the
adapter is down, as an LNS HTTP integration does. After the restart on the same configuration
and state, the broker's temporal history must hold every uplink's observation exactly once:

- nothing lost: whatever the dead adapter had accepted is in its outbox on disk, whatever it
  had not acknowledged comes again from Mosquitto or the webhook sender;
- nothing twice: an uplink that comes again after having been accepted is recognised by the
  dedup key kept in the same SQLite transaction as its outbox items. Besides Mosquitto's own
  redeliveries, the network server sends again the last uplinks published before the kill.

When the adapter is killed
    Once the broker has acknowledged about half of the entities, the broker starts holding the
    adapter's batch upserts; half a second later (the adapter has read every answer already
    sent to it) the adapter is killed, at one of two moments:

    - ``before the broker writes``: with batches in flight that the broker has not processed
      (they are dropped, as a connection cut by the crash). Nothing may be recorded twice.
    - ``after the broker wrote``: the broker processes one held batch, and the adapter is
      killed before the answer leaves. The restarted writer sends that batch again, as
      ``adapter.delivery`` documents (at-least-once, idempotent upserts; "the temporal history
      may then hold that instance twice"): exactly the entities of that batch, and nothing
      else, are recorded twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import IO

import aiohttp
import pytest
from aiohttp import web

from adapter.demo.fleet import FleetDevice
from adapter.demo.mosquitto import MosquittoBroker
from tests.e2e.support import (
    ADAPTER_BIN,
    TENANTS,
    BrokerReader,
    EmbeddedBroker,
    Publisher,
    Uplink,
    expected_histories,
    fleet_stream,
    history_problems,
    mqtt_client_ids,
    paced,
    parse_time,
    scrape_metrics,
    start_of_stream,
    unused_port,
    wait_listening,
    wait_subscribed,
    wait_until,
    write_config,
)
from tests.provenance_e2e.support import provenance_problems

pytestmark = pytest.mark.integration

UPLINKS = 3000
RATE = 300.0  # uplinks per second: the stream lasts 10 s
SETTLE_S = 0.5
PAUSE_AT = UPLINKS * 3 // 4  # uplinks sent before the stream waits for the kill (half the entities are 2/4)
SENT_AGAIN = 30  # the last MQTT uplinks before the kill, published again after the restart
RETRY = {"retry_initial_s": 0.2, "retry_max_s": 1.0}
DELIVERED = "ngsild_adapter_outbox_delivered_total"
DEPTH = "ngsild_adapter_outbox_depth"


class UpsertGate:
    """Broker middleware holding batch upserts while closed.

    A held request is released either unprocessed (``drop_held``: answered 503 without being
    processed, its sender is gone) or processed with a callback run after the broker wrote it
    and before its answer leaves (``release_one``).
    """

    def __init__(self) -> None:
        self.closed = False
        self._held: deque[asyncio.Future[Callable[[], None] | None]] = deque()
        self.dropped = 0
        #: the batches written whose answer never left: (tenant, entities)
        self.unanswered: list[tuple[str, list[dict[str, object]]]] = []

    @property
    def held(self) -> int:
        return len(self._held)

    def close(self) -> None:
        self.closed = True

    def release_one(self, then: Callable[[], None]) -> None:
        self._held.popleft().set_result(then)

    def drop_held(self) -> None:
        """Open again; the requests still held are dropped unprocessed."""
        self.closed = False
        while self._held:
            self._held.popleft().set_result(None)

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def gate(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if not (self.closed and request.path.endswith("/entityOperations/upsert")):
                return await handler(request)
            decision: asyncio.Future[Callable[[], None] | None] = asyncio.get_running_loop().create_future()
            self._held.append(decision)
            then = await decision
            if then is None:
                self.dropped += 1
                return web.Response(status=503)
            response = await handler(request)
            assert response.status in (201, 204), response.status
            self.unanswered.append((request.headers["NGSILD-Tenant"], json.loads(await request.read())))
            then()
            return response

        return gate


class AdapterProcess:
    """``ngsild-adapter listen`` in its own process, its output kept in files."""

    def __init__(self, config: Path, http_port: int, logs: Path) -> None:
        self.command = [
            str(ADAPTER_BIN),
            "--log-level",
            "warning",
            "listen",
            "--config",
            str(config),
            "--quiet",
            "--http-port",
            str(http_port),
        ]
        self.http_port = http_port
        self.logs = logs
        self.runs = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    def start(self) -> None:
        self.runs += 1
        out = (self.logs / f"adapter-{self.runs}.out").open("wb")
        err = (self.logs / f"adapter-{self.runs}.err").open("wb")
        self._files += [out, err]
        self._process = subprocess.Popen(self.command, stdout=out, stderr=err)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def wait(self) -> int:
        """Wait for the process to end (after a signal sent by ``os.kill``); its exit status."""
        assert self._process is not None
        process, self._process = self._process, None
        return process.wait(timeout=15)

    def signal(self, signum: int) -> int:
        """Send ``signum`` and return the exit status."""
        assert self._process is not None
        process, self._process = self._process, None
        process.send_signal(signum)
        return process.wait(timeout=15)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.signal(signal.SIGTERM)
        self._process = None
        for f in self._files:
            f.close()

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stderr(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.logs.glob("adapter-*.err")))


def _observed_at(entity: dict[str, object]) -> datetime:
    times = {parse_time(a["observedAt"]) for a in entity.values() if isinstance(a, dict) and "observedAt" in a}
    assert len(times) == 1, entity
    return times.pop()


@pytest.mark.parametrize("moment", ["before the broker writes", "after the broker wrote"])
async def test_sigkill_mid_stream_then_restart_loses_nothing_and_records_nothing_twice(
    restartable_mosquitto: MosquittoBroker,
    fleet: list[FleetDevice],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    moment: str,
) -> None:
    mosquitto = restartable_mosquitto
    gate = UpsertGate()
    broker = EmbeddedBroker(tmp_path / "broker.sqlite", middlewares=[gate.middleware()])
    await broker.start()
    config_path = tmp_path / "adapter.toml"
    config = write_config(config_path, fleet, mosquitto, broker.url, RETRY)
    adapter = AdapterProcess(config_path, unused_port(), tmp_path)
    stream = fleet_stream(fleet, UPLINKS, start=start_of_stream())
    published: list[Uplink] = []
    webhooks: asyncio.Queue[Uplink | None] = asyncio.Queue()

    async def metric(name: str) -> float | None:
        metrics = await scrape_metrics(session, adapter.http_port)
        return None if metrics is None else metrics[name]

    try:
        adapter.start()
        await wait_listening(adapter.http_port)
        await wait_subscribed(mosquitto, mqtt_client_ids(config))
        async with Publisher(mosquitto.address, adapter.http_port) as lns:

            async def send(uplink: Uplink) -> None:
                if uplink.event.topic is None:
                    webhooks.put_nowait(uplink)  # posted by `post_webhooks`, retried while the adapter is down
                else:
                    await lns.send(uplink.event)
                    published.append(uplink)

            async def post_webhooks() -> None:
                while (uplink := await webhooks.get()) is not None:
                    await lns.post(uplink.event, retry_for_s=60)

            # The stream waits at PAUSE_AT uplinks until the adapter has been killed and restarted:
            # the kill is mid-stream by construction, however slow a loaded machine is.
            resume = asyncio.Event()
            sent = 0

            async def send_or_wait(uplink: Uplink) -> None:
                nonlocal sent
                if sent >= PAUSE_AT:
                    await resume.wait()
                sent += 1
                await send(uplink)

            poster = asyncio.create_task(post_webhooks())
            publishing = asyncio.create_task(paced(stream, RATE, send_or_wait))
            try:

                async def half_delivered() -> bool:
                    assert adapter.alive(), adapter.stderr()
                    return (await metric(DELIVERED) or 0) >= UPLINKS  # half of the 2 entities per uplink

                await wait_until(half_delivered, "half of the entities to reach the broker", timeout=30, poll=0.02)
                gate.close()
                await asyncio.sleep(SETTLE_S)
                delivered_first = await metric(DELIVERED)
                assert delivered_first is not None
                killed_after = len(published)
                if moment == "after the broker wrote":
                    await wait_until(lambda: gate.held > 0, "a batch held by the broker", timeout=5)
                    pid = adapter.pid
                    gate.release_one(lambda: os.kill(pid, signal.SIGKILL))
                    await wait_until(lambda: bool(gate.unanswered), "the batch to be written", timeout=5)
                    exit_status = await asyncio.to_thread(adapter.wait)
                else:
                    exit_status = adapter.signal(signal.SIGKILL)
                assert exit_status == -signal.SIGKILL
                gate.drop_held()
                assert not publishing.done(), "the stream ended before the kill: it must be killed mid-stream"

                adapter.start()
                await wait_listening(adapter.http_port)
                await wait_subscribed(mosquitto, mqtt_client_ids(config), times=2)
                for uplink in published[killed_after - SENT_AGAIN : killed_after]:
                    await lns.send(uplink.event)  # the network server sends them again
                resume.set()
                await publishing
                webhooks.put_nowait(None)
                await poster
            finally:
                publishing.cancel()
                poster.cancel()

        async def drained() -> bool:
            assert adapter.alive(), adapter.stderr()
            delivered, depth = await metric(DELIVERED), await metric(DEPTH)
            return delivered is not None and delivered_first + delivered >= 2 * UPLINKS and depth == 0

        drain_s = await wait_until(
            drained, "the restarted adapter to deliver the rest", timeout=60, poll=0.1, fail=False
        )
        await asyncio.sleep(0.5)  # anything still arriving would be a duplicate
        delivered_second = await metric(DELIVERED)
        assert delivered_second is not None
        adapter.stop()

        log = mosquitto.log_file.read_text(errors="replace")
        redelivered = sum(len(re.findall(rf"Sending PUBLISH to {cid} \(d1,", log)) for cid in mqtt_client_ids(config))
        print(
            f"\nkilled after {killed_after} MQTT uplinks published and {delivered_first:.0f} entities delivered; "
            f"{gate.dropped} batches dropped with the dead adapter; Mosquitto redelivered {redelivered} messages; "
            f"the restarted adapter delivered {delivered_second:.0f} entities; "
            f"{sum(len(b) for _, b in gate.unanswered)} entities written with their answer lost"
        )

        # The batch written whose answer the killed adapter never read (if any) was sent again.
        written_twice = [(tenant, str(e["id"]), _observed_at(e)) for tenant, batch in gate.unanswered for e in batch]
        assert len(gate.unanswered) == (1 if moment == "after the broker wrote" else 0)
        assert {tenant for tenant, _ in gate.unanswered} <= set(TENANTS)
        # The history holds each observation once (the resent batch's: twice)...
        problems, instances = await history_problems(BrokerReader(session, broker.url), stream, written_twice)
        assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems[:20])
        assert instances > 2 * UPLINKS
        assert drain_s is not None, "the restarted adapter's outbox did not drain within 60 s"
        # ...and each queued entity left the outbox once, over the two runs: the resent batch's
        # only when the restarted adapter had its answer.
        assert delivered_first + delivered_second == 2 * UPLINKS
        assert 0 < delivered_first < 2 * UPLINKS
        # Provenance went with the outbox: one record per uplink, never two, each delivered and
        # linked from the broker's history (the resent batch's instances link to the same record).
        types = {(tenant, t) for tenant, t, _ in expected_histories(stream)}
        problems = await provenance_problems(config, BrokerReader(session, broker.url), UPLINKS, sorted(types))
        assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems[:20])
    finally:
        adapter.stop()
        await broker.stop()
