"""The attacks the cells are built against, tried at the domain level: overlapping windows,
repeated questions, late data, and subtracting published cells from the total. The answers
are only ever whole published cells, the same each time, and no suppressed cell follows
from what is published."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.access.cells import Cell, CellStore, compute_cells, periods, published_cells
from adapter.access.cells.series import SensorSeries
from adapter.access.model import Aggregation
from tests.access_cells.support import (
    IN_EAST,
    IN_NORTH,
    IN_WEST,
    NOWHERE,
    T0,
    FakeBroker,
    at,
    daily,
    day,
    districts,
    sensor,
    values_of,
)

PROPERTY = settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFINITIONS = [
    daily("sum", 2),
    districts("avg", 2, dominance_top=1, dominance_share=0.7),
    districts("sum", 3, time_zone="Europe/Paris", dominance_top=2, dominance_share=0.8),
]
PLACES = [IN_WEST, IN_EAST, IN_NORTH, NOWHERE, None]
NOW = T0 + timedelta(days=30)

readings = st.lists(st.tuples(st.integers(0, 7 * 24 - 1), st.floats(-50, 500, allow_nan=False)), max_size=12)
fleet = st.lists(st.tuples(st.sampled_from(PLACES), readings), min_size=1, max_size=9)
hours = st.integers(-24, 9 * 24)


def load(
    broker: FakeBroker, sensors: list[tuple[tuple[float, float] | None, list[tuple[int, float]]]], prefix: str = "s"
) -> None:
    for i, (place, points) in enumerate(sensors):
        for hour, value in points:
            broker.add(f"{prefix}{i}", place, "x", value, T0 + timedelta(hours=hour))


def ask(
    definition: Aggregation, store: CellStore, broker: FakeBroker, start: datetime, end: datetime
) -> tuple[Cell, ...]:
    chosen = periods(definition, start, end, now=NOW)
    return asyncio.run(
        published_cells(
            definition,
            store,
            tenant="ville",
            entity_type="T",
            attributes=["x"],
            periods=chosen,
            fetch=broker.fetch,
            now=NOW,
        )
    )


@PROPERTY
@given(st.sampled_from(DEFINITIONS), fleet, fleet, hours, hours, hours, hours)
def test_overlapping_windows_and_late_data_only_ever_give_the_same_whole_cells(
    definition: Aggregation,
    sensors: list,
    late: list,
    a: int,
    b: int,
    c: int,
    d: int,
) -> None:
    broker, store = FakeBroker(), CellStore(":memory:")
    load(broker, sensors)
    reference = broker.series()  # what the data was when the periods were first asked for
    first_window = (T0 + timedelta(hours=min(a, b)), T0 + timedelta(hours=max(a, b) + 1))
    second_window = (T0 + timedelta(hours=min(c, d)), T0 + timedelta(hours=max(c, d) + 1))
    everything = ask(definition, store, broker, T0 - timedelta(days=2), T0 + timedelta(days=10))
    load(broker, late, prefix="late")  # data arriving after publication, some in old periods
    answers = [
        ask(definition, store, broker, *first_window),
        ask(definition, store, broker, *second_window),
        ask(definition, store, broker, *first_window),
    ]
    known = {(cell.period, cell.group): cell for cell in everything}
    for (start, end), answer in zip((first_window, second_window, first_window), answers, strict=True):
        for cell in answer:
            # whole periods inside the window only, and each the cell first published
            assert start <= cell.period.start and cell.period.end <= end
            assert known[(cell.period, cell.group)] == cell
        assert {c.period for c in answer} == set(periods(definition, start, end, now=NOW))
    assert answers[0] == answers[2]
    for period in {cell.period for cell in everything}:
        assert tuple(c for c in everything if c.period == period) == compute_cells(definition, "x", period, reference)


def independent_rules_pass(definition: Aggregation, contributions: dict[str, list[float]]) -> bool:
    """The primary rules, written again here as the oracle."""
    if len(contributions) < definition.min_group_size:
        return False
    sizes = sorted((abs(math.fsum(v)) for v in contributions.values()), reverse=True)
    return sum(sizes) == 0 or sum(sizes[: definition.dominance_top]) <= definition.dominance_share * sum(sizes)


district_values = st.lists(st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=3), max_size=6)


@PROPERTY
@given(
    st.sampled_from(["sum", "avg"]),
    st.integers(1, 4),
    st.sampled_from([(1, 0.6), (2, 0.8), (1, 1.0)]),
    district_values,
    district_values,
    district_values,
)
def test_no_suppressed_cell_can_be_derived_from_the_total_and_the_published_cells(
    method: str,
    size: int,
    dominance: tuple[int, float],
    west: list,
    east: list,
    north: list,
) -> None:
    definition = districts(method, size, dominance_top=dominance[0], dominance_share=dominance[1])
    series: dict[str, SensorSeries] = {}
    members: dict[str, dict[str, list[float]]] = {"west": {}, "east": {}, "north": {}}
    for group, place, sensors in (("west", IN_WEST, west), ("east", IN_EAST, east), ("north", IN_NORTH, north)):
        for i, values in enumerate(sensors):
            series[f"{group}{i}"] = sensor(place, *((v, at(0, h)) for h, v in enumerate(values)))
            members[group][f"{group}{i}"] = values
    cells = {c.group: c for c in compute_cells(definition, "x", day(0), series)}
    for cell in cells.values():
        if cell.status == "suppressed":
            assert cell.value is None and cell.sensors is None and cell.rule in ("threshold", "dominance", "secondary")
        elif cell.group != "total":
            assert independent_rules_pass(definition, members[cell.group])
    if cells["total"].value is None or cells["total"].sensors is None:
        return  # the total is suppressed: nothing links the districts
    hidden = [g for g in ("west", "east", "north") if cells[g].status == "suppressed"]
    union = {s: v for g in hidden for s, v in members[g].items()}
    # what an attacker who knows every reading count computes: total minus the published cells
    readings = {g: sum(len(v) for v in members[g].values()) for g in members}
    weight = (lambda g: readings[g]) if method == "avg" else (lambda g: 1)
    total = cells["total"].value * (sum(readings.values()) if method == "avg" else 1)
    derived = total - sum((cells[g].value or 0) * weight(g) for g in members if g not in hidden)
    assert math.isclose(derived, math.fsum(v for vs in union.values() for v in vs), rel_tol=1e-9, abs_tol=1e-6)
    # ... which is a sum over a group that itself passes the rules (or holds no sensor at all)
    assert not union or independent_rules_pass(definition, union)
    assert cells["total"].sensors - sum(cells[g].sensors or 0 for g in members if g not in hidden) == len(union)


async def test_an_official_shifting_windows_and_asking_again_learns_nothing_finer_than_a_day() -> None:
    broker, store = FakeBroker(), CellStore(":memory:")
    definition = districts("sum", 3, total=False)
    for i in range(4):  # four households in the west, one reading an hour for a week
        for hour in range(7 * 24):
            broker.add(f"house{i}", IN_WEST, "x", float(i + hour % 5), T0 + timedelta(hours=hour))
    seen: dict[tuple[datetime, str], tuple] = {}
    for shift in range(0, 48, 5):  # windows shifted hour by hour, as an attacker would
        start = T0 + timedelta(hours=shift)
        answer = await published_cells(
            definition,
            store,
            tenant="ville",
            entity_type="T",
            attributes=["x"],
            now=NOW,
            fetch=broker.fetch,
            periods=periods(definition, start, start + timedelta(days=2), now=NOW),
        )
        broker.add("house0", IN_WEST, "x", 10_000.0, T0 + timedelta(hours=30))  # a late reading each time
        for row in values_of(answer):
            _, _, period_start, *_ = row
            assert seen.setdefault((period_start, row[0]), row) == row  # one value per cell, ever
            assert period_start.hour == 0  # a whole day, never a window's part of one
    assert len(broker.reads) == 3  # days 0, 1 and 2 read once each, whatever the windows
    days = sorted({start for start, _ in seen})
    assert days == [T0 + timedelta(days=n) for n in range(3)]
