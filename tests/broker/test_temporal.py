"""The temporal API: every write kept, time windows, lastN, simplified and aggregated representations."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.broker.helpers import ERRORS, problem

METER = "urn:ngsi-ld:WaterMeter:0001"
TEMPORAL = "/ngsi-ld/v1/temporal/entities"


def reading(volume: float, observed: str, *, meter: str = METER, **extra: Any) -> dict[str, Any]:
    return {
        "id": meter,
        "type": "WaterMeter",
        "volume": {"type": "Property", "value": volume, "unitCode": "MTQ", "observedAt": observed},
        **extra,
    }


# one reading every 30 minutes, each sent in its own batch, as the adapter's outbox does
READINGS = [
    (10.0, "2026-11-20T00:00:00Z"),
    (10.5, "2026-11-20T00:30:00Z"),
    (11.5, "2026-11-20T01:00:00Z"),
    (12.0, "2026-11-20T01:30:00Z"),
    (14.0, "2026-11-21T00:10:00Z"),
]


@pytest.fixture
async def history(client: TestClient) -> TestClient:
    for volume, observed in READINGS:
        response = await client.post("/ngsi-ld/v1/entityOperations/upsert", json=[reading(volume, observed)])
        assert response.status in (201, 204)
    return client


async def temporal(client: TestClient, path: str = f"{TEMPORAL}/{METER}", **params: str) -> Any:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_every_observation_of_consecutive_batches_is_kept_oldest_first(history: TestClient) -> None:
    entity = await temporal(history)

    assert entity["id"] == METER
    assert entity["type"] == "WaterMeter"
    assert [(i["value"], i["observedAt"]) for i in entity["volume"]] == [
        (10.0, "2026-11-20T00:00:00.000Z"),
        (10.5, "2026-11-20T00:30:00.000Z"),
        (11.5, "2026-11-20T01:00:00.000Z"),
        (12.0, "2026-11-20T01:30:00.000Z"),
        (14.0, "2026-11-21T00:10:00.000Z"),
    ]
    assert entity["volume"][0] == {
        "type": "Property",
        "value": 10.0,
        "unitCode": "MTQ",
        "observedAt": "2026-11-20T00:00:00.000Z",
        "instanceId": entity["volume"][0]["instanceId"],
    }
    assert len({i["instanceId"] for i in entity["volume"]}) == 5


async def test_two_observations_of_one_meter_in_one_batch_are_both_kept(client: TestClient) -> None:
    await client.post(
        "/ngsi-ld/v1/entityOperations/upsert",
        json=[
            reading(1.0, "2026-11-20T00:00:00Z"),
            reading(2.0, "2026-11-20T00:15:00Z"),
        ],
    )

    entity = await temporal(client)
    current = await (await client.get(f"/ngsi-ld/v1/entities/{METER}", params={"options": "keyValues"})).json()

    assert [i["value"] for i in entity["volume"]] == [1.0, 2.0]
    assert current["volume"] == 2.0


async def test_observations_arriving_late_are_ordered_by_observed_at(client: TestClient) -> None:
    for volume, observed in [(2.0, "2026-11-20T02:00:00Z"), (1.0, "2026-11-20T01:00:00Z")]:
        await client.post("/ngsi-ld/v1/entityOperations/upsert", json=[reading(volume, observed)])

    assert [i["value"] for i in (await temporal(client))["volume"]] == [1.0, 2.0]


async def test_last_n_gives_the_newest_first(history: TestClient) -> None:
    entity = await temporal(history, lastN="2")

    assert [i["value"] for i in entity["volume"]] == [14.0, 12.0]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"timerel": "before", "timeAt": "2026-11-20T00:30:00Z"}, [10.0]),
        ({"timerel": "after", "timeAt": "2026-11-20T01:00:00Z"}, [12.0, 14.0]),
        ({"timerel": "between", "timeAt": "2026-11-20T00:30:00Z", "endTimeAt": "2026-11-20T01:30:00Z"}, [10.5, 11.5]),
        ({"timerel": "after", "timeAt": "2026-11-20T00:00:00Z", "lastN": "1"}, [14.0]),
    ],
)
async def test_time_windows(history: TestClient, params: dict[str, str], expected: list[float]) -> None:
    entity = await temporal(history, **params)

    assert [i["value"] for i in entity["volume"]] == expected


async def test_timeproperty_modified_at_uses_the_write_time(history: TestClient) -> None:
    entity = await temporal(history, timeproperty="modifiedAt", timerel="after", timeAt="2000-01-01T00:00:00Z")

    assert len(entity["volume"]) == 5
    assert all(i["modifiedAt"] > "2026-01-01" for i in entity["volume"])


async def test_temporal_values_representation(client: TestClient) -> None:
    await client.post(
        "/ngsi-ld/v1/entityOperations/upsert",
        json=[
            reading(
                1.0,
                "2026-11-20T00:00:00Z",
                gateway={
                    "type": "Relationship",
                    "object": "urn:ngsi-ld:Gateway:a",
                    "observedAt": "2026-11-20T00:00:00Z",
                },
            ),
        ],
    )
    await client.post(
        "/ngsi-ld/v1/entityOperations/upsert",
        json=[
            reading(
                2.0,
                "2026-11-20T01:00:00Z",
                gateway={
                    "type": "Relationship",
                    "object": "urn:ngsi-ld:Gateway:b",
                    "observedAt": "2026-11-20T01:00:00Z",
                },
            ),
        ],
    )

    entity = await temporal(client, options="temporalValues")

    assert entity == {
        "id": METER,
        "type": "WaterMeter",
        "volume": {
            "type": "Property",
            "values": [[1.0, "2026-11-20T00:00:00.000Z"], [2.0, "2026-11-20T01:00:00.000Z"]],
        },
        "gateway": {
            "type": "Relationship",
            "objects": [
                ["urn:ngsi-ld:Gateway:a", "2026-11-20T00:00:00.000Z"],
                ["urn:ngsi-ld:Gateway:b", "2026-11-20T01:00:00.000Z"],
            ],
        },
    }


async def test_aggregation_per_hour(history: TestClient) -> None:
    entity = await temporal(
        history,
        aggrMethods="totalCount,min,max,sum,avg",
        aggrPeriodDuration="PT1H",
        timerel="between",
        timeAt="2026-11-20T00:00:00Z",
        endTimeAt="2026-11-21T00:00:00Z",
    )

    assert entity["volume"] == {
        "type": "Property",
        "totalCount": [
            [2, "2026-11-20T00:00:00.000Z", "2026-11-20T01:00:00.000Z"],
            [2, "2026-11-20T01:00:00.000Z", "2026-11-20T02:00:00.000Z"],
        ],
        "min": [
            [10.0, "2026-11-20T00:00:00.000Z", "2026-11-20T01:00:00.000Z"],
            [11.5, "2026-11-20T01:00:00.000Z", "2026-11-20T02:00:00.000Z"],
        ],
        "max": [
            [10.5, "2026-11-20T00:00:00.000Z", "2026-11-20T01:00:00.000Z"],
            [12.0, "2026-11-20T01:00:00.000Z", "2026-11-20T02:00:00.000Z"],
        ],
        "sum": [
            [20.5, "2026-11-20T00:00:00.000Z", "2026-11-20T01:00:00.000Z"],
            [23.5, "2026-11-20T01:00:00.000Z", "2026-11-20T02:00:00.000Z"],
        ],
        "avg": [
            [10.25, "2026-11-20T00:00:00.000Z", "2026-11-20T01:00:00.000Z"],
            [11.75, "2026-11-20T01:00:00.000Z", "2026-11-20T02:00:00.000Z"],
        ],
    }


async def test_aggregation_per_day_and_over_the_whole_range(history: TestClient) -> None:
    daily = await temporal(
        history, aggrMethods="max", aggrPeriodDuration="P1D", timerel="after", timeAt="2026-11-19T00:00:00Z"
    )
    whole = await temporal(history, aggrMethods="avg,distinctCount,stddev")

    assert daily["volume"] == {
        "type": "Property",
        "max": [
            [12.0, "2026-11-20T00:00:00.000Z", "2026-11-21T00:00:00.000Z"],
            [14.0, "2026-11-21T00:00:00.000Z", "2026-11-22T00:00:00.000Z"],
        ],
    }
    assert whole["volume"]["avg"] == [[11.6, "2026-11-20T00:00:00.000Z", "2026-11-21T00:10:00.000Z"]]
    assert whole["volume"]["distinctCount"] == [[5, "2026-11-20T00:00:00.000Z", "2026-11-21T00:10:00.000Z"]]
    assert whole["volume"]["stddev"][0][0] == pytest.approx(1.5572, abs=1e-4)  # sample standard deviation


async def test_query_of_several_entities(client: TestClient) -> None:
    for number, volume in [(1, 5.0), (2, 50.0), (3, 500.0)]:
        meter = f"urn:ngsi-ld:WaterMeter:{number:04d}"
        await client.post(
            "/ngsi-ld/v1/entityOperations/upsert",
            json=[reading(volume, "2026-11-20T00:00:00Z", meter=meter, site="a" if number < 3 else "b")],
        )
    await client.post(
        "/ngsi-ld/v1/entityOperations/upsert", json=[{"id": "urn:ngsi-ld:Pump:1", "type": "Pump", "power": 3}]
    )

    response = await client.get(
        TEMPORAL,
        params={
            "type": "WaterMeter",
            "q": "volume>10",
            "attrs": "volume",
            "count": "true",
            "options": "temporalValues",
        },
    )

    assert response.headers["NGSILD-Results-Count"] == "2"
    assert await response.json() == [
        {
            "id": "urn:ngsi-ld:WaterMeter:0002",
            "type": "WaterMeter",
            "volume": {"type": "Property", "values": [[50.0, "2026-11-20T00:00:00.000Z"]]},
        },
        {
            "id": "urn:ngsi-ld:WaterMeter:0003",
            "type": "WaterMeter",
            "volume": {"type": "Property", "values": [[500.0, "2026-11-20T00:00:00.000Z"]]},
        },
    ]


async def test_history_outlives_the_entity(history: TestClient) -> None:
    await history.delete(f"/ngsi-ld/v1/entities/{METER}")

    entity = await temporal(history, lastN="1")

    assert [i["value"] for i in entity["volume"]] == [14.0]


async def test_unknown_entity_is_404(client: TestClient) -> None:
    response = await client.get(f"{TEMPORAL}/urn:ngsi-ld:WaterMeter:none")

    assert response.status == 404
    assert (await problem(response))["type"] == ERRORS + "ResourceNotFound"


@pytest.mark.parametrize(
    "params",
    [
        {"timerel": "before"},
        {"timeAt": "2026-11-20T00:00:00Z"},
        {"timerel": "between", "timeAt": "2026-11-20T00:00:00Z"},
        {"timerel": "between", "timeAt": "2026-11-21T00:00:00Z", "endTimeAt": "2026-11-20T00:00:00Z"},
        {"timerel": "during", "timeAt": "2026-11-20T00:00:00Z"},
        {"timerel": "before", "timeAt": "yesterday"},
        {"timeproperty": "deletedAt"},
        {"lastN": "0"},
        {"aggrMethods": "median"},
        {"aggrMethods": "avg", "aggrPeriodDuration": "1 day"},
        {"aggrPeriodDuration": "P1D"},
    ],
)
async def test_invalid_temporal_parameters_are_400(history: TestClient, params: dict[str, str]) -> None:
    response = await history.get(f"{TEMPORAL}/{METER}", params=params)

    assert response.status == 400
    assert (await problem(response))["type"] == ERRORS + "BadRequestData"


async def test_a_temporal_query_with_a_geo_query_keeps_the_entities_located_inside(client: TestClient) -> None:
    here, there = "urn:ngsi-ld:WaterMeter:here", "urn:ngsi-ld:WaterMeter:there"
    for meter, lon in ((here, 4.85), (there, 5.5)):
        located = reading(
            1.0,
            "2026-11-20T00:00:00Z",
            meter=meter,
            location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, 45.76]}},
        )
        response = await client.post("/ngsi-ld/v1/entityOperations/upsert", json=[located])
        assert response.status in (201, 204)
    ring = [[4.8, 45.7], [4.9, 45.7], [4.9, 45.8], [4.8, 45.8], [4.8, 45.7]]
    found = await temporal(
        client,
        TEMPORAL,
        type="WaterMeter",
        georel="within",
        geometry="Polygon",
        coordinates=f"[{ring}]".replace(" ", ""),
    )
    assert [e["id"] for e in found] == [here]
    near = await temporal(
        client,
        TEMPORAL,
        type="WaterMeter",
        georel="near;maxDistance==1000",
        geometry="Point",
        coordinates="[5.5,45.76]",
        geoproperty="location",
    )
    assert [e["id"] for e in near] == [there]
