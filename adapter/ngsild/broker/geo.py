"""GeoJSON validation and the NGSI-LD geo-query (``georel``, ``geometry``, ``coordinates``).

Orion-LD hands geo-queries to MongoDB's 2dsphere index; here they are evaluated in Python:
``near`` with the haversine distance on MongoDB's earth radius (6,378.1 km) to points, and
to lines and polygon edges in a local flat projection around the query point (zero inside
a polygon); the other relations take longitude/latitude as plane coordinates, which is
exact for points and convex polygons and close enough for the small areas of a city. One
known simplification: ``within``/``contains`` test vertices, so a concave polygon whose
edge leaves the area while its vertices stay inside counts as within. Answers to ``near``
are sorted by distance, as MongoDB sorts them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from adapter.ngsild.broker.errors import BadRequestData
from adapter.ngsild.geojson import (
    GEOMETRY_TYPES,
    Position,
    covers_positions,
    geometry_problem,
    in_polygon,
    is_geometry,
    on_segment,
    polygons_of,
    positions_of,
    segments_of,
)

__all__ = ["GEOMETRY_TYPES", "GeoQuery", "check_geometry", "is_geometry", "parse_geo_query"]

EARTH_RADIUS_M = 6_378_100.0
_RELATIONS = frozenset({"near", "within", "contains", "intersects", "disjoint", "equals", "overlaps"})
_DISTANCE = re.compile(r"(maxDistance|minDistance)(?:==|:)(\d+(?:\.\d+)?)\Z")


def check_geometry(value: Any) -> None:
    """Raises ``BadRequestData`` "Invalid GeoJSON" unless ``value`` is a valid geometry."""
    problem = geometry_problem(value)
    if problem:
        raise BadRequestData("Invalid GeoJSON", problem)


def _orientation(a: Position, b: Position, c: Position) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _segments_cross(s: tuple[Position, Position], t: tuple[Position, Position]) -> bool:
    (a, b), (c, d) = s, t
    o1, o2, o3, o4 = _orientation(a, b, c), _orientation(a, b, d), _orientation(c, d, a), _orientation(c, d, b)
    if (o1 > 0) != (o2 > 0) and (o3 > 0) != (o4 > 0) and o1 and o2 and o3 and o4:
        return True
    return on_segment(c, a, b) or on_segment(d, a, b) or on_segment(a, c, d) or on_segment(b, c, d)


def _intersects(a: dict[str, Any], b: dict[str, Any]) -> bool:
    a_points, b_points = positions_of(a), positions_of(b)
    a_polys, b_polys = polygons_of(a), polygons_of(b)
    if any(any(in_polygon(p, poly) for poly in b_polys) for p in a_points):
        return True
    if any(any(in_polygon(p, poly) for poly in a_polys) for p in b_points):
        return True
    a_segments, b_segments = segments_of(a), segments_of(b)
    if any(_segments_cross(s, t) for s in a_segments for t in b_segments):
        return True
    if any(on_segment(p, *t) for p in a_points for t in b_segments if a["type"] in ("Point", "MultiPoint")):
        return True
    if any(on_segment(p, *s) for p in b_points for s in a_segments if b["type"] in ("Point", "MultiPoint")):
        return True
    if a["type"] in ("Point", "MultiPoint") and b["type"] in ("Point", "MultiPoint"):
        return any(list(p[:2]) == list(q[:2]) for p in a_points for q in b_points)
    return False


def _haversine(p: Position, q: Position) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (p[0], p[1], q[0], q[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _segment_distance(p: Position, a: Position, b: Position) -> float:
    """Metres from ``p`` to segment ``ab``, in a flat projection centred on ``p``."""
    scale = math.cos(math.radians(p[1]))

    def plane(q: Position) -> tuple[float, float]:
        return math.radians(q[0] - p[0]) * scale * EARTH_RADIUS_M, math.radians(q[1] - p[1]) * EARTH_RADIUS_M

    (ax, ay), (bx, by) = plane(a), plane(b)
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
    if t in (0.0, 1.0):
        return _haversine(p, a if t == 0.0 else b)
    return math.hypot(ax + t * dx, ay + t * dy)


@dataclass(frozen=True, slots=True)
class GeoQuery:
    """A parsed geo-query; ``geoproperty`` is the expanded attribute name."""

    relation: str
    geometry: dict[str, Any]
    geoproperty: str
    max_distance: float | None = None
    min_distance: float | None = None

    def distance(self, geometry: dict[str, Any]) -> float:
        """Metres from the query point to ``geometry`` (used by ``near``)."""
        point = self.geometry["coordinates"]
        if any(in_polygon(point, poly) for poly in polygons_of(geometry)):
            return 0.0
        segments = segments_of(geometry)
        if segments:
            return min(_segment_distance(point, a, b) for a, b in segments)
        return min(_haversine(point, p) for p in positions_of(geometry))

    def matches(self, geometry: Any) -> bool:
        if not is_geometry(geometry):
            return False
        relation = self.relation
        if relation == "near":
            distance = self.distance(geometry)
            if self.max_distance is not None and distance > self.max_distance:
                return False
            return self.min_distance is None or distance >= self.min_distance
        if relation == "within":
            return covers_positions(self.geometry, positions_of(geometry))
        if relation == "contains":
            return covers_positions(geometry, positions_of(self.geometry))
        if relation == "intersects":
            return _intersects(geometry, self.geometry)
        if relation == "disjoint":
            return not _intersects(geometry, self.geometry)
        if relation == "equals":
            return geometry["type"] == self.geometry["type"] and _same(
                geometry["coordinates"], self.geometry["coordinates"]
            )
        # overlaps: they share some space but neither lies inside the other
        return (
            _intersects(geometry, self.geometry)
            and not covers_positions(self.geometry, positions_of(geometry))
            and not covers_positions(geometry, positions_of(self.geometry))
        )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) < 1e-9


def parse_geo_query(
    georel: str | None, geometry: str | None, coordinates: str | None, geoproperty: str
) -> GeoQuery | None:
    """The geo-query of the URI parameters, ``None`` without ``georel``, else ``BadRequestData``."""
    if georel is None and geometry is None and coordinates is None:
        return None
    if not georel or not geometry or not coordinates:
        raise BadRequestData("Incomplete geo-query", "georel, geometry and coordinates go together")
    relation, *modifiers = georel.split(";")
    if relation not in _RELATIONS:
        raise BadRequestData("Invalid value for URI parameter /georel/", georel)
    max_distance = min_distance = None
    for modifier in modifiers:
        match = _DISTANCE.match(modifier)
        if match is None or relation != "near":
            raise BadRequestData("Invalid value for URI parameter /georel/", georel)
        if match.group(1) == "maxDistance":
            max_distance = float(match.group(2))
        else:
            min_distance = float(match.group(2))
    if relation == "near" and max_distance is None and min_distance is None:
        raise BadRequestData("Invalid value for URI parameter /georel/", "near needs maxDistance or minDistance")
    try:
        parsed = json.loads(coordinates)
    except ValueError:
        try:
            parsed = json.loads(f"[{coordinates}]")
        except ValueError as exc:
            raise BadRequestData("Invalid value for URI parameter /coordinates/", coordinates) from exc
    shape = {"type": geometry, "coordinates": parsed}
    check_geometry(shape)
    if relation == "near" and geometry != "Point":
        raise BadRequestData("Invalid geo-query", "near needs a Point geometry")
    if relation == "within" and geometry not in ("Polygon", "MultiPolygon"):
        raise BadRequestData("Invalid geo-query", "within needs a Polygon or MultiPolygon geometry")
    return GeoQuery(relation, shape, geoproperty, max_distance, min_distance)
