"""Parse The Things Stack (v3) application messages into normalised records.

Where messages come from
    MQTT server: topic ``v3/{application_id}@{tenant_id}/devices/{device_id}/{kind}`` where
    ``kind`` is ``up``, ``join``, ``down/queued|sent|ack|nack|failed|invalidated``,
    ``location/solved``, ``service/data`` or ``up/normalized``. The Open Source edition has
    no tenant, so the second level is just ``{application_id}``.
    Webhooks: the same JSON body; the message type may be given out of band as ``event``
    (``uplink_message``, ``join_accept``, ``downlink_ack``... or a topic kind such as ``up``).

Body
    One ``ApplicationUp`` JSON object (snake_case): ``end_device_ids``, ``correlation_ids``,
    ``received_at`` and exactly one message key (``uplink_message``, ``join_accept``...),
    which is how the message is recognised. Zero values are left out (the JSON marshaler
    does not emit them), so an absent ``f_cnt``, ``f_port`` or ``channel_index`` is 0. The
    Network Server forwards MAC-command-only frames (FPort 0) and frames without FPort as
    uplinks with no ``f_port`` and no ``frm_payload``: both are ``f_port`` 0 here.
    64-bit numbers are strings (``settings.frequency``), EUIs and bytes upper-case hex.

Gateways
    ``rx_metadata[].gateway_ids`` holds the gateway's id (``gateway_id``, the name its
    operators know, which The Things Stack always sets) and its EUI (``eui``) when it has one.
    Uplinks relayed by Packet Broker carry the id ``packetbroker`` and no EUI; the forwarding
    network's gateway EUI, when it shares it, is ``packet_broker.forwarder_gateway_eui``.

Only ``uplink_message`` becomes an ``Uplink``; every other message is an ``OtherEvent`` of the
plain kind of ``EVENT_KINDS`` (``down/ack`` is ``ack``), its MQTT topic kind kept as
``lns_event``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapter.exceptions import EventError
from adapter.sources._common import (
    DEFAULT_LIMITS,
    ParseLimits,
    decode_payload,
    field,
    gateway_id,
    gateway_time,
    load_json_object,
    normalise_eui,
    optional_location,
    parse_time,
    string_map,
)
from adapter.uplink import DataRate, Event, GatewayReception, Location, Origin, OtherEvent, Uplink

__all__ = ["EVENT_KINDS", "MESSAGE_EVENTS", "TTSParser"]

LNS = "tts"

#: body key of each message -> event name (its MQTT topic kind)
MESSAGE_EVENTS: dict[str, str] = {
    "uplink_message": "up",
    "uplink_normalized": "up/normalized",
    "join_accept": "join",
    "downlink_queued": "down/queued",
    "downlink_sent": "down/sent",
    "downlink_ack": "down/ack",
    "downlink_nack": "down/nack",
    "downlink_failed": "down/failed",
    "downlink_queue_invalidated": "down/invalidated",
    "location_solved": "location/solved",
    "service_data": "service/data",
}

#: MQTT topic kind -> plain event kind (``adapter.uplink.EVENT_KINDS``)
EVENT_KINDS: dict[str, str] = {
    "up": "up",
    "up/normalized": "normalized",
    "join": "join",
    "down/queued": "queued",
    "down/sent": "sent",
    "down/ack": "ack",
    "down/nack": "nack",
    "down/failed": "failed",
    "down/invalidated": "invalidated",
    "location/solved": "location",
    "service/data": "integration",
}

# Every name a caller may give for a message type -> its body key.
_EVENT_KEYS: dict[str, str] = {
    **{key: key for key in MESSAGE_EVENTS},
    **{kind: key for key, kind in MESSAGE_EVENTS.items()},
    "normalized_uplink": "uplink_normalized",
}


@dataclass(frozen=True, slots=True)
class _Route:
    """What the MQTT topic or the webhook message type says about the message."""

    key: str | None = None
    application_id: str | None = None
    tenant: str | None = None
    device_id: str | None = None


class TTSParser:
    """The Things Stack v3 JSON messages -> ``Uplink`` or ``OtherEvent``."""

    name = LNS

    def parse(
        self,
        body: bytes,
        *,
        origin: Origin,
        topic: str | None = None,
        event: str | None = None,
        limits: ParseLimits = DEFAULT_LIMITS,
        now: datetime | None = None,
    ) -> Event:
        now = now or datetime.now(UTC)
        route = _route(topic, event)
        message = load_json_object(body, limits)
        key = _message_key(message)
        if route.key is not None and route.key != key:
            raise EventError(
                "topic_mismatch",
                f"expected a {route.key} message, the body carries {key} ({topic or event})",
            )
        _check_route(route, message)
        if key == "uplink_message":
            return _uplink(message, route, origin, limits, now)
        return _other(MESSAGE_EVENTS[key], message, origin, limits, now)

    def mqtt_subscriptions(self, application: str | None) -> list[str]:
        """Every message of one application, or ``+`` for whatever application the login allows.

        On a multi-tenant deployment (The Things Stack Cloud, The Things Network) give
        ``app@tenant``, the same string as the MQTT username. The MQTT server scopes any
        subscription to the application of the login, so ``+`` is safe when none is given.
        """
        return [f"v3/{application or '+'}/devices/+/#"]


def _route(topic: str | None, event: str | None) -> _Route:
    key = _event_key(event) if event is not None else None
    if topic is None:
        return _Route(key=key)
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "v3" or parts[2] != "devices":
        raise EventError("unknown_format", f"topic {topic!r} is not a The Things Stack v3 topic")
    topic_key = _event_key("/".join(parts[4:]))
    if key is not None and key != topic_key:
        raise EventError("topic_mismatch", f"topic {topic!r} carries {topic_key} messages, not {event!r}")
    application_id, _, tenant = parts[1].partition("@")
    return _Route(key=topic_key, application_id=application_id, tenant=tenant or None, device_id=parts[3])


def _event_key(name: str) -> str:
    key = _EVENT_KEYS.get(name.replace("-", "_"))
    if key is None:
        raise EventError("unknown_format", f"{name!r} is not a The Things Stack message type")
    return key


def _message_key(message: Mapping[str, Any]) -> str:
    keys = [key for key in MESSAGE_EVENTS if key in message]
    if "end_device_ids" not in message or len(keys) != 1:
        raise EventError(
            "unknown_format",
            "not a The Things Stack application message (end_device_ids and one message key)",
        )
    return keys[0]


def _check_route(route: _Route, message: Mapping[str, Any]) -> None:
    device_id = field(message, "end_device_ids.device_id", str, required=False)
    if route.device_id is not None and device_id is not None and route.device_id != device_id:
        raise EventError("topic_mismatch", f"topic names device {route.device_id}, the message {device_id}")
    application_id = field(message, "end_device_ids.application_ids.application_id", str, required=False)
    if route.application_id is not None and application_id is not None and route.application_id != application_id:
        raise EventError(
            "topic_mismatch",
            f"topic names application {route.application_id}, the message {application_id}",
        )


def _uplink(message: Mapping[str, Any], route: _Route, origin: Origin, limits: ParseLimits, now: datetime) -> Uplink:
    up: Mapping[str, Any] = field(message, "uplink_message", Mapping)
    return Uplink(
        origin=origin,
        lns=LNS,
        dev_eui=normalise_eui(field(message, "end_device_ids.dev_eui", str), "end_device_ids.dev_eui"),
        device_id=field(message, "end_device_ids.device_id", str),
        application_id=field(message, "end_device_ids.application_ids.application_id", str),
        f_cnt=_uint(up, "f_cnt"),
        f_port=_uint(up, "f_port"),
        payload=decode_payload(field(up, "frm_payload", str, required=False), limits),
        received_at=_received_at(message, up, limits, now),
        gateways=tuple(_gateway(rx, limits, now) for rx in _rx_metadata(up)),
        data_rate=_data_rate(up),
        frequency=_frequency(up),
        confirmed=field(up, "confirmed", bool, required=False) or False,
        decoded=field(up, "decoded_payload", Mapping, required=False),
        location=_device_location(up),
        device_profile=_device_profile(up),
        tags=string_map(up, "attributes"),
        lns_tenant=route.tenant or field(up, "network_ids.tenant_id", str, required=False) or None,
        event_id=_event_id(message),
    )


def _other(
    topic_kind: str, message: Mapping[str, Any], origin: Origin, limits: ParseLimits, now: datetime
) -> OtherEvent:
    dev_eui = field(message, "end_device_ids.dev_eui", str, required=False)
    received_at = field(message, "received_at", str, required=False)
    return OtherEvent(
        origin=origin,
        lns=LNS,
        event=EVENT_KINDS[topic_kind],
        lns_event=topic_kind,
        dev_eui=normalise_eui(dev_eui, "end_device_ids.dev_eui") if dev_eui else None,
        received_at=parse_time(received_at, "received_at", limits, now) if received_at else None,
    )


_UINT32_MAX = 2**32 - 1
_UINT64_DIGITS = 20


def _uint(obj: Mapping[str, Any], path: str) -> int:
    """An unsigned 32-bit proto3 number (every one this parser reads is a ``uint32``): absent is zero.

    Bounded because a JSON body can carry any integer, and one past 64 bits does not fit the
    SQLite column of the frame counter.
    """
    value: int = field(obj, path, int, required=False) or 0
    if not 0 <= value <= _UINT32_MAX:
        raise EventError("missing_field", f"field {path!r} should be a uint32, got {value}")
    return value


def _received_at(message: Mapping[str, Any], up: Mapping[str, Any], limits: ParseLimits, now: datetime) -> datetime:
    """The Network Server's receive time, else the Application Server's."""
    network_server = field(up, "received_at", str, required=False)
    if network_server:
        return parse_time(network_server, "uplink_message.received_at", limits, now)
    return parse_time(field(message, "received_at", str), "received_at", limits, now)


def _rx_metadata(up: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = field(up, "rx_metadata", list, required=False) or []
    if not all(type(entry) is dict or isinstance(entry, Mapping) for entry in entries):
        raise EventError("missing_field", "field 'uplink_message.rx_metadata' should be a list of objects")
    return entries


def _gateway(rx: Mapping[str, Any], limits: ParseLimits, now: datetime) -> GatewayReception:
    rssi = field(rx, "rssi", (int, float), required=False)
    if rssi is None:
        rssi = field(rx, "channel_rssi", (int, float), required=False)
    return GatewayReception(
        gateway_id=gateway_id(field(rx, "gateway_ids.gateway_id", str), "rx_metadata.gateway_ids.gateway_id"),
        eui=_gateway_eui(rx),
        rssi=float(rssi) if rssi is not None else None,
        snr=float(field(rx, "snr", (int, float), required=False) or 0),
        channel=_uint(rx, "channel_index"),
        location=optional_location(field(rx, "location", Mapping, required=False)),
        received_at=gateway_time(
            field(rx, "received_at", str, required=False),
            field(rx, "time", str, required=False),
            "rx_metadata.received_at",
            limits,
            now,
        ),
    )


def _gateway_eui(rx: Mapping[str, Any]) -> str | None:
    """The gateway's EUI, else (Packet Broker) the EUI of the forwarding network's gateway."""
    eui = field(rx, "gateway_ids.eui", str, required=False)
    if eui:
        return normalise_eui(eui, "rx_metadata.gateway_ids.eui")
    forwarder = field(rx, "packet_broker.forwarder_gateway_eui", str, required=False)
    if forwarder:
        return normalise_eui(forwarder, "rx_metadata.packet_broker.forwarder_gateway_eui")
    return None


def _data_rate(up: Mapping[str, Any]) -> DataRate | None:
    data_rate = field(up, "settings.data_rate", Mapping, required=False)
    if not data_rate:
        return None
    if (lora := field(data_rate, "lora", Mapping, required=False)) is not None:
        return DataRate(
            modulation="LORA",
            spreading_factor=_uint(lora, "spreading_factor") or None,
            bandwidth=_uint(lora, "bandwidth") or None,
            # Older releases put the coding rate in settings, beside data_rate.
            coding_rate=field(lora, "coding_rate", str, required=False)
            or field(up, "settings.coding_rate", str, required=False),
        )
    if (fsk := field(data_rate, "fsk", Mapping, required=False)) is not None:
        return DataRate(modulation="FSK", bit_rate=_uint(fsk, "bit_rate") or None)
    if (lrfhss := field(data_rate, "lrfhss", Mapping, required=False)) is not None:
        return DataRate(
            modulation="LR_FHSS",
            bandwidth=_uint(lrfhss, "operating_channel_width") or None,
            coding_rate=field(lrfhss, "coding_rate", str, required=False),
        )
    return None


def _frequency(up: Mapping[str, Any]) -> int | None:
    """``settings.frequency`` in Hz: a uint64, which the JSON mapping writes as a string."""
    value = field(up, "settings.frequency", (str, int), required=False)
    if value is None:
        return None
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses; and no more
    # digits than a uint64 has (int() refuses 4,300 and more).
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= _UINT64_DIGITS):
        raise EventError("missing_field", f"field 'settings.frequency' should be a number of Hz, got {value[:40]!r}")
    frequency = int(value)
    if frequency < 0:
        raise EventError("missing_field", f"field 'settings.frequency' should not be negative, got {frequency}")
    return frequency or None


def _device_location(up: Mapping[str, Any]) -> Location | None:
    """The location the user set in the registry, else any other (e.g. from the payload)."""
    locations = field(up, "locations", Mapping, required=False) or {}
    if "user" in locations:
        return optional_location(locations["user"])
    return next((loc for loc in map(optional_location, locations.values()) if loc is not None), None)


def _device_profile(up: Mapping[str, Any]) -> str | None:
    """``brand_id/model_id`` of the LoRaWAN Device Repository entry, when the device has one."""
    brand = field(up, "version_ids.brand_id", str, required=False)
    model = field(up, "version_ids.model_id", str, required=False)
    return f"{brand}/{model}" if brand and model else None


def _event_id(message: Mapping[str, Any]) -> str | None:
    """The Application Server's ``as:up:`` correlation ID: the same for every copy of one uplink."""
    ids = field(message, "correlation_ids", list, required=False) or []
    return next((cid for cid in ids if isinstance(cid, str) and cid.startswith("as:up:")), None)
