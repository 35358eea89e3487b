"""Parse ChirpStack v4 integration events into normalised records.

Where events come from
    MQTT integration: topic ``application/{application_id}/device/{dev_eui}/event/{event}``;
    HTTP integration: the event type is a query parameter (``?event=up``).
    Event types: ``up``, ``status``, ``join``, ``ack``, ``txack``, ``log``, ``location``,
    ``integration``. Each is reported as a plain kind of ``EVENT_KINDS`` (``txack``, the
    gateway's acknowledgement of a downlink transmission, is ``sent``; an ``ack`` whose
    ``acknowledged`` is false, the device's missing acknowledgement, is ``nack``), the
    event type kept as ``lns_event``.

Gateways
    ``rxInfo[].gatewayId`` is the gateway's id, which in v4 is its EUI in hex: it is both
    the id and the EUI of the ``GatewayReception``. An id that is not an EUI but a name by
    The Things Stack's rule (hand-written events, such as the demo's) is kept as the id,
    without EUI; anything else is refused.

Marshalers
    JSON (the protobuf JSON mapping, camelCase) or binary protobuf (``integration.proto``).
    A binary event is turned into the same dict with ``MessageToDict``, so both go through
    one code path. ``devEui`` and ``gatewayId`` are hex strings in v4 (v3 sent base64 bytes).

Bounds
    Both marshalers are bounded in size and depth (``ParseLimits``). A binary event's depth is
    bounded by the protobuf decoder (upb: 100 message levels, which a ``google.protobuf.Struct``
    in ``object`` reaches at about 45 levels of JSON, refused as ``body_too_deep``); ``object``,
    the only part whose shape the event type does not fix, is then held to ``max_depth``.

Zero values
    Binary protobuf and ``MessageToDict`` leave out proto3 zero values (``fCnt`` 0, ``fPort``
    0, ``margin`` 0, ``false``). ChirpStack's JSON writes them for the top-level event
    (``emit_fields`` is set for the ``integration`` package only) but leaves them out inside
    ``rxInfo``/``txInfo`` (``gw`` package). An absent number is therefore read as zero: fCnt 0
    is a real frame counter, and fPort 0 is a MAC-command-only frame (ChirpStack sends it with
    empty ``data``) or a frame without FPort, which ChirpStack also reports as 0. Only an
    absent RSSI becomes None, because 0 dBm is never a real LoRa reception.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chirpstack_api import integration
from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from adapter.exceptions import EventError
from adapter.sources._common import (
    DEFAULT_LIMITS,
    ParseLimits,
    check_body_size,
    check_depth,
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
from adapter.sources.chirpstack._integration_event import integration_event_type
from adapter.uplink import (
    DataRate,
    DeviceStatus,
    Event,
    GatewayReception,
    Origin,
    OtherEvent,
    Uplink,
)

__all__ = ["EVENT_KINDS", "EVENT_MESSAGES", "ChirpStackParser"]

LNS = "chirpstack"

#: event type -> protobuf message of that event
EVENT_MESSAGES: dict[str, type[Message]] = {
    "up": integration.UplinkEvent,
    "status": integration.StatusEvent,
    "join": integration.JoinEvent,
    "ack": integration.AckEvent,
    "txack": integration.TxAckEvent,
    "log": integration.LogEvent,
    "location": integration.LocationEvent,
    "integration": integration_event_type(),
}

#: event type -> plain event kind (``adapter.uplink.EVENT_KINDS``); ``ack`` depends on the body
EVENT_KINDS: dict[str, str] = {
    "up": "up",
    "status": "status",
    "join": "join",
    "ack": "ack",
    "txack": "sent",
    "log": "log",
    "location": "location",
    "integration": "integration",
}

_TOPIC = re.compile(r"application/(?P<application>[^/]+)/device/(?P<dev_eui>[^/]+)/event/(?P<event>[^/]+)")
_JSON_WHITESPACE = b" \t\n\r"
_STATUS_KEYS = ("margin", "batteryLevel", "batteryLevelUnavailable", "externalPowerSource")
_UP_KEYS = ("data", "fCnt", "rxInfo")


@dataclass(frozen=True, slots=True)
class _Route:
    """What the MQTT topic or the HTTP ``event`` parameter says about the event."""

    event: str | None = None
    application_id: str | None = None
    dev_eui: str | None = None


@dataclass(frozen=True, slots=True)
class _Device:
    dev_eui: str
    device_id: str
    application_id: str
    device_profile: str | None
    tags: dict[str, str]
    tenant_id: str | None


class ChirpStackParser:
    """ChirpStack v4 events, either marshaler -> ``Uplink``, ``DeviceStatus`` or ``OtherEvent``."""

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
        message = _load(body, route.event, limits)
        name = route.event or _recognise(message)
        _check_route(route, message)
        return _BUILDERS.get(name, _other)(name, message, origin, limits, now)

    def mqtt_subscriptions(self, application: str | None) -> list[str]:
        """Every event of one application (its UUID), or of all applications if None."""
        return [f"application/{application or '+'}/device/+/event/+"]


def _route(topic: str | None, event: str | None) -> _Route:
    if topic is None:
        return _Route(event=_known_event(event) if event is not None else None)
    match = _TOPIC.fullmatch(topic)
    if match is None:
        raise EventError("unknown_format", f"topic {topic!r} is not a ChirpStack event topic")
    name = _known_event(match["event"])
    if event is not None and event != name:
        raise EventError("topic_mismatch", f"topic {topic!r} carries {name!r} events, not {event!r}")
    return _Route(event=name, application_id=match["application"], dev_eui=match["dev_eui"])


def _known_event(name: str) -> str:
    if name not in EVENT_MESSAGES:
        raise EventError("unknown_format", f"{name!r} is not a ChirpStack event type")
    return name


def _load(body: bytes, event: str | None, limits: ParseLimits) -> dict[str, Any]:
    check_body_size(body, limits)
    if _looks_like_json(body):
        return load_json_object(body, limits)
    if event is None:
        raise EventError(
            "unknown_format",
            "a protobuf event needs its type from the MQTT topic or the event parameter",
        )
    message = _load_protobuf(body, EVENT_MESSAGES[event])
    decoded = message.get("object")
    if decoded is not None:  # the message is 1 level, its ``object`` the next
        check_depth(decoded, limits.max_depth - 1, "the event's object")
    return message


def _looks_like_json(body: bytes) -> bool:
    # proto3 never writes wire type 3 (start group), so no binary event begins with the
    # bytes of "{" (field 15) or "[" (field 11). Only JSON whitespace is skipped: most binary
    # events begin with 0x0a ("\n"), then the length of a UUID or a timestamp, never 123.
    return body.lstrip(_JSON_WHITESPACE)[:1] in (b"{", b"[")


def _load_protobuf(body: bytes, message_type: type[Message]) -> dict[str, Any]:
    try:
        message = message_type.FromString(body)
    except DecodeError as exc:
        if "MaxDepth" in str(exc):  # upb's message "Exceeded upb_DecodeOptions_MaxDepth"
            raise EventError(
                "body_too_deep", f"body nests messages deeper than the protobuf decoder allows: {exc}"
            ) from exc
        raise EventError(
            "invalid_protobuf", f"body is not a {message_type.DESCRIPTOR.full_name} message: {exc}"
        ) from exc
    try:
        as_dict: dict[str, Any] = message_to_dict(message)
    except json_format.Error as exc:  # e.g. NaN in ``object``, which JSON cannot carry
        raise EventError("invalid_protobuf", f"event cannot be read as JSON: {exc}") from exc
    return as_dict


# --- protobuf to the JSON mapping, faster ---------------------------------------------------------
#
# ``json_format.MessageToDict`` walks every message through generic, pure-Python code: some 70 µs
# for an uplink event, more than the rest of its parsing. ``message_to_dict`` gives the same dict
# (its test compares both on every ChirpStack event type, filled at random) with a conversion
# planned once per message type. It follows ``json_format``'s rules for the field types of
# ChirpStack events; anything else (an enum value it does not know, an extension, a JSON-name
# option on enum values) makes it hand the whole message to ``MessageToDict``, and well-known
# types other than Timestamp (Struct, Duration...) are always converted by ``MessageToDict``.


class _Unsupported(Exception):
    """Something the fast conversion does not cover: ``MessageToDict`` converts the message."""


_WELL_KNOWN = "google/protobuf/"
_INT64 = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})
_PLANS: dict[Descriptor, dict[FieldDescriptor, tuple[str, Callable[[Any], Any], int]]] = {}
_SINGLE, _REPEATED, _MAP = 0, 1, 2


def _enum_json_options() -> bool:
    """Whether enum values may carry a JSON name (then ``MessageToDict`` must name them)."""
    try:
        descriptor_pool.Default().FindExtensionByName("pb.enumvalue.json")
    except KeyError:
        return False
    return True


def message_to_dict(message: Message) -> dict[str, Any]:
    """``json_format.MessageToDict(message)`` with its default options, faster."""
    descriptor = message.DESCRIPTOR
    if descriptor.file.name.startswith(_WELL_KNOWN) or _ENUM_JSON_OPTIONS:
        return _as_object(json_format.MessageToDict(message))
    try:
        return _as_object(_regular(message))
    except (_Unsupported, ValueError):  # ValueError: a nested Struct that JSON cannot carry (NaN)
        return _as_object(json_format.MessageToDict(message))  # converts it, or raises as it would have


def _as_object(value: Any) -> dict[str, Any]:
    """A message's JSON form is always an object (protobuf's MessageToDict is typed Any)."""
    assert isinstance(value, dict)
    return value


def _regular(message: Message) -> dict[str, Any]:
    plan = _PLANS.get(message.DESCRIPTOR)
    if plan is None:
        plan = _PLANS[message.DESCRIPTOR] = _plan(message.DESCRIPTOR)
    out: dict[str, Any] = {}
    for fd, value in message.ListFields():
        step = plan.get(fd)  # extensions are not in the plan
        if step is None:
            raise _Unsupported(fd.full_name)
        name, convert, kind = step
        if kind == _SINGLE:
            out[name] = convert(value)
        elif kind == _REPEATED:
            out[name] = [convert(item) for item in value]
        else:
            out[name] = {
                ("true" if key else "false") if isinstance(key, bool) else str(key): convert(value[key])
                for key in value
            }
    return out


def _plan(descriptor: Descriptor) -> dict[FieldDescriptor, tuple[str, Callable[[Any], Any], int]]:
    plan = {}
    for fd in descriptor.fields:
        entry = fd.message_type if fd.type == FieldDescriptor.TYPE_MESSAGE else None
        if entry is not None and entry.has_options and entry.GetOptions().map_entry:
            plan[fd] = (fd.json_name, _converter(entry.fields_by_name["value"]), _MAP)
        else:
            plan[fd] = (fd.json_name, _converter(fd), _REPEATED if fd.is_repeated else _SINGLE)
    return plan


def _converter(fd: FieldDescriptor) -> Callable[[Any], Any]:
    cpp = fd.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_MESSAGE:
        sub = fd.message_type
        if sub.full_name == "google.protobuf.Timestamp":
            return lambda value: value.ToJsonString()
        if sub.file.name.startswith(_WELL_KNOWN):  # Struct, Value, Duration, wrappers, Any...
            well_known: Callable[[Any], Any] = json_format.MessageToDict
            return well_known
        return _regular
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        if fd.enum_type.full_name == "google.protobuf.NullValue":
            return _unsupported
        names = {number: value.name for number, value in fd.enum_type.values_by_number.items()}

        def enum_name(value: Any) -> Any:
            name = names.get(value)
            if name is None:
                raise _Unsupported(f"{fd.full_name} = {value}")
            return name

        return enum_name
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if fd.type == FieldDescriptor.TYPE_BYTES:
            return lambda value: base64.b64encode(value).decode("utf-8")
        return str
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return bool
    if cpp in _INT64:
        return str
    if cpp == FieldDescriptor.CPPTYPE_DOUBLE:
        return _double
    if cpp == FieldDescriptor.CPPTYPE_FLOAT:
        return _float
    return _same  # 32-bit integers


def _unsupported(value: Any) -> Any:
    raise _Unsupported(repr(value))


def _same(value: Any) -> Any:
    return value


def _double(value: float) -> Any:
    if math.isinf(value) or math.isnan(value):
        raise _Unsupported(repr(value))  # "Infinity", "NaN": MessageToDict spells them
    return value


def _float(value: float) -> Any:
    if math.isinf(value) or math.isnan(value):
        raise _Unsupported(repr(value))
    return _shortest_float(value)


def _shortest_float(original: float) -> float:
    """The shortest decimal with the same 32-bit float (``json_format``'s rule for ``float`` fields)."""
    precision = 6
    rounded = float(f"{original:.{precision}g}")
    while _to_float32(rounded) != original:
        precision += 1
        rounded = float(f"{original:.{precision}g}")
    return rounded


def _to_float32(value: float) -> float:
    return float(_FLOAT32.unpack(_FLOAT32.pack(value))[0])


_FLOAT32 = struct.Struct("<f")
_ENUM_JSON_OPTIONS = _enum_json_options()


def _recognise(message: Mapping[str, Any]) -> str:
    if "deviceInfo" in message:
        if any(key in message for key in _UP_KEYS):
            return "up"
        if any(key in message for key in _STATUS_KEYS):
            return "status"
    raise EventError(
        "unknown_format",
        "not a ChirpStack up or status event; give the event type to parse other events",
    )


def _check_route(route: _Route, message: Mapping[str, Any]) -> None:
    dev_eui = field(message, "deviceInfo.devEui", str, required=False)
    if route.dev_eui is not None and dev_eui is not None and route.dev_eui.lower() != normalise_eui(dev_eui):
        raise EventError("topic_mismatch", f"topic names device {route.dev_eui}, the event {dev_eui}")
    application = field(message, "deviceInfo.applicationId", str, required=False)
    if route.application_id is not None and application is not None and route.application_id != application:
        raise EventError(
            "topic_mismatch",
            f"topic names application {route.application_id}, the event {application}",
        )


def _device(message: Mapping[str, Any]) -> _Device:
    dev_eui = normalise_eui(field(message, "deviceInfo.devEui", str), "deviceInfo.devEui")
    return _Device(
        dev_eui=dev_eui,
        # A device name is mandatory in ChirpStack; the EUI stands in if an event lacks it.
        device_id=field(message, "deviceInfo.deviceName", str, required=False) or dev_eui,
        application_id=field(message, "deviceInfo.applicationId", str),
        device_profile=field(message, "deviceInfo.deviceProfileName", str, required=False) or None,
        tags=string_map(message, "deviceInfo.tags"),
        tenant_id=field(message, "deviceInfo.tenantId", str, required=False) or None,
    )


def _uplink(name: str, message: Mapping[str, Any], origin: Origin, limits: ParseLimits, now: datetime) -> Uplink:
    device = _device(message)
    rx_info = _rx_info(message)
    return Uplink(
        origin=origin,
        lns=LNS,
        dev_eui=device.dev_eui,
        device_id=device.device_id,
        application_id=device.application_id,
        f_cnt=_uint(message, "fCnt"),
        f_port=_uint(message, "fPort"),
        payload=decode_payload(field(message, "data", str, required=False), limits),
        received_at=_received_at(message, rx_info, limits, now),
        gateways=tuple(_gateway(rx, limits, now) for rx in rx_info),
        data_rate=_data_rate(field(message, "txInfo.modulation", Mapping, required=False)),
        frequency=_uint(message, "txInfo.frequency") or None,
        confirmed=field(message, "confirmed", bool, required=False) or False,
        decoded=field(message, "object", Mapping, required=False),
        device_profile=device.device_profile,
        tags=device.tags,
        lns_tenant=device.tenant_id,
        event_id=field(message, "deduplicationId", str, required=False) or None,
    )


def _status(name: str, message: Mapping[str, Any], origin: Origin, limits: ParseLimits, now: datetime) -> DeviceStatus:
    device = _device(message)
    external_power = field(message, "externalPowerSource", bool, required=False) or False
    unavailable = field(message, "batteryLevelUnavailable", bool, required=False) or False
    level = field(message, "batteryLevel", (int, float), required=False) or 0
    return DeviceStatus(
        origin=origin,
        lns=LNS,
        dev_eui=device.dev_eui,
        device_id=device.device_id,
        application_id=device.application_id,
        received_at=parse_time(field(message, "time", str), "time", limits, now),
        battery_level=None if unavailable or external_power else float(level),
        external_power=external_power,
        margin=field(message, "margin", int, required=False) or 0,
        device_profile=device.device_profile,
        tags=device.tags,
    )


def _other(name: str, message: Mapping[str, Any], origin: Origin, limits: ParseLimits, now: datetime) -> OtherEvent:
    dev_eui = field(message, "deviceInfo.devEui", str, required=False)
    time = field(message, "time", str, required=False)
    kind = EVENT_KINDS[name]
    # proto3 leaves out a false ``acknowledged``: absent is a missing acknowledgement.
    if name == "ack" and not field(message, "acknowledged", bool, required=False):
        kind = "nack"
    return OtherEvent(
        origin=origin,
        lns=LNS,
        event=kind,
        lns_event=name,
        dev_eui=normalise_eui(dev_eui, "deviceInfo.devEui") if dev_eui else None,
        received_at=parse_time(time, "time", limits, now) if time else None,
    )


_Builder = Callable[[str, Mapping[str, Any], Origin, ParseLimits, datetime], Event]
_BUILDERS: dict[str, _Builder] = {"up": _uplink, "status": _status}


_UINT32_MAX = 2**32 - 1


def _uint(obj: Mapping[str, Any], path: str) -> int:
    """An unsigned 32-bit proto3 number (``uint32`` in integration.proto): absent is zero.

    Bounded because a JSON body can carry any integer, and one past 64 bits does not fit the
    SQLite column of the frame counter.
    """
    value: int = field(obj, path, int, required=False) or 0
    if not 0 <= value <= _UINT32_MAX:
        raise EventError("missing_field", f"field {path!r} should be a uint32, got {value}")
    return value


def _rx_info(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = field(message, "rxInfo", list, required=False) or []
    if not all(type(entry) is dict or isinstance(entry, Mapping) for entry in entries):
        raise EventError("missing_field", "field 'rxInfo' should be a list of objects")
    return entries


def _received_at(
    message: Mapping[str, Any], rx_info: list[Mapping[str, Any]], limits: ParseLimits, now: datetime
) -> datetime:
    time = field(message, "time", str, required=False)
    if time:
        return parse_time(time, "time", limits, now)
    for rx in rx_info:
        ns_time = field(rx, "nsTime", str, required=False)
        if ns_time:
            return parse_time(ns_time, "rxInfo.nsTime", limits, now)
    raise EventError("missing_field", "the uplink has neither 'time' nor 'rxInfo[].nsTime'")


def _gateway(rx: Mapping[str, Any], limits: ParseLimits, now: datetime) -> GatewayReception:
    rssi = field(rx, "rssi", (int, float), required=False)
    name, eui = _gateway_identity(field(rx, "gatewayId", str))
    return GatewayReception(
        gateway_id=name,
        eui=eui,
        rssi=float(rssi) if rssi is not None else None,
        snr=float(field(rx, "snr", (int, float), required=False) or 0),
        channel=_uint(rx, "channel"),
        location=optional_location(field(rx, "location", Mapping, required=False)),
        received_at=gateway_time(
            field(rx, "nsTime", str, required=False),
            field(rx, "gwTime", str, required=False),
            "rxInfo.nsTime",
            limits,
            now,
        ),
    )


def _gateway_identity(value: str) -> tuple[str, str | None]:
    """(id, EUI): an EUI in hex is both (ChirpStack v4); any other id is a name, without EUI."""
    try:
        eui = normalise_eui(value, "rxInfo.gatewayId")
    except EventError:
        return gateway_id(value.lower(), "rxInfo.gatewayId"), None
    return eui, eui


def _data_rate(modulation: Mapping[str, Any] | None) -> DataRate | None:
    if not modulation:
        return None
    if (lora := field(modulation, "lora", Mapping, required=False)) is not None:
        return DataRate(
            modulation="LORA",
            spreading_factor=_uint(lora, "spreadingFactor") or None,
            bandwidth=_uint(lora, "bandwidth") or None,
            coding_rate=_code_rate(lora),
        )
    if (fsk := field(modulation, "fsk", Mapping, required=False)) is not None:
        return DataRate(modulation="FSK", bit_rate=_uint(fsk, "datarate") or None)
    if (lr_fhss := field(modulation, "lrFhss", Mapping, required=False)) is not None:
        return DataRate(
            modulation="LR_FHSS",
            bandwidth=_uint(lr_fhss, "operatingChannelWidth") or None,
            coding_rate=_code_rate(lr_fhss),
        )
    return None


def _code_rate(modulation: Mapping[str, Any]) -> str | None:
    """``CR_4_5`` -> ``4/5``, ``CR_LI_4_8`` -> ``4/8LI``: the notation The Things Stack uses too."""
    code = field(modulation, "codeRate", str, required=False)
    if code and code != "CR_UNDEFINED":
        parts = code.removeprefix("CR_").split("_")
        if parts[0] == "LI":
            return "/".join(parts[1:]) + "LI"
        return "/".join(parts)
    return field(modulation, "codeRateLegacy", str, required=False) or None
