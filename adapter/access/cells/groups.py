"""Which cell a sensor's values go to: the groups of a cell definition.

Without districts there is one group, ``all``: every sensor of the type (inside the grant's
area, when it has one). With districts, a sensor belongs to the *first* district, in the
agreement's order, whose polygon contains its location (a point on a shared border goes to
the earlier one), so groups never overlap; a sensor in no district, or with no known
location, is in no cell. The ``total`` (when the definition asks for it) is the union of the
districts' sensors, not every sensor of the type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapter.ngsild.geojson import point_in_polygon

if TYPE_CHECKING:
    from adapter.access.model import Aggregation

__all__ = ["ALL", "District", "RESERVED_GROUPS", "TOTAL", "group_names", "group_of"]

ALL = "all"
TOTAL = "total"
#: group names a district cannot take
RESERVED_GROUPS = frozenset({ALL, TOTAL})


@dataclass(frozen=True, slots=True)
class District:
    """A named district of a cell definition: a WGS 84 polygon ``((lon, lat), ...)``, one
    closed ring."""

    name: str
    polygon: tuple[tuple[float, float], ...]


def group_names(aggregation: Aggregation) -> tuple[str, ...]:
    """The groups of the definition, in the order cells are given: ``("all",)``, or the
    districts in the agreement's order, then ``total`` when asked for."""
    if not aggregation.districts:
        return (ALL,)
    names = tuple(d.name for d in aggregation.districts)
    return (*names, TOTAL) if aggregation.total else names


def group_of(aggregation: Aggregation, location: tuple[float, float] | None) -> str | None:
    """The group a sensor at ``location`` (lon, lat) belongs to; None: in no cell."""
    if location is None:
        # a sensor that cannot be placed cannot be shown inside an area or a district
        return None if aggregation.area is not None or aggregation.districts else ALL
    if aggregation.area is not None and not point_in_polygon(location, [aggregation.area.polygon]):
        return None
    if not aggregation.districts:
        return ALL
    for district in aggregation.districts:
        if point_in_polygon(location, [district.polygon]):
            return district.name
    return None
