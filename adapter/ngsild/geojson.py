"""GeoJSON geometries (RFC 7946) as NGSI-LD carries them: validation, and where a point lies.

Shared by the embedded broker (GeoProperty values, geo-queries) and the sharing gateway
(partners' geo-queries, agreements' areas and districts), so that both read a geometry the
same way. Longitude and latitude are taken as plane coordinates, which is exact for points
and close enough for the small areas of a city.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "GEOMETRY_TYPES",
    "Position",
    "covers",
    "covers_positions",
    "geometry_problem",
    "in_polygon",
    "is_geometry",
    "on_segment",
    "point_in_polygon",
    "polygons_of",
    "positions_of",
    "segments_of",
]

GEOMETRY_TYPES = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"})

Position = Sequence[float]


def is_geometry(value: Any) -> bool:
    """Whether a value looks like a GeoJSON geometry (the GeoProperty shorthand test)."""
    return type(value) is dict and value.get("type") in GEOMETRY_TYPES and "coordinates" in value


def geometry_problem(value: Any) -> str:
    """What is wrong with ``value`` as a GeoJSON geometry ("" when it is a valid one)."""
    if not isinstance(value, dict):
        return "a GeoProperty value must be a GeoJSON geometry object"
    kind = value.get("type")
    coordinates = value.get("coordinates")
    if kind not in GEOMETRY_TYPES:
        return f"unsupported geometry type {kind!r}"
    if not isinstance(coordinates, list):
        return f"{kind} without a coordinates array"
    problem = _coordinates_problem(kind, coordinates)
    return f"{kind}: {problem}" if problem else ""


def point_in_polygon(point: Position, rings: Sequence[Sequence[Position]]) -> bool:
    """Whether ``point`` lies in the polygon of these linear rings (the first is the outer
    one, the others holes); a point on an edge is inside."""
    return in_polygon(point, [list(ring) for ring in rings])


def covers(container: dict[str, Any], geometry: dict[str, Any]) -> bool:
    """Whether every position of ``geometry`` lies in ``container`` (its area, else its lines,
    else its points): NGSI-LD's ``within``, tested on vertices."""
    return covers_positions(container, positions_of(geometry))


def _position_problem(position: Any) -> str:
    if not isinstance(position, list) or not 2 <= len(position) <= 3:
        return "a position must be an array of 2 or 3 numbers"
    for number in position:
        if type(number) not in (int, float) or not math.isfinite(number):
            return "a position must be an array of 2 or 3 numbers"
    if not (-180 <= position[0] <= 180 and -90 <= position[1] <= 90):
        return f"position {position} is out of range (longitude first, then latitude)"
    return ""


def _positions_problem(positions: Any, minimum: int) -> str:
    if not isinstance(positions, list) or len(positions) < minimum:
        return f"needs an array of at least {minimum} positions"
    for position in positions:
        problem = _position_problem(position)
        if problem:
            return problem
    return ""


def _polygon_problem(rings: Any) -> str:
    if not isinstance(rings, list) or not rings:
        return "a polygon needs at least one linear ring"
    for ring in rings:
        problem = _positions_problem(ring, 4)
        if problem:
            return f"linear ring {problem}"
        if ring[0] != ring[-1]:
            return "a linear ring must be closed (first and last positions equal)"
    return ""


def _coordinates_problem(kind: str, coordinates: list[Any]) -> str:
    if kind == "Point":
        return _position_problem(coordinates)
    if kind == "MultiPoint":
        return _positions_problem(coordinates, 1)
    if kind == "LineString":
        return _positions_problem(coordinates, 2)
    if kind == "MultiLineString":
        for line in coordinates:
            problem = _positions_problem(line, 2)
            if problem:
                return problem
        return "" if coordinates else "needs at least one line"
    if kind == "Polygon":
        return _polygon_problem(coordinates)
    for polygon in coordinates:
        problem = _polygon_problem(polygon)
        if problem:
            return problem
    return "" if coordinates else "needs at least one polygon"


# --- geometry decomposition -------------------------------------------------------------


def positions_of(geometry: dict[str, Any]) -> list[Position]:
    kind, coordinates = geometry["type"], geometry["coordinates"]
    if kind == "Point":
        return [coordinates]
    if kind in ("MultiPoint", "LineString"):
        return list(coordinates)
    if kind in ("MultiLineString", "Polygon"):
        return [p for part in coordinates for p in part]
    return [p for polygon in coordinates for ring in polygon for p in ring]


def polygons_of(geometry: dict[str, Any]) -> list[list[list[Position]]]:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["coordinates"])
    return []


def segments_of(geometry: dict[str, Any]) -> list[tuple[Position, Position]]:
    kind, coordinates = geometry["type"], geometry["coordinates"]
    if kind == "LineString":
        lines = [coordinates]
    elif kind in ("MultiLineString", "Polygon"):
        lines = coordinates
    elif kind == "MultiPolygon":
        lines = [ring for polygon in coordinates for ring in polygon]
    else:
        return []
    return [(line[i], line[i + 1]) for line in lines for i in range(len(line) - 1)]


def on_segment(p: Position, a: Position, b: Position) -> bool:
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    if abs(cross) > 1e-12:
        return False
    return (
        min(a[0], b[0]) - 1e-12 <= p[0] <= max(a[0], b[0]) + 1e-12
        and min(a[1], b[1]) - 1e-12 <= p[1] <= max(a[1], b[1]) + 1e-12
    )


def _in_ring(p: Position, ring: list[Position]) -> bool:
    inside = False
    x, y = p[0], p[1]
    for i in range(len(ring) - 1):
        (x1, y1), (x2, y2) = ring[i][:2], ring[i + 1][:2]
        if on_segment(p, ring[i], ring[i + 1]):
            return True
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def in_polygon(p: Position, rings: list[list[Position]]) -> bool:
    if not _in_ring(p, rings[0]):
        return False
    for hole in rings[1:]:
        if _in_ring(p, hole) and not any(on_segment(p, hole[i], hole[i + 1]) for i in range(len(hole) - 1)):
            return False
    return True


def covers_positions(container: dict[str, Any], points: list[Position]) -> bool:
    """Whether every point lies in ``container`` (its area, else its lines, else its points)."""
    polygons = polygons_of(container)
    if polygons:
        return all(any(in_polygon(p, poly) for poly in polygons) for p in points)
    segments = segments_of(container)
    if segments:
        return all(any(on_segment(p, *s) for s in segments) for p in points)
    own = [list(q[:2]) for q in positions_of(container)]
    return all(list(p[:2]) in own for p in points)
