"""Helpers shared by the source parsers: decoding bodies, payloads and timestamps safely.

Every failure is raised as ``EventError`` with a specific reason, never as a bare
``ValueError`` or ``KeyError``.

Hot path: every uplink goes through ``field`` a few dozen times. Parsed JSON objects are
``dict``; checking ``type(x) is dict`` first spares the ``Mapping`` ABC check (an
``isinstance`` against an ABC costs several times more), which stays the fallback for other
mappings, so behaviour is unchanged.

Bounded bodies. A body comes from a network server, or from whoever can publish on its MQTT
topics or reach its webhook: it is refused before decoding when it is larger than
``ParseLimits.max_body_bytes`` (``body_too_large``), and when it nests objects or arrays deeper
than ``ParseLimits.max_depth`` (``body_too_deep``). JSON is decoded by orjson, which bounds
nesting by itself (1,024 levels: a 256 KiB body of ``[`` is refused as soon as it passes them,
where Python's ``json`` raised ``RecursionError``) and refuses what is not JSON text: NaN and
Infinity, numbers beyond a 64-bit float (``1e999999``; a 5,000-digit integer, which made
Python's ``int`` raise ``ValueError``), lone surrogates (``"\\ud800"``, text that cannot be
written back as UTF-8) and invalid UTF-8. Each is an ``EventError``: ``non_finite_value`` for a
number beyond a float, ``invalid_utf8``, ``malformed_json`` for the rest (a body that is not
JSON is ``malformed_json`` whatever its depth, unless orjson stopped at its own depth limit).
Integers beyond 64 bits become floats, where ``json`` kept them exact: no LoRaWAN field is
that large, and the parsers bound their counters to 32 bits. The depth limit is checked on
the decoded value, only when the body holds more opening brackets than the limit (a body with
fewer cannot be deeper; counting them is one C pass over the bytes). Measured on the test
fixtures: decoding a ChirpStack uplink (2 KiB, 13 brackets) went from about 20 µs to 7 µs, a
TTS uplink with three gateways (4 KiB, 23 brackets) from 23 to 11 µs; a TTS uplink with nine
gateways (41 brackets, so the walk runs) from 43 to 40 µs.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from adapter.exceptions import EventError
from adapter.uplink import Location

__all__ = [
    "DEFAULT_LIMITS",
    "ParseLimits",
    "check_body_size",
    "check_depth",
    "decode_payload",
    "field",
    "gateway_id",
    "gateway_time",
    "load_json_object",
    "normalise_eui",
    "optional_location",
    "parse_time",
    "string_map",
]


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds that make an event suspicious enough to reject.

    LoRaWAN application payloads are at most 242 bytes; 256 leaves room for odd regions.
    An uplink event is a few KiB (ChirpStack: about 2 KiB with two gateways; TTS: 4 KiB with
    three); 256 KiB leaves room for hundreds of gateways. Its JSON nests 4 levels (``rxInfo``,
    a gateway, its ``location``), plus what the LNS's codec put in ``object`` or
    ``decoded_payload``; 32 leaves that codec 28 levels.
    """

    max_payload_bytes: int = 256
    max_body_bytes: int = 256 * 1024
    max_future_skew: timedelta = timedelta(minutes=10)
    max_depth: int = 32


DEFAULT_LIMITS = ParseLimits()


def check_body_size(body: bytes, limits: ParseLimits) -> None:
    """Refuse a body over ``limits.max_body_bytes`` before anything decodes it."""
    if len(body) > limits.max_body_bytes:
        raise EventError("body_too_large", f"event body is {len(body)} bytes, limit {limits.max_body_bytes}")


def load_json_object(body: bytes, limits: ParseLimits) -> dict[str, Any]:
    """One JSON object, bounded in size and depth; any other input is an ``EventError``."""
    check_body_size(body, limits)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _json_error(body, exc) from exc
    if type(value) is not dict:
        raise EventError("unknown_format", f"expected a JSON object, got {type(value).__name__}")
    # Depth d needs d opening brackets: with no more brackets than the limit, no walk is needed.
    if body.count(b"{") + body.count(b"[") > limits.max_depth:
        check_depth(value, limits.max_depth, "event body")
    return value


def _json_error(body: bytes, exc: orjson.JSONDecodeError) -> EventError:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return EventError("invalid_utf8", f"byte {bad.start} is not valid UTF-8")
    # Two of orjson's messages name a limit rather than a syntax error (orjson is pinned; should
    # a message change, the body is still refused, as malformed_json).
    if exc.msg.startswith("depth limit"):  # orjson's own bound (1,024), far above any max_depth
        return EventError("body_too_deep", f"event body nests deeper than orjson's limit: {exc}")
    if exc.msg.startswith("number is infinity"):  # 1e999, or an integer of hundreds of digits
        return EventError("non_finite_value", f"a number of the event body does not fit a 64-bit float: {exc}")
    return EventError("malformed_json", str(exc))


