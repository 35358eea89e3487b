"""The attack classes again, with real Keycloak tokens and the shipped agreements (compose/policies):
one or more forms of each class, through the HTTP gateway, as the people of the realm files.

tests/gateway_security has every form with stand-in tokens; what this adds is that the real
tokens (client credentials of the school-ventilation platform, the password logins of the
city's elected official and building manager) meet the real agreements exactly as the stand-ins
do: the same refusals, the same published cells.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from adapter.access.cells import CellStore
from adapter.access.log import AccessLog
from adapter.access.tokens import TokenValidator, TrustedIssuer
from adapter.config import load_config
from adapter.demo.keycloak import KeycloakServer
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.gateway.service import load_policies
from adapter.gateway.subscriptions import SubscriptionStore
from adapter.mapping.profile import load_profiles
from adapter.ngsild.client import NgsiLdClient
from adapter.provenance.runtime import entity_contexts
from tests.e2e.support import EmbeddedBroker
from tests.gateway.support import NOW, air_quality_entities, local_endpoints
from tests.keycloak.support import client_credentials_token, dev_password, dev_secret, password_token
from tests.support import REPO

pytestmark = pytest.mark.keycloak

CONFIG = load_config(None)
TYPE = "AirQualityObserved"
PURPOSE = "ventilation-control"
DAYS = {"type": TYPE, "timerel": "between", "timeAt": "2026-11-20T00:00:00Z", "endTimeAt": "2026-11-22T00:00:00Z"}


def _city_sensors() -> list[dict[str, Any]]:
    """Six city sensors, three in each district of the officials' agreement, of similar values."""
    writes = air_quality_entities("ville", 6, days=2)
    for index, entity in enumerate(writes):
        day, sensor = divmod(index, 6)
        entity["location"]["value"]["coordinates"] = [(-1.70 if sensor < 3 else -1.62) - sensor * 0.001, 48.11]
        entity["no2"]["value"] = 40.0 + sensor + day
    return writes


@pytest.fixture
async def gateway(keycloak: KeycloakServer, tmp_path: Path) -> AsyncIterator[tuple[TestClient, dict[str, str]]]:
    broker = EmbeddedBroker(tmp_path / "broker.sqlite")
    await broker.start()
    log, store, cells = AccessLog(":memory:"), SubscriptionStore(":memory:"), CellStore(":memory:")
    try:
        async with aiohttp.ClientSession() as session:
            client = NgsiLdClient(broker.url, session)
            for tenant, writes in (("region", air_quality_entities("region", 3, days=2)), ("ville", _city_sensors())):
                for entity in writes:
                    await client.batch_upsert(tenant, [copy.deepcopy(entity)])
            validator = TokenValidator([TrustedIssuer(keycloak.issuer("ville"), organization="ville")], session)
            context = GatewayContext(
                validator.validate,
                load_policies(CONFIG, REPO / "compose" / "policies"),
                broker.url,
                session,
                entity_contexts(load_profiles(CONFIG.models_dir)),
                log,
                clock=lambda: NOW,
                cells=cells,
                subscriptions=store,
                public_url="http://127.0.0.1:9",
                endpoints=local_endpoints("http://127.0.0.1:9/"),
            )
            tokens = {
                "schools": await client_credentials_token(
                    session, keycloak, "ville", "ecole-ventilation", dev_secret("ville", "ecole-ventilation")
                ),
                "official": await password_token(session, keycloak, "ville", "elu", dev_password("ville", "elu")),
                "manager": await password_token(
                    session, keycloak, "ville", "gestionnaire.batiment", dev_password("ville", "gestionnaire.batiment")
                ),
            }
            async with TestClient(TestServer(create_gateway_app(context), host="127.0.0.1")) as http:
                yield http, tokens
    finally:
        cells.close()
        store.close()
        log.close()
        await broker.stop()


def _as(tokens: dict[str, str], who: str, tenant: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}", "NGSILD-Tenant": tenant, **headers}


