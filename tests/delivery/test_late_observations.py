"""Late observations: an uplink older than its entity's current value (requeued, delayed) goes to
the history only (``POST /temporal/entities/{id}/attrs``), never over the current value; a broker
that cannot take it (Orion-LD answers 501) leaves it as a dead letter to replay, never lost."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapter.deadletter import DeadLetterStore
from adapter.delivery import ENTITY_REASONS, LATE_NOT_WRITTEN
from adapter.ngsild.broker import create_broker_app
from adapter.ngsild.client import Fate, NgsiLdClient, encode_entity
from adapter.outbox import Outbox
from tests.delivery.fake_broker import FakeBroker
from tests.delivery.support import CONTEXT, HOST, T0, eventually, make_entity, observation, queue, running, writer_for


@pytest.fixture
async def embedded_url() -> AsyncIterator[str]:
    async with TestServer(create_broker_app(), host=HOST) as server:
        yield str(server.make_url("")).rstrip("/")


def history(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k not in ("id", "type")}


async def values(client: NgsiLdClient, entity_id: str) -> tuple[float, list[float]]:
    """(the current no2, the no2 of every instance of the history, in observation order)."""
    current = await client.get_entity("ville", entity_id, context=CONTEXT[0])
    temporal = await client.get_temporal("ville", entity_id, context=CONTEXT[0])
    assert current is not None and temporal is not None
    instances = temporal["no2"] if isinstance(temporal["no2"], list) else [temporal["no2"]]
    return current["no2"]["value"], [i["value"] for i in instances]


# -- the embedded broker's temporal write --


async def test_the_embedded_broker_adds_to_the_history_without_touching_the_current_value(
    embedded_url: str,
    session: aiohttp.ClientSession,
) -> None:
    client = NgsiLdClient(embedded_url, session)
    newer, _ = observation(1, 5)
    await client.batch_upsert("ville", [newer])
    before = await client.get_entity("ville", newer["id"], options="sysAttrs")
    older, _ = observation(1, 2)
    outcome = await client.add_temporal_attributes("ville", older["id"], encode_entity(history(older)))
    assert (outcome.status, outcome.fate, outcome.supported) == (204, Fate.DELIVERED, True)
    assert await client.get_entity("ville", newer["id"], options="sysAttrs") == before  # not even modifiedAt
    assert await values(client, newer["id"]) == (5.0, [2.0, 5.0])


async def test_the_embedded_broker_takes_several_instances_and_refuses_bad_ones(
    embedded_url: str,
    session: aiohttp.ClientSession,
) -> None:
    client = NgsiLdClient(embedded_url, session)
    await client.batch_upsert("ville", [observation(1, 9)[0]])
    instances = [observation(1, k)[0]["no2"] for k in (3, 1)]
    fragment = {"no2": instances, "@context": make_entity(1)["@context"]}
    assert (await client.add_temporal_attributes("ville", make_entity(1)["id"], encode_entity(fragment))).status == 204
    assert await values(client, make_entity(1)["id"]) == (9.0, [1.0, 3.0, 9.0])
    bad = {"no2": {"type": "Property"}, "@context": make_entity(1)["@context"]}  # no value
    refused = await client.add_temporal_attributes("ville", make_entity(1)["id"], encode_entity(bad))
    assert (refused.status, refused.fate) == (400, Fate.REFUSED) and refused.problem is not None
    unknown = await client.add_temporal_attributes("ville", make_entity(2)["id"], encode_entity(fragment))
    assert (unknown.status, unknown.supported) == (404, False)


# -- the writer --


async def test_an_older_observation_after_a_newer_one_only_reaches_the_history(
    embedded_url: str,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    client = NgsiLdClient(embedded_url, session)
    writer = writer_for(outbox, embedded_url, session, dead_letters)
    async with running(writer):
        entity, at = observation(1, 5)
        queue(outbox, [entity], at=at)
        await eventually(lambda: outbox.depth() == 0, "the newer observation")
        entity, at = observation(1, 2)  # requeued or delayed: observed before the one delivered
        queue(outbox, [entity], at=at)
        writer.wake()
        await eventually(lambda: outbox.depth() == 0, "the older observation")
    assert await values(client, entity["id"]) == (5.0, [2.0, 5.0])
    assert dead_letters.counts() == {} and outbox.metrics().delivered == 2


async def test_lateness_is_decided_per_attribute_not_per_entity(
    embedded_url: str,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    """A Device entity is written by status events and by uplinks, with other attributes: a status
    report delivered at minute 5 does not make the uplink observed at minute 3 late (its readings
    go to the current value), while a second status report of minute 4 is late."""
    client = NgsiLdClient(embedded_url, session)
    writer = writer_for(outbox, embedded_url, session, dead_letters)
    base = make_entity(1)

    def device(at_minute: int, **attributes: float) -> tuple[dict[str, Any], datetime]:
        at = T0 + timedelta(minutes=at_minute)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        entity = {"id": base["id"], "type": base["type"], "@context": base["@context"]}
        entity.update({name: {"type": "Property", "value": v, "observedAt": stamp} for name, v in attributes.items()})
        return entity, at

    async with running(writer):
        for entity, at in (device(5, batteryLevel=0.9), device(3, no2=7.0), device(4, batteryLevel=0.8)):
            queue(outbox, [entity], at=at)
            writer.wake()
            await eventually(lambda: outbox.depth() == 0, f"the observation of {at}")
    current = await client.get_entity("ville", base["id"], context=CONTEXT[0])
    assert current is not None
    assert (current["no2"]["value"], current["batteryLevel"]["value"]) == (7.0, 0.9)
    temporal = await client.get_temporal("ville", base["id"], context=CONTEXT[0], attrs=["batteryLevel"])
    assert temporal is not None
    assert sorted(i["value"] for i in temporal["batteryLevel"]) == [0.8, 0.9]
    assert dead_letters.counts() == {}


async def test_the_latest_delivered_observation_survives_a_writer_restart(
    tmp_path: Path,
    embedded_url: str,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    path = tmp_path / "state.sqlite"
    first = Outbox.open(path)
    entity, at = observation(1, 5)
    queue(first, [entity], at=at)
    async with running(writer_for(first, embedded_url, session, dead_letters)):
        await eventually(lambda: first.depth() == 0, "the newer observation")
    first.close()

    second = Outbox.open(path)  # a new process: nothing of the first writer is in memory
    entity, at = observation(1, 2)
    queue(second, [entity], at=at)
    async with running(writer_for(second, embedded_url, session, dead_letters)):
        await eventually(lambda: second.depth() == 0, "the older observation")
    second.close()
    assert await values(NgsiLdClient(embedded_url, session), entity["id"]) == (5.0, [2.0, 5.0])


async def test_the_comparison_is_per_entity(
    embedded_url: str,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    client = NgsiLdClient(embedded_url, session)
    writer = writer_for(outbox, embedded_url, session, dead_letters)
    async with running(writer):
        entity, at = observation(1, 5)
        queue(outbox, [entity], at=at)
        entity, at = observation(2, 1)
        queue(outbox, [entity], at=at)
        await eventually(lambda: outbox.depth() == 0, "the first observations")
        # entity 1: older than its current value; entity 2: newer than its own, older than entity 1's
        for n, k in ((1, 2), (2, 3)):
            entity, at = observation(n, k)
            queue(outbox, [entity], at=at)
        queue(outbox, [observation(3, 0)[0]], at=observation(3, 0)[1])  # entity 3: never delivered yet
        writer.wake()
        await eventually(lambda: outbox.depth() == 0, "the second observations")
    assert await values(client, make_entity(1)["id"]) == (5.0, [2.0, 5.0])
    assert await values(client, make_entity(2)["id"]) == (3.0, [1.0, 3.0])
    assert await values(client, make_entity(3)["id"]) == (0.0, [0.0])
    assert dead_letters.counts() == {}


async def test_a_broker_without_temporal_writes_keeps_its_current_value_and_the_observation_is_a_dead_letter(
    broker_url: str,
    fake: FakeBroker,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    writer = writer_for(outbox, broker_url, session, dead_letters)
    async with running(writer):
        entity, at = observation(1, 5)
        queue(outbox, [entity], at=at)
        await eventually(lambda: outbox.depth() == 0, "the newer observation")
        older, at = observation(1, 2)
        queue(outbox, [older], at=at)
        writer.wake()
        await eventually(lambda: outbox.depth() == 0, "the older observation")
    assert fake.entities[("ville", entity["id"])]["no2"]["value"] == 5.0  # never written over
    assert fake.sends(entity["id"]) == 1 and fake.temporal_writes == 1
    (letter,) = dead_letters.list()
    assert letter.reason == LATE_NOT_WRITTEN and letter.reason in ENTITY_REASONS  # replay queues it again
    assert json.loads(letter.body) == older
    detail = json.loads(letter.detail)
    assert detail["status"] == 501 and detail["answer"]["title"] == "Not Implemented"
    assert "2026-11-20T08:02:00Z" in detail["detail"] and "2026-11-20T08:05:00Z" in detail["detail"]
