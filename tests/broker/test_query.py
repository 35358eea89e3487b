"""GET /entities: selection by type/id/idPattern, the q query language, attrs, paging, count."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapter.ngsild.broker import create_broker_app

from tests.broker.helpers import ERRORS, problem

ROOMS: list[dict[str, Any]] = [
    {
        "id": "urn:ngsi-ld:Room:1",
        "type": "Room",
        "temperature": {
            "type": "Property",
            "value": 19.5,
            "unitCode": "CEL",
            "observedAt": "2026-11-20T08:00:00Z",
            "sensor": {"type": "Relationship", "object": "urn:ngsi-ld:Device:a"},
        },
        "name": "kitchen",
        "open": True,
        "tags": ["north", "small"],
        "spec": {"type": "Property", "value": {"size": {"width": 3, "depth": 4}, "floor": 1}},
        "opened": {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-01-01T00:00:00Z"}},
        "building": {"type": "Relationship", "object": "urn:ngsi-ld:Building:A"},
    },
    {
        "id": "urn:ngsi-ld:Room:2",
        "type": "Room",
        "temperature": {"type": "Property", "value": 22.0, "unitCode": "CEL", "observedAt": "2026-11-20T09:00:00Z"},
        "name": "living room",
        "open": False,
        "tags": ["south"],
        "spec": {"type": "Property", "value": {"size": {"width": 5, "depth": 6}, "floor": 0}},
        "building": {"type": "Relationship", "object": "urn:ngsi-ld:Building:B"},
    },
    {
        "id": "urn:ngsi-ld:Room:3",
        "type": "Room",
        "temperature": {"type": "Property", "value": 25, "unitCode": "FAH", "observedAt": "2026-11-20T10:00:00Z"},
        "name": "attic",
    },
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
        "urn:ngsi-ld:Room:3",
        "urn:ngsi-ld:Corridor:1",
    ]
    assert await ids(rooms, idPattern="Room:[23]$") == ["urn:ngsi-ld:Room:2", "urn:ngsi-ld:Room:3"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
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
        ('name~="(?i)KITCHEN"', ["1"]),
        ("name~=^liv", ["2"]),
        ('name~="\\\\broom$"', ["2"]),  # the JSON string "\\b" is the regex \b
        ("open==true", ["1"]),
        ("open==false", ["2"]),
        ('temperature>20;name!="attic"', ["2"]),
        ('temperature<20|name=="attic"', ["1", "3"]),
        ("temperature<20|temperature>24", ["1", "3"]),
        ("open==true&temperature<20", ["1"]),
        ('temperature == 22 ; name != "attic"', ["2"]),
        ("(temperature<20|temperature>24);open==true", ["1"]),
        ("open", ["1", "2"]),
        ("!open", ["3"]),
        ('temperature.unitCode=="FAH"', ["3"]),
        ("temperature.observedAt>=2026-11-20T09:00:00Z", ["2", "3"]),
        ("temperature.sensor==urn:ngsi-ld:Device:a", ["1"]),
        ("spec[size.width]>4", ["2"]),
        ("spec[floor]==1", ["1"]),
        ("spec.floor==0", ["2"]),
        ('tags=="south"', ["2"]),
        ('tags!="north"', ["2"]),
        ("opened<2026-06-01T00:00:00Z", ["1"]),
        ("building==urn:ngsi-ld:Building:B", ["2"]),
    ],
)
async def test_query_language(rooms: TestClient, q: str, expected: list[str]) -> None:
    assert await ids(rooms, type="Room", q=q) == [f"urn:ngsi-ld:Room:{n}" for n in expected]


@pytest.mark.parametrize(
    "q",
    [
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
    ],
)
async def test_invalid_queries_are_400(rooms: TestClient, q: str) -> None:
    response = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", "q": q})

    assert response.status == 400
    body = await problem(response)
    assert (body["type"], body["title"]) == (ERRORS + "BadRequestData", "Invalid query (q)")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # ';' (AND) binds tighter than '|' (OR), as clause 4.9 says; each case tells the readings apart
        ('open==false;temperature>20|name=="kitchen"', ["1", "2"]),  # not open==false;(...|...) -> ["2"]
        ('name=="kitchen"|open==false;temperature>24', ["1"]),  # not (...|...);temperature>24 -> []
        ('(name=="kitchen"|open==false);temperature>20', ["2"]),
        ('open==false;(temperature>20|name=="kitchen")', ["2"]),
        ('((name=="attic"|open==true);temperature>20)|name=="living room"', ["2", "3"]),
    ],
)
async def test_and_binds_tighter_than_or(rooms: TestClient, q: str, expected: list[str]) -> None:
    assert await ids(rooms, type="Room", q=q) == [f"urn:ngsi-ld:Room:{n}" for n in expected]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('open==false;temperature>20|name=="kitchen"', ["1", "2"]),
        ('name=="kitchen"|open==false;temperature>24', ["1"]),
    ],
)
async def test_and_binds_tighter_than_or_on_the_temporal_api_too(
    rooms: TestClient, q: str, expected: list[str]
) -> None:
    response = await rooms.get("/ngsi-ld/v1/temporal/entities", params={"type": "Room", "q": q})

    assert response.status == 200, await response.text()
    assert sorted(e["id"] for e in await response.json()) == [f"urn:ngsi-ld:Room:{n}" for n in expected]


@pytest.mark.parametrize(
    ("q", "position", "reason"),
    [
        ("temperature<20,temperature>24", 14, "',' only separates the values of a list"),  # was OR, Orion-LD refuses
        ("name=~kitchen", 4, "'=~' is not an NGSI-LD operator"),
        ("name==kitchen", 6, "a text value is quoted"),
        ("spec[size][width]>4", 10, "only one '[...]' per path"),
        ('name=="x\\";temperature>1;name=="y"', 6, "a string cannot hold '\"'"),
        ('name=="50%"', 6, "a string cannot hold '%'"),
        ("building{name}==1", 8, "linked-entity paths"),
        ("temperature>true", 12, "true/false compare only with == or !="),
        ("temperature>urn:a", 12, "a URI compares only with == or !="),
        ("temperature==12:00:00Z", 13, "time-only values are not supported"),
        ("1temperature>0", 0, "starts with a letter"),
        ("name~=(?i)kitchen", 6, "cannot stand in an unquoted pattern"),
    ],
)
async def test_invalid_queries_name_the_reason_and_position(
    rooms: TestClient, q: str, position: int, reason: str
) -> None:
    response = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", "q": q})

    assert response.status == 400
    body = await problem(response)
    assert (body["type"], body["title"]) == (ERRORS + "BadRequestData", "Invalid query (q)")
    assert reason in body["detail"]
    assert f"at position {position} of" in body["detail"]


@pytest.mark.parametrize("path", ["/ngsi-ld/v1/entities", "/ngsi-ld/v1/temporal/entities"])
@pytest.mark.parametrize(
    "q",
    [
        "temperature>20,open==true",
        "open=~true",
        "(" * 40 + "open" + ")" * 40 + "|" * 1,
        "open;" * 300 + "open",
        "name==" + '"' + "x" * 5000 + '"',
    ],
)
async def test_an_invalid_q_is_never_an_empty_answer(rooms: TestClient, path: str, q: str) -> None:
    response = await rooms.get(path, params={"type": "Room", "q": q})

    assert response.status == 400, await response.text()
    assert (await problem(response))["type"] == ERRORS + "BadRequestData"


async def test_a_subscription_with_an_invalid_q_is_refused(client: TestClient) -> None:
    response = await client.post(
        "/ngsi-ld/v1/subscriptions",
        json={
            "type": "Subscription",
            "entities": [{"type": "Room"}],
            "q": "temperature>20,open==true",
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
        },
    )

    assert response.status == 400
    assert (await problem(response))["type"] == ERRORS + "BadRequestData"


async def test_a_stored_subscription_whose_q_is_now_refused_does_not_stop_the_broker(tmp_path: Path) -> None:
    db = tmp_path / "broker.db"
    async with TestClient(TestServer(create_broker_app(db_path=db), host="127.0.0.1")) as client:
        created = await client.post(
            "/ngsi-ld/v1/subscriptions",
            json={
                "type": "Subscription",
                "entities": [{"type": "Room"}],
                "q": "temperature>20",
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
            },
        )
        assert created.status == 201
    with closing(sqlite3.connect(db)) as connection, connection:  # as the previous parser let it in
        connection.execute("UPDATE subscriptions SET body = json_set(body, '$.fields.q', 'a<1,a>2')")

    async with TestClient(TestServer(create_broker_app(db_path=db), host="127.0.0.1")) as client:
        listed = await client.get("/ngsi-ld/v1/subscriptions")
        written = await client.post("/ngsi-ld/v1/entities", json={"id": "urn:ngsi-ld:Room:9", "type": "Room"})

        assert listed.status == 200 and await listed.json() == []
        assert written.status == 201


async def test_attrs_projects_and_filters(rooms: TestClient) -> None:
    response = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", "attrs": "open", "options": "keyValues"})

    assert await response.json() == [
        {"id": "urn:ngsi-ld:Room:1", "type": "Room", "open": True},
        {"id": "urn:ngsi-ld:Room:2", "type": "Room", "open": False},
    ]


async def test_attrs_alone_is_a_valid_selector(rooms: TestClient) -> None:
    assert await ids(rooms, attrs="building") == ["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2"]


async def test_paging_and_count(rooms: TestClient) -> None:
    page = await rooms.get(
        "/ngsi-ld/v1/entities", params={"type": "Room", "limit": "2", "offset": "1", "count": "true"}
    )
    filtered = await rooms.get(
        "/ngsi-ld/v1/entities", params={"type": "Room", "q": "temperature>20", "limit": "1", "count": "true"}
    )
    only_count = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", "limit": "0", "count": "true"})

    assert [e["id"] for e in await page.json()] == ["urn:ngsi-ld:Room:2", "urn:ngsi-ld:Room:3"]
    assert page.headers["NGSILD-Results-Count"] == "3"
    assert [e["id"] for e in await filtered.json()] == ["urn:ngsi-ld:Room:2"]
    assert filtered.headers["NGSILD-Results-Count"] == "2"
    assert await only_count.json() == []
    assert only_count.headers["NGSILD-Results-Count"] == "3"


async def test_limit_defaults_to_20_and_may_not_exceed_1000(client: TestClient) -> None:
    await client.post(
        "/ngsi-ld/v1/entityOperations/create",
        json=[{"id": f"urn:ngsi-ld:Lamp:{n:02d}", "type": "Lamp"} for n in range(25)],
    )

    default = await client.get("/ngsi-ld/v1/entities", params={"type": "Lamp"})
    too_big = await client.get("/ngsi-ld/v1/entities", params={"type": "Lamp", "limit": "1001"})
    zero = await client.get("/ngsi-ld/v1/entities", params={"type": "Lamp", "limit": "0"})

    assert len(await default.json()) == 20
    assert too_big.status == 400
    assert zero.status == 400


async def test_updates_do_not_change_the_creation_order(rooms: TestClient) -> None:
    await rooms.post("/ngsi-ld/v1/entityOperations/upsert", json=[{"id": "urn:ngsi-ld:Room:1", "type": "Room"}])

    assert await ids(rooms, type="Room") == ["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2", "urn:ngsi-ld:Room:3"]


@pytest.mark.parametrize(
    "params",
    [
        {"options": "keyValues,concise"},
        {"options": "keyValues,sysAttrs"},
        {"options": "fancy"},
        {"format": "pretty"},
        {"count": "yes"},
        {"limit": "-1"},
        {"idPattern": "("},
        {"id": "not-a-uri"},
    ],
)
async def test_invalid_parameters_are_400(rooms: TestClient, params: dict[str, str]) -> None:
    response = await rooms.get("/ngsi-ld/v1/entities", params={"type": "Room", **params})

    assert response.status == 400
    assert (await problem(response))["type"] == ERRORS + "BadRequestData"


async def test_format_overrides_options(rooms: TestClient) -> None:
    response = await rooms.get(
        "/ngsi-ld/v1/entities",
        params={"id": "urn:ngsi-ld:Room:3", "options": "keyValues", "format": "normalized", "attrs": "name"},
    )

    assert await response.json() == [
        {"id": "urn:ngsi-ld:Room:3", "type": "Room", "name": {"type": "Property", "value": "attic"}}
    ]
