"""End to end: entities the broker refuses inside a batch (a 207) become dead letters, the others
of the same batches are delivered.

The refusal is a real one of the embedded broker, not a doctored answer: before the adapter
runs, another application has created entities under two of the ids the adapter will write,
with another type. An upsert cannot change an entity's type, so the broker refuses those two
entities (400 BadRequestData in the batch's ``errors``) and writes the rest of each batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapter.delivery import BROKER_REFUSED
from adapter.demo.fleet import FleetDevice
from adapter.demo.mosquitto import MosquittoBroker
from tests.e2e.support import (
    KIND_TYPE,
    TENANTS,
    BrokerReader,
    EmbeddedBroker,
    Publisher,
    device_id,
    fleet_stream,
    observation_id,
    running_adapter,
    start_of_stream,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration

WAIT_S = 30.0
BAD_REQUEST_DATA = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


async def _create(session: aiohttp.ClientSession, broker: EmbeddedBroker, tenant: str, entity: dict[str, Any]) -> None:
    async with session.post(
        f"{broker.url}/ngsi-ld/v1/entities", json=entity, headers={"NGSILD-Tenant": tenant}
    ) as answer:
        assert answer.status == 201, await answer.text()


async def _upsert(
    session: aiohttp.ClientSession, broker: EmbeddedBroker, tenant: str, entities: list[dict[str, Any]]
) -> tuple[int, Any]:
    """The writer's request (``POST /entityOperations/upsert?options=update``), sent by hand."""
    async with session.post(
        f"{broker.url}/ngsi-ld/v1/entityOperations/upsert",
        params={"options": "update"},
        data=json.dumps(entities),
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
    ) as answer:
        return answer.status, await answer.json()


async def test_entities_refused_in_a_207_become_dead_letters_with_the_brokers_problem(
    restartable_mosquitto: MosquittoBroker,
    broker: EmbeddedBroker,
    reader: BrokerReader,
    session: aiohttp.ClientSession,
    fleet: list[FleetDevice],
    tmp_path: Path,
) -> None:
    mosquitto = restartable_mosquitto
    station = next(d for d in fleet if d.tenant == "ville" and d.kind == "air-quality")  # ChirpStack MQTT
    weather = next(d for d in fleet if d.tenant == "region" and d.kind == "weather")  # TTS MQTT
    squatters = {
        ("ville", observation_id(station)): {
            "id": observation_id(station),
            "type": "Building",
            "name": {"type": "Property", "value": "a building, not a sensor"},
        },
        ("region", device_id(weather)): {
            "id": device_id(weather),
            "type": "Vehicle",
            "name": {"type": "Property", "value": "a vehicle, not a device"},
        },
    }
    for (tenant, _), entity in squatters.items():
        await _create(session, broker, tenant, entity)

    config = write_config(tmp_path / "adapter.toml", fleet, mosquitto, broker.url)
    stream = fleet_stream(fleet, len(fleet), start=start_of_stream())
    async with (
        running_adapter(config, mosquitto) as service,
        Publisher(mosquitto.address, service.http_port or 0) as lns,
    ):
        for uplink in stream:
            await lns.send(uplink.event)
        await wait_until(lambda: service.events >= len(stream), "the adapter to take the uplinks", timeout=WAIT_S)
        assert await service.drained(timeout_s=WAIT_S), "the outbox did not drain"
        assert service.pipeline is not None and service.pipeline.outbox is not None
        metrics = service.pipeline.outbox.metrics()
        store = service.pipeline.dead_letters
        counts = store.counts()
        letters = store.list(reason=BROKER_REFUSED, limit=100)

    # Exactly the two entities, each once, with what is needed to trace and replay it.
    assert (metrics.depth, metrics.delivered, metrics.refused) == (0, 2 * len(stream) - 2, 2)
    assert counts == {BROKER_REFUSED: 2}
    refused = {(letter.tenant, json.loads(letter.body)["id"]): letter for letter in letters}
    assert set(refused) == set(squatters)
    ville, region = refused[("ville", observation_id(station))], refused[("region", device_id(weather))]
    assert (ville.connection, ville.lns, ville.event, ville.dev_eui, ville.status) == (
        "ville-chirpstack",
        "chirpstack",
        "up",
        station.dev_eui,
        "open",
    )
    assert (region.connection, region.lns, region.event, region.dev_eui, region.status) == (
        "region-tts",
        "tts",
        "up",
        weather.dev_eui,
        "open",
    )
    assert json.loads(ville.body)["type"] == "AirQualityObserved" and json.loads(region.body)["type"] == "Device"

    # The detail is the broker's own ProblemDetails for that entity: the broker answers the same
    # to the same entity sent again.
    for (tenant, entity_id), letter in refused.items():
        problem = json.loads(letter.detail)
        assert (problem["type"], problem["status"], problem["detail"]) == (BAD_REQUEST_DATA, 400, entity_id)
        status, answer = await _upsert(session, broker, tenant, [json.loads(letter.body)])
        assert status == 207
        assert answer == {"success": [], "errors": [{"entityId": entity_id, "error": problem}]}

    # The squatters are untouched: neither their type nor their history took the refused writes.
    for (tenant, entity_id), entity in squatters.items():
        async with session.get(
            f"{broker.url}/ngsi-ld/v1/entities/{entity_id}", headers={"NGSILD-Tenant": tenant}
        ) as answer:
            assert answer.status == 200
            assert await answer.json() == entity
        async with session.get(
            f"{broker.url}/ngsi-ld/v1/temporal/entities/{entity_id}", headers={"NGSILD-Tenant": tenant}
        ) as answer:
            history = await answer.json()
        assert set(history) == {"id", "type", "name"} and len(history["name"]) == 1

    # Every other entity of the same batches was delivered.
    for tenant in TENANTS:
        expected: dict[str, set[str]] = {}
        for d in fleet:
            if d.tenant == tenant:
                expected.setdefault(KIND_TYPE[d.kind], set()).add(observation_id(d))
                expected.setdefault("Device", set()).add(device_id(d))
        for squatted_tenant, entity_id in squatters:
            if squatted_tenant == tenant:
                for ids in expected.values():
                    ids.discard(entity_id)
        for entity_type, ids in expected.items():
            assert set(await reader.entities(tenant, entity_type)) == ids, (tenant, entity_type)
        squatted = sum(1 for t, _ in squatters if t == tenant)
        assert await reader.count(tenant) == sum(len(ids) for ids in expected.values()) + squatted
