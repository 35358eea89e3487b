"""The normalised records that every network-server source produces.

A source turns one LNS event into exactly one of ``Uplink``, ``DeviceStatus`` or
``OtherEvent``; everything downstream (codecs, mapping, provenance) reads only these.

Event kinds. Each record names what happened in one vocabulary shared by every network
server (``EVENT_KINDS``), so that counters and ``parse`` output compare across them, and keeps
the network server's own name for it (``lns_event``: the MQTT topic suffix, ``down/ack`` for
The Things Stack, ``ack`` for ChirpStack).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "EVENT_KINDS",
    "DataRate",
    "DeviceStatus",
    "Event",
    "GatewayReception",
    "Location",
    "Origin",
    "OtherEvent",
    "Uplink",
]


#: Every event kind a source reports, with what it means. The network servers' own names map
#: to these in each parser (``adapter.sources.tts.parser.EVENT_KINDS``...).
EVENT_KINDS: dict[str, str] = {
    "up": "an uplink from the device",
    "normalized": "an uplink's payload in the network server's normalised form (The Things Stack)",
    "status": "a device status report: battery and link margin",
    "join": "the device joined the network",
    "queued": "a downlink was queued for the device",
    "sent": "a downlink was handed to a gateway for transmission",
    "ack": "the device acknowledged a confirmed downlink",
    "nack": "the device did not acknowledge a confirmed downlink",
    "failed": "a downlink could not be sent",
    "invalidated": "the downlink queue was invalidated (frame counters changed)",
    "location": "the network server resolved the device's location",
    "integration": "data from a network-server integration or service (LoRa Cloud...)",
    "log": "a network-server log or error event about the device",
}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an event came from: which network-server connection, for which collectivity.

    ``tenant`` is the NGSI-LD tenant of the collectivity that owns the connection;
    ``lns_id`` identifies the network server (its configured name or address).
    """

    tenant: str
    lns_id: str


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    altitude: float | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayReception:
    """One gateway that heard the uplink.

    ``gateway_id`` is the network server's own id of the gateway, the name its operators know
    (The Things Stack ``gateway_id``, ChirpStack ``gatewayId``, which is the EUI in hex);
    ``eui`` is its 64-bit EUI (lower-case hex) when the network server gives one. A gateway
    relayed by Packet Broker has the id ``packetbroker`` and, when the forwarding network
    tells it, the EUI of the gateway that really heard the uplink.
    """

    gateway_id: str
    eui: str | None = None
    rssi: float | None = None
    snr: float | None = None
    channel: int | None = None
    location: Location | None = None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DataRate:
    modulation: str  # "LORA", "FSK" or "LR_FHSS"
    spreading_factor: int | None = None
    bandwidth: int | None = None  # Hz
    coding_rate: str | None = None
    bit_rate: int | None = None  # FSK only

    def __str__(self) -> str:
        if self.modulation == "LORA" and self.spreading_factor and self.bandwidth:
            return f"SF{self.spreading_factor}BW{self.bandwidth // 1000}"
        return self.modulation


@dataclass(frozen=True, slots=True)
class Uplink:
    """One device uplink, whatever network server carried it."""

    origin: Origin
    lns: str  # source plug-in name: "chirpstack" or "tts"
    dev_eui: str  # lower-case hex, 16 digits
    device_id: str  # the LNS's name for the device
    application_id: str
    f_cnt: int
    f_port: int  # 0: a MAC-command-only frame, or a frame without FPort (no application data)
    payload: bytes
    received_at: datetime  # network-server receive time, UTC
    device_time: datetime | None = None
    gateways: tuple[GatewayReception, ...] = ()
    data_rate: DataRate | None = None
    frequency: int | None = None  # Hz
    confirmed: bool = False
    decoded: Mapping[str, Any] | None = None  # the LNS's own decoded object
    location: Location | None = None  # device location known to the LNS
    device_profile: str | None = None  # the LNS's device-profile (or model) name
    tags: Mapping[str, str] = field(default_factory=dict)
    lns_tenant: str | None = None  # tenant as the LNS names it
    event_id: str | None = None  # deduplication / correlation id given by the LNS

    @property
    def payload_digest(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()

    @property
    def dedup_key(self) -> tuple[str, str, int, str]:
        """Same device, frame counter and payload: the same uplink, however often it arrives."""
        return (self.origin.tenant, self.dev_eui, self.f_cnt, self.payload_digest)

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON (the ``parse`` command prints this)."""
        return {
            "lns": self.lns,
            "event": "up",
            "lns_event": "up",
            "tenant": self.origin.tenant,
            "lns_id": self.origin.lns_id,
            "lns_tenant": self.lns_tenant,
            "application_id": self.application_id,
            "device_id": self.device_id,
            "dev_eui": self.dev_eui,
            "device_profile": self.device_profile,
            "tags": dict(self.tags),
            "f_cnt": self.f_cnt,
            "f_port": self.f_port,
            "confirmed": self.confirmed,
            "payload_hex": self.payload.hex() if self.payload else None,
            "received_at": _iso(self.received_at),
            "device_time": _iso(self.device_time),
            "gateways": [_gateway_json(g) for g in self.gateways],
            "data_rate": str(self.data_rate) if self.data_rate else None,
            "frequency": self.frequency,
            "location": _location_json(self.location),
            "decoded": dict(self.decoded) if self.decoded is not None else None,
            "event_id": self.event_id,
        }


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device status report (ChirpStack ``status`` event): battery and link margin."""

    origin: Origin
    lns: str
    dev_eui: str
    device_id: str
    application_id: str
    received_at: datetime
    battery_level: float | None  # percent; None when unknown or on external power
    external_power: bool
    margin: int | None  # demodulation margin, dB
    device_profile: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "lns": self.lns,
            "event": "status",
            "lns_event": "status",
            "tenant": self.origin.tenant,
            "dev_eui": self.dev_eui,
            "device_id": self.device_id,
            "application_id": self.application_id,
            "received_at": _iso(self.received_at),
            "battery_level": self.battery_level,
            "external_power": self.external_power,
            "margin": self.margin,
            "f_cnt": None,
            "f_port": None,
            "payload_hex": None,
            "gateways": [],
            "decoded": None,
        }


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """An event that is not an uplink nor a status report (join, ack, sent, log...): counted.

    ``event`` is its kind (a key of ``EVENT_KINDS``); ``lns_event`` the network server's own
    name for it (``down/ack``, ``txack``...).
    """

    origin: Origin
    lns: str
    event: str
    lns_event: str
    dev_eui: str | None
    received_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "lns": self.lns,
            "event": self.event,
            "lns_event": self.lns_event,
            "tenant": self.origin.tenant,
            "dev_eui": self.dev_eui,
            "received_at": _iso(self.received_at),
            "f_cnt": None,
            "f_port": None,
            "payload_hex": None,
            "gateways": [],
            "decoded": None,
        }


Event = Uplink | DeviceStatus | OtherEvent


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def _location_json(location: Location | None) -> dict[str, Any] | None:
    return dataclasses.asdict(location) if location else None


def _gateway_json(g: GatewayReception) -> dict[str, Any]:
    return {
        "id": g.gateway_id,
        "eui": g.eui,
        "rssi": g.rssi,
        "snr": g.snr,
        "channel": g.channel,
        "location": _location_json(g.location),
        "received_at": _iso(g.received_at),
    }
