"""GET /entities: selection by type/id/idPattern, the q query language, attrs, paging, count."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.broker.helpers import ERRORS, problem

ROOMS: list[dict[str, Any]] = [
    {"id": "urn:ngsi-ld:Room:1", "type": "Room",
     "temperature": {"type": "Property", "value": 19.5, "unitCode": "CEL", "observedAt": "2026-11-20T08:00:00Z",
                     "sensor": {"type": "Relationship", "object": "urn:ngsi-ld:Device:a"}},
     "name": "kitchen", "open": True, "tags": ["north", "small"],
     "spec": {"type": "Property", "value": {"size": {"width": 3, "depth": 4}, "floor": 1}},
     "opened": {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-01-01T00:00:00Z"}},
     "building": {"type": "Relationship", "object": "urn:ngsi-ld:Building:A"}},
    {"id": "urn:ngsi-ld:Room:2", "type": "Room",
     "temperature": {"type": "Property", "value": 22.0, "unitCode": "CEL", "observedAt": "2026-11-20T09:00:00Z"},
     "name": "living room", "open": False, "tags": ["south"],
     "spec": {"type": "Property", "value": {"size": {"width": 5, "depth": 6}, "floor": 0}},
     "building": {"type": "Relationship", "object": "urn:ngsi-ld:Building:B"}},
    {"id": "urn:ngsi-ld:Room:3", "type": "Room",
     "temperature": {"type": "Property", "value": 25, "unitCode": "FAH", "observedAt": "2026-11-20T10:00:00Z"},
     "name": "attic"},
    {"id": "urn:ngsi-ld:Corridor:1", "type": "Corridor", "name": "hall"},
]


@pytest.fixture
async def rooms(client: TestClient) -> TestClient:
    response = await client.post("/ngsi-ld/v1/entityOperations/create", json=ROOMS)
    assert response.status == 201
    return client


async def ids(client: TestClient, **params: str) -> list[str]:
    response = await client.get("/ngsi-ld/v1/entities", params=params)
    assert response.status == 200, await response.text()
    return [entity["id"] for entity in await response.json()]


async def test_a_query_without_any_selector_is_too_broad(client: TestClient) -> None:
    response = await client.get("/ngsi-ld/v1/entities")

    assert response.status == 400
    assert (await problem(response))["title"] == "Too broad query"


async def test_no_match_is_an_empty_list(rooms: TestClient) -> None:
    response = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Garage"})

    assert response.status == 200
    assert await response.json() == []


async def test_type_id_and_id_pattern_select_in_creation_order(rooms: TestClient) -> None:
    assert await ids(rooms, type="Room") == ["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2", "urn:ngsi-ld:Room:3"]
    assert await ids(rooms, type="Corridor,Room", id="urn:ngsi-ld:Room:3,urn:ngsi-ld:Corridor:1") == [
        "urn:ngsi-ld:Room:3", "urn:ngsi-ld:Corridor:1"]
    assert await ids(rooms, idPattern="Room:[23]$") == ["urn:ngsi-ld:Room:2", "urn:ngsi-ld:Room:3"]


@pytest.mark.parametrize(("q", "expected"), [
    ("temperature==22", ["2"]),
    ("temperature!=22", ["1", "3"]),
    ("temperature>19.5", ["2", "3"]),
    ("temperature>=22", ["2", "3"]),
    ("temperature<22", ["1"]),
    ("temperature<=22", ["1", "2"]),
    ("temperature==20..25", ["2", "3"]),
    ("temperature==19.5,25", ["1", "3"]),
    ('name=="kitchen"', ["1"]),
    ('name=="kitchen","attic"', ["1", "3"]),
    ('name~="room$"', ["2"]),
    ('name!~="room$"', ["1", "3"]),
    ("name~=(?i)KITCHEN", ["1"]),
    ("open==true", ["1"]),
    ("open==false", ["2"]),
    ("temperature>20;name!=\"attic\"", ["2"]),
    ("temperature<20|name==\"attic\"", ["1", "3"]),
    ("temperature<20,temperature>24", ["1", "3"]),
    ("(temperature<20|temperature>24);open==true", ["1"]),
    ("open", ["1", "2"]),
    ("!open", ["3"]),
    ("temperature.unitCode==\"FAH\"", ["3"]),
    ("temperature.observedAt>=2026-11-20T09:00:00Z", ["2", "3"]),
    ("temperature.sensor==urn:ngsi-ld:Device:a", ["1"]),
    ("spec[size.width]>4", ["2"]),
    ("spec[floor]==1", ["1"]),
    ("spec.floor==0", ["2"]),
    ("tags==\"south\"", ["2"]),
    ("tags!=\"north\"", ["2"]),
    ("opened<2026-06-01T00:00:00Z", ["1"]),
    ("building==urn:ngsi-ld:Building:B", ["2"]),
])
async def test_query_language(rooms: TestClient, q: str, expected: list[str]) -> None:
    assert await ids(rooms, type="Room", q=q) == [f"urn:ngsi-ld:Room:{n}" for n in expected]


@pytest.mark.parametrize("q", [
    "temperature==",
    'name=="kitchen',
    "(temperature==1",
    "temperature==1)",
    "name~=(",
    "temperature>1..3",
    "temperature>1,2",
    "!temperature==1",
    ";temperature==1",
    "==1",
])
async def test_invalid_queries_are_400(rooms: TestClient, q: str) -> None:
    response = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", "q": q})

    assert response.status == 400
    body = await problem(response)
    assert (body["type"], body["title"]) == (ERRORS + "BadRequestData", "Invalid query (q)")


async def test_attrs_projects_and_filters(rooms: TestClient) -> None:
    response = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", "attrs": "open",
                                                               "options": "keyValues"})

    assert await response.json() == [
        {"id": "urn:ngsi-ld:Room:1", "type": "Room", "open": True},
        {"id": "urn:ngsi-ld:Room:2", "type": "Room", "open": False},
    ]


async def test_attrs_alone_is_a_valid_selector(rooms: TestClient) -> None:
    assert await ids(rooms, attrs="building") == ["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2"]


async def test_paging_and_count(rooms: TestClient) -> None:
    page = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", "limit": "2", "offset": "1",
                                                           "count": "true"})
    filtered = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", "q": "temperature>20", "limit": "1",
                                                               "count": "true"})
    only_count = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", "limit": "0", "count": "true"})

    assert [e["id"] for e in await page.json()] == ["urn:ngsi-ld:Room:2", "urn:ngsi-ld:Room:3"]
    assert page.headers["NGSILD-Results-Count"] == "3"
    assert [e["id"] for e in await filtered.json()] == ["urn:ngsi-ld:Room:2"]
    assert filtered.headers["NGSILD-Results-Count"] == "2"
    assert await only_count.json() == []
    assert only_count.headers["NGSILD-Results-Count"] == "3"


async def test_limit_defaults_to_20_and_may_not_exceed_1000(client: TestClient) -> None:
    await client.post("/ngsi-ld/v1/entityOperations/create",
                      json=[{"id": f"urn:ngsi-ld:Lamp:{n:02d}", "type": "Lamp"} for n in range(25)])

    default = await client.get("/ngsi-ld/v1/entities", params={"type": "Lamp"})
    too_big = await client.get("/ngsi-ld/v1/entities", params={"type": "Lamp", "limit": "1001"})
    zero = await client.get("/ngsi-ld/v1/entities", params={"type": "Lamp", "limit": "0"})

    assert len(await default.json()) == 20
    assert too_big.status == 400
    assert zero.status == 400


async def test_updates_do_not_change_the_creation_order(rooms: TestClient) -> None:
    await rooms.post("/ngsi-ld/v1/entityOperations/upsert", json=[{"id": "urn:ngsi-ld:Room:1", "type": "Room"}])

    assert await ids(rooms, type="Room") == ["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2", "urn:ngsi-ld:Room:3"]


@pytest.mark.parametrize("params", [
    {"options": "keyValues,concise"},
    {"options": "keyValues,sysAttrs"},
    {"options": "fancy"},
    {"format": "pretty"},
    {"count": "yes"},
    {"limit": "-1"},
    {"idPattern": "("},
    {"id": "not-a-uri"},
])
async def test_invalid_parameters_are_400(rooms: TestClient, params: dict[str, str]) -> None:
    response = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", **params})

    assert response.status == 400
    assert (await problem(response))["type"] == ERRORS + "BadRequestData"


async def test_format_overrides_options(rooms: TestClient) -> None:
    response = await rooms.get("/ngsi-ld/v1/entities", params={"id": "urn:ngsi-ld:Room:3", "options": "keyValues",
                                                               "format": "normalized", "attrs": "name"})

    assert await response.json() == [{"id": "urn:ngsi-ld:Room:3", "type": "Room",
                                      "name": {"type": "Property", "value": "attic"}}]
