"""Helpers shared by the source parsers: decoding bodies, payloads and timestamps safely.

Every failure is raised as ``EventError`` with a specific reason, never as a bare
``ValueError`` or ``KeyError``.

Hot path: every uplink goes through ``field`` a few dozen times. Parsed JSON objects are
``dict``; checking ``type(x) is dict`` first spares the ``Mapping`` ABC check (an
``isinstance`` against an ABC costs several times more), which stays the fallback for other
mappings, so behaviour is unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapter.exceptions import EventError
from adapter.uplink import Location

__all__ = [
    "DEFAULT_LIMITS",
    "ParseLimits",
    "decode_payload",
    "field",
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
    """

    max_payload_bytes: int = 256
    max_body_bytes: int = 256 * 1024
    max_future_skew: timedelta = timedelta(minutes=10)


DEFAULT_LIMITS = ParseLimits()


def load_json_object(body: bytes, limits: ParseLimits) -> dict[str, Any]:
    if len(body) > limits.max_body_bytes:
        raise EventError(
            "payload_too_large", f"event body is {len(body)} bytes, limit {limits.max_body_bytes}"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError("invalid_utf8", f"byte {exc.start} is not valid UTF-8") from exc
    try:
        # NaN and Infinity are not JSON; Python would accept them by default.
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise EventError("malformed_json", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(value, dict):
        raise EventError("unknown_format", f"expected a JSON object, got {type(value).__name__}")
    return value


def _reject_constant(name: str) -> Any:
    raise EventError("malformed_json", f"{name} is not valid JSON")


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
        raise EventError(
            "payload_too_large", f"payload is {len(payload)} bytes, limit {limits.max_payload_bytes}"
        )
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
    return parsed.astimezone(UTC)


_HEX_DIGITS = frozenset("0123456789abcdef")


def normalise_eui(value: str, what: str = "devEui") -> str:
    eui = value.strip().lower().replace("-", "").replace(":", "")
    if len(eui) != 16 or not _HEX_DIGITS.issuperset(eui):
        raise EventError("missing_field", f"{what} {value!r} is not a 64-bit EUI in hex")
    return eui


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
