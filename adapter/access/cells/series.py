"""What the cells are computed from: each sensor's location and its timed values.

``series_from_temporal`` reads the broker's temporal entities in every shape brokers answer
(``adapter.ngsild.history``: ``options=temporalValues`` pairs, normalized instances in any
order, a single instance as an object) into ``SensorSeries``. Only finite numbers with a
timezone-aware ``observedAt`` count; anything else (text, booleans, NaN, a bad time) is
left out rather than guessed. The location is the entity's ``location`` Point (for a
temporal location, its latest instance); any other geometry places the sensor nowhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapter.ngsild.history import parse_attribute

__all__ = ["Point", "SensorSeries", "series_from_temporal"]

#: (value, observedAt) of one observation
Point = tuple[float, datetime]


@dataclass(frozen=True, slots=True)
class SensorSeries:
    """One sensor (entity): its ``location`` (lon, lat) or None, and per attribute its
    (value, observedAt) points, in any order."""

    location: tuple[float, float] | None
    points: Mapping[str, tuple[Point, ...]] = field(default_factory=dict)


def series_from_temporal(entities: Iterable[Mapping[str, Any]], attributes: Iterable[str]) -> dict[str, SensorSeries]:
    """Entity id -> ``SensorSeries`` of ``attributes``, from temporal entities (an entity given
    twice, as over several pages, has its points joined)."""
    names = sorted(set(attributes))
    locations: dict[str, tuple[float, float] | None] = {}
    points: dict[str, dict[str, list[Point]]] = {}
    for entity in entities:
        identifier = entity.get("id") if isinstance(entity, Mapping) else None
        if not isinstance(identifier, str) or not identifier:
            continue
        if locations.get(identifier) is None:
            locations[identifier] = _location(entity.get("location"))
        own = points.setdefault(identifier, {})
        for name in names:
            found = list(_points(entity.get(name)))
            if found:
                own.setdefault(name, []).extend(found)
    return {
        identifier: SensorSeries(locations[identifier], {n: tuple(p) for n, p in points[identifier].items()})
        for identifier in sorted(points)
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _pairs(attribute: Any) -> list[tuple[Any, datetime | None]]:
    """(value, observedAt) of each instance, in any shape a broker answers (``adapter.ngsild.history``)."""
    parsed = parse_attribute(attribute)
    return [] if parsed is None else [(i.members.get("value"), i.observed_at) for i in parsed.instances]


def _points(attribute: Any) -> Iterable[Point]:
    for value, moment in _pairs(attribute):
        number = _number(value)
        if number is not None and moment is not None:
            yield number, moment


def _point(geometry: Any) -> tuple[float, float] | None:
    if isinstance(geometry, Mapping) and geometry.get("type") == "GeoProperty":
        geometry = geometry.get("value")
    if not isinstance(geometry, Mapping) or geometry.get("type") != "Point":
        return None
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or not 2 <= len(coordinates) <= 3:
        return None
    lon, lat = _number(coordinates[0]), _number(coordinates[1])
    if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    return lon, lat


def _location(attribute: Any) -> tuple[float, float] | None:
    """The Point of a ``location`` as given: one GeoProperty (or its bare geometry), or the
    latest instance of a temporal one."""
    if not isinstance(attribute, list) and not (isinstance(attribute, Mapping) and "values" in attribute):
        return _point(attribute)
    parsed = parse_attribute(attribute)
    geometries = (
        []
        if parsed is None
        else [  # oldest first, untimed ones last
            (i.observed_at, _point(i.members.get("value", i.members))) for i in parsed.instances
        ]
    )
    timed = [point for moment, point in geometries if moment is not None and point is not None]
    if timed:
        return timed[-1]
    placed = [point for _, point in geometries if point is not None]
    return placed[-1] if placed else None
