"""Batch operations: create, upsert, update, delete (reference note, section 2, experimental mode)."""

from __future__ import annotations

import io
import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.broker.helpers import ERRORS, air_quality, problem

BATCH = "/ngsi-ld/v1/entityOperations"


def room(number: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Room:{number}", "type": "Room", **attrs}


async def key_values(client: TestClient, number: int) -> dict[str, Any]:
    response = await client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:Room:{number}", params={"options": "keyValues"})
    return await response.json()


async def test_create_answers_201_with_the_created_ids(client: TestClient) -> None:
    response = await client.post(f"{BATCH}/create", json=[room(1), room(2)])

    assert response.status == 201
    assert await response.json() == ["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2"]


async def test_create_of_existing_or_repeated_ids_gives_409_items_in_a_207(client: TestClient) -> None:
    await client.post(f"{BATCH}/create", json=[room(1)])

    response = await client.post(f"{BATCH}/create", json=[room(1), room(2), room(2)])

    assert response.status == 207
    assert await response.json() == {
        "success": ["urn:ngsi-ld:Room:2"],
        "errors": [
            {
                "entityId": "urn:ngsi-ld:Room:1",
                "error": {
                    "type": ERRORS + "AlreadyExists",
                    "title": "Entity already exists",
                    "detail": "urn:ngsi-ld:Room:1",
                    "status": 409,
                },
            },
            {
                "entityId": "urn:ngsi-ld:Room:2",
                "error": {
                    "type": ERRORS + "AlreadyExists",
                    "title": "Entity already exists",
                    "detail": "urn:ngsi-ld:Room:2",
                    "status": 409,
                },
            },
        ],
    }


async def test_upsert_status_codes(client: TestClient) -> None:
    all_new = await client.post(f"{BATCH}/upsert", json=[room(1), room(2)])
    all_existing = await client.post(f"{BATCH}/upsert", json=[room(1), room(2)])
    mixed = await client.post(f"{BATCH}/upsert", json=[room(2), room(3)])

    assert (all_new.status, await all_new.json()) == (201, ["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2"])
    assert (all_existing.status, await all_existing.read()) == (204, b"")
    assert (mixed.status, await mixed.json()) == (201, ["urn:ngsi-ld:Room:3"])


async def test_upsert_replaces_by_default_and_update_keeps_attributes_not_sent(client: TestClient) -> None:
    await client.post(
        f"{BATCH}/upsert", json=[room(1, temperature=20, humidity=0.5), room(2, temperature=20, humidity=0.5)]
    )

    await client.post(f"{BATCH}/upsert", json=[room(1, temperature=21)])
    await client.post(f"{BATCH}/upsert", params={"options": "update"}, json=[room(2, temperature=21)])

    assert await key_values(client, 1) == {"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": 21}
    assert await key_values(client, 2) == {
        "id": "urn:ngsi-ld:Room:2",
        "type": "Room",
        "temperature": 21,
        "humidity": 0.5,
    }


async def test_upsert_needs_the_type_only_for_new_entities(client: TestClient) -> None:
    await client.post(f"{BATCH}/upsert", json=[room(1)])

    response = await client.post(
        f"{BATCH}/upsert",
        params={"options": "update"},
        json=[
            {"id": "urn:ngsi-ld:Room:1", "temperature": 19},
            {"id": "urn:ngsi-ld:Room:9", "temperature": 19},
        ],
    )

    assert response.status == 207
    body = await response.json()
    assert body["success"] == ["urn:ngsi-ld:Room:1"]
    assert [(e["entityId"], e["error"]["type"], e["error"]["status"]) for e in body["errors"]] == [
        ("urn:ngsi-ld:Room:9", ERRORS + "BadRequestData", 400),
    ]


async def test_upsert_cannot_change_the_type_of_an_entity(client: TestClient) -> None:
    await client.post(f"{BATCH}/upsert", json=[room(1)])

    response = await client.post(f"{BATCH}/upsert", json=[{"id": "urn:ngsi-ld:Room:1", "type": "Office"}, room(2)])

    assert response.status == 207
    body = await response.json()
    assert body["success"] == ["urn:ngsi-ld:Room:2"]
    assert body["errors"][0]["entityId"] == "urn:ngsi-ld:Room:1"
    assert body["errors"][0]["error"]["status"] == 400


async def test_upsert_item_errors_keep_the_other_items_and_name_missing_ids(client: TestClient) -> None:
    response = await client.post(
        f"{BATCH}/upsert",
        json=[
            room(1, temperature=20),
            {"type": "Room"},
            {"id": "not-a-uri", "type": "Room"},
            room(2, temperature=None),
        ],
    )

    assert response.status == 207
    body = await response.json()
    assert body["success"] == ["urn:ngsi-ld:Room:1"]
    assert [(e["entityId"], e["error"]["title"], e["error"]["status"]) for e in body["errors"]] == [
        ("No Entity::id", "Entity id is missing", 400),
        ("not-a-uri", "Invalid URI - no colon found", 400),
        ("urn:ngsi-ld:Room:2", "The use of NULL value is not recommended for attributes", 400),
    ]


async def test_the_same_id_twice_replace_keeps_the_last_copy(client: TestClient) -> None:
    response = await client.post(
        f"{BATCH}/upsert", json=[room(1, temperature=20, humidity=0.5), room(1, temperature=21)]
    )

    assert (response.status, await response.json()) == (201, ["urn:ngsi-ld:Room:1"])
    assert await key_values(client, 1) == {"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": 21}


async def test_the_same_id_twice_update_merges_the_copies_in_order(client: TestClient) -> None:
    await client.post(f"{BATCH}/upsert", json=[room(1, pressure=1000)])

    response = await client.post(
        f"{BATCH}/upsert",
        params={"options": "update"},
        json=[room(1, temperature=20, humidity=0.5), room(1, temperature=21)],
    )

    assert response.status == 204
    assert await key_values(client, 1) == {
        "id": "urn:ngsi-ld:Room:1",
        "type": "Room",
        "pressure": 1000,
        "temperature": 21,
        "humidity": 0.5,
    }


async def test_update_appends_and_no_overwrite_keeps_existing_attributes(client: TestClient) -> None:
    await client.post(f"{BATCH}/create", json=[room(1, temperature=20), room(2, temperature=20)])

    plain = await client.post(f"{BATCH}/update", json=[room(1, temperature=21, humidity=0.4)])
    careful = await client.post(
        f"{BATCH}/update", params={"options": "noOverwrite"}, json=[room(2, temperature=21, humidity=0.4)]
    )

    assert (plain.status, careful.status) == (204, 204)
    assert await key_values(client, 1) == {
        "id": "urn:ngsi-ld:Room:1",
        "type": "Room",
        "temperature": 21,
        "humidity": 0.4,
    }
    assert await key_values(client, 2) == {
        "id": "urn:ngsi-ld:Room:2",
        "type": "Room",
        "temperature": 20,
        "humidity": 0.4,
    }


async def test_update_of_an_unknown_entity_is_a_404_item(client: TestClient) -> None:
    await client.post(f"{BATCH}/create", json=[room(1)])

    response = await client.post(f"{BATCH}/update", json=[room(1, temperature=20), room(7, temperature=20)])

    assert response.status == 207
    assert await response.json() == {
        "success": ["urn:ngsi-ld:Room:1"],
        "errors": [
            {
                "entityId": "urn:ngsi-ld:Room:7",
                "error": {
                    "type": ERRORS + "ResourceNotFound",
                    "title": "Entity not found",
                    "detail": "urn:ngsi-ld:Room:7",
                    "status": 404,
                },
            }
        ],
    }


async def test_delete(client: TestClient) -> None:
    await client.post(f"{BATCH}/create", json=[room(1), room(2), room(3)])

    deleted = await client.post(f"{BATCH}/delete", json=["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:1"])
    partly = await client.post(f"{BATCH}/delete", json=["urn:ngsi-ld:Room:2", "urn:ngsi-ld:Room:1"])
    not_ids = await client.post(f"{BATCH}/delete", json=["urn:ngsi-ld:Room:3", 42])

    assert deleted.status == 204
    assert partly.status == 207
    assert await partly.json() == {
        "success": ["urn:ngsi-ld:Room:2"],
        "errors": [
            {
                "entityId": "urn:ngsi-ld:Room:1",
                "error": {
                    "type": ERRORS + "ResourceNotFound",
                    "title": "Entity not found",
                    "detail": "urn:ngsi-ld:Room:1",
                    "status": 404,
                },
            }
        ],
    }
    assert not_ids.status == 400
    assert (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:3")).status == 200


async def test_the_request_itself_must_be_a_non_empty_json_array(client: TestClient) -> None:
    not_array = await client.post(f"{BATCH}/upsert", json=room(1))
    empty = await client.post(f"{BATCH}/upsert", json=[])
    broken = await client.post(f"{BATCH}/upsert", data=b"[{", headers={"Content-Type": "application/json"})

    assert not_array.status == 400
    assert (await problem(not_array))["type"] == ERRORS + "BadRequestData"
    assert empty.status == 400
    assert (await problem(empty))["title"] == "Empty Array"
    assert broken.status == 400
    assert (await problem(broken))["type"] == ERRORS + "InvalidRequest"


async def test_json_ld_batches_need_a_context_in_each_item(client: TestClient) -> None:
    response = await client.post(
        f"{BATCH}/upsert",
        data=json.dumps([air_quality(1, context=True), air_quality(2)]),
        headers={"Content-Type": "application/ld+json"},
    )

    assert response.status == 207
    body = await response.json()
    assert body["success"] == ["urn:ngsi-ld:AirQualityObserved:ville:0001"]
    assert body["errors"][0]["entityId"] == "urn:ngsi-ld:AirQualityObserved:ville:0002"
    assert body["errors"][0]["error"]["title"] == "@context missing in JSON payload"


async def test_a_body_above_one_mebibyte_is_413(client: TestClient) -> None:
    big = json.dumps([room(n, note="x" * 2000) for n in range(600)]).encode()

    response = await client.post(f"{BATCH}/upsert", data=io.BytesIO(big), headers={"Content-Type": "application/json"})

    assert response.status == 413
    assert (await problem(response))["type"] == ERRORS + "InvalidRequest"


async def test_a_thousand_entity_upsert_under_the_size_limit_is_accepted(client: TestClient) -> None:
    entities = [
        {"id": f"urn:ngsi-ld:Room:{n}", "type": "Room", "t": {"type": "Property", "value": n}} for n in range(1000)
    ]

    response = await client.post(f"{BATCH}/upsert", json=entities)
    count = await client.get("/ngsi-ld/v1/entities", params={"type": "Room", "count": "true", "limit": "0"})

    assert response.status == 201
    assert len(await response.json()) == 1000
    assert count.headers["NGSILD-Results-Count"] == "1000"
