"""Helpers of the end-to-end tests: the whole adapter between a real Mosquitto and the embedded
NGSI-LD broker, both on 127.0.0.1.

- ``fleet_config_toml``: the adapter's TOML configuration for the simulated fleet
  (``adapter.demo.fleet``): its three collectivities, their connections (ChirpStack and TTS over
  MQTT, ChirpStack webhooks) and the device registry ``fleet_registry`` describes. The same
  idea as ``benchmarks/end_to_end.py``'s builder, with the registry complete (names, tenants,
  parking sites) and the ``[broker]`` settings a test needs.
- ``fleet_stream``: the fleet's uplinks, each with the receive time its network server stamped
  on it (a controlled clock), so that every expected ``observedAt`` is known exactly.
- ``EmbeddedBroker``: ``create_broker_app`` served by ``web.AppRunner`` on a fixed port, that a
  test stops and starts again on the same port and database file (a broker outage).
- ``Publisher``: sends events as the network servers do (MQTT QoS 1, webhook POST).
- ``BrokerReader``: the NGSI-LD queries the assertions are made on (entities, temporal history).
- ``expected_observation``: the values an uplink carries, decoded here from its raw bytes
  (Cayenne LPP and the vendors' documented frame layouts), independently of the adapter's codecs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from aiohttp import web

from adapter.app import AdapterService
from adapter.config import AdapterConfig, load_config
from adapter.demo.fleet import FleetDevice, SimulatedEvent, fleet_registry, uplinks
from adapter.demo.mosquitto import MosquittoBroker
from adapter.ngsild.broker import create_broker_app
from adapter.sources.chirpstack import EVENT_MESSAGES
from adapter.sources.mqtt import client_identifier
from tests.delivery.support import HOST, unused_port
from tests.support import REPO

__all__ = [
    "ADAPTER_BIN",
    "BrokerReader",
    "CONNECTIONS",
    "EmbeddedBroker",
    "HOST",
    "KIND_TYPE",
    "Publisher",
    "TENANTS",
    "TYPE_CONTEXT",
    "Uplink",
    "device_id",
    "expected_battery",
    "expected_histories",
    "expected_observation",
    "fleet_config_toml",
    "fleet_stream",
    "history_problems",
    "mqtt_client_ids",
    "observation_id",
    "paced",
    "parse_time",
    "raw_payload",
    "running_adapter",
    "scrape_metrics",
    "start_of_stream",
    "unused_port",
    "wait_listening",
    "wait_subscribed",
    "wait_until",
    "whole_millis",
    "write_config",
]

ADAPTER_BIN = REPO / ".venv" / "bin" / "ngsild-adapter"
TENANTS = ("ville", "region", "eau")
#: (connection name, collectivity, lns, transport), as the fleet's plan names them
CONNECTIONS = (
    ("ville-chirpstack", "ville", "chirpstack", "mqtt"),
    ("region-tts", "region", "tts", "mqtt"),
    ("eau-chirpstack", "eau", "chirpstack", "webhook"),
)
#: the Smart Data Models type each kind of device of the fleet is mapped to (models/*.yaml)
KIND_TYPE = {
    "air-quality": "AirQualityObserved",
    "school-climate": "IndoorEnvironmentObserved",
    "parking": "ParkingSpot",
    "streetlight": "Streetlight",
    "noise": "NoiseLevelObserved",
    "weather": "WeatherObserved",
    "energy": "ACMeasurement",
    "water": "WaterConsumptionObserved",
}
_SDM = "https://raw.githubusercontent.com/smart-data-models/{}/master/context.jsonld"
#: the @context whose terms name each type and its attributes (sent as the Link of a query)
TYPE_CONTEXT = {
    "AirQualityObserved": _SDM.format("dataModel.Environment"),
    "IndoorEnvironmentObserved": _SDM.format("dataModel.Environment"),
    "NoiseLevelObserved": _SDM.format("dataModel.Environment"),
    "ParkingSpot": _SDM.format("dataModel.Parking"),
    "Streetlight": _SDM.format("dataModel.Streetlighting"),
    "WeatherObserved": _SDM.format("dataModel.Weather"),
    "ACMeasurement": _SDM.format("dataModel.Energy"),
    "WaterConsumptionObserved": _SDM.format("dataModel.WaterConsumption"),
    "Device": _SDM.format("dataModel.Device"),
}


# --- configuration -------------------------------------------------------------------------


def _toml_string(value: object) -> str:
    return json.dumps(str(value))  # its escapes (\", \\, \uXXXX) are TOML basic-string escapes too


def fleet_config_toml(
    devices: Sequence[FleetDevice],
    *,
    mqtt_port: int,
    broker_url: str | None,
    state_dir: Path,
    broker: Mapping[str, int | float] | None = None,
    outbox_max_depth: int = 500_000,
) -> str:
    """The adapter's configuration for the fleet: its collectivities, connections and registry.

    ``broker`` adds ``[broker]`` settings (``retry_max_s``...). The registry is the one
    ``fleet_registry(devices)`` returns, so ``load_config(...).devices`` equals it.
    """
    lines = ["[adapter]", f"models = {_toml_string(REPO / 'models')}", f"state_dir = {_toml_string(state_dir)}", ""]
    lines.append("[broker]")
    if broker_url is not None:
        lines.append(f"url = {_toml_string(broker_url)}")
    lines += [f"{key} = {value!r}" for key, value in (broker or {}).items()]
    lines += ["", "[outbox]", f"max_depth = {outbox_max_depth}", ""]
    for tenant in TENANTS:
        lines += ["[[collectivity]]", f"tenant = {_toml_string(tenant)}", f"name = {_toml_string(tenant)}", ""]
    for name, tenant, lns, transport in CONNECTIONS:
        lines += [
            "[[connection]]",
            f"name = {_toml_string(name)}",
            f"collectivity = {_toml_string(tenant)}",
            f"lns = {_toml_string(lns)}",
            f"transport = {_toml_string(transport)}",
        ]
        if transport == "mqtt":
            lines += [f"host = {_toml_string(HOST)}", f"port = {mqtt_port}"]
        else:
            lines.append("allow_unauthenticated = true  # tests on 127.0.0.1")
        lines.append("")
    for record in fleet_registry(list(devices)).values():
        assert record.location is not None
        lines += [
            "[[device]]",
            f"dev_eui = {_toml_string(record.dev_eui)}",
            f"name = {_toml_string(record.name)}",
            f"collectivity = {_toml_string(record.tenant)}",
            f"location = {{ latitude = {record.location.latitude!r}, longitude = {record.location.longitude!r} }}",
        ]
        if record.attributes:
            pairs = ", ".join(f"{key} = {_toml_string(value)}" for key, value in record.attributes.items())
            lines.append(f"attributes = {{ {pairs} }}")
        lines.append("")
    return "\n".join(lines)


# --- the fleet's traffic -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Uplink:
    """One uplink of the fleet as its network server sends it, and the receive time it carries."""

    event: SimulatedEvent
    at: datetime  # the network server's receive time: the observedAt of its entities

    @property
    def device(self) -> FleetDevice:
        return self.event.device


def fleet_stream(
    devices: list[FleetDevice],
    count: int,
    *,
    start: datetime,
    step: timedelta = timedelta(milliseconds=10),
    seed: int = 11,
) -> list[Uplink]:
    """``count`` uplinks round-robin over the fleet; uplink ``i`` was received at ``start + i * step``.

    ``start`` and ``step`` should be whole milliseconds (NGSI-LD keeps milliseconds).
    """
    times = [start + i * step for i in range(count)]
    clock = iter(times)
    events = list(uplinks(devices, count, seed=seed, now=lambda: next(clock)))
    return [Uplink(event, at) for event, at in zip(events, times, strict=True)]


def observation_id(device: FleetDevice) -> str:
    return f"urn:ngsi-ld:{KIND_TYPE[device.kind]}:{device.tenant}:{device.dev_eui}"


def device_id(device: FleetDevice) -> str:
    return f"urn:ngsi-ld:Device:{device.tenant}:{device.dev_eui}"


def expected_histories(stream: Iterable[Uplink]) -> dict[tuple[str, str, str], list[datetime]]:
    """(tenant, entity type, entity id) -> the observation times its history must hold, in order.

    Each uplink of the fleet gives two entities: its observation and its Device.
    """
    out: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
    for uplink in stream:
        d = uplink.device
        out[(d.tenant, KIND_TYPE[d.kind], observation_id(d))].append(uplink.at)
        out[(d.tenant, "Device", device_id(d))].append(uplink.at)
    return {key: sorted(times) for key, times in out.items()}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def whole_millis(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


# --- what an uplink carries, decoded independently of the adapter --------------------------

#: Cayenne LPP data types used by the fleet: (struct format, divisor)
_LPP = {
    2: (">h", 100),
    100: (">I", 1),
    101: (">H", 1),
    103: (">h", 10),
    104: (">B", 2),
    115: (">H", 10),
    120: (">B", 1),
    125: (">H", 1),
    132: (">H", 1),
}


def _lpp(data: bytes) -> dict[int, float]:
    values, i = {}, 0
    while i < len(data):
        channel, kind = data[i], data[i + 1]
        fmt, divisor = _LPP[kind]
        size = struct.calcsize(fmt)
        (raw,) = struct.unpack(fmt, data[i + 2 : i + 2 + size])
        values[channel] = raw / divisor
        i += 2 + size
    return values


def raw_payload(event: SimulatedEvent) -> tuple[bytes, dict[str, Any] | None]:
    """The frame payload bytes of an event, and the object its network server decoded (if any)."""
    if event.lns == "tts":
        message = json.loads(event.body)["uplink_message"]
        return base64.b64decode(message["frm_payload"]), message.get("decoded_payload")
    if event.device.marshaler == "protobuf":
        return EVENT_MESSAGES["up"]().FromString(event.body).data, None
    doc = json.loads(event.body)
    return base64.b64decode(doc["data"]), doc.get("object")


def expected_observation(event: SimulatedEvent) -> dict[str, tuple[Any, str | None]]:
    """Attribute -> (value, unitCode) of the observation entity, from the raw frame.

    Units are UN/CEFACT codes; percentages become ratios (C62) as the profiles declare.
    """
    data, decoded = raw_payload(event)
    kind = event.device.kind
    if kind in ("air-quality", "school-climate", "weather"):
        c = _lpp(data)
        common = {"temperature": (c[1], "CEL"), "relativeHumidity": (c[2] / 100, "C62")}
        if kind == "air-quality":
            return {**common, "no2": (c[3], "GQ"), "o3": (c[4], "GQ"), "pm10": (c[5], "GQ"), "pm25": (c[6], "GQ")}
        if kind == "school-climate":
            # the occupancy count is coarsened to steps of 5 below before anything is stored (privacy)
            return {**common, "co2": (c[3], "59"), "peopleCount": (int(c[4]) // 5 * 5, "IE")}
        return {
            **common,
            "atmosphericPressure": (c[3], "A97"),
            "windSpeed": (c[4], "MTS"),
            "windDirection": (c[5], "DD"),
            "precipitation": (c[6], "MMT"),
            "illuminance": (c[7], "LUX"),
        }
    if kind == "parking":
        return {"status": ("occupied" if data[0] == 1 else "free", None)}
    if kind == "streetlight":  # flags (bit 0 lamp on, bits 1-2 fault) | dimming % | W | Wh
        flags, dim, power, energy = struct.unpack(">BBHI", data)
        fault = ("ok", "defectiveLamp", "brokenLantern")[(flags >> 1) & 3]
        return {
            "status": (fault, None),
            "powerState": ("on" if flags & 1 else "off", None),
            "illuminanceLevel": (dim / 100, "C62"),
            "powerConsumption": (power, "WTT"),
            "lifetimePowerConsumption": (energy / 1000, "KWH"),
        }
    if kind == "noise":  # decoded by the network server
        assert decoded is not None
        return {"LAeq": (decoded["laeq"], "2N"), "LAmax": (decoded["lamax"], "2N")}
    if kind == "energy":  # Wh | W | V x10 | Hz x100 | flags
        wh, watts, _, centihertz, _ = struct.unpack(">IHHHB", data)
        return {
            "totalActiveEnergyImport": (wh / 1000, "KWH"),
            "totalActivePower": (watts / 1000, "KWT"),
            "frequency": (centihertz / 100, "HTZ"),
        }
    assert kind == "water"  # litres | alarms | flow l/h (dropped at the source: GDPR) | battery %
    litres, alarms, _, _ = struct.unpack(">IBHB", data)
    assert alarms == 0, "the fleet's water meters raise no alarm"
    return {"waterConsumption": (litres, "LTR"), "alarmStopsLeaks": (0, None), "alarmTamper": (0, None)}


def expected_battery(event: SimulatedEvent) -> float | None:
    """The Device's batteryLevel (a ratio) when the frame carries one."""
    data, _ = raw_payload(event)
    kind = event.device.kind
    if kind == "school-climate":
        return _lpp(data)[5] / 100
    if kind == "parking":
        return data[1] / 100
    if kind == "water":
        return struct.unpack(">IBHB", data)[3] / 100
    return None


