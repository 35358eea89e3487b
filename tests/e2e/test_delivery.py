"""End to end: the simulated fleet's uplinks, through a real Mosquitto and webhooks, into the
embedded NGSI-LD broker, read back per tenant through the NGSI-LD API.

Everything is real and on 127.0.0.1: Mosquitto (Debian's), the adapter as it runs in
production (``AdapterService``: MQTT consumers, webhooks, pipeline, SQLite outbox, broker
writer), and the embedded broker served on its own port. The expected values are decoded
here from the raw frames, not taken from the adapter.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from adapter.demo.fleet import FleetDevice, fleet_registry
from adapter.demo.mosquitto import MosquittoBroker
from tests.e2e.support import (
    KIND_TYPE,
    TENANTS,
    BrokerReader,
    EmbeddedBroker,
    Publisher,
    Uplink,
    device_id,
    expected_battery,
    expected_observation,
    fleet_stream,
    history_problems,
    observation_id,
    parse_time,
    running_adapter,
    start_of_stream,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration

ROUNDS = 3
WAIT_S = 30.0


def _targets(relationship: dict[str, object]) -> list[str]:
    target = relationship["object"]
    return [str(t) for t in target] if isinstance(target, list) else [str(target)]


async def test_fleet_uplinks_are_delivered_to_the_embedded_broker_per_tenant(
    restartable_mosquitto: MosquittoBroker,
    broker: EmbeddedBroker,
    reader: BrokerReader,
    fleet: list[FleetDevice],
    tmp_path: Path,
) -> None:
    mosquitto = restartable_mosquitto
    config = write_config(tmp_path / "adapter.toml", fleet, mosquitto, broker.url)
    stream = fleet_stream(fleet, ROUNDS * len(fleet), start=start_of_stream())
    lns_formats = {(u.event.lns, u.device.marshaler, u.event.topic is None) for u in stream}
    assert lns_formats == {
        ("chirpstack", "json", False),
        ("chirpstack", "protobuf", False),
        ("tts", "json", False),
        ("chirpstack", "json", True),
    }, "ChirpStack JSON and protobuf, TTS, ChirpStack webhooks"

    async with (
        running_adapter(config, mosquitto) as service,
        Publisher(mosquitto.address, service.http_port or 0) as lns,
    ):
        for uplink in stream:
            await lns.send(uplink.event)
        await wait_until(
            lambda: service.events >= len(stream), f"the adapter to take the {len(stream)} uplinks", timeout=WAIT_S
        )
        assert await service.drained(timeout_s=WAIT_S), "the outbox did not drain"
        assert service.pipeline is not None and service.pipeline.outbox is not None
        counters = service.pipeline.counters
        metrics = service.pipeline.outbox.metrics()
        letters = service.pipeline.dead_letters.counts()

    webhooks = [u for u in stream if u.event.topic is None]
    assert len(lns.webhook_answers) == len(webhooks) == ROUNDS * 6
    assert {a["status"] for a in lns.webhook_answers} == {"mapped"}
    assert (service.events, counters["mapped"], counters["entities"]) == (len(stream), len(stream), 2 * len(stream))
    assert (metrics.depth, metrics.delivered, metrics.refused) == (0, 2 * len(stream), 0)
    assert letters == {}

    # Every entity is in its collectivity's tenant, and nothing else is.
    registry = fleet_registry(fleet)
    expected: dict[str, dict[str, set[str]]] = {tenant: defaultdict(set) for tenant in TENANTS}
    for d in fleet:
        expected[d.tenant][KIND_TYPE[d.kind]].add(observation_id(d))
        expected[d.tenant]["Device"].add(device_id(d))
    stored: dict[str, dict[str, dict[str, dict[str, object]]]] = {}
    for tenant, types in expected.items():
        stored[tenant] = {t: await reader.entities(tenant, t) for t in types}
        assert {t: set(found) for t, found in stored[tenant].items()} == types, tenant
        assert await reader.count(tenant) == sum(len(ids) for ids in types.values()), tenant
    assert {t: len(ids) for t, ids in expected["ville"].items()} == {
        "AirQualityObserved": 10,
        "IndoorEnvironmentObserved": 20,
        "ParkingSpot": 20,
        "Streetlight": 15,
        "NoiseLevelObserved": 5,
        "Device": 70,
    }
    assert {t: len(ids) for t, ids in expected["region"].items()} == {
        "WeatherObserved": 10,
        "AirQualityObserved": 8,
        "ACMeasurement": 6,
        "Device": 24,
    }
    assert {t: len(ids) for t, ids in expected["eau"].items()} == {"WaterConsumptionObserved": 6, "Device": 6}

    # Every refDevice points at a Device entity of the same tenant, and every Device is pointed at.
    for tenant, types in stored.items():
        targets = {
            target
            for t, found in types.items()
            if t != "Device"
            for entity in found.values()
            for target in _targets(entity["refDevice"])
        }  # type: ignore[arg-type]
        assert targets == set(types["Device"]), tenant

    # One entity of each type and collectivity: its current values are those of the last uplink.
    last: dict[tuple[str, str], Uplink] = {}
    for uplink in stream:
        last.setdefault((uplink.device.tenant, uplink.device.kind), uplink)  # the group's first device...
    for (tenant, kind), first in sorted(last.items()):
        uplink = [u for u in stream if u.device is first.device][-1]  # ...and its last uplink
        d = uplink.device
        entity = await reader.entity(tenant, observation_id(d), KIND_TYPE[d.kind])
        assert entity is not None and entity["type"] == KIND_TYPE[d.kind]
        for name, (value, unit) in expected_observation(uplink.event).items():
            where = f"{entity['id']} {name}"
            assert entity[name]["value"] == pytest.approx(value, abs=1e-9), where
            assert entity[name].get("unitCode") == unit, where
            assert parse_time(entity[name]["observedAt"]) == uplink.at, where
        location = registry[d.dev_eui].location
        assert location is not None
        assert entity["location"]["value"] == {"type": "Point", "coordinates": [location.longitude, location.latitude]}
        assert _targets(entity["refDevice"]) == [device_id(d)]
        if d.kind == "parking":
            assert entity["refParkingSite"]["object"] == registry[d.dev_eui].attributes["refParkingSite"]
        if d.kind == "water":  # the instantaneous flow is dropped at the source (GDPR)
            assert not any("flow" in name.lower() for name in entity), sorted(entity)
        device = await reader.entity(tenant, device_id(d), "Device")
        assert device is not None and device["type"] == "Device"
        assert device["name"]["value"] == d.device_id
        assert parse_time(device["rssi"]["observedAt"]) == uplink.at and device["rssi"]["unitCode"] == "2N"
        battery = expected_battery(uplink.event)
        if battery is not None:
            assert device["batteryLevel"]["value"] == pytest.approx(battery)
            assert parse_time(device["batteryLevel"]["observedAt"]) == uplink.at

    # The temporal history of one entity holds each of its observations, oldest first.
    first_aq = next(d for d in fleet if d.tenant == "ville" and d.kind == "air-quality")
    history = await reader.temporal_entity(
        "ville", observation_id(first_aq), "AirQualityObserved", options="temporalValues"
    )
    own = [u for u in stream if u.device is first_aq]
    assert len(own) == ROUNDS
    for name in ("temperature", "no2", "pm25"):
        values = [[expected_observation(u.event)[name][0], u.at] for u in own]
        got = [[value, parse_time(at)] for value, at in history[name]["values"]]
        assert got == [[pytest.approx(v, abs=1e-9), at] for v, at in values], name

    # And so does every attribute of every entity: one instance per uplink, at its time.
    problems, instances = await history_problems(reader, stream)
    assert problems == [], "\n".join(problems[:20])
    assert instances > 2 * len(stream)
