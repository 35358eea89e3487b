"""The tenant-isolation matrix, generated from the shipped agreements (``compose/policies``) and
checked through the real HTTP gateway with signed tokens: for every principal, collectivity,
entity type and action, the gateway answers exactly what the agreements say, attribute by
attribute, and refuses the rest."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapter.access.cells import CellStore
from adapter.access.model import Action, Principal
from adapter.access.tokens import TokenValidator, TrustedIssuer
from adapter.config import load_config
from adapter.access.log import AccessLog
from adapter.gateway.answers import ALWAYS_KEPT
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.gateway.service import load_policies
from adapter.mapping.profile import load_profiles
from adapter.ngsild.client import NgsiLdClient
from adapter.provenance.runtime import entity_contexts
from tests.access_tokens.support import Realms, claims, mint, rsa_key
from tests.e2e.support import EmbeddedBroker
from tests.gateway.support import DAY0, NOW, air_quality_entities
from tests.support import REPO, body_bytes, demo_event, demo_pipeline

CONFIG = load_config(None)
POLICIES = load_policies(CONFIG, REPO / "compose" / "policies")
CONTEXTS = entity_contexts(load_profiles(CONFIG.models_dir))
PURPOSE = "ventilation-control"  # the one purpose the shipped agreements name


def _principals(realms: Realms) -> dict[str, tuple[Principal, dict[str, Any]]]:
    """Who asks: (the principal the token must give, the token's claims)."""
    people = {
        "schools": (
            "ville",
            {"azp": "ecole-ventilation", "sub": "service-account-ecole-ventilation", "roles": ["partner-platform"]},
        ),
        "building-manager": ("ville", {"roles": ["building-manager"], "sub": "u-bm"}),
        "elected-official": ("ville", {"roles": ["elected-official"], "sub": "u-elu"}),
        "researcher": ("region", {"roles": ["researcher"], "sub": "u-res"}),
        "ville-admin": ("ville", {"roles": ["data-admin"], "sub": "u-adm"}),
        "water-agent": ("eau", {"roles": [], "sub": "u-eau"}),
    }
    out = {}
    for name, (realm, extra) in people.items():
        payload = claims(realms.issuer(realm), now=datetime.now(UTC).timestamp(), organization=realm, **extra)
        principal = Principal(
            realms.issuer(realm),
            payload["sub"],
            realm,
            frozenset(extra["roles"]),
            client_id=payload["azp"],
            username=payload.get("preferred_username"),
        )
        out[name] = (principal, payload)
    return out


def _data() -> dict[str, list[dict[str, Any]]]:
    """Entities per tenant: every bundled sample through the pipeline, and the region's air quality."""
    pipeline = demo_pipeline()
    per_tenant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        for path in sorted((REPO / "adapter" / "demo" / "events").glob("*.json")):
            spec = demo_event(path.stem)
            origin = (
                CONFIG.connection(spec["connection"]).origin
                if "connection" in spec
                else CONFIG.default_origin(spec["lns"])
            )
            result = pipeline.process(
                body_bytes(spec), lns=spec["lns"], origin=origin, topic=spec.get("topic"), event=spec.get("event")
            )
            per_tenant[origin.tenant] += list(result.entities)
    finally:
        pipeline.close()
    per_tenant["region"] += air_quality_entities("region", 3, days=1)
    return per_tenant


@pytest.fixture(scope="module")
def data() -> dict[str, list[dict[str, Any]]]:
    return _data()


@pytest.fixture
async def gateway(tmp_path: Path, data: dict[str, list[dict[str, Any]]]) -> AsyncIterator[tuple[TestClient, dict]]:
    realms = Realms(keys={realm: [rsa_key(f"{realm}-1")] for realm in ("ville", "region", "eau")})
    broker = EmbeddedBroker(tmp_path / "broker.sqlite")
    await broker.start()
    log = AccessLog(":memory:")
    cells = CellStore(":memory:")
    try:
        async with TestServer(realms.app(), host="127.0.0.1") as issuer_server, aiohttp.ClientSession() as session:
            realms.base = str(issuer_server.make_url("")).rstrip("/")
            client = NgsiLdClient(broker.url, session)
            for tenant, entities in data.items():
                for entity in entities:
                    await client.batch_upsert(tenant, [entity])
            validator = TokenValidator(
                [TrustedIssuer(realms.issuer(r), organization=r) for r in ("ville", "region", "eau")], session
            )
            context = GatewayContext(
                validator.validate, POLICIES, broker.url, session, CONTEXTS, log, clock=lambda: NOW, cells=cells
            )
            async with TestClient(TestServer(create_gateway_app(context), host="127.0.0.1")) as http:
                people = {
                    name: (principal, mint(realms.keys[principal.organization][0], payload))
                    for name, (principal, payload) in _principals(realms).items()
                }
                yield http, people
    finally:
        cells.close()
        log.close()
        await broker.stop()


#: the history asked: the days of the sample data (whole days, for the published cells)
WINDOW = {
    "timerel": "between",
    "timeAt": (DAY0 - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z"),
    "endTimeAt": (DAY0 + timedelta(days=3)).strftime("%Y-%m-%dT00:00:00Z"),
}


def _expected(principal: Principal) -> dict[tuple[str, str, Action], set[str]]:
    """(tenant, type, action) -> the attributes the agreements let ``principal`` see."""
    allowed: dict[tuple[str, str, Action], set[str]] = defaultdict(set)
    for cell in POLICIES.matrix([principal], datetime.now(UTC)):
        if cell.allowed:
            allowed[(cell.tenant, cell.entity_type, cell.action)].add(cell.attribute)
    return allowed


def _attributes(answer: Any) -> set[str]:
    entities = answer if isinstance(answer, list) else [answer]
    return {name for entity in entities for name in entity} - ALWAYS_KEPT


async def test_every_cell_of_the_matrix_through_the_http_gateway(
    gateway: tuple[TestClient, dict], data: dict[str, list[dict[str, Any]]]
) -> None:
    http, people = gateway
    tenants = sorted(CONFIG.collectivities)
    types = sorted(CONTEXTS)
    checked = permitted = 0
    for name, (principal, token) in people.items():
        expected = _expected(principal)
        for tenant in tenants:
            present = {(e["type"], a) for e in data.get(tenant, []) for a in e if a not in ALWAYS_KEPT}
            for entity_type in types:
                for action, path, params in (
                    (Action.READ, "/ngsi-ld/v1/entities", {"limit": "100"}),
                    (Action.QUERY_HISTORY, "/ngsi-ld/v1/temporal/entities", WINDOW),
                ):
                    visible = expected.get((tenant, entity_type, action), set())
                    headers = {"Authorization": f"Bearer {token}", "NGSILD-Tenant": tenant, "NGSILD-Purpose": PURPOSE}
                    async with http.get(path, params={"type": entity_type, **params}, headers=headers) as answer:
                        body = await answer.json()
                        where = f"{name} {action.value} {entity_type} of {tenant}"
                        checked += 1
                        if not visible:
                            assert answer.status == 403, f"{where}: {answer.status} {body}"
                            continue
                        permitted += 1
                        assert answer.status == 200, f"{where}: {answer.status} {body}"
                        seen = _attributes(body)
                        assert seen <= visible, f"{where}: sees {sorted(seen - visible)} beyond the agreements"
                        if action is Action.READ:  # what is there and granted is shown
                            there = {a for t, a in present if t == entity_type} & visible
                            assert there <= seen, f"{where}: misses {sorted(there - seen)}"
    assert permitted > 5 and checked > 100  # the matrix has both kinds of cells


async def test_a_purpose_bound_agreement_needs_its_purpose(gateway: tuple[TestClient, dict]) -> None:
    http, people = gateway
    _, token = people["schools"]
    headers = {"Authorization": f"Bearer {token}", "NGSILD-Tenant": "region"}
    params = {"type": "AirQualityObserved"}
    without = await http.get("/ngsi-ld/v1/entities", params=params, headers=headers)
    assert without.status == 403 and "purpose" in (await without.json())["detail"]
    other = await http.get("/ngsi-ld/v1/entities", params=params, headers={**headers, "NGSILD-Purpose": "marketing"})
    assert other.status == 403
    right = await http.get("/ngsi-ld/v1/entities", params=params, headers={**headers, "NGSILD-Purpose": PURPOSE})
    assert right.status == 200
