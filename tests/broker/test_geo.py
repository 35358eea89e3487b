"""Geo-queries (georel, geometry, coordinates, geoproperty) and GeoJSON validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.broker.helpers import ERRORS, problem

# Rennes: the town hall, the railway station (~1.1 km south), and Saint-Malo (~65 km north)
TOWN_HALL = [-1.6794, 48.1113]
STATION = [-1.6726, 48.1035]
SAINT_MALO = [-2.0075, 48.6493]
# a square around the town centre (about 1.5 km wide), not containing the station
CENTRE = [[[-1.69, 48.105], [-1.67, 48.105], [-1.67, 48.118], [-1.69, 48.118], [-1.69, 48.105]]]


def place(name: str, geometry: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Place:{name}", "type": "Place", "location": {"type": "GeoProperty", "value": geometry}}


PLACES = [
    place("saint-malo", {"type": "Point", "coordinates": SAINT_MALO}),
    place("station", {"type": "Point", "coordinates": STATION}),
    place("town-hall", {"type": "Point", "coordinates": TOWN_HALL}),
    place("centre", {"type": "Polygon", "coordinates": CENTRE}),
    place("north-road", {"type": "LineString", "coordinates": [[-1.68, 48.10], [-1.68, 48.13]]}),
]


@pytest.fixture
async def places(client: TestClient) -> TestClient:
    response = await client.post("/ngsi-ld/v1/entityOperations/create", json=PLACES)
    assert response.status == 201
    return client


async def names(client: TestClient, georel: str, geometry: str, coordinates: Any) -> list[str]:
    response = await client.get(
        "/ngsi-ld/v1/entities",
        params={
            "type": "Place",
            "georel": georel,
            "geometry": geometry,
            "coordinates": json.dumps(coordinates),
        },
    )
    assert response.status == 200, await response.text()
    return [entity["id"].rsplit(":", 1)[1] for entity in await response.json()]


async def test_near_max_distance_sorts_by_distance(places: TestClient) -> None:
    assert await names(places, "near;maxDistance==2000", "Point", TOWN_HALL) == [
        "town-hall",
        "centre",
        "north-road",
        "station",
    ]


async def test_near_min_distance(places: TestClient) -> None:
    assert await names(places, "near;minDistance==10000", "Point", TOWN_HALL) == ["saint-malo"]


async def test_within_a_polygon(places: TestClient) -> None:
    assert await names(places, "within", "Polygon", CENTRE) == ["town-hall", "centre"]


async def test_intersects_and_disjoint(places: TestClient) -> None:
    east_west = [[-1.70, 48.112], [-1.66, 48.112]]

    assert await names(places, "intersects", "LineString", east_west) == ["centre", "north-road"]
    assert await names(places, "disjoint", "LineString", east_west) == ["saint-malo", "station", "town-hall"]


async def test_contains_and_equals(places: TestClient) -> None:
    assert await names(places, "contains", "Point", TOWN_HALL) == ["town-hall", "centre"]
    assert await names(places, "equals", "Point", STATION) == ["station"]


async def test_geoproperty_names_another_attribute(client: TestClient) -> None:
    await client.post(
        "/ngsi-ld/v1/entities",
        json={
            "id": "urn:ngsi-ld:Bus:1",
            "type": "Bus",
            "location": {"type": "Point", "coordinates": SAINT_MALO},
            "depot": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": STATION}},
        },
    )

    response = await client.get(
        "/ngsi-ld/v1/entities",
        params={
            "type": "Bus",
            "georel": "near;maxDistance==100",
            "geometry": "Point",
            "coordinates": json.dumps(STATION),
            "geoproperty": "depot",
        },
    )

    assert [e["id"] for e in await response.json()] == ["urn:ngsi-ld:Bus:1"]


@pytest.mark.parametrize(
    "params",
    [
        {"georel": "near;maxDistance==10"},
        {"georel": "near", "geometry": "Point", "coordinates": "[-1.6,48.1]"},
        {"georel": "near;maxDistance==10", "geometry": "Polygon", "coordinates": json.dumps(CENTRE)},
        {"georel": "within", "geometry": "Point", "coordinates": "[-1.6,48.1]"},
        {"georel": "nearby", "geometry": "Point", "coordinates": "[-1.6,48.1]"},
        {"georel": "near;maxDistance==10", "geometry": "Point", "coordinates": "[-1.6]"},
        {"georel": "near;maxDistance==10", "geometry": "Point", "coordinates": "not json"},
    ],
)
async def test_invalid_geo_queries_are_400(places: TestClient, params: dict[str, str]) -> None:
    response = await places.get("/ngsi-ld/v1/entities", params={"type": "Place", **params})

    assert response.status == 400
    assert (await problem(response))["type"] == ERRORS + "BadRequestData"


@pytest.mark.parametrize(
    "value",
    [
        {"type": "Point", "coordinates": [1]},
        {"type": "Point", "coordinates": [1, 2, 3, 4]},
        {"type": "Point", "coordinates": ["1", "2"]},
        {"type": "Point", "coordinates": [48.1, -181]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
        {"type": "LineString", "coordinates": [[0, 0]]},
        {"type": "Circle", "coordinates": [0, 0]},
        {"type": "Point"},
    ],
)
async def test_invalid_geojson_is_400(client: TestClient, value: dict[str, Any]) -> None:
    response = await client.post(
        "/ngsi-ld/v1/entities",
        json={
            "id": "urn:ngsi-ld:Place:bad",
            "type": "Place",
            "location": {"type": "GeoProperty", "value": value},
        },
    )

    assert response.status == 400
    assert await problem(response) == {
        "type": ERRORS + "BadRequestData",
        "title": "Invalid GeoJSON",
        "detail": (await response.json())["detail"],
    }


async def test_location_must_be_a_geo_property(client: TestClient) -> None:
    response = await client.post(
        "/ngsi-ld/v1/entities",
        json={
            "id": "urn:ngsi-ld:Place:bad",
            "type": "Place",
            "location": "Rennes",
        },
    )

    assert response.status == 400
    assert (await problem(response))["title"] == "Invalid GeoJSON"
