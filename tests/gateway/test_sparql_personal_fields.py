"""A researcher's SPARQL answers never hold the personal fields the research agreement removes,
however the query asks: the index keeps them in each collectivity's personal graph, and the
gateway opens that graph only to agreements that remove nothing (the city's data admins).

Real parts: the shipped agreements (``compose/policies``), the index quads of the provenance
fixtures (a school water meter with its ``refDevice`` and its name at the network server),
an embedded Oxigraph store behind the adapter's /sparql, and the gateway in front."""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator, Set
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.access.policies import PolicySet
from adapter.config import DEFAULT_PERSONAL_ATTRIBUTES
from adapter.access.log import AccessLog
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.gateway.sparql import SparqlLimits, sparql_routes
from adapter.provenance import rdf
from adapter.provenance.store import OxigraphStore
from tests.access_policies.support import CATALOGUE, EXAMPLES, RESEARCH, TENANTS, person
from tests.gateway.support import CONTEXTS, StaticTokens
from adapter.provenance.pseudonyms import PseudonymKeys
from tests.provenance_rdf.support import log

REF_DEVICE = "https://smartdatamodels.org/dataModel.WaterConsumption/refDevice"
DEVICE_ID = rdf.NGA + "deviceId"
WATER = "https://smartdatamodels.org/dataModel.WaterConsumption/waterConsumption"
PREDICATES = "SELECT DISTINCT ?p WHERE { GRAPH ?g { ?s ?p ?o } }"
PRINCIPALS = {"researcher": person("ville", "researcher"), "admin": person("ville", "data-admin")}
KEYS = PseudonymKeys.in_memory({"ville": {None: bytes(range(32))}, "region": {None: bytes(range(1, 33))}})
DEV_EUIS = {record["device"]["devEui"] for record in log("ville")}


def index_text(personal: Set[str]) -> str:
    """The city's fixture records, and the same records as the region's, indexed."""
    parts = []
    for tenant in ("ville", "region"):
        for n, record in enumerate(log("ville")):
            record = copy.deepcopy(record)
            record["tenant"] = tenant
            parts += [
                rdf.index_nquads(record, n, pseudonyms=KEYS, personal=personal),
                rdf.static_nquads(record, pseudonyms=KEYS),
            ]
    return "".join(parts)


async def serve(tmp_path: Path, personal: Set[str]) -> AsyncIterator[tuple[TestClient, AccessLog]]:
    store = OxigraphStore(tmp_path / "rdf")
    await store.add_nquads(index_text(DEFAULT_PERSONAL_ATTRIBUTES))
    endpoint = web.Application()
    endpoint.add_routes(sparql_routes(store, limits=SparqlLimits()))
    access = AccessLog(":memory:")
    policies = PolicySet.load(EXAMPLES, tenants=TENANTS, catalogue=CATALOGUE, personal_attributes=personal)
    try:
        async with TestServer(endpoint, host="127.0.0.1") as adapter, aiohttp.ClientSession() as session:
            context = GatewayContext(
                StaticTokens(PRINCIPALS).validate,
                policies,
                "http://127.0.0.1:9",
                session,
                CONTEXTS,
                access,
                adapter_url=str(adapter.make_url("/")),
            )
            async with TestClient(TestServer(create_gateway_app(context), host="127.0.0.1")) as http:
                yield http, access
    finally:
        access.close()
        await store.close()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[TestClient, AccessLog]]:
    async for pair in serve(tmp_path, DEFAULT_PERSONAL_ATTRIBUTES):
        yield pair


@pytest.fixture
def gateway(running: tuple[TestClient, AccessLog]) -> TestClient:
    return running[0]


async def values(gateway: TestClient, who: str, query: str, **params: str) -> set[str]:
    answer = await gateway.post(
        "/sparql",
        data={"query": query, **params},
        headers={"Authorization": f"Bearer {who}", "Accept": "application/sparql-results+json"},
    )
    assert answer.status == 200, await answer.text()
    return {cell["value"] for row in (await answer.json())["results"]["bindings"] for cell in row.values()}


async def test_a_researcher_gets_the_measurements_without_the_personal_fields(gateway: TestClient) -> None:
    predicates = await values(gateway, "researcher", PREDICATES)
    assert WATER in predicates  # the research is possible
    assert REF_DEVICE not in predicates and DEVICE_ID not in predicates
    names = await values(gateway, "researcher", "SELECT ?name WHERE { ?device <%s> ?name }" % DEVICE_ID)
    assert names == set()  # "compteur-ecole-jules-ferry" stays with the city


async def test_a_researcher_reads_no_devEui_device_iri_or_entity_id(gateway: TestClient) -> None:
    found = await values(gateway, "researcher", "SELECT * WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert WATER in found and len(found) > 50
    for text in found:
        digits = re.sub(r"[^0-9a-f]", "", text.lower())
        assert not any(eui in digits for eui in DEV_EUIS), text  # in any case, with any separators
        assert re.match(r"urn:ngsild-adapter:[^:]+:device:", text) is None, text
        assert not text.startswith("urn:ngsi-ld:"), text
    assert any(":pseudonym:" in text for text in found)
    admin = await values(gateway, "admin", "SELECT * WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert {f"urn:ngsi-ld:WaterConsumptionObserved:ville:{eui}" for eui in DEV_EUIS} & admin  # the city joins


async def test_naming_the_personal_graph_does_not_open_it(gateway: TestClient) -> None:
    personal = rdf.personal_graph_iri("region")
    asked = (
        f"SELECT ?p ?o FROM <{personal}> FROM NAMED <{personal}> "
        "WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"
    )
    found = await values(gateway, "researcher", asked)  # the server's dataset replaces the query's FROMs
    assert WATER in found
    assert not {REF_DEVICE, DEVICE_ID, "compteur-ecole-jules-ferry"} & found
    widened = await gateway.post(
        "/sparql",
        data={"query": PREDICATES, "named-graph-uri": personal},
        headers={"Authorization": "Bearer researcher"},
    )
    assert widened.status == 403  # the same answer whether that graph exists or not
    assert (await widened.json())["detail"] == (
        "none of the graphs the request names (default-graph-uri, named-graph-uri) is open to you"
    )


async def test_the_city_data_admin_reads_the_city_personal_graph_not_the_region(gateway: TestClient) -> None:
    graphs = await values(gateway, "admin", "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert graphs == {rdf.graph_iri("ville"), rdf.personal_graph_iri("ville")}
    assert "compteur-ecole-jules-ferry" in await values(
        gateway, "admin", "SELECT ?name WHERE { ?d <%s> ?name }" % DEVICE_ID
    )


async def test_the_owner_sees_which_agreement_opened_its_graph(running: tuple[TestClient, AccessLog]) -> None:
    gateway, access = running
    await values(gateway, "researcher", PREDICATES)
    (record,) = access.records("region")
    assert record.agreement == RESEARCH and record.outcome == "permitted" and record.action == "sparqlQuery"


async def test_an_agreement_the_index_cannot_honour_opens_nothing_and_says_why(tmp_path: Path) -> None:
    async for gateway, _ in serve(tmp_path, DEFAULT_PERSONAL_ATTRIBUTES - {"refDevice"}):
        answer = await gateway.post(
            "/sparql", data={"query": PREDICATES}, headers={"Authorization": "Bearer researcher"}
        )
        assert answer.status == 403
        assert "keeps refDevice out of SPARQL answers" in (await answer.json())["detail"]
