"""Each rule of a period's cells on its own: groups (all, districts first-match, area, sensors
outside), threshold, dominance, secondary suppression against the total; a suppressed cell
tells its rule, never its value nor its count."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from adapter.access.cells import (
    Cell,
    CellsError,
    Period,
    PeriodsError,
    cell_json,
    compute_cells,
    group_names,
    group_of,
    period_containing,
    periods,
)
from adapter.access.cells.rules import dominated
from adapter.access.cells.series import SensorSeries
from tests.access_cells.support import (
    EAST,
    IN_EAST,
    IN_NORTH,
    IN_WEST,
    NOWHERE,
    SQUARE_AREA,
    WEST,
    at,
    daily,
    day,
    districts,
    one_each,
    sensor,
)


def by_group(cells: tuple[Cell, ...]) -> dict[str, Cell]:
    return {c.group: c for c in cells}


# --- groups -----------------------------------------------------------------------------


def test_without_districts_every_sensor_is_in_the_one_group_all() -> None:
    series = one_each({"a": (IN_WEST, 1.0), "b": (None, 2.0), "c": (NOWHERE, 3.0)})
    (cell,) = compute_cells(daily("sum", 3), "x", day(0), series)
    assert (cell.group, cell.status, cell.value, cell.sensors) == ("all", "published", 6.0, 3)


def test_a_sensor_belongs_to_the_first_district_that_contains_it() -> None:
    definition = districts()
    assert group_names(definition) == ("west", "east", "north", "total")
    assert group_of(definition, (1.0, 0.5)) == "west"  # on the border of west and east: the first
    assert group_of(definition, IN_EAST) == "east"
    assert group_of(definition.__class__("sum", "P1D", 3, districts=(EAST, WEST)), (1.0, 0.5)) == "east"


def test_sensors_outside_every_district_or_unplaced_are_in_no_cell_and_not_in_the_total() -> None:
    series = one_each(
        {
            **{f"w{i}": (IN_WEST, 1.0) for i in range(3)},
            **{f"e{i}": (IN_EAST, 2.0) for i in range(3)},
            **{f"n{i}": (IN_NORTH, 4.0) for i in range(3)},
            "far": (NOWHERE, 1000.0),
            "lost": (None, 1000.0),
        }
    )
    cells = by_group(compute_cells(districts(), "x", day(0), series))
    assert {g: (c.value, c.sensors) for g, c in cells.items()} == {
        "west": (3.0, 3),
        "east": (6.0, 3),
        "north": (12.0, 3),
        "total": (21.0, 9),
    }


def test_the_grant_area_restricts_the_sensors_first() -> None:
    series = one_each({"in": (IN_WEST, 1.0), "edge": ((1.1, 0.5), 2.0), "out": (IN_EAST, 4.0), "lost": (None, 8.0)})
    (cell,) = compute_cells(daily("sum", 1, area=SQUARE_AREA), "x", day(0), series)
    assert (cell.value, cell.sensors) == (3.0, 2)


def test_only_points_inside_the_period_count_and_other_attributes_do_not() -> None:
    points = ((1.0, day(0).start), (10.0, day(0).end), (100.0, day(0).start - timedelta(microseconds=1)))
    series = {f"s{i}": SensorSeries(IN_WEST, {"x": points, "y": ((5.0, at(0)),)}) for i in range(3)}
    (cell,) = compute_cells(daily("sum", 3), "x", day(0), series)
    assert cell.value == 3.0  # the reading at the period's end belongs to the next day


def test_avg_is_over_every_reading_of_every_sensor() -> None:
    series = {
        "a": sensor(IN_WEST, (1.0, at(0, 1)), (3.0, at(0, 2))),
        "b": sensor(IN_WEST, (8.0, at(0))),
        "c": sensor(IN_WEST, (4.0, at(0))),
    }
    (cell,) = compute_cells(daily("avg", 3), "x", day(0), series)
    assert cell.value == 4.0 and cell.sensors == 3


# --- threshold --------------------------------------------------------------------------


def test_fewer_sensors_than_the_threshold_suppress_the_cell_and_hide_its_count() -> None:
    two = one_each({"a": (IN_WEST, 1.0), "b": (IN_WEST, 2.0)})
    (cell,) = compute_cells(daily("sum", 3), "x", day(0), two)
    assert (cell.status, cell.rule, cell.value, cell.sensors) == ("suppressed", "threshold", None, None)
    three = {**two, "c": sensor(IN_WEST, (3.0, at(0)))}
    assert compute_cells(daily("sum", 3), "x", day(0), three)[0].status == "published"
    # a sensor that observed nothing in the period is not a contributor
    idle = {**two, "c": sensor(IN_WEST, (3.0, at(1)))}
    assert compute_cells(daily("sum", 3), "x", day(0), idle)[0].rule == "threshold"


def test_a_suppressed_cell_says_why_in_plain_words_and_nothing_more() -> None:
    (cell,) = compute_cells(daily("sum", 3), "x", day(0), one_each({"a": (IN_WEST, 1.0)}))
    answer = cell_json(cell, daily("sum", 3))
    assert answer == {
        "group": "all",
        "attribute": "x",
        "method": "sum",
        "start": "2025-03-03T00:00:00Z",
        "end": "2025-03-04T00:00:00Z",
        "status": "suppressed",
        "rule": "threshold",
        "reason": "fewer than 3 sensors contributed",
    }


# --- dominance --------------------------------------------------------------------------


def test_the_n_k_rule_on_absolute_contributions() -> None:
    assert dominated([61.0, 20.0, 19.0], top=1, share=0.6)
    assert not dominated([60.0, 20.0, 20.0], top=1, share=0.6)  # at most k: published
    assert dominated([45.0, 45.0, 10.0], top=2, share=0.8)
    assert not dominated([40.0, 40.0, 20.0], top=2, share=0.8)
    assert dominated([-90.0, 5.0, 5.0], top=1, share=0.6)  # a large negative value dominates too
    assert not dominated([0.0, 0.0, 0.0], top=1, share=0.6)


def test_a_cell_one_sensor_dominates_is_suppressed_whatever_the_number_of_sensors() -> None:
    definition = daily("sum", 3, dominance_top=2, dominance_share=0.8)
    big = one_each({"house": (IN_WEST, 900.0), "flat": (IN_WEST, 50.0), **{f"s{i}": (IN_WEST, 5.0) for i in range(8)}})
    (cell,) = compute_cells(definition, "x", day(0), big)
    assert (cell.status, cell.rule, cell.value, cell.sensors) == ("suppressed", "dominance", None, None)
    assert cell_json(cell, definition)["reason"] == "the 2 largest contributions make more than 80% of the cell"
    even = one_each({f"s{i}": (IN_WEST, 10.0) for i in range(5)})
    assert compute_cells(definition, "x", day(0), even)[0].value == 50.0


def test_dominance_of_an_average_is_judged_on_each_sensor_sum() -> None:
    # similar values, but one sensor reports ten times as often: it makes the average
    series = {
        "chatty": sensor(IN_WEST, *((20.0, at(0, h)) for h in range(10))),
        "a": sensor(IN_WEST, (20.0, at(0))),
        "b": sensor(IN_WEST, (20.0, at(0))),
    }
    (cell,) = compute_cells(daily("avg", 3, dominance_top=1, dominance_share=0.6), "x", day(0), series)
    assert cell.rule == "dominance"


# --- secondary suppression --------------------------------------------------------------


def three_districts(west: list[float], east: list[float], north: list[float]) -> dict[str, SensorSeries]:
    series = {}
    for name, location, values in (("w", IN_WEST, west), ("e", IN_EAST, east), ("n", IN_NORTH, north)):
        for i, value in enumerate(values):
            series[f"{name}{i}"] = sensor(location, (value, at(0)))
    return series


def test_one_suppressed_district_with_a_total_suppresses_the_smallest_other_one() -> None:
    series = three_districts([5.0, 6.0], [1.0, 1.0, 1.0], [10.0, 10.0, 10.0, 10.0])
    cells = by_group(compute_cells(districts(), "x", day(0), series))
    assert (cells["west"].status, cells["west"].rule) == ("suppressed", "threshold")
    assert (cells["east"].status, cells["east"].rule) == ("suppressed", "secondary")  # the smallest: 3 sensors
    assert (cells["north"].value, cells["total"].value) == (40.0, 54.0)
    # total - north = west + east: 5 sensors, the pair of them no longer tells west
    assert (cells["total"].sensors, cells["north"].sensors) == (9, 4)


def test_when_protecting_would_take_several_districts_the_total_goes_instead() -> None:
    # west is dominated by one sensor; west + east (the smaller) still is: it takes north too
    series = three_districts([100.0, 1.0, 1.0], [10.0, 10.0, 10.0], [30.0, 30.0, 30.0])
    cells = by_group(compute_cells(districts(dominance_top=1, dominance_share=0.6), "x", day(0), series))
    assert cells["west"].rule == "dominance"
    assert (cells["total"].status, cells["total"].rule) == ("suppressed", "secondary")
    assert cells["east"].value == 30.0 and cells["north"].value == 90.0


def test_two_suppressed_districts_whose_union_passes_need_nothing_more() -> None:
    series = three_districts([5.0, 6.0], [7.0, 8.0], [10.0, 10.0, 10.0])
    cells = by_group(compute_cells(districts(), "x", day(0), series))
    assert [cells[g].rule for g in ("west", "east", "north", "total")] == ["threshold", "threshold", None, None]


def test_an_empty_district_needs_no_protection_but_a_failing_total_is_suppressed() -> None:
    series = three_districts([], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    cells = by_group(compute_cells(districts(), "x", day(0), series))
    assert cells["west"].rule == "threshold" and cells["east"].status == cells["total"].status == "published"
    small = by_group(compute_cells(districts(size=4), "x", day(0), three_districts([1.0], [], [2.0, 2.0])))
    assert [small[g].rule for g in ("west", "east", "north", "total")] == ["threshold"] * 4


def test_without_a_total_districts_are_judged_alone() -> None:
    series = three_districts([5.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    cells = by_group(compute_cells(districts(total=False), "x", day(0), series))
    assert set(cells) == {"west", "east", "north"}
    assert [cells[g].rule for g in ("west", "east", "north")] == ["threshold", None, None]


def test_min_and_max_are_not_cells() -> None:
    with pytest.raises(ValueError, match="avg or sum"):
        compute_cells(daily("max", 3), "x", day(0), {})


def test_values_do_not_depend_on_the_order_sensors_come_in() -> None:
    values = {f"s{i}": (IN_WEST, v) for i, v in enumerate([0.1, 0.2, 0.3, 1e16, -1e16, 0.7])}
    forward = compute_cells(daily("sum", 3), "x", day(0), one_each(values))
    backward = compute_cells(daily("sum", 3), "x", day(0), dict(reversed(one_each(values).items())))
    assert forward == backward and math.isclose(forward[0].value or 0, 1.3)


# --- calendar periods -------------------------------------------------------------------


def test_the_25_hour_day_of_the_dst_end_holds_all_its_hours_and_the_next_day_none() -> None:
    definition = daily("sum", 3, time_zone="Europe/Paris")
    (autumn,) = periods(
        definition,
        datetime(2025, 10, 25, 22, tzinfo=UTC),
        datetime(2025, 10, 26, 23, tzinfo=UTC),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    hourly = tuple((1.0, autumn.start + timedelta(hours=h)) for h in range(26))  # the 26th is the next day
    series = {f"s{i}": SensorSeries(IN_WEST, {"x": hourly}) for i in range(3)}
    (cell,) = compute_cells(definition, "x", autumn, series)
    assert cell.value == 3 * 25.0


def test_a_month_cell_runs_from_the_first_local_midnight_to_the_next() -> None:
    definition = daily("sum", 3, period="P1M", time_zone="Europe/Paris")
    february = period_containing(definition, datetime(2025, 2, 14, tzinfo=UTC))
    assert (february.start, february.end) == (
        datetime(2025, 1, 31, 23, tzinfo=UTC),
        datetime(2025, 2, 28, 23, tzinfo=UTC),
    )
    inside = (1.0, datetime(2025, 1, 31, 23, 30, tzinfo=UTC))  # 00:30 on 1 February in Paris
    outside = (100.0, datetime(2025, 2, 28, 23, 30, tzinfo=UTC))  # 00:30 on 1 March in Paris
    series = {f"s{i}": SensorSeries(IN_WEST, {"x": (inside, outside)}) for i in range(3)}
    assert compute_cells(definition, "x", february, series)[0].value == 3.0


def test_a_period_that_is_not_the_definitions_is_refused() -> None:
    with pytest.raises(PeriodsError, match="not a P1D period"):
        compute_cells(daily(), "x", Period(at(0, 0), at(0, 1)), {})


# --- bad readings -----------------------------------------------------------------------


def test_non_finite_readings_are_left_out_and_an_overflowing_cell_is_a_cells_error() -> None:
    series = {f"s{i}": sensor(IN_WEST, (1.0, at(0)), (math.nan, at(0)), (math.inf, at(0))) for i in range(3)}
    assert compute_cells(daily("sum", 3), "x", day(0), series)[0].value == 3.0
    huge = {f"s{i}": sensor(IN_WEST, (1.7e308, at(0))) for i in range(3)}
    with pytest.raises(CellsError, match="past the range of a float"):
        compute_cells(daily("sum", 3), "x", day(0), huge)