def check_depth(value: Any, max_depth: int, what: str) -> None:
    """Refuse ``value`` if its objects and arrays nest deeper than ``max_depth`` (itself is 1).

    Iterative, so that checking a deep value cannot itself recurse; it stops at the first
    container past the limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        current, depth = pop()
        if depth > max_depth:
            raise EventError("body_too_deep", f"{what} nests more than {max_depth} levels of objects or arrays")
        children = current.values() if type(current) is dict else current
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                push((child, depth + 1))


_PATHS: dict[str, tuple[str, ...]] = {}


def field(obj: Mapping[str, Any], path: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
    """Read ``a.b.c`` from nested objects, checking the type; ``None`` if optional and absent."""
    parts = _PATHS.get(path)
    if parts is None:
        parts = _PATHS[path] = tuple(path.split("."))
    current: Any = obj
    for part in parts:
        if type(current) is dict:
            current = current.get(part)
        elif isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            current = None
        if current is None:
            if required:
                raise EventError("missing_field", f"field {path!r} is missing")
            return None
    # bool is an int in Python; a boolean where a number is expected is a format error.
    found = type(current)
    if found is dict and kind is Mapping:
        return current
    if found is bool:
        if bool not in _as_tuple(kind):
            raise _wrong_type(path, kind, current)
        return current
    if found is kind or isinstance(current, kind):
        return current
    raise _wrong_type(path, kind, current)


def _wrong_type(path: str, kind: type | tuple[type, ...], value: Any) -> EventError:
    expected = "/".join(t.__name__ for t in _as_tuple(kind))
    return EventError("missing_field", f"field {path!r} should be {expected}, got {type(value).__name__}")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def decode_payload(encoded: str | None, limits: ParseLimits) -> bytes:
    """Decode a base64 LoRaWAN payload; an absent payload is empty bytes."""
    if not encoded:
        return b""
    try:
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventError("bad_base64", f"payload {encoded[:40]!r} is not valid base64: {exc}") from exc
    if len(payload) > limits.max_payload_bytes:
        raise EventError("payload_too_large", f"payload is {len(payload)} bytes, limit {limits.max_payload_bytes}")
    return payload


def parse_time(value: str, what: str, limits: ParseLimits, now: datetime) -> datetime:
    """Parse an RFC 3339 timestamp to an aware UTC datetime, refusing ones far in the future."""
    # An uplink repeats one timestamp (the event's time, each gateway's): parsed once.
    global _last_time
    last_text, parsed = _last_time
    if value != last_text:
        parsed = _parse_time(value, what)
        _last_time = (value, parsed)
    if parsed - now > limits.max_future_skew:
        raise EventError(
            "future_timestamp",
            f"{what} {value} is {parsed - now} ahead of the adapter's clock ({now.isoformat()})",
        )
    return parsed


_last_time: tuple[str, datetime] = ("", datetime(1970, 1, 1, tzinfo=UTC))


def _parse_time(value: str, what: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Network servers send nanoseconds; Python keeps microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + "." + rest[: min(digits, 6)].ljust(6, "0") + rest[digits:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise EventError("bad_timestamp", f"{what} {value!r} is not an RFC 3339 timestamp") from exc
    if parsed.tzinfo is None:
        raise EventError("bad_timestamp", f"{what} {value!r} has no time zone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before the first UTC datetime
        raise EventError("bad_timestamp", f"{what} {value!r} is out of the range of dates") from exc


_HEX_DIGITS = frozenset("0123456789abcdef")


def normalise_eui(value: str, what: str = "devEui") -> str:
    eui = value.strip().lower().replace("-", "").replace(":", "")
    if len(eui) != 16 or not _HEX_DIGITS.issuperset(eui):
        raise EventError("missing_field", f"{what} {value!r} is not a 64-bit EUI in hex")
    return eui


# The Things Stack's rule for gateway ids (ttnpb.GatewayIdentifiers): lower-case letters and
# digits, single dashes between them, 3 to 36 characters. Also the rule for a ChirpStack
# gateway id that is not an EUI (ChirpStack v4 names gateways by EUI; hand-written events,
# such as the demo's, use names).
_GATEWAY_ID = re.compile(r"[a-z0-9](?:-?[a-z0-9]){2,}")
_GATEWAY_ID_MAX = 36


def gateway_id(value: str, what: str) -> str:
    """A gateway id by The Things Stack's rule; it becomes part of provenance IRIs."""
    if len(value) > _GATEWAY_ID_MAX or not _GATEWAY_ID.fullmatch(value):
        raise EventError("missing_field", f"{what} {value[:40]!r} is not a gateway id")
    return value


def optional_location(obj: Mapping[str, Any] | None) -> Location | None:
    """A location object with latitude/longitude, or None if absent or incomplete."""
    if type(obj) is not dict and not isinstance(obj, Mapping):
        return None
    lat, lon = obj.get("latitude"), obj.get("longitude")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    if isinstance(lat, bool) or isinstance(lon, bool) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    alt = obj.get("altitude")
    source = obj.get("source")
    return Location(
        latitude=float(lat),
        longitude=float(lon),
        altitude=float(alt) if isinstance(alt, int | float) and not isinstance(alt, bool) else None,
        source=str(source) if source is not None else None,
    )


def string_map(obj: Mapping[str, Any], path: str) -> dict[str, str]:
    """An optional ``map<string, string>`` (ChirpStack tags, TTS attributes); empty if absent."""
    value = field(obj, path, Mapping, required=False) or {}
    if value and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise EventError("missing_field", f"field {path!r} should map strings to strings")
    return dict(value)


def gateway_time(
    server: str | None, gateway: str | None, what: str, limits: ParseLimits, now: datetime
) -> datetime | None:
    """When one gateway heard the uplink: the server's receive time, else the gateway's own clock.

    A gateway clock is often wrong (no GPS, no NTP); a bad or future gateway time is dropped
    rather than rejecting an uplink whose server-side timestamps are fine.
    """
    if server is not None:
        return parse_time(server, what, limits, now)
    if gateway is None:
        return None
    try:
        return parse_time(gateway, what, limits, now)
    except EventError:
        return None
