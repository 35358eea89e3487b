"""SPARQL through the gateway: the query runs over the graphs the agreements open to the
principal, set by the server; nothing in the query or its parameters can widen them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.access.model import Principal
from adapter.access.log import AccessLog
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.gateway.sparql import SparqlLimits, sparql_routes
from adapter.provenance.store import OxigraphStore
from tests.gateway.support import CONTEXTS, StaticTokens, TableOfGrants

RESEARCHER = Principal("https://kc/realms/region", "u-r", "region", frozenset({"researcher"}))
NOBODY = Principal("https://kc/realms/ville", "u-n", "ville", frozenset())
REGION, VILLE = "urn:ngsild-adapter:graph:region", "urn:ngsild-adapter:graph:ville"
PER_GRAPH = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[TestClient]:
    store = OxigraphStore(tmp_path / "rdf")
    await store.add_nquads(f'<urn:a> <urn:p> "region" <{REGION}> .\n<urn:b> <urn:p> "ville" <{VILLE}> .\n')
    endpoint = web.Application()
    endpoint.add_routes(sparql_routes(store, limits=SparqlLimits()))
    log = AccessLog(":memory:")
    try:
        async with TestServer(endpoint, host="127.0.0.1") as adapter, aiohttp.ClientSession() as session:
            policies = TableOfGrants([], graphs={"researcher": [REGION]})
            tokens = StaticTokens({"researcher": RESEARCHER, "nobody": NOBODY})
            context = GatewayContext(
                tokens.validate,
                policies,
                "http://127.0.0.1:9",
                session,
                CONTEXTS,
                log,
                adapter_url=str(adapter.make_url("/")),
            )
            async with TestClient(TestServer(create_gateway_app(context), host="127.0.0.1")) as http:
                yield http
    finally:
        log.close()
        await store.close()


async def _graphs(answer: Any) -> set[str]:
    assert answer.status == 200, await answer.text()
    return {row["g"]["value"] for row in (await answer.json())["results"]["bindings"]}


async def test_a_researcher_queries_the_graphs_opened_to_research_only(gateway: TestClient) -> None:
    headers = {"Authorization": "Bearer researcher", "Accept": "application/sparql-results+json"}
    assert await _graphs(await gateway.get("/sparql", params={"query": PER_GRAPH}, headers=headers)) == {REGION}
    escape = f"SELECT ?g (COUNT(*) AS ?n) FROM NAMED <{VILLE}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g"
    assert await _graphs(await gateway.get("/sparql", params={"query": escape}, headers=headers)) <= {REGION}
    widened = await gateway.post(
        "/sparql", data={"query": PER_GRAPH, "named-graph-uri": VILLE, "default-graph-uri": VILLE}, headers=headers
    )
    assert widened.status == 403  # the dataset parameters narrow, never widen
    both = await gateway.post(
        "/sparql", data={"query": PER_GRAPH, "named-graph-uri": VILLE, "default-graph-uri": REGION}, headers=headers
    )
    assert await _graphs(both) == {REGION}


async def test_no_graph_opened_is_403_and_updates_are_refused(gateway: TestClient) -> None:
    refused = await gateway.get("/sparql", params={"query": PER_GRAPH}, headers={"Authorization": "Bearer nobody"})
    assert refused.status == 403
    update = await gateway.post("/sparql", data={"update": "DROP ALL"}, headers={"Authorization": "Bearer researcher"})
    assert update.status == 400
