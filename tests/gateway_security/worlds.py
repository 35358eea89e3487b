"""Twin worlds for the differential oracle: pairs of collectivities whose data agree on
everything a class of agreements lets through, and differ in what it withholds.

Each ``Secret`` is one such class. Its two tenants hold the same sensors, written the same way,
except for the secret: exact values of the attributes the agreements never give raw
(``attribute``), every observation after the agreements' time window (``time``), the sensors
outside the agreements' area (``area``), exact coordinates where the agreements coarsen or remove
the location (``location``). A gateway that answers a request differently in the two tenants of a
pair has let the secret influence an answer: the hidden data leaked, directly or by inference
(a filter, a count, a geo-query, a time property...).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapter.access.model import Area
from tests.gateway.support import DAY0, air_quality_entities

#: sensors 0 and 1 of the sample data (longitudes -1.60 and -1.61), not 2 and 3
AREA = Area(((-1.615, 48.0), (-1.595, 48.0), (-1.595, 48.2), (-1.615, 48.2), (-1.615, 48.0)))
#: the end of the time secret's window: the first day is shared, the second is the secret
WINDOW_END = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
SENSORS = 4
DAYS = 2


@dataclass(frozen=True)
class Secret:
    name: str
    tenants: tuple[str, str]
    alter: Callable[[dict[str, Any], int, int], None]  # (entity of world B, sensor, day) -> changed in place


def _vary(entity: dict[str, Any], sensor: int, day: int) -> None:
    """The shared variety of both worlds: each sensor and day has its own values."""
    for name, base in (("temperature", 10.2), ("relativeHumidity", 0.61), ("pm25", 5.0), ("pm10", 9.0), ("o3", 40.0)):
        entity[name]["value"] = round(base + sensor * (0.01 if name == "relativeHumidity" else 1.0) + day * 0.1, 4)
    entity["location"]["value"]["coordinates"] = [round(-1.6 - sensor * 0.01, 4), 48.1]


def _attribute_secret(entity: dict[str, Any], sensor: int, day: int) -> None:
    # the same at 0 decimals (what a coarsening to 0 decimals shows), different exactly
    entity["temperature"]["value"] = round(entity["temperature"]["value"] + 0.1, 4)
    entity["relativeHumidity"]["value"] = round(entity["relativeHumidity"]["value"] + 0.02, 4)


def _time_secret(entity: dict[str, Any], sensor: int, day: int) -> None:
    if day >= 1:
        for name in ("no2", "temperature", "pm25", "pm10", "o3", "relativeHumidity"):
            entity[name]["value"] = 900.0 + sensor + day


def _area_secret(entity: dict[str, Any], sensor: int, day: int) -> None:
    if sensor >= 2:
        for name in ("no2", "temperature", "pm25"):
            entity[name]["value"] = 700.0 + sensor
        entity["location"]["value"]["coordinates"] = [-1.75 - sensor * 0.01, 48.3]


def _location_secret(entity: dict[str, Any], sensor: int, day: int) -> None:
    lon, lat = entity["location"]["value"]["coordinates"]
    entity["location"]["value"]["coordinates"] = [round(lon + 0.001, 4), round(lat + 0.001, 4)]  # same at 2 decimals


SECRETS = (
    Secret("attribute", ("attra", "attrb"), _attribute_secret),
    Secret("time", ("timea", "timeb"), _time_secret),
    Secret("area", ("areaa", "areab"), _area_secret),
    Secret("location", ("loca", "locb"), _location_secret),
)
TENANTS = frozenset(t for s in SECRETS for t in s.tenants)


def world_writes(tenant: str, secret: Secret | None) -> list[dict[str, Any]]:
    """The writes of one tenant, oldest first (``secret``: alter them as world B)."""
    writes = air_quality_entities(tenant, SENSORS, DAYS)
    for index, entity in enumerate(writes):
        day, sensor = divmod(index, SENSORS)
        _vary(entity, sensor, day)
        if secret is not None:
            secret.alter(entity, sensor, day)
    return [copy.deepcopy(w) for w in writes]


def instants() -> list[str]:
    """Times a request may name: around the data, on its edges and inside it."""
    moments = [
        DAY0 - timedelta(days=1),
        DAY0,
        DAY0 + timedelta(minutes=2),
        WINDOW_END,
        DAY0 + timedelta(days=1),
        DAY0 + timedelta(days=1, minutes=2),
        DAY0 + timedelta(days=3),
    ]
    return [m.isoformat().replace("+00:00", "Z") for m in moments]