async def test_object_level_another_collectivity_and_an_unknown_one(gateway: Any) -> None:
    http, tokens = gateway
    granted = await http.get(
        "/ngsi-ld/v1/entities",
        params={"type": TYPE},
        headers=_as(tokens, "schools", "region", **{"NGSILD-Purpose": PURPOSE}),
    )
    assert granted.status == 200 and len(await granted.json()) == 3
    city = await http.get(
        "/ngsi-ld/v1/entities",
        params={"type": TYPE},
        headers=_as(tokens, "schools", "ville", **{"NGSILD-Purpose": PURPOSE}),
    )
    assert city.status == 403
    unknown = await http.get("/ngsi-ld/v1/entities", params={"type": TYPE}, headers=_as(tokens, "schools", "Region"))
    assert unknown.status == 400


@pytest.mark.parametrize(
    "params",
    [
        {"q": 'typeofLocation=="outdoor"'},
        {"q": "no2>1|typeofLocation"},
        {"attrs": "refDevice"},
        {"pick": "no2,typeofLocation"},
    ],
)
async def test_property_level_what_the_schools_agreement_does_not_list(gateway: Any, params: dict[str, str]) -> None:
    http, tokens = gateway
    answer = await http.get(
        "/ngsi-ld/v1/entities",
        params={"type": TYPE, **params},
        headers=_as(tokens, "schools", "region", **{"NGSILD-Purpose": PURPOSE}),
    )
    assert answer.status == 403, await answer.text()


async def test_function_level_and_paths(gateway: Any) -> None:
    http, tokens = gateway
    write = await http.post("/ngsi-ld/v1/entityOperations/upsert", json=[], headers=_as(tokens, "manager", "ville"))
    assert write.status == 403
    raw = URL(str(http.make_url("")).rstrip("/") + "/logs/ville%2F..%2F..%2Fmetrics", encoded=True)
    assert (await http.session.get(raw, headers=_as(tokens, "manager", "ville"))).status == 400


async def test_ssrf_a_subscription_to_an_internal_address(gateway: Any) -> None:
    http, tokens = gateway
    body = {
        "type": "Subscription",
        "entities": [{"type": TYPE}],
        "notification": {"endpoint": {"uri": "http://169.254.169.254/latest/meta-data"}},
    }
    answer = await http.post(
        "/ngsi-ld/v1/subscriptions", json=body, headers=_as(tokens, "schools", "region", **{"NGSILD-Purpose": PURPOSE})
    )
    assert answer.status == 403


async def test_inference_the_official_reads_the_same_published_cells_however_asked(gateway: Any) -> None:
    http, tokens = gateway
    headers = _as(tokens, "official", "ville")
    seen: dict[tuple[str, str], Any] = {}  # (group, period start) -> the cell as answered
    for params in (DAYS, {**DAYS, "timeAt": "2026-11-19T12:00:00Z"}, {**DAYS, "attrs": "no2"}, DAYS):
        answer = await http.get("/ngsi-ld/v1/temporal/entities", params=params, headers=headers)
        assert answer.status == 200, await answer.text()
        for entity in await answer.json():
            for cell in entity["no2"]["cells"]:
                assert seen.setdefault((cell["group"], cell["start"]), cell) == cell, "a cell answered two ways"
    assert {group for group, _ in seen} == {"Rennes-ouest", "Rennes-est", "total"}
    # days of Europe/Paris: 2026-11-20 and 2026-11-21 (23:00 UTC the evening before)
    assert {start for _, start in seen} == {"2026-11-19T23:00:00Z", "2026-11-20T23:00:00Z"}
    published = [c for c in seen.values() if c["status"] == "published"]
    assert published and all(c["sensors"] in (3, 6) for c in published)
    for params in ({**DAYS, "q": "no2>41"}, {**DAYS, "idPattern": ".*sensor[01]$"}, {**DAYS, "limit": "1"}):
        refused = await http.get("/ngsi-ld/v1/temporal/entities", params=params, headers=headers)
        assert refused.status == 403, params
    one = await http.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:ville:sensor0", headers=headers)
    assert one.status == 403 and json.loads(await one.text())["detail"].startswith("agreement")
