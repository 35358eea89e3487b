"""Multi-tenancy: NGSILD-Tenant (alias Fiware-Service), isolation, which requests create tenants."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.broker.helpers import ERRORS, problem

THING = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "colour": "red"}
SUBSCRIPTION = {
    "type": "Subscription",
    "entities": [{"type": "Thing"}],
    "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
}


async def test_tenants_are_lowercased_isolated_and_echoed(client: TestClient) -> None:
    created = await client.post("/ngsi-ld/v1/entities", json=THING, headers={"NGSILD-Tenant": "Ville"})
    in_tenant = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1", headers={"NGSILD-Tenant": "ville"})
    in_default = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1")

    assert created.status == 201
    assert created.headers["NGSILD-Tenant"] == "ville"
    assert in_tenant.status == 200
    assert in_tenant.headers["NGSILD-Tenant"] == "ville"
    assert in_default.status == 404
    assert "NGSILD-Tenant" not in in_default.headers


async def test_fiware_service_is_an_alias(client: TestClient) -> None:
    await client.post("/ngsi-ld/v1/entities", json=THING, headers={"Fiware-Service": "eau"})

    response = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1", headers={"NGSILD-Tenant": "eau"})

    assert response.status == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/ngsi-ld/v1/entities?type=Thing", None),
        ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1", None),
        ("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1", None),
        ("POST", "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1/attrs", {"size": 1}),
        ("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1/attrs", {"size": 1}),
        ("POST", "/ngsi-ld/v1/entityOperations/update", [THING]),
        ("POST", "/ngsi-ld/v1/entityOperations/delete", ["urn:ngsi-ld:Thing:1"]),
        ("GET", "/ngsi-ld/v1/subscriptions", None),
        ("GET", "/ngsi-ld/v1/temporal/entities?type=Thing", None),
    ],
)
async def test_other_requests_on_an_unknown_tenant_are_404(
    client: TestClient, method: str, path: str, body: object
) -> None:
    response = await client.request(method, path, json=body, headers={"NGSILD-Tenant": "nowhere"})

    assert response.status == 404
    assert await problem(response) == {
        "type": ERRORS + "NonExistingTenant",
        "title": "No such tenant",
        "detail": "nowhere",
    }


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ngsi-ld/v1/entities", THING),
        ("/ngsi-ld/v1/entityOperations/create", [THING]),
        ("/ngsi-ld/v1/entityOperations/upsert", [THING]),
        ("/ngsi-ld/v1/subscriptions", SUBSCRIPTION),
    ],
)
async def test_these_writes_create_the_tenant(client: TestClient, path: str, body: object) -> None:
    created = await client.post(path, json=body, headers={"NGSILD-Tenant": "region"})
    listed = await client.get("/ngsi-ld/v1/entities", params={"type": "Thing"}, headers={"NGSILD-Tenant": "region"})

    assert created.status == 201
    assert listed.status == 200


@pytest.mark.parametrize("name", ["a b", "ville!", "x" * 51, "école"])
async def test_invalid_tenant_names_are_400(client: TestClient, name: str) -> None:
    response = await client.post("/ngsi-ld/v1/entities", json=THING, headers={"NGSILD-Tenant": name})

    assert response.status == 400
    assert (await problem(response))["type"] == ERRORS + "BadRequestData"