# --- the embedded broker on a real port ----------------------------------------------------


class EmbeddedBroker:
    """The embedded NGSI-LD broker on ``127.0.0.1:port``, backed by an SQLite file.

    ``stop`` ends its runner (as a crashed or stopped broker process would: the port refuses
    connections); ``start`` serves a new application on the same port and the same file.
    ``middlewares`` are added inside the broker's own (a test's instrumentation).
    """

    def __init__(
        self,
        db_path: Path,
        *,
        port: int | None = None,
        middlewares: Sequence[Callable[..., Awaitable[web.StreamResponse]]] = (),
    ) -> None:
        self.db_path = db_path
        self.port = port or unused_port()
        self.middlewares = tuple(middlewares)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        assert self._runner is None, "already running"
        app = create_broker_app(db_path=self.db_path)
        app.middlewares.extend(self.middlewares)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, HOST, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


class BrokerReader:
    """The NGSI-LD queries of the assertions, per tenant (``NGSILD-Tenant``)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._api = url.rstrip("/") + "/ngsi-ld/v1"

    async def _get(
        self, path: str, tenant: str, entity_type: str | None = None, **params: str
    ) -> tuple[int, Mapping[str, str], Any]:
        headers = {"NGSILD-Tenant": tenant, "Accept": "application/json"}
        if entity_type is not None:
            headers["Link"] = (
                f'<{TYPE_CONTEXT[entity_type]}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
            )
        async with self._session.get(self._api + path, params=params, headers=headers) as answer:
            return answer.status, answer.headers, await answer.json()

    async def count(self, tenant: str) -> int:
        """Every entity of the tenant, whatever its type."""
        status, headers, body = await self._get("/entities", tenant, local="true", count="true", limit="0")
        assert status == 200, body
        return int(headers["NGSILD-Results-Count"])

    async def entities(self, tenant: str, entity_type: str) -> dict[str, dict[str, Any]]:
        """The entities of a type, by id (attribute names compacted with the type's context)."""
        status, _, body = await self._get("/entities", tenant, entity_type, type=entity_type, limit="1000")
        assert status == 200, body
        return {e["id"]: e for e in body}

    async def entity(self, tenant: str, entity_id: str, entity_type: str) -> dict[str, Any] | None:
        status, _, body = await self._get(f"/entities/{entity_id}", tenant, entity_type)
        if status == 404:
            return None
        assert status == 200, body
        result: dict[str, Any] = body
        return result

    async def temporal(self, tenant: str, entity_type: str, **params: str) -> dict[str, dict[str, Any]]:
        """The temporal representations of every entity of a type, by id."""
        status, _, body = await self._get(
            "/temporal/entities", tenant, entity_type, type=entity_type, limit="1000", **params
        )
        assert status == 200, body
        return {e["id"]: e for e in body}

    async def temporal_entity(self, tenant: str, entity_id: str, entity_type: str, **params: str) -> dict[str, Any]:
        status, _, body = await self._get(f"/temporal/entities/{entity_id}", tenant, entity_type, **params)
        assert status == 200, body
        result: dict[str, Any] = body
        return result


async def history_problems(
    reader: BrokerReader, stream: Sequence[Uplink], written_twice: Iterable[tuple[str, str, datetime]] = ()
) -> tuple[list[str], int]:
    """Compare the broker's temporal history with the uplinks sent; returns (problems, instances).

    For every entity of every uplink (its observation and its Device), every attribute must
    hold exactly one instance per uplink of its device: for an attribute with ``observedAt``,
    the instances' times must be exactly the uplinks' receive times (nothing lost, none twice);
    for the others (location, relationships, static properties), one instance per write. No
    entity the stream did not produce may be there. ``written_twice`` names (tenant, entity id,
    observation time) that the broker is known to have been sent twice: one more instance each.
    """
    expected = expected_histories(stream)
    for tenant, entity_id, at in written_twice:
        key = next(k for k in expected if k[0] == tenant and k[2] == entity_id)
        expected[key] = sorted([*expected[key], at])
    by_tenant_type: dict[tuple[str, str], dict[str, list[datetime]]] = defaultdict(dict)
    for (tenant, entity_type, entity_id), times in expected.items():
        by_tenant_type[(tenant, entity_type)][entity_id] = times
    problems: list[str] = []
    instances = 0
    for (tenant, entity_type), wanted in sorted(by_tenant_type.items()):
        current = await reader.entities(tenant, entity_type)
        history = await reader.temporal(tenant, entity_type, options="temporalValues")
        for entity_id in sorted(set(history) - set(wanted)):
            problems.append(f"{tenant} {entity_id}: in the history, but no uplink made it")
        for entity_id, times in sorted(wanted.items()):
            if entity_id not in history or entity_id not in current:
                problems.append(f"{tenant} {entity_id}: missing from the broker")
                continue
            observed = {name for name, a in current[entity_id].items() if isinstance(a, dict) and "observedAt" in a}
            if not observed:
                problems.append(f"{tenant} {entity_id}: no attribute with observedAt")
            attributes = {k: v for k, v in history[entity_id].items() if k not in ("id", "type", "@context")}
            for name, series in sorted(attributes.items()):
                points = series.get("values", series.get("objects", []))
                instances += len(points)
                if len(points) != len(times):
                    problems.append(f"{tenant} {entity_id} {name}: {len(points)} instances for {len(times)} writes")
                if name in observed:
                    got, want = Counter(parse_time(t) for _, t in points), Counter(times)
                    twice = sorted(t.isoformat() for t in got - want if t in want)
                    lost = sorted(t.isoformat() for t in want - got)
                    extra = sorted(t.isoformat() for t in got - want if t not in want)
                    if twice or lost or extra:
                        problems.append(
                            f"{tenant} {entity_id} {name}: recorded twice {twice}, lost {lost}, unexpected {extra}"
                        )
            missing = observed - set(attributes)
            if missing:
                problems.append(f"{tenant} {entity_id}: no history for {sorted(missing)}")
    return problems, instances


# --- the adapter -------------------------------------------------------------------------


def write_config(
    path: Path,
    fleet: list[FleetDevice],
    mosquitto: MosquittoBroker,
    broker_url: str,
    broker_settings: Mapping[str, int | float] | None = None,
) -> AdapterConfig:
    """Write the fleet's TOML configuration to ``path`` and load it back as the CLI would."""
    path.write_text(
        fleet_config_toml(
            fleet,
            mqtt_port=mosquitto.port,
            broker_url=broker_url,
            state_dir=path.parent / "state",
            broker=broker_settings,
        ),
        encoding="utf-8",
    )
    config = load_config(path, env={})
    assert dict(config.devices) == fleet_registry(fleet), "the TOML registry must be the fleet's"
    return config


@contextlib.asynccontextmanager
async def running_adapter(config: AdapterConfig, mosquitto: MosquittoBroker) -> AsyncIterator[AdapterService]:
    """The adapter in this process, on a free HTTP port, once its MQTT subscriptions are in place."""
    async with AdapterService(config, http_port=unused_port()) as service:
        assert service.http_port is not None
        await wait_subscribed(mosquitto, mqtt_client_ids(config))
        await wait_listening(service.http_port)
        yield service


def mqtt_client_ids(config: AdapterConfig) -> list[str]:
    """The client identifiers naming the adapter's persistent MQTT sessions."""
    return [client_identifier(c) for c in config.connections if c.transport == "mqtt"]


async def wait_listening(port: int, *, timeout: float = 15.0) -> None:
    """Wait until the adapter's HTTP listener answers ``/healthz``."""
    async with aiohttp.ClientSession() as session:

        async def healthy() -> bool:
            try:
                async with session.get(f"http://{HOST}:{port}/healthz") as answer:
                    return answer.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await wait_until(healthy, f"the adapter's HTTP listener on port {port}", timeout=timeout)


# --- the network servers' side -------------------------------------------------------------


class Publisher:
    """Sends the fleet's events as their network servers do.

    MQTT: QoS 1, each publish returns once Mosquitto acknowledged it. Webhooks: a POST to the
    adapter's HTTP port (``/webhooks/{connection}?event=up``); with ``retry_for_s`` the POST is
    sent again (every 0.1 s, for that long at most) while the adapter is unreachable or answers
    5xx, as an LNS HTTP integration with retries does.
    """

    def __init__(self, mqtt_address: tuple[str, int], http_port: int) -> None:
        self._mqtt = aiomqtt.Client(*mqtt_address, identifier=f"e2e-lns-{uuid.uuid4().hex[:8]}")
        self._http_port = http_port
        self._session: aiohttp.ClientSession | None = None
        self.webhook_answers: list[dict[str, Any]] = []

    async def __aenter__(self) -> Publisher:
        await self._mqtt.__aenter__()
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            await self._mqtt.__aexit__(None, None, None)

    async def send(self, event: SimulatedEvent, *, retry_for_s: float | None = None) -> None:
        if event.topic is not None:
            await self._mqtt.publish(event.topic, event.body, qos=1)
        else:
            await self.post(event, retry_for_s=retry_for_s)

    async def post(self, event: SimulatedEvent, *, retry_for_s: float | None = None) -> dict[str, Any]:
        assert self._session is not None
        url = f"http://{HOST}:{self._http_port}/webhooks/{event.connection}"
        deadline = time.monotonic() + (retry_for_s or 0)
        while True:
            try:
                async with self._session.post(
                    url,
                    params={"event": event.event or "up"},
                    data=event.body,
                    headers={"Content-Type": "application/json"},
                ) as answer:
                    if answer.status < 500 or retry_for_s is None:
                        assert answer.status == 200, f"webhook answered {answer.status}: {await answer.text()}"
                        body: dict[str, Any] = await answer.json()
                        self.webhook_answers.append(body)
                        return body
            except (aiohttp.ClientConnectionError, TimeoutError):
                if retry_for_s is None:
                    raise
            if time.monotonic() > deadline:
                pytest.fail(f"the webhook {url} did not take an event within {retry_for_s} s")
            await asyncio.sleep(0.1)


async def paced(
    items: Sequence[Any],
    rate: float,
    action: Callable[[Any], Awaitable[None]],
    on_each: Callable[[int], None] | None = None,
) -> None:
    """``action`` on each item at ``rate`` per second (item ``i`` at ``i / rate`` s), in order."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i, item in enumerate(items):
        delay = started + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await action(item)
        if on_each is not None:
            on_each(i + 1)


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, *, timeout: float, poll: float = 0.05, fail: bool = True
) -> float | None:
    """Wait (at most ``timeout`` s) for ``condition`` (sync or async); returns the seconds waited.

    On timeout the test fails, or (``fail=False``) None is returned, for a caller that has a
    more precise diagnosis to give first.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        value = condition()
        if not isinstance(value, bool):
            value = await value
        if value:
            return loop.time() - started
        if loop.time() - started > timeout:
            if not fail:
                return None
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(poll)


async def wait_subscribed(
    mosquitto: MosquittoBroker, client_ids: Iterable[str], *, times: int = 1, timeout: float = 15.0
) -> None:
    """Wait until Mosquitto logged ``times`` SUBSCRIBE packets from each client (its sessions exist)."""
    ids = list(client_ids)

    def subscribed() -> bool:
        log = mosquitto.log_file.read_text(errors="replace") if mosquitto.log_file.exists() else ""
        return all(log.count(f"Received SUBSCRIBE from {cid}\n") >= times for cid in ids)

    await wait_until(subscribed, f"the MQTT subscriptions of {ids}", timeout=timeout)


async def scrape_metrics(session: aiohttp.ClientSession, http_port: int) -> dict[str, float] | None:
    """The adapter's ``/metrics`` as {name: value}; None when it does not answer."""
    try:
        async with session.get(f"http://{HOST}:{http_port}/metrics", timeout=aiohttp.ClientTimeout(total=2)) as answer:
            if answer.status != 200:
                return None
            text = await answer.text()
    except (aiohttp.ClientConnectionError, TimeoutError):
        return None
    metrics = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()
            metrics[name] = float(value)
    return metrics


def start_of_stream(*, ago: timedelta = timedelta(minutes=15)) -> datetime:
    """A receive time for the first uplink: in the past, whole milliseconds."""
    return whole_millis(datetime.now(UTC) - ago)
