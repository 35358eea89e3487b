"""What the cell tests share: cell definitions, sensors placed in two districts, a fake broker
whose data can change between questions, and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from adapter.access.cells import District, Period, SensorSeries
from adapter.access.model import Aggregation, Area

T0 = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday, far from any DST change
WEST = District("west", ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)))
EAST = District("east", ((1.0, 0.0), (2.0, 0.0), (2.0, 1.0), (1.0, 1.0), (1.0, 0.0)))
NORTH = District("north", ((0.0, 1.0), (2.0, 1.0), (2.0, 2.0), (0.0, 2.0), (0.0, 1.0)))
IN_WEST, IN_EAST, IN_NORTH, NOWHERE = (0.5, 0.5), (1.5, 0.5), (1.0, 1.5), (5.0, 5.0)


def daily(method: str = "sum", size: int = 3, **changes: Any) -> Aggregation:
    """A daily definition in UTC, with no dominance rule unless ``changes`` sets one."""
    base = Aggregation(method, "P1D", size, dominance_share=1.0)
    return replace(base, **changes)


def districts(method: str = "sum", size: int = 3, *, total: bool = True, **changes: Any) -> Aggregation:
    return daily(method, size, districts=(WEST, EAST, NORTH), total=total, **changes)


def day(n: int) -> Period:
    return Period(T0 + timedelta(days=n), T0 + timedelta(days=n + 1))


def sensor(location: tuple[float, float] | None, *points: tuple[float, datetime], attribute: str = "x") -> SensorSeries:
    return SensorSeries(location, {attribute: tuple(points)})


def at(n_day: int, hour: int = 12) -> datetime:
    return T0 + timedelta(days=n_day, hours=hour)


def one_each(values: Mapping[str, tuple[tuple[float, float] | None, float]], n_day: int = 0) -> dict[str, SensorSeries]:
    """sensor id -> (location, value): one reading each, at noon of day ``n_day``."""
    return {name: sensor(location, (value, at(n_day))) for name, (location, value) in values.items()}


@dataclass
class FakeBroker:
    """Sensors' readings, which a test may add to at any time (late data); counts the reads."""

    locations: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    readings: dict[str, list[tuple[str, float, datetime]]] = field(default_factory=dict)
    reads: list[Period] = field(default_factory=list)

    def add(
        self, name: str, location: tuple[float, float] | None, attribute: str, value: float, moment: datetime
    ) -> None:
        self.locations[name] = location
        self.readings.setdefault(name, []).append((attribute, value, moment))

    def series(self) -> dict[str, SensorSeries]:
        out = {}
        for name, readings in self.readings.items():
            points: dict[str, list[tuple[float, datetime]]] = {}
            for attribute, value, moment in readings:
                points.setdefault(attribute, []).append((value, moment))
            out[name] = SensorSeries(self.locations[name], {a: tuple(p) for a, p in points.items()})
        return out

    async def fetch(self, period: Period) -> Mapping[str, SensorSeries]:
        self.reads.append(period)
        return self.series()


def values_of(cells: Iterable[Any]) -> list[tuple[str, str, datetime, str, float | None, int | None, str | None]]:
    return [(c.group, c.attribute, c.period.start, c.status, c.value, c.sensors, c.rule) for c in cells]


SQUARE_AREA = Area(((0.0, 0.0), (1.2, 0.0), (1.2, 1.0), (0.0, 1.0), (0.0, 0.0)))
