"""API5, broken function-level authorization: partners read. Every write, batch operation,
other method or unknown route is refused (after the token, so that an anonymous client learns
nothing but that a token is needed); the gateway's notification route answers the broker only
(a secret in its URL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway_security.support import SENSOR, as_, attacked


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/ngsi-ld/v1/entities"),
        ("POST", "/ngsi-ld/v1/entityOperations/upsert"),
        ("POST", "/ngsi-ld/v1/entityOperations/delete"),
        ("POST", "/ngsi-ld/v1/entityOperations/update"),
        ("PATCH", f"/ngsi-ld/v1/entities/{SENSOR.format(0)}/attrs"),
        ("DELETE", f"/ngsi-ld/v1/entities/{SENSOR.format(0)}"),
        ("PUT", f"/ngsi-ld/v1/entities/{SENSOR.format(0)}"),
        ("POST", "/ngsi-ld/v1/temporal/entities"),
        ("GET", "/ngsi-ld/v1/types"),
        ("GET", "/ngsi-ld/v1/attributes"),
        ("GET", "/ngsi-ld/v1/csourceRegistrations"),
        ("GET", "/ngsi-ld/v1/jsonldContexts"),
        ("PATCH", "/ngsi-ld/v1/subscriptions/urn:x"),
    ],
)
async def test_writes_and_other_operations_are_not_offered(tmp_path: Path, method: str, path: str) -> None:
    async with attacked(tmp_path) as world:
        anonymous = await world.http.request(method, path, json=[])
        assert anonymous.status == 401
        partner = await world.http.request(method, path, json=[], headers=as_("schools"))
        assert partner.status in (403, 405), (method, path, partner.status)


async def test_unknown_routes_are_not_found_and_say_nothing_more(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        for path in ("/admin", "/metrics", "/gateway/accessx", "/provenance/region/other", "/sparql/update"):
            answer = await world.http.get(path, headers=as_("schools"))
            assert answer.status in (404, 405), path
            assert "Traceback" not in await answer.text()
