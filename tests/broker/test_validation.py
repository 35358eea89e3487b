"""Payload validation (note, section 6) and the request rules of every endpoint (note, section 1)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.broker.helpers import ERRORS, problem

ID = "urn:ngsi-ld:Thing:1"


async def create(client: TestClient, entity: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    response = await client.post("/ngsi-ld/v1/entities", json=entity)
    return response.status, (await problem(response) if response.status >= 400 else None)


@pytest.mark.parametrize(
    ("entity", "title", "detail"),
    [
        ({"id": "abcdef", "type": "T"}, "Invalid URI - no colon found", "id"),
        ({"id": "urn:ngsi-ld:Thing 1", "type": "T"}, "Invalid URI - invalid character", "id"),
        ({"id": 42, "type": "T"}, "Not a JSON String", "id"),
        ({"type": "T"}, "Entity id is missing", "id"),
        ({"id": ID}, "Entity type is missing", "type"),
        ({"id": ID, "type": "My Type"}, "Invalid entity type", "type must be a string without spaces"),
        ({"id": ID, "type": ["A", "B"]}, "Invalid entity type", "type must be a string without spaces"),
    ],
)
async def test_entity_id_and_type(client: TestClient, entity: dict[str, Any], title: str, detail: str) -> None:
    assert await create(client, entity) == (400, {"type": ERRORS + "BadRequestData", "title": title, "detail": detail})


@pytest.mark.parametrize("name", ["a=b", "a[0]", "a b", "a&b", "a?b", 'a"b', "a'b", "a\tb", "scope"])
async def test_invalid_attribute_names(client: TestClient, name: str) -> None:
    status, body = await create(client, {"id": ID, "type": "T", name: 1})

    assert status == 400
    assert body == {"type": ERRORS + "BadRequestData", "title": "Invalid attribute name", "detail": name}


@pytest.mark.parametrize(
    ("attribute", "title"),
    [
        (None, "The use of NULL value is not recommended for attributes"),
        ({"type": "Property", "value": None}, "The use of NULL value is not recommended for attributes"),
        ({"type": "Property", "unitCode": "CEL"}, "Property without /value/"),
        ({"type": "Relationship", "object": "not a uri"}, "Invalid URI - no colon found"),
        ({"type": "Relationship", "object": ["urn:a:1", "nope"]}, "Invalid URI - no colon found"),
        ({"type": "Relationship", "value": "urn:a:1"}, "Invalid member for attribute"),
        ({"type": "Property", "value": 1, "observedAt": "yesterday"}, "Invalid ISO8601 timestamp"),
        ({"type": "Property", "value": 1, "observedAt": "2026-13-01T00:00:00Z"}, "Invalid ISO8601 timestamp"),
        ({"type": "Property", "value": 1, "unitCode": 5}, "Invalid unitCode"),
        ({"type": "Relationship", "object": "urn:a:1", "unitCode": "CEL"}, "Invalid unitCode"),
        ({"type": "Property", "value": 1, "datasetId": "d1"}, "Invalid URI - no colon found"),
        ({"type": "Gizmo", "value": 1}, "Invalid type for attribute"),
        ({"type": "LanguageProperty", "languageMap": {"fr": 3}}, "Invalid languageMap"),
        (
            [{"type": "Property", "value": 1, "datasetId": "urn:d:1"}, {"type": "Property", "value": 2}],
            "Multi-attributes are not supported",
        ),
        ({"type": "Property", "value": 1, "sub=x": 2}, "Invalid attribute name"),
    ],
)
async def test_invalid_attributes(client: TestClient, attribute: Any, title: str) -> None:
    status, body = await create(client, {"id": ID, "type": "T", "a": attribute})

    assert status == 400
    assert body is not None and (body["type"], body["title"]) == (ERRORS + "BadRequestData", title)


async def test_valid_attribute_kinds_and_timestamp_forms(client: TestClient) -> None:
    status, _ = await create(
        client,
        {
            "id": ID,
            "type": "T",
            "offset": {"type": "Property", "value": 1, "observedAt": "2026-11-20T10:15:30+02:00"},
            "day": {"type": "Property", "value": 2, "observedAt": "2026-11-20"},
            "micro": {"type": "Property", "value": 3, "observedAt": "2026-11-20T08:15:30.123456Z"},
            "owners": {"type": "Relationship", "object": ["urn:ngsi-ld:Org:1", "urn:ngsi-ld:Org:2"]},
            "label": {"type": "LanguageProperty", "languageMap": {"fr": "capteur", "en": "sensor"}},
            "data": {"type": "JsonProperty", "json": {"any": ["json", 1]}},
            "kind": {"type": "VocabProperty", "vocab": "Sensor"},
            "series": {"type": "ListProperty", "valueList": [1, 2, 3]},
            "part": {
                "type": "Property",
                "value": 4,
                "datasetId": "urn:ngsi-ld:Dataset:1",
                "quality": {"type": "Property", "value": "good"},
            },
        },
    )

    entity = await (await client.get(f"/ngsi-ld/v1/entities/{ID}")).json()

    assert status == 201
    assert entity["offset"]["observedAt"] == "2026-11-20T08:15:30.000Z"
    assert entity["day"]["observedAt"] == "2026-11-20T00:00:00.000Z"
    assert entity["micro"]["observedAt"] == "2026-11-20T08:15:30.123Z"
    assert entity["owners"] == {"type": "Relationship", "object": ["urn:ngsi-ld:Org:1", "urn:ngsi-ld:Org:2"]}
    assert entity["label"] == {"type": "LanguageProperty", "languageMap": {"fr": "capteur", "en": "sensor"}}
    assert entity["part"] == {
        "type": "Property",
        "value": 4,
        "datasetId": "urn:ngsi-ld:Dataset:1",
        "quality": {"type": "Property", "value": "good"},
    }


async def test_duplicated_keys_are_400(client: TestClient) -> None:
    response = await client.post(
        "/ngsi-ld/v1/entities",
        data='{"id":"urn:a:1","type":"T","a":1,"a":2}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status == 400
    assert await problem(response) == {
        "type": ERRORS + "BadRequestData",
        "title": "Duplicated key in JSON object",
        "detail": "a",
    }


@pytest.mark.parametrize(("data", "title"), [(b"", "Empty payload"), (b"{oops", "JSON Parse Error")])
async def test_unreadable_bodies_are_invalid_requests(client: TestClient, data: bytes, title: str) -> None:
    response = await client.post("/ngsi-ld/v1/entities", data=data, headers={"Content-Type": "application/json"})

    assert response.status == 400
    assert (await problem(response))["title"] == title
    assert (await problem(response))["type"] == ERRORS + "InvalidRequest"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
async def test_other_content_types_are_415(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    response = await client.post(
        "/ngsi-ld/v1/entities", data=b'{"id":"urn:a:1","type":"T"}', headers=headers, skip_auto_headers=["Content-Type"]
    )

    assert response.status == 415
    assert response.content_type == "application/json"


async def test_merge_patch_content_type_is_accepted_on_patch(client: TestClient) -> None:
    await client.post("/ngsi-ld/v1/entities", json={"id": ID, "type": "T", "a": 1})

    response = await client.patch(
        f"/ngsi-ld/v1/entities/{ID}/attrs", data=b'{"a":2}', headers={"Content-Type": "application/merge-patch+json"}
    )

    assert response.status == 204


@pytest.mark.parametrize(
    ("accept", "status", "content_type"),
    [
        ("text/html", 406, "application/json"),
        ("application/xml, text/plain", 406, "application/json"),
        ("*/*", 200, "application/json"),
        ("application/*", 200, "application/json"),
        ("application/ld+json", 200, "application/ld+json"),
        ("application/ld+json;q=0.5, application/json", 200, "application/json"),
        ("application/json;q=0.1, application/ld+json;q=0.9", 200, "application/ld+json"),
    ],
)
async def test_accept_header(client: TestClient, accept: str, status: int, content_type: str) -> None:
    response = await client.get("/ngsi-ld/v1/entities", params={"type": "T"}, headers={"Accept": accept})

    assert response.status == status
    assert response.content_type == content_type


async def test_unknown_and_unsupported_uri_parameters_are_400(client: TestClient) -> None:
    unknown = await client.get("/ngsi-ld/v1/entities", params={"type": "T", "colour": "red"})
    unsupported = await client.get("/ngsi-ld/v1/entities", params={"type": "T", "lastN": "3"})

    assert await problem(unknown) == {
        "type": ERRORS + "BadRequestData",
        "title": "Unknown URI parameter",
        "detail": "colour",
    }
    assert await problem(unsupported) == {
        "type": ERRORS + "BadRequestData",
        "title": "Unsupported URI parameter",
        "detail": "lastN",
    }


async def test_paths_the_broker_does_not_implement(client: TestClient) -> None:
    not_implemented = await client.get("/ngsi-ld/v1/csourceRegistrations")
    elsewhere = await client.get("/somewhere")

    assert not_implemented.status == 501
    assert (await problem(not_implemented))["type"] == ERRORS + "OperationNotSupported"
    assert elsewhere.status == 404
    assert (await problem(elsewhere))["type"] == ERRORS + "ResourceNotFound"
