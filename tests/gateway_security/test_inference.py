"""Inference by differencing and by filtering, from an elected official with an aggregated-only
agreement: whatever is asked (two overlapping windows, one window and a wider one, the same
question again, one attribute then another), the answers are the same published cells, never a
finer figure; nothing in a request can choose the sensors of a cell; and what the broker holds
after a cell is published does not change it. The domain rules (threshold, dominance, secondary
suppression) have their own tests in tests/access_cells."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.support import air_quality_entities
from tests.gateway_security.support import TEMPORAL, TYPE, as_, attacked


def _window(start: str, end: str, **params: str) -> dict[str, str]:
    return {"type": TYPE, "timerel": "between", "timeAt": start, "endTimeAt": end, **params}


def _cells(answer: Any) -> dict[tuple[str, str, str], Any]:
    """(group, attribute, period start) -> what was answered of that cell."""
    found = {}
    for entity in answer:
        for name, attribute in entity.items():
            if isinstance(attribute, dict) and "cells" in attribute:
                for cell in attribute["cells"]:
                    found[(cell["group"], name, cell["start"])] = cell
    return found


async def test_overlapping_windows_and_repeated_questions_answer_the_same_cells(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        http = world.http
        asks = [
            _window("2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z"),
            _window("2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"),
            _window("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z"),
            _window("2026-11-19T13:00:00Z", "2026-11-22T07:00:00Z"),  # partial days: rounded in
            _window("2026-11-20T08:00:00Z", "2026-11-22T00:00:00Z"),  # starts inside day 1: day 2 only
            _window("2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z", attrs="no2"),
            _window("2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z"),
        ]
        seen: dict[tuple[str, str, str], Any] = {}
        for params in asks:
            answer = await http.get(TEMPORAL, params=params, headers=as_("official"))
            assert answer.status == 200, await answer.text()
            for key, cell in _cells(await answer.json()).items():
                assert seen.setdefault(key, cell) == cell, f"{key} answered two ways"
        days = sorted({start for _, _, start in seen})
        assert days == ["2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"]
        assert all(c["status"] == "published" and c["sensors"] == 4 for c in seen.values())


async def test_a_cell_once_published_does_not_move_when_the_broker_changes(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        window = _window("2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")
        before = await (await world.http.get(TEMPORAL, params=window, headers=as_("official"))).json()
        late = copy.deepcopy(air_quality_entities("region", 5, days=1)[4])  # a fifth sensor, arriving late
        late["no2"]["value"] = 1000.0
        await world.broker.batch_upsert("region", [late])
        after = await (await world.http.get(TEMPORAL, params=window, headers=as_("official"))).json()
        assert after == before


@pytest.mark.parametrize(
    "params",
    [
        {"q": "no2>5"},
        {"id": "urn:ngsi-ld:AirQualityObserved:region:sensor0"},
        {"idPattern": ".*sensor[012]$"},
        {"georel": "near;maxDistance==500", "geometry": "Point", "coordinates": "[-1.6,48.1]"},
        {"lastN": "1"},
        {"aggrMethods": "sum", "aggrPeriodDuration": "PT1H"},
        {"limit": "2"},
        {"offset": "1"},
        {"count": "true"},
        {"options": "sysAttrs"},
        {"timeproperty": "modifiedAt"},
        {"options": "concise"},
    ],
)
async def test_nothing_in_a_request_chooses_the_sensors_of_a_cell(tmp_path: Path, params: dict[str, str]) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(
            TEMPORAL, params=_window("2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z", **params), headers=as_("official")
        )
        assert answer.status in (400, 403), (params, await answer.text())


async def test_an_official_gets_no_single_sensor_by_any_route(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        http = world.http
        sensor = "urn:ngsi-ld:AirQualityObserved:region:sensor0"
        for method, path, kwargs in (
            ("GET", f"{TEMPORAL}/{sensor}", {}),
            ("GET", "/ngsi-ld/v1/entities", {"params": {"type": TYPE}}),
            ("GET", f"/ngsi-ld/v1/entities/{sensor}", {}),
            (
                "POST",
                "/ngsi-ld/v1/temporal/entityOperations/query",
                {"json": {"type": "Query", "entities": [{"type": TYPE, "id": sensor}]}},
            ),
        ):
            answer = await http.request(method, path, headers=as_("official"), **kwargs)
            assert answer.status == 403, (path, await answer.text())


async def test_fewer_sensors_than_the_threshold_tell_nothing_but_that(tmp_path: Path) -> None:
    async with attacked(tmp_path, sensors={"region": 2}) as world:
        answer = await world.http.get(
            TEMPORAL, params=_window("2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z"), headers=as_("official")
        )
        cells = _cells(await answer.json())
        assert cells and all(c["status"] == "suppressed" and c["rule"] == "threshold" for c in cells.values())
        assert all("value" not in c and "sensors" not in c for c in cells.values())


async def test_district_cells_place_each_sensor_by_its_current_location(tmp_path: Path) -> None:
    from dataclasses import replace

    from adapter.access.cells import District
    from tests.gateway_security import support

    west = District("west", ((-1.625, 48.0), (-1.605, 48.0), (-1.605, 48.2), (-1.625, 48.2), (-1.625, 48.0)))
    east = District("east", ((-1.605, 48.0), (-1.58, 48.0), (-1.58, 48.2), (-1.605, 48.2), (-1.605, 48.0)))
    grant = support.GRANTS["official"]
    assert grant.aggregation is not None
    districted = replace(
        grant, aggregation=replace(grant.aggregation, districts=(west, east), total=True, min_group_size=1)
    )
    original = support.GRANTS["official"]
    support.GRANTS["official"] = districted
    try:
        async with attacked(tmp_path) as world:  # sensors at -1.60 (east), -1.61, -1.62 (west), -1.63 (none)
            answer = await world.http.get(
                TEMPORAL,
                params=_window("2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z", attrs="no2"),
                headers=as_("official"),
            )
            assert answer.status == 200, await answer.text()
            cells = {group: cell for (group, _, _), cell in _cells(await answer.json()).items()}
    finally:
        support.GRANTS["official"] = original
    assert cells["west"]["sensors"] == 2 and cells["east"]["sensors"] == 1
    assert cells["total"]["sensors"] == 3  # the sensor outside every district is in no cell
