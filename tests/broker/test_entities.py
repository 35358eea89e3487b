"""Entity endpoints: create, read, delete, and the attribute operations (reference note, section 3)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.broker.helpers import CORE, ERRORS, link, problem

E1 = "urn:ngsi-ld:Sensor:001"


async def create(client: TestClient, entity: dict[str, Any]) -> None:
    response = await client.post("/ngsi-ld/v1/entities", json=entity)
    assert response.status == 201, await response.text()


def sensor(**attrs: Any) -> dict[str, Any]:
    return {"id": E1, "type": "Sensor", **attrs}


TEMPERATURE = {"type": "Property", "value": 21.5, "unitCode": "CEL", "observedAt": "2026-11-20T08:15:30Z"}


async def test_create_answers_201_with_location_and_no_body(client: TestClient) -> None:
    response = await client.post("/ngsi-ld/v1/entities", json=sensor(temperature=TEMPERATURE))

    assert response.status == 201
    assert response.headers["Location"] == f"/ngsi-ld/v1/entities/{E1}"
    assert "Link" not in response.headers
    assert await response.read() == b""


async def test_read_back_normalises_observed_at_and_links_the_core_context(client: TestClient) -> None:
    await create(client, sensor(temperature=TEMPERATURE))

    response = await client.get(f"/ngsi-ld/v1/entities/{E1}")

    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.headers["Link"] == link(CORE)["Link"]
    assert await response.json() == {
        "id": E1,
        "type": "Sensor",
        "temperature": {"type": "Property", "value": 21.5, "unitCode": "CEL", "observedAt": "2026-11-20T08:15:30.000Z"},
    }


async def test_creating_the_same_id_twice_is_409_already_exists(client: TestClient) -> None:
    await create(client, sensor())

    response = await client.post("/ngsi-ld/v1/entities", json=sensor())

    assert response.status == 409
    assert await problem(response) == {"type": ERRORS + "AlreadyExists", "title": "Entity already exists", "detail": E1}


async def test_reading_an_unknown_entity_is_404(client: TestClient) -> None:
    response = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:nope")

    assert response.status == 404
    assert (await problem(response))["type"] == ERRORS + "ResourceNotFound"


async def test_attrs_projects_and_404s_when_it_names_no_attribute_of_the_entity(client: TestClient) -> None:
    await create(client, sensor(temperature=TEMPERATURE, humidity=0.5))

    projected = await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"attrs": "humidity"})
    missing = await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"attrs": "pressure"})

    assert await projected.json() == {"id": E1, "type": "Sensor", "humidity": {"type": "Property", "value": 0.5}}
    assert missing.status == 404


async def test_key_values_concise_and_sys_attrs_formats(client: TestClient) -> None:
    await create(
        client,
        sensor(temperature=TEMPERATURE, owner={"type": "Relationship", "object": "urn:ngsi-ld:Org:1"}, state="ok"),
    )

    key_values = await (await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"options": "keyValues"})).json()
    concise = await (await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"format": "concise"})).json()
    with_sys = await (await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"options": "sysAttrs"})).json()

    assert key_values == {"id": E1, "type": "Sensor", "temperature": 21.5, "owner": "urn:ngsi-ld:Org:1", "state": "ok"}
    assert concise == {
        "id": E1,
        "type": "Sensor",
        "temperature": {"value": 21.5, "unitCode": "CEL", "observedAt": "2026-11-20T08:15:30.000Z"},
        "owner": {"object": "urn:ngsi-ld:Org:1"},
        "state": "ok",
    }
    assert with_sys["createdAt"] == with_sys["modifiedAt"]
    assert with_sys["createdAt"].endswith("Z") and len(with_sys["createdAt"]) == 24
    assert with_sys["state"] == {
        "type": "Property",
        "value": "ok",
        "createdAt": with_sys["createdAt"],
        "modifiedAt": with_sys["createdAt"],
    }


async def test_shorthand_attributes_are_stored_normalized(client: TestClient) -> None:
    await create(
        client,
        sensor(
            name="Rue de la Paix",
            owner={"object": "urn:ngsi-ld:Org:1"},
            location={"type": "Point", "coordinates": [-1.68, 48.11]},
            reading={"value": 3, "unitCode": "C62"},
        ),
    )

    assert await (await client.get(f"/ngsi-ld/v1/entities/{E1}")).json() == {
        "id": E1,
        "type": "Sensor",
        "name": {"type": "Property", "value": "Rue de la Paix"},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Org:1"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-1.68, 48.11]}},
        "reading": {"type": "Property", "value": 3, "unitCode": "C62"},
    }


async def test_delete_entity_then_it_is_gone(client: TestClient) -> None:
    await create(client, sensor())

    first = await client.delete(f"/ngsi-ld/v1/entities/{E1}")
    second = await client.delete(f"/ngsi-ld/v1/entities/{E1}")

    assert first.status == 204
    assert second.status == 404
    assert (await client.get(f"/ngsi-ld/v1/entities/{E1}")).status == 404


async def test_append_adds_and_overwrites_attributes(client: TestClient) -> None:
    await create(client, sensor(temperature=TEMPERATURE))

    response = await client.post(
        f"/ngsi-ld/v1/entities/{E1}/attrs", json={"temperature": 22.0, "humidity": {"type": "Property", "value": 0.4}}
    )

    assert response.status == 204
    assert await (await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"options": "keyValues"})).json() == {
        "id": E1,
        "type": "Sensor",
        "temperature": 22.0,
        "humidity": 0.4,
    }


async def test_append_with_no_overwrite_alone_answers_the_single_failure(client: TestClient) -> None:
    await create(client, sensor(temperature=TEMPERATURE))

    response = await client.post(
        f"/ngsi-ld/v1/entities/{E1}/attrs", params={"options": "noOverwrite"}, json={"temperature": 30}
    )

    assert response.status == 400
    assert await response.json() == {
        "attributes": ["temperature"],
        "title": "attribute already exists",
        "detail": "overwrite is not allowed",
    }
    assert "Link" in response.headers


async def test_append_with_no_overwrite_partly_succeeding_is_207(client: TestClient) -> None:
    await create(client, sensor(temperature=TEMPERATURE))

    response = await client.post(
        f"/ngsi-ld/v1/entities/{E1}/attrs",
        params={"options": "noOverwrite"},
        json={"temperature": 30, "humidity": 0.4, "pressure": 1013},
    )

    assert response.status == 207
    assert await response.json() == {
        "updated": ["humidity", "pressure"],
        "notUpdated": [
            {
                "attributes": ["temperature"],
                "statusCode": 400,
                "title": "attribute already exists",
                "detail": "overwrite is not allowed",
            }
        ],
    }
    kept = await (await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"attrs": "temperature"})).json()
    assert kept["temperature"]["value"] == 21.5


async def test_attribute_operations_on_an_unknown_entity_are_404(client: TestClient) -> None:
    unknown = "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:nope/attrs"

    assert (await client.post(unknown, json={"a": 1})).status == 404
    assert (await client.patch(unknown, json={"a": 1})).status == 404
    assert (await client.put(unknown + "/a", json={"value": 1})).status == 404


async def test_patch_attrs_updates_existing_and_reports_missing_ones(client: TestClient) -> None:
    await create(client, sensor(temperature=TEMPERATURE, humidity=0.5))

    partly = await client.patch(f"/ngsi-ld/v1/entities/{E1}/attrs", json={"humidity": 0.6, "pressure": 1013})
    only_missing = await client.patch(f"/ngsi-ld/v1/entities/{E1}/attrs", json={"pressure": 1013})

    assert partly.status == 207
    assert await partly.json() == {
        "updated": ["humidity"],
        "notUpdated": [
            {
                "attributes": ["pressure"],
                "statusCode": 404,
                "title": "Attribute Not Found",
                "detail": "https://uri.etsi.org/ngsi-ld/default-context/pressure",
            }
        ],
    }
    assert only_missing.status == 404
    assert await only_missing.json() == {
        "title": "Attribute Not Found",
        "detail": "https://uri.etsi.org/ngsi-ld/default-context/pressure",
    }
    entity = await (await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"options": "keyValues"})).json()
    assert entity == {"id": E1, "type": "Sensor", "temperature": 21.5, "humidity": 0.6}


async def test_patch_attrs_ignores_system_attributes_in_the_payload(client: TestClient) -> None:
    await create(client, sensor(humidity=0.5))

    response = await client.patch(
        f"/ngsi-ld/v1/entities/{E1}/attrs",
        json={"humidity": {"type": "Property", "value": 0.7, "modifiedAt": "2000-01-01T00:00:00Z"}},
    )

    assert response.status == 204
    entity = await (await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"options": "sysAttrs"})).json()
    assert entity["humidity"]["modifiedAt"] != "2000-01-01T00:00:00.000Z"


async def test_put_replaces_and_patch_merges_one_attribute(client: TestClient) -> None:
    await create(client, sensor(temperature=TEMPERATURE))

    patched = await client.patch(f"/ngsi-ld/v1/entities/{E1}/attrs/temperature", json={"value": 23.0})
    after_patch = await (await client.get(f"/ngsi-ld/v1/entities/{E1}")).json()
    put = await client.put(f"/ngsi-ld/v1/entities/{E1}/attrs/temperature", json={"type": "Property", "value": 24.0})
    after_put = await (await client.get(f"/ngsi-ld/v1/entities/{E1}")).json()

    assert patched.status == 204
    assert after_patch["temperature"] == {
        "type": "Property",
        "value": 23.0,
        "unitCode": "CEL",
        "observedAt": "2026-11-20T08:15:30.000Z",
    }
    assert put.status == 204
    assert after_put["temperature"] == {"type": "Property", "value": 24.0}


async def test_put_on_a_missing_attribute_is_404(client: TestClient) -> None:
    await create(client, sensor())

    response = await client.put(f"/ngsi-ld/v1/entities/{E1}/attrs/temperature", json={"value": 1})

    assert response.status == 404
    assert (await problem(response))["type"] == ERRORS + "ResourceNotFound"


async def test_delete_attribute(client: TestClient) -> None:
    await create(client, sensor(temperature=TEMPERATURE, humidity=0.5))

    first = await client.delete(f"/ngsi-ld/v1/entities/{E1}/attrs/humidity")
    second = await client.delete(f"/ngsi-ld/v1/entities/{E1}/attrs/humidity")

    assert first.status == 204
    assert second.status == 404
    assert "humidity" not in await (await client.get(f"/ngsi-ld/v1/entities/{E1}")).json()


async def test_turning_a_property_into_a_relationship_is_400(client: TestClient) -> None:
    await create(client, sensor(owner="someone"))

    response = await client.post(
        f"/ngsi-ld/v1/entities/{E1}/attrs", json={"owner": {"type": "Relationship", "object": "urn:ngsi-ld:Org:1"}}
    )

    assert response.status == 400
    assert await problem(response) == {
        "type": ERRORS + "BadRequestData",
        "title": "Attempt to transform a Property into a Relationship",
        "detail": "https://uri.etsi.org/ngsi-ld/default-context/owner",
    }


async def test_attribute_timestamps_follow_their_own_writes(client: TestClient) -> None:
    await create(client, sensor(temperature=TEMPERATURE, humidity=0.5))
    before = await (await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"options": "sysAttrs"})).json()

    await client.patch(f"/ngsi-ld/v1/entities/{E1}/attrs", json={"humidity": 0.6})
    after = await (await client.get(f"/ngsi-ld/v1/entities/{E1}", params={"options": "sysAttrs"})).json()

    assert after["createdAt"] == before["createdAt"]
    assert after["modifiedAt"] >= before["modifiedAt"]
    assert after["temperature"]["modifiedAt"] == before["temperature"]["modifiedAt"]
    assert after["humidity"]["createdAt"] == before["humidity"]["createdAt"]
    assert after["humidity"]["modifiedAt"] == after["modifiedAt"]


async def test_json_ld_answers_carry_the_context_in_the_body(client: TestClient) -> None:
    await create(client, sensor(state="ok"))

    response = await client.get(f"/ngsi-ld/v1/entities/{E1}", headers={"Accept": "application/ld+json"})

    assert response.content_type == "application/ld+json"
    assert "Link" not in response.headers
    assert await response.json() == {
        "id": E1,
        "type": "Sensor",
        "state": {"type": "Property", "value": "ok"},
        "@context": CORE,
    }


async def test_link_header_compacts_with_the_requested_context(client: TestClient) -> None:
    url = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
    response = await client.post(
        "/ngsi-ld/v1/entities", headers=link(url), json={"id": E1, "type": "AirQualityObserved", "no2": 40}
    )
    assert response.status == 201

    with_context = await (await client.get(f"/ngsi-ld/v1/entities/{E1}", headers=link(url))).json()
    without = await (await client.get(f"/ngsi-ld/v1/entities/{E1}")).json()

    assert with_context == {"id": E1, "type": "AirQualityObserved", "no2": {"type": "Property", "value": 40}}
    assert without == {
        "id": E1,
        "type": "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved",
        "https://smartdatamodels.org/dataModel.Environment/no2": {"type": "Property", "value": 40},
    }
