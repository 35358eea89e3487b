"""A simulated fleet of LoRaWAN devices, speaking as ChirpStack v4 and The Things Stack v3 do.

The demo and the end-to-end benchmark need realistic traffic for about a hundred
devices of several collectivities without a real network server: this module builds the
devices (with the registry entries an operator would write: location, parking site) and,
for each uplink, the exact event the network server would publish on MQTT (topic and
body) or post to a webhook. Payloads follow the shipped device profiles (``models/``),
values drift plausibly, and meter indexes only go up.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format

from adapter.mapping.entities import DeviceRecord
from adapter.sources.chirpstack import EVENT_MESSAGES
from adapter.uplink import Location

__all__ = ["FLEET_PLAN", "FleetDevice", "SimulatedEvent", "build_fleet", "fleet_registry", "uplinks"]

#: (collectivity tenant, connection name, lns, device kind, count, marshaler)
FLEET_PLAN: tuple[tuple[str, str, str, str, int, str], ...] = (
    ("ville", "ville-chirpstack", "chirpstack", "air-quality", 10, "json"),
    ("ville", "ville-chirpstack", "chirpstack", "school-climate", 20, "json"),
    ("ville", "ville-chirpstack", "chirpstack", "parking", 20, "protobuf"),
    ("ville", "ville-chirpstack", "chirpstack", "streetlight", 15, "json"),
    ("ville", "ville-chirpstack", "chirpstack", "noise", 5, "json"),
    ("region", "region-tts", "tts", "weather", 10, "json"),
    ("region", "region-tts", "tts", "air-quality", 8, "json"),
    ("region", "region-tts", "tts", "energy", 6, "json"),
    ("eau", "eau-chirpstack", "chirpstack", "water", 6, "json"),
)

#: LNS device-profile name of each kind (what the shipped profiles match on)
_LNS_PROFILE = {
    "air-quality": "aq-sensor-lpp",
    "school-climate": "school-climate-lpp",
    "parking": "parking-sensor",
    "streetlight": "streetlight-controller",
    "noise": "noise-sensor",
    "weather": "weather-station-lpp",
    "energy": "energy-meter-1ph",
    "water": "water-meter-pulse",
}
_FPORT = {
    "air-quality": 2,
    "school-climate": 2,
    "parking": 1,
    "streetlight": 5,
    "noise": 4,
    "weather": 3,
    "energy": 7,
    "water": 1,
}
_CENTRE = (48.1113, -1.6800)  # the territory the demo is set in
_GATEWAYS = (
    ("0016c001f153a14c", 48.1113, -1.6800, 61.5),
    ("7076ff0056081234", 48.1035, -1.6722, 40.0),
    ("b827ebfffe61a2c3", 48.1325, -1.6361, 45.0),
    ("a84041ffff1f2e3d", 48.0950, -1.7010, 35.0),
)


@dataclass
class FleetDevice:
    tenant: str
    connection: str
    lns: str
    kind: str
    marshaler: str
    dev_eui: str
    device_id: str
    application_id: str
    location: Location
    f_cnt: int = 0
    state: dict[str, float] = field(default_factory=dict)  # drifting values, meter indexes

    @property
    def lns_profile(self) -> str:
        return _LNS_PROFILE[self.kind] if self.lns == "chirpstack" else f"ngsild-demo/{_LNS_PROFILE[self.kind]}"


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    device: FleetDevice
    connection: str
    lns: str
    topic: str | None  # MQTT topic; None for a webhook post
    event: str | None  # out-of-band event type (webhook ?event=)
    body: bytes


def build_fleet(*, seed: int = 7, scale: float = 1.0) -> list[FleetDevice]:
    """The demo fleet (about a hundred devices with ``scale=1``), reproducible for a seed."""
    rng = random.Random(seed)
    devices: list[FleetDevice] = []
    serial = 0
    for tenant, connection, lns, kind, count, marshaler in FLEET_PLAN:
        application = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if lns == "chirpstack" else kind
        for i in range(max(1, round(count * scale))):
            serial += 1
            lat = _CENTRE[0] + rng.uniform(-0.03, 0.03)
            lon = _CENTRE[1] + rng.uniform(-0.045, 0.045)
            devices.append(
                FleetDevice(
                    tenant=tenant,
                    connection=connection,
                    lns=lns,
                    kind=kind,
                    marshaler=marshaler,
                    dev_eui=f"a8404100{serial:08x}",
                    device_id=f"{kind}-{tenant}-{i + 1:03d}",
                    application_id=application,
                    location=Location(round(lat, 6), round(lon, 6)),
                )
            )
    return devices


def fleet_registry(devices: list[FleetDevice]) -> dict[str, DeviceRecord]:
    """The device-registry entries an operator would configure for this fleet."""
    registry = {}
    for d in devices:
        attributes = {}
        if d.kind == "parking":
            attributes["refParkingSite"] = f"urn:ngsi-ld:OnStreetParking:{d.tenant}:zone-{int(d.dev_eui, 16) % 4}"
        registry[d.dev_eui] = DeviceRecord(
            d.dev_eui, name=d.device_id, location=d.location, attributes=attributes, tenant=d.tenant
        )
    return registry


def uplinks(devices: list[FleetDevice], count: int, *, seed: int = 11, now: Any = None) -> Iterator[SimulatedEvent]:
    """``count`` uplinks, round-robin over the fleet, each stamped with the current time."""
    rng = random.Random(seed)
    clock = now or (lambda: datetime.now(UTC))
    for n in range(count):
        device = devices[n % len(devices)]
        device.f_cnt += 1
        yield _event(device, _payload(device, rng), clock(), rng)


def _payload(d: FleetDevice, rng: random.Random) -> tuple[bytes, dict[str, Any] | None]:
    s = d.state

    def drift(key: str, start: float, step: float, low: float, high: float) -> float:
        s[key] = min(high, max(low, s.get(key, start + rng.uniform(-step * 5, step * 5)) + rng.uniform(-step, step)))
        return s[key]

    def lpp(*items: tuple[int, int, str, float]) -> bytes:
        return b"".join(bytes([ch, t]) + struct.pack(fmt, int(round(v))) for ch, t, fmt, v in items)

    if d.kind == "air-quality":
        return lpp(
            (1, 103, ">h", drift("t", 9, 0.3, -10, 35) * 10),
            (2, 104, ">B", drift("h", 75, 1, 20, 100) * 2),
            (3, 2, ">h", drift("no2", 35, 2, 2, 150) * 100),
            (4, 2, ">h", drift("o3", 50, 2, 5, 180) * 100),
            (5, 2, ">h", drift("pm10", 22, 1.5, 2, 120) * 100),
            (6, 2, ">h", drift("pm25", 13, 1, 1, 80) * 100),
        ), None
    if d.kind == "school-climate":
        return lpp(
            (1, 103, ">h", drift("t", 20.5, 0.2, 14, 28) * 10),
            (2, 104, ">B", drift("h", 45, 1, 25, 70) * 2),
            (3, 125, ">H", drift("co2", 800, 40, 400, 2500)),
            (4, 100, ">I", round(drift("n", 20, 2, 0, 32))),
            (5, 120, ">B", drift("bat", 90, 0.05, 5, 100)),
        ), None
    if d.kind == "weather":
        return lpp(
            (1, 103, ">h", drift("t", 8, 0.3, -15, 38) * 10),
            (2, 104, ">B", drift("h", 80, 1, 20, 100) * 2),
            (3, 115, ">H", drift("p", 1013, 0.5, 960, 1045) * 10),
            (4, 2, ">h", drift("w", 4, 0.5, 0, 30) * 100),
            (5, 132, ">H", drift("dir", 220, 10, 0, 359)),
            (6, 2, ">h", rng.choice((0, 0, 0, 0.2, 1.4)) * 100),
            (7, 101, ">H", drift("lux", 8000, 500, 0, 60000)),
        ), None
    if d.kind == "parking":
        if rng.random() < 0.3:
            s["occ"] = 1 - s.get("occ", 0)
        return bytes([int(s.get("occ", 0)), int(drift("bat", 80, 0.02, 5, 100))]), None
    if d.kind == "streetlight":
        on = 1 if rng.random() < 0.5 else 0
        s["energy"] = s.get("energy", rng.randint(100_000, 3_000_000)) + on * 60
        fault = 1 if rng.random() < 0.02 else 0
        return bytes([on | (fault << 1), 70 if on else 0]) + struct.pack(">HI", 48 * on, int(s["energy"])), None
    if d.kind == "noise":
        laeq = drift("laeq", 60, 1.5, 35, 95)
        return b"\x00", {"laeq": round(laeq, 1), "lamax": round(laeq + rng.uniform(5, 20), 1), "period_s": 900}
    if d.kind == "energy":
        s["wh"] = s.get("wh", rng.randint(1_000_000, 90_000_000)) + rng.randint(100, 3000)
        return struct.pack(
            ">IHHHB",
            int(s["wh"]),
            int(drift("w", 3000, 200, 0, 20000)),
            int(drift("v", 231, 0.5, 215, 245) * 10),
            int(drift("f", 50, 0.01, 49.8, 50.2) * 100),
            0,
        ), None
    # water meter
    s["l"] = s.get("l", rng.randint(10_000, 900_000)) + rng.randint(0, 40)
    return struct.pack(">IBHB", int(s["l"]), 0, rng.randint(0, 600), int(drift("bat", 85, 0.02, 5, 100))), None


def _event(
    d: FleetDevice, payload: tuple[bytes, dict[str, Any] | None], at: datetime, rng: random.Random
) -> SimulatedEvent:
    data, decoded = payload
    heard_by = rng.sample(_GATEWAYS, rng.randint(1, 3))
    stamp = at.isoformat().replace("+00:00", "Z")
    if d.lns == "tts":
        return _tts(d, data, decoded, stamp, heard_by, rng)
    body = _chirpstack(d, data, decoded, stamp, heard_by, rng)
    if d.connection.startswith("eau"):  # the water authority's ChirpStack posts to the webhook
        return SimulatedEvent(d, d.connection, "chirpstack", None, "up", json.dumps(body).encode())
    topic = f"application/{d.application_id}/device/{d.dev_eui}/event/up"
    if d.marshaler == "protobuf":
        message = json_format.ParseDict(body, EVENT_MESSAGES["up"](), ignore_unknown_fields=True)
        return SimulatedEvent(d, d.connection, "chirpstack", topic, None, message.SerializeToString())
    return SimulatedEvent(d, d.connection, "chirpstack", topic, None, json.dumps(body).encode())


def _chirpstack(
    d: FleetDevice,
    data: bytes,
    decoded: dict[str, Any] | None,
    stamp: str,
    heard_by: list[tuple[str, float, float, float]],
    rng: random.Random,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deduplicationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "time": stamp,
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": d.tenant,
            "applicationId": d.application_id,
            "applicationName": d.kind,
            "deviceProfileId": "3f2e1d0c-1111-4222-8333-444455556666",
            "deviceProfileName": d.lns_profile,
            "deviceName": d.device_id,
            "devEui": d.dev_eui,
            "deviceClassEnabled": "CLASS_A",
            "tags": {},
        },
        "devAddr": d.dev_eui[-8:],
        "adr": True,
        "dr": 5,
        "fCnt": d.f_cnt,
        "fPort": _FPORT[d.kind],
        "confirmed": d.kind in ("water", "energy"),
        "data": base64.b64encode(data).decode(),
        "rxInfo": [
            {
                "gatewayId": gw,
                "uplinkId": rng.getrandbits(31),
                "nsTime": stamp,
                "rssi": rng.randint(-120, -70),
                "snr": round(rng.uniform(-12, 10), 2),
                "channel": rng.randint(0, 7),
                "rfChain": 0,
                "location": {"latitude": lat, "longitude": lon, "altitude": alt},
                "crcStatus": "CRC_OK",
            }
            for gw, lat, lon, alt in heard_by
        ],
        "txInfo": {
            "frequency": 868100000,
            "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}},
        },
    }
    if decoded is not None:
        body["object"] = decoded
    return body


def _tts(
    d: FleetDevice,
    data: bytes,
    decoded: dict[str, Any] | None,
    stamp: str,
    heard_by: list[tuple[str, float, float, float]],
    rng: random.Random,
) -> SimulatedEvent:
    message: dict[str, Any] = {
        "f_port": _FPORT[d.kind],
        "f_cnt": d.f_cnt,
        "frm_payload": base64.b64encode(data).decode(),
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": f"gw-{gw[-6:]}", "eui": gw.upper()},
                "time": stamp,
                "rssi": rng.randint(-120, -70),
                "channel_rssi": -100,
                "snr": round(rng.uniform(-12, 10), 2),
                "channel_index": rng.randint(0, 7),
                "received_at": stamp,
                "location": {"latitude": lat, "longitude": lon, "altitude": alt, "source": "SOURCE_REGISTRY"},
            }
            for gw, lat, lon, alt in heard_by
        ],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9, "coding_rate": "4/5"}},
            "frequency": "867300000",
        },
        "received_at": stamp,
        "version_ids": {"brand_id": "ngsild-demo", "model_id": _LNS_PROFILE[d.kind], "band_id": "EU_863_870"},
        "network_ids": {"net_id": "000013", "tenant_id": d.tenant, "cluster_id": "eu1"},
    }
    if decoded is not None:
        message["decoded_payload"] = decoded
    body = {
        "end_device_ids": {
            "device_id": d.device_id,
            "application_ids": {"application_id": d.application_id},
            "dev_eui": d.dev_eui.upper(),
            "join_eui": "70B3D57ED0000000",
            "dev_addr": d.dev_eui[-8:].upper(),
        },
        "correlation_ids": [f"as:up:{uuid.UUID(int=rng.getrandbits(128), version=4).hex.upper()}"],
        "received_at": stamp,
        "uplink_message": message,
    }
    topic = f"v3/{d.application_id}@{d.tenant}/devices/{d.device_id}/up"
    return SimulatedEvent(d, d.connection, "tts", topic, None, json.dumps(body).encode())
