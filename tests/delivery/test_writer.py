"""The broker writer against a fake Orion-LD: batching limits, per-entity order, refusals,
retries through outages, restarts. Nothing the outbox held may be lost: each entity ends in
the broker or in the dead-letter store."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapter.deadletter import DeadLetterStore
from adapter.delivery import BROKER_REFUSED
from adapter.outbox import Outbox
from tests.delivery.fake_broker import ERRORS, FakeBroker, Refusal
from tests.delivery.support import (
    FAST,
    HOST,
    eventually,
    make_entity,
    observation,
    queue,
    running,
    unused_port,
    writer_for,
)


def empty(outbox: Outbox) -> bool:
    return outbox.depth() == 0


async def test_batches_stay_within_orion_limits(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    small = [make_entity(n) for n in range(2_500)]
    large = [make_entity(10_000 + n, pad=20_000) for n in range(150)]  # ~3 MiB in all
    queue(outbox, small)
    queue(outbox, large)
    async with running(writer_for(outbox, broker_url, session, dead_letters)):
        await eventually(lambda: empty(outbox), "the backlog to be delivered")
    assert fake.violations == []
    assert len(fake.entities) == 2_650 and dead_letters.counts() == {}
    assert max(len(b.ids) for b in fake.batches) == 1_000  # the count closed batches...
    assert max(b.size for b in fake.batches) > 1_000_000  # ...and so did the size, under 1 MiB
    assert all(len(b.ids) <= 1_000 and b.size < 1024 * 1024 and len(set(b.ids)) == len(b.ids) for b in fake.batches)


async def test_backlog_reaches_the_history_in_observation_order_one_batch_after_another(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    # 20 entities x 15 observations queued during an outage, some arriving late (out of order)
    arrivals = [(n, k) for n in range(20) for k in range(15)]
    random.Random(7).shuffle(arrivals)
    for n, k in arrivals:
        entity, at = observation(n, k)
        queue(outbox, [entity], at=at)
    async with running(writer_for(outbox, broker_url, session, dead_letters)):
        await eventually(lambda: empty(outbox), "the backlog to be delivered")
    assert fake.violations == []
    for n in range(20):
        entity_id = make_entity(n)["id"]
        assert fake.observations(entity_id, "no2", "ville") == [float(k) for k in range(15)]
        # observation k+1 left only after the broker had answered for observation k
        carrying = [b for b in fake.batches if entity_id in b.ids]
        assert all(later.started >= earlier.ended for earlier, later in itertools.pairwise(carrying))


async def test_several_batches_in_flight_up_to_the_limit(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    fake.delay_s = 0.05
    queue(outbox, [make_entity(n) for n in range(200)])
    settings = dataclasses.replace(FAST, batch_max_entities=10, max_in_flight=4)
    async with running(writer_for(outbox, broker_url, session, dead_letters, settings)):
        await eventually(lambda: empty(outbox), "200 entities in batches of 10")
    assert fake.max_concurrency == 4
    assert len(fake.batches) == 20 and len(fake.entities) == 200


async def test_batches_are_per_tenant(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    queue(outbox, [make_entity(1)], tenant="ville")
    queue(outbox, [make_entity(1), make_entity(2)], tenant="eau")
    async with running(writer_for(outbox, broker_url, session, dead_letters)):
        await eventually(lambda: empty(outbox), "both tenants")
    assert sorted(fake.entities) == sorted(
        [("ville", make_entity(1)["id"]), ("eau", make_entity(1)["id"]), ("eau", make_entity(2)["id"])]
    )
    assert {b.tenant for b in fake.batches} == {"ville", "eau"} and len(fake.batches) == 2


async def test_a_partial_refusal_dead_letters_exactly_the_refused_entities(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    refused = {
        make_entity(3)["id"]: Refusal(400, ERRORS + "BadRequestData", "the Entity Type cannot be altered"),
        make_entity(7)["id"]: Refusal(409, ERRORS + "AlreadyExists", "Entity already exists"),
    }
    fake.refuse.update(refused)
    queue(outbox, [make_entity(n) for n in range(10)])
    async with running(writer_for(outbox, broker_url, session, dead_letters)):
        await eventually(lambda: empty(outbox), "the batch to be answered")
    letters = dead_letters.list(reason=BROKER_REFUSED)
    assert sorted(json.loads(letter.body)["id"] for letter in letters) == sorted(refused)
    for letter in letters:
        entity_id = json.loads(letter.body)["id"]
        problem = json.loads(letter.detail)
        assert (problem["type"], problem["title"], problem["status"]) == (
            refused[entity_id].type,
            refused[entity_id].title,
            refused[entity_id].status,
        )
        assert (letter.tenant, letter.connection, letter.lns, letter.dev_eui) == (
            "ville",
            "ville-chirpstack",
            "chirpstack",
            "70b3d57ed0001a01",
        )
        assert json.loads(letter.body) == make_entity(int(entity_id.rsplit(":", 1)[1], 16))  # kept whole
    assert sorted(i for _, i in fake.entities) == sorted(make_entity(n)["id"] for n in range(10) if n not in (3, 7))
    metrics = outbox.metrics()
    assert (metrics.delivered, metrics.refused, metrics.depth) == (8, 2, 0)
    assert len(fake.batches) == 1  # refusals are not retried


async def test_an_entity_failing_with_a_5xx_in_a_207_is_retried(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    flaky = make_entity(2)["id"]
    fake.refuse[flaky] = Refusal(503, ERRORS + "InternalError", "database busy", times=2)
    queue(outbox, [make_entity(1), make_entity(2)])
    async with running(writer_for(outbox, broker_url, session, dead_letters)):
        await eventually(lambda: empty(outbox), "the flaky entity to get through")
    assert fake.sends(flaky) == 3 and fake.sends(make_entity(1)["id"]) == 1
    assert dead_letters.counts() == {} and outbox.metrics().retried == 2


async def test_a_batch_refused_whole_is_resolved_entity_by_entity_then_never_sent_again(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    fake.reject_batch_with = 400
    queue(outbox, [make_entity(n) for n in range(5)])
    async with running(writer_for(outbox, broker_url, session, dead_letters)):
        await eventually(lambda: empty(outbox), "the batch to be answered")
        await asyncio.sleep(0.2)  # ten retry delays: nothing is sent again
    # a whole refusal does not say which entity is at fault: each was sent once more, alone
    assert fake.requests == 6 and sorted(len(b.ids) for b in fake.batches) == [1, 1, 1, 1, 1, 5]
    assert dead_letters.counts() == {BROKER_REFUSED: 5}
    assert json.loads(dead_letters.list()[0].detail)["status"] == 400
    assert outbox.metrics().refused == 5


async def test_an_entity_larger_than_a_batch_is_dead_lettered_without_being_sent(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    queue(outbox, [make_entity(1, pad=1024 * 1024), make_entity(2)])
    async with running(writer_for(outbox, broker_url, session, dead_letters)):
        await eventually(lambda: empty(outbox), "the outbox to be emptied")
    assert [b.ids for b in fake.batches] == [(make_entity(2)["id"],)]
    (letter,) = dead_letters.list()
    assert letter.reason == BROKER_REFUSED and json.loads(letter.detail)["status"] == 413


async def test_a_failing_broker_is_retried_with_growing_delays_then_gets_everything(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    fake.fail_with = 503
    queue(outbox, [make_entity(n) for n in range(3)])
    settings = dataclasses.replace(FAST, retry_initial_s=0.02, retry_max_s=0.16)
    async with running(writer_for(outbox, broker_url, session, dead_letters, settings, jitter=lambda: 0.999)):
        await eventually(lambda: fake.requests >= 6, "six attempts")
        assert outbox.depth() == 3 and dead_letters.counts() == {}
        fake.fail_with = None
        await eventually(lambda: empty(outbox), "delivery once the broker is back")
    starts = fake.arrivals
    assert len(fake.entities) == 3 and fake.max_concurrency == 1
    # each delay at least the scheduled one: 0.02, 0.04, 0.08, then capped at 0.16 (jitter ~1)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    for gap, floor in zip(gaps, [0.02, 0.04, 0.08, 0.16, 0.16], strict=False):
        assert gap >= floor * 0.99 - 0.002, gaps
    assert outbox.metrics().retried == 3 * (fake.requests - 1)


async def test_a_deployment_error_like_a_bad_token_keeps_the_entities(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    fake.fail_with = 401
    queue(outbox, [make_entity(1)])
    async with running(writer_for(outbox, broker_url, session, dead_letters)):
        await eventually(lambda: fake.requests >= 3, "retries")
        assert outbox.depth() == 1 and dead_letters.counts() == {}
        fake.fail_with = None
        await eventually(lambda: empty(outbox), "delivery once the token is fixed")


@pytest.mark.parametrize("fault", ["dropped connections", "timeouts"])
async def test_lost_requests_are_sent_again(
    outbox: Outbox,
    broker_url: str,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
    fake: FakeBroker,
    fault: str,
) -> None:
    if fault == "dropped connections":
        fake.drop_next = 2
    else:
        fake.stall_next, fake.stall_s = 2, 0.4
    settings = dataclasses.replace(FAST, request_timeout_s=0.1)
    queue(outbox, [make_entity(n) for n in range(4)])
    async with running(writer_for(outbox, broker_url, session, dead_letters, settings)):
        await eventually(lambda: empty(outbox), f"delivery despite {fault}")
    assert len(fake.entities) == 4 and outbox.metrics().retried == 8 and dead_letters.counts() == {}


async def test_a_broker_that_refuses_connections_gets_everything_once_it_listens(
    outbox: Outbox, session: aiohttp.ClientSession, dead_letters: DeadLetterStore
) -> None:
    port = unused_port()
    fake = FakeBroker()
    queue(outbox, [make_entity(n) for n in range(3)])
    async with running(writer_for(outbox, f"http://{HOST}:{port}", session, dead_letters)):
        await eventually(lambda: outbox.metrics().retried >= 6, "a few refused attempts")
        async with TestServer(fake.app(), host=HOST, port=port):
            await eventually(lambda: empty(outbox), "delivery once the broker listens")
    assert len(fake.entities) == 3 and dead_letters.counts() == {}


async def test_a_restarted_writer_sends_what_the_outbox_still_holds(
    tmp_path: Path, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    path = tmp_path / "state.sqlite"
    first = Outbox.open(path)
    for k in range(3):  # three observations of 40 entities
        for n in range(40):
            entity, at = observation(n, k)
            queue(first, [entity], at=at)
    fake.delay_s = 0.3
    async with running(writer_for(first, broker_url, session, dead_letters)):
        await eventually(lambda: fake.requests >= 1, "a batch in flight")
    first.close()  # the process dies with a batch in flight

    fake.delay_s = 0.0
    second = Outbox.open(path)
    assert second.depth() == 120  # nothing was acknowledged, nothing left the outbox
    async with running(writer_for(second, broker_url, session, dead_letters)):
        await eventually(lambda: second.depth() == 0, "the restarted writer to deliver")
    await eventually(lambda: fake.active == 0, "the request cut by the crash to end")
    second.close()
    for n in range(40):
        entity_id = make_entity(n)["id"]
        assert fake.entities[("ville", entity_id)]["no2"]["value"] == 2.0
        assert 3 <= fake.sends(entity_id) <= 4  # at most the batch in flight at the crash again
        assert fake.observations(entity_id, "no2", "ville")[-3:] == [0.0, 1.0, 2.0]
    assert dead_letters.counts() == {}


async def test_items_queued_after_the_writer_started_leave_after_the_batch_delay(
    outbox: Outbox, broker_url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, fake: FakeBroker
) -> None:
    settings = dataclasses.replace(FAST, batch_delay_s=0.1)
    writer = writer_for(outbox, broker_url, session, dead_letters, settings, poll_s=5.0)
    async with running(writer):
        await asyncio.sleep(0.02)
        for n in range(5):  # live traffic: five uplinks a few ms apart, one batch
            queue(outbox, [make_entity(n)])
            writer.wake()
            await asyncio.sleep(0.005)
        await eventually(lambda: empty(outbox), "the live entities")
    assert [len(b.ids) for b in fake.batches] == [5]
