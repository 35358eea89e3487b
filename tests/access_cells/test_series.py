"""The broker's temporal entities become sensor series: every shape it answers, and nothing
that is not a finite number at a known time."""

from __future__ import annotations

from datetime import UTC, datetime

from adapter.access.cells import series_from_temporal

T = "2025-03-03T10:00:00Z"
U = "2025-03-03T11:00:00.000Z"


def point(lon: float, lat: float) -> dict:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def test_temporal_values_normalized_instances_and_a_single_instance() -> None:
    entities = [
        {"id": "a", "location": point(1.0, 2.0), "no2": {"type": "Property", "values": [[10, T], [11.5, U]]}},
        {"id": "b", "location": point(3.0, 4.0), "no2": [{"type": "Property", "value": 7, "observedAt": T}]},
        {"id": "c", "no2": {"type": "Property", "value": 3.0, "observedAt": T}},
    ]
    series = series_from_temporal(entities, ["no2"])
    assert series["a"].location == (1.0, 2.0)
    assert series["a"].points["no2"] == (
        (10.0, datetime(2025, 3, 3, 10, tzinfo=UTC)),
        (11.5, datetime(2025, 3, 3, 11, tzinfo=UTC)),
    )
    assert series["b"].points["no2"] == ((7.0, datetime(2025, 3, 3, 10, tzinfo=UTC)),)
    assert series["c"].location is None and series["c"].points["no2"][0][0] == 3.0


def test_values_that_are_not_finite_numbers_at_an_aware_time_are_left_out() -> None:
    values = [
        [True, T],
        ["12", T],
        [float("nan"), T],
        [float("inf"), T],
        [5, "yesterday"],
        [6, "2025-03-03T10:00:00"],
        [7],
        "8",
        [9, T],
    ]
    (only,) = series_from_temporal([{"id": "a", "no2": {"values": values}}], ["no2"]).values()
    assert only.points["no2"] == ((9.0, datetime(2025, 3, 3, 10, tzinfo=UTC)),)


def test_the_location_is_a_point_in_range_or_none_and_the_latest_of_a_temporal_one() -> None:
    def located(location: object) -> object:
        return series_from_temporal([{"id": "a", "location": location, "x": {"values": [[1, T]]}}], ["x"])["a"].location

    assert located({"type": "Point", "coordinates": [1, 2]}) == (1.0, 2.0)  # keyValues
    assert located({"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": []}}) is None
    assert located(point(200.0, 2.0)) is None and located("here") is None and located(None) is None
    moved = [{**point(1.0, 1.0), "observedAt": U}, {**point(9.0, 9.0), "observedAt": T}]
    assert located(moved) == (1.0, 1.0)
    assert located({"type": "GeoProperty", "values": [[{"type": "Point", "coordinates": [5, 5]}, T]]}) == (5.0, 5.0)


def test_an_entity_given_twice_has_its_points_joined_and_odd_entities_are_skipped() -> None:
    entities = [
        {"id": "a", "x": {"values": [[1, T]]}},
        {"id": "a", "location": point(1, 1), "x": {"values": [[2, U]]}},
        {"x": {"values": [[3, T]]}},
        {"id": 5},
        "junk",
    ]
    series = series_from_temporal(entities, ["x", "y"])  # type: ignore[arg-type]
    assert list(series) == ["a"]
    assert series["a"].location == (1.0, 1.0) and [v for v, _ in series["a"].points["x"]] == [1.0, 2.0]
