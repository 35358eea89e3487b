"""UN/CEFACT Common Codes for the quantities LoRaWAN sensors report, and conversions.

NGSI-LD carries units as ``unitCode`` (UN/CEFACT Recommendation 20). A device profile
states the unit the codec gives and the unit the entity wants; conversion goes through
the SI unit of the dimension: ``si = value * factor + offset``.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapter.exceptions import ConfigError

__all__ = ["UNITS", "Unit", "convert", "unit"]


@dataclass(frozen=True, slots=True)
class Unit:
    code: str
    name: str
    dimension: str
    factor: float = 1.0
    offset: float = 0.0


UNITS: dict[str, Unit] = {
    u.code: u
    for u in (
        # temperature (SI: kelvin)
        Unit("CEL", "degree Celsius", "temperature", 1.0, 273.15),
        Unit("KEL", "kelvin", "temperature"),
        Unit("FAH", "degree Fahrenheit", "temperature", 5 / 9, 273.15 - 32 * 5 / 9),
        # ratios (SI: one)
        Unit("C62", "one (ratio)", "ratio"),
        Unit("P1", "percent", "ratio", 0.01),
        # concentration by volume (SI: one)
        Unit("59", "part per million", "volume_ratio", 1e-6),
        Unit("61", "part per billion", "volume_ratio", 1e-9),
        # mass concentration (SI: kg/m3)
        Unit("GQ", "microgram per cubic metre", "mass_concentration", 1e-9),
        Unit("GP", "milligram per cubic metre", "mass_concentration", 1e-6),
        Unit("M1", "milligram per litre", "mass_concentration", 1e-3),
        # pressure (SI: pascal)
        Unit("PAL", "pascal", "pressure"),
        Unit("A97", "hectopascal", "pressure", 100.0),
        Unit("KPA", "kilopascal", "pressure", 1000.0),
        Unit("BAR", "bar", "pressure", 1e5),
        # volume (SI: cubic metre)
        Unit("MTQ", "cubic metre", "volume"),
        Unit("LTR", "litre", "volume", 1e-3),
        # length (SI: metre)
        Unit("MTR", "metre", "length"),
        Unit("CMT", "centimetre", "length", 0.01),
        Unit("MMT", "millimetre", "length", 0.001),
        Unit("KMT", "kilometre", "length", 1000.0),
        # speed (SI: m/s)
        Unit("MTS", "metre per second", "speed"),
        Unit("KMH", "kilometre per hour", "speed", 1 / 3.6),
        # energy (SI: joule)
        Unit("JOU", "joule", "energy"),
        Unit("WHR", "watt hour", "energy", 3600.0),
        Unit("KWH", "kilowatt hour", "energy", 3.6e6),
        Unit("MWH", "megawatt hour", "energy", 3.6e9),
        # power (SI: watt)
        Unit("WTT", "watt", "power"),
        Unit("KWT", "kilowatt", "power", 1000.0),
        # electricity
        Unit("VLT", "volt", "voltage"),
        Unit("2Z", "millivolt", "voltage", 1e-3),
        Unit("AMP", "ampere", "current"),
        Unit("4K", "milliampere", "current", 1e-3),
        Unit("HTZ", "hertz", "frequency"),
        # light, sound, angle, irradiance, rain rate
        Unit("LUX", "lux", "illuminance"),
        Unit("2N", "decibel", "sound_level"),
        Unit("DD", "degree (angle)", "angle"),
        Unit("D54", "watt per square metre", "irradiance"),
        Unit("H67", "millimetre per hour", "rain_rate"),
        # counts
        Unit("IE", "person", "count"),
    )
}


def unit(code: str) -> Unit:
    found = UNITS.get(code)
    if found is None:
        raise ConfigError(f"unknown UN/CEFACT unit code {code!r}; known: {', '.join(sorted(UNITS))}")
    return found


def convert(value: float, from_code: str, to_code: str) -> float:
    """Convert between two units of the same dimension (ConfigError otherwise)."""
    if from_code == to_code:
        return value
    source, target = unit(from_code), unit(to_code)
    if source.dimension != target.dimension:
        raise ConfigError(
            f"cannot convert {source.name} ({from_code}) to {target.name} ({to_code}): "
            f"{source.dimension} is not {target.dimension}"
        )
    si = value * source.factor + source.offset
    return (si - target.offset) / target.factor
