"""Cayenne LPP (Low Power Payload), the IPSO-based format many LoRaWAN devices speak.

A payload is a sequence of ``channel (1 byte) | type (1 byte) | value (n bytes, big-endian)``.
All types of the reference implementation (myDevices) and of its widely used extended
set (ElectronicCats CayenneLPP) are decoded. Field names follow the convention of The
Things Stack's and ChirpStack's built-in decoders: ``<type name>_<channel>``, e.g.
``temperature_1``; multi-value types give an object (``gps_3: {latitude, longitude, altitude}``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.codecs.base import CodecIdentity, CodecInput, DecodeResult
from adapter.exceptions import CodecError

__all__ = ["CAYENNE_TYPES", "CayenneLPPCodec", "decode_cayenne_lpp"]


@dataclass(frozen=True, slots=True)
class _Type:
    name: str
    size: int  # bytes per component
    signed: bool
    resolution: float
    components: tuple[str, ...] = ()  # empty: a single value


CAYENNE_TYPES: dict[int, _Type] = {
    0: _Type("digital_in", 1, False, 1),
    1: _Type("digital_out", 1, False, 1),
    2: _Type("analog_in", 2, True, 0.01),
    3: _Type("analog_out", 2, True, 0.01),
    100: _Type("generic", 4, False, 1),
    101: _Type("luminosity", 2, False, 1),
    102: _Type("presence", 1, False, 1),
    103: _Type("temperature", 2, True, 0.1),
    104: _Type("relative_humidity", 1, False, 0.5),
    113: _Type("accelerometer", 2, True, 0.001, ("x", "y", "z")),
    115: _Type("barometric_pressure", 2, False, 0.1),
    116: _Type("voltage", 2, False, 0.01),
    117: _Type("current", 2, False, 0.001),
    118: _Type("frequency", 4, False, 1),
    120: _Type("percentage", 1, False, 1),
    121: _Type("altitude", 2, True, 1),
    122: _Type("load", 3, True, 0.001),
    125: _Type("concentration", 2, False, 1),
    128: _Type("power", 2, False, 1),
    130: _Type("distance", 4, False, 0.001),
    131: _Type("energy", 4, False, 0.001),
    132: _Type("direction", 2, False, 1),
    133: _Type("unixtime", 4, False, 1),
    134: _Type("gyrometer", 2, True, 0.01, ("x", "y", "z")),
    135: _Type("colour", 1, False, 1, ("r", "g", "b")),
    136: _Type("gps", 3, True, 0, ("latitude", "longitude", "altitude")),
    142: _Type("switch", 1, False, 1),
}

_GPS_RESOLUTION = (0.0001, 0.0001, 0.01)


def decode_cayenne_lpp(payload: bytes) -> dict[str, Any]:
    """Decode a Cayenne LPP payload; raises ``CodecError`` on a truncated or unknown entry."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(payload):
        if i + 2 > len(payload):
            raise CodecError("codec_error", f"Cayenne LPP: truncated entry header at byte {i}")
        channel, type_id = payload[i], payload[i + 1]
        kind = CAYENNE_TYPES.get(type_id)
        if kind is None:
            raise CodecError("codec_error", f"Cayenne LPP: unknown type {type_id} on channel {channel} at byte {i}")
        count = len(kind.components) or 1
        end = i + 2 + kind.size * count
        if end > len(payload):
            raise CodecError(
                "codec_error",
                f"Cayenne LPP: {kind.name} on channel {channel} needs {kind.size * count} bytes, "
                f"{len(payload) - i - 2} left",
            )
        raw = [
            int.from_bytes(payload[i + 2 + k * kind.size : i + 2 + (k + 1) * kind.size], "big", signed=kind.signed)
            for k in range(count)
        ]
        key = f"{kind.name}_{channel}"
        if kind.name == "gps":
            out[key] = {c: round(v * r, 6) for c, v, r in zip(kind.components, raw, _GPS_RESOLUTION, strict=True)}
        elif kind.components:
            out[key] = {c: _scaled(v, kind.resolution) for c, v in zip(kind.components, raw, strict=True)}
        else:
            out[key] = _scaled(raw[0], kind.resolution)
        i = end
    return out


def _scaled(value: int, resolution: float) -> int | float:
    if resolution == 1:
        return value
    # round() to the resolution's decimals so 225 * 0.1 is 22.5, not 22.500000000000004
    decimals = len(f"{resolution:f}".rstrip("0").split(".")[1])
    return round(value * resolution, decimals)


class CayenneLPPCodec:
    """The built-in Cayenne LPP codec (fPort is not used: LPP is self-describing)."""

    identity = CodecIdentity(name="builtin:cayenne_lpp", digest=hashlib.sha256(Path(__file__).read_bytes()).hexdigest())

    def decode(self, codec_input: CodecInput) -> DecodeResult:
        if not codec_input.payload:
            raise CodecError("codec_error", "Cayenne LPP: empty payload")
        return DecodeResult(data=decode_cayenne_lpp(codec_input.payload), codec=self.identity)

    def close(self) -> None:
        return None
