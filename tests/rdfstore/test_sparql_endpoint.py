"""The read-only SPARQL 1.1 Protocol endpoint, through a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pyoxigraph
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.gateway.sparql import PROBLEM_BASE, SparqlLimits, sparql_routes
from adapter.provenance.store import OxigraphStore, RdfStore
from tests.rdfstore.conftest import remote_store
from tests.rdfstore.test_contract import ENDLESS

A = "urn:ngsild-adapter:graph:a"
B = "urn:ngsild-adapter:graph:b"
DATA = f"""\
<urn:a1> <urn:p> "1" <{A}> .
<urn:a2> <urn:p> "2" <{A}> .
<urn:b1> <urn:p> "3" <{B}> .
"""
SELECT = "SELECT ?s WHERE { ?s ?p ?o }"
CONSTRUCT = "CONSTRUCT WHERE { ?s ?p ?o }"
LIMITS = SparqlLimits(timeout_s=10, max_results=5, max_query_bytes=2000)
RESULTS_XML = "{http://www.w3.org/2005/sparql-results#}"
Client = TestClient[web.Request, web.Application]


def graphs_from_header(request: web.Request) -> list[str] | None:
    """Stands for access control: the graphs the caller may read, from a test header."""
    header = request.headers.get("X-Graphs")
    return None if header is None else header.split()


@asynccontextmanager
async def serving(store: RdfStore, limits: SparqlLimits = LIMITS) -> AsyncIterator[Client]:
    app = web.Application()
    app.add_routes(sparql_routes(store, limits=limits, graphs_for=graphs_from_header))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[OxigraphStore]:
    embedded = OxigraphStore(tmp_path / "index")
    await embedded.add_nquads(DATA)
    try:
        yield embedded
    finally:
        await embedded.close()


@pytest.fixture
async def client(store: OxigraphStore) -> AsyncIterator[Client]:
    async with serving(store) as test_client:
        yield test_client


def json_subjects(body: bytes) -> set[str]:
    return {b["s"]["value"] for b in json.loads(body)["results"]["bindings"]}


def xml_subjects(body: bytes) -> set[str]:
    return {uri.text or "" for uri in ET.fromstring(body).iter(f"{RESULTS_XML}uri")}


def csv_subjects(body: bytes) -> set[str]:
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["s"]
    return {row[0] for row in rows[1:]}


def tsv_subjects(body: bytes) -> set[str]:
    lines = body.decode().splitlines()
    assert lines[0] == "?s"
    return {line.strip("<>") for line in lines[1:]}


def rdf_subjects(rdf_format: pyoxigraph.RdfFormat) -> Callable[[bytes], set[str]]:
    def subjects(body: bytes) -> set[str]:
        return {q.subject.value for q in pyoxigraph.parse(body, format=rdf_format)}

    return subjects


async def problem(response: aiohttp.ClientResponse, status: int, name: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json(content_type=None)
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["type"] == PROBLEM_BASE + name
    assert body["status"] == status
    return body


ALL = {"urn:a1", "urn:a2", "urn:b1"}


@pytest.mark.parametrize(
    ("query", "accept", "content_type", "subjects"),
    [
        (SELECT, None, "application/sparql-results+json", json_subjects),
        (SELECT, "application/sparql-results+json", "application/sparql-results+json", json_subjects),
        (SELECT, "application/sparql-results+xml", "application/sparql-results+xml", xml_subjects),
        (SELECT, "text/csv", "text/csv", csv_subjects),
        (SELECT, "text/tab-separated-values", "text/tab-separated-values", tsv_subjects),
        (CONSTRUCT, None, "text/turtle", rdf_subjects(pyoxigraph.RdfFormat.TURTLE)),
        (CONSTRUCT, "application/n-triples", "application/n-triples", rdf_subjects(pyoxigraph.RdfFormat.N_TRIPLES)),
        (CONSTRUCT, "application/ld+json", "application/ld+json", rdf_subjects(pyoxigraph.RdfFormat.JSON_LD)),
    ],
)
async def test_each_answer_format(
    client: Client, query: str, accept: str | None, content_type: str, subjects: Callable[[bytes], set[str]]
) -> None:
    headers = {} if accept is None else {"Accept": accept}
    response = await client.get("/sparql", params={"query": query}, headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == content_type
    assert subjects(await response.read()) == ALL


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/csv;q=0.5, application/sparql-results+xml", "application/sparql-results+xml"),
        ("text/*", "text/csv"),
        ("*/*;q=0.1, text/tab-separated-values", "text/tab-separated-values"),
        ("*/*", "application/sparql-results+json"),
        ("text/html, application/xhtml+xml, */*;q=0.8", "application/sparql-results+json"),
    ],
)
async def test_accept_preferences_choose_the_format(client: Client, accept: str, expected: str) -> None:
    response = await client.get("/sparql", params={"query": SELECT}, headers={"Accept": accept})
    assert response.status == 200
    assert response.content_type == expected


async def test_ask_and_describe(client: Client) -> None:
    response = await client.get("/sparql", params={"query": "ASK { <urn:a1> ?p ?o }"})
    assert await response.json(content_type=None) == {"head": {}, "boolean": True}
    response = await client.get(
        "/sparql", params={"query": "DESCRIBE <urn:b1>"}, headers={"Accept": "application/n-triples"}
    )
    assert (await response.text()).strip() == '<urn:b1> <urn:p> "3" .'


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        (SELECT, "text/turtle"),
        (CONSTRUCT, "application/sparql-results+json"),
        (SELECT, "application/json, text/csv;q=0"),
    ],
)
async def test_no_acceptable_format_is_406(client: Client, query: str, accept: str) -> None:
    response = await client.get("/sparql", params={"query": query}, headers={"Accept": accept})
    body = await problem(response, 406, "not-acceptable")
    assert "text/csv" in body["detail"] or "text/turtle" in body["detail"]


async def test_post_of_a_form(client: Client) -> None:
    response = await client.post("/sparql", data={"query": SELECT, "default-graph-uri": B})
    assert response.status == 200
    assert json_subjects(await response.read()) == {"urn:b1"}


async def test_post_of_a_query_with_graphs_in_the_url(client: Client) -> None:
    response = await client.post(
        "/sparql",
        params={"default-graph-uri": A},
        data=SELECT.encode(),
        headers={"Content-Type": "application/sparql-query"},
    )
    assert response.status == 200
    assert json_subjects(await response.read()) == {"urn:a1", "urn:a2"}


async def test_another_body_type_is_415(client: Client) -> None:
    response = await client.post("/sparql", data=SELECT.encode(), headers={"Content-Type": "text/plain"})
    await problem(response, 415, "unsupported-media-type")


UPDATES = [
    "INSERT DATA { <urn:x> <urn:p> <urn:o> }",
    "DELETE WHERE { ?s ?p ?o }",
    "DELETE { ?s ?p ?o } INSERT { ?s ?p 1 } WHERE { ?s ?p ?o }",
    "LOAD <http://example.org/data.ttl>",
    "CLEAR ALL",
    f"DROP GRAPH <{A}>",
    "CREATE GRAPH <urn:new>",
    f"COPY <{A}> TO <{B}>",
    f"MOVE <{A}> TO <{B}>",
    f"ADD <{A}> TO <{B}>",
    "PREFIX ex: <urn:ex:> # a comment\nDROP ALL",
]


@pytest.mark.parametrize("update", UPDATES)
async def test_updates_sent_as_queries_are_refused(client: Client, store: OxigraphStore, update: str) -> None:
    response = await client.get("/sparql", params={"query": update})
    await problem(response, 403, "update-refused")
    response = await client.post("/sparql", data={"query": update})
    await problem(response, 403, "update-refused")
    assert await store.quad_count() == 3


@pytest.mark.parametrize("send", ["get", "form", "body"])
async def test_the_update_operation_of_the_protocol_is_refused(client: Client, store: OxigraphStore, send: str) -> None:
    update = "CLEAR ALL"
    if send == "get":
        response = await client.get("/sparql", params={"update": update})
    elif send == "form":
        response = await client.post("/sparql", data={"update": update})
    else:
        response = await client.post(
            "/sparql", data=update.encode(), headers={"Content-Type": "application/sparql-update"}
        )
    await problem(response, 403, "update-refused")
    assert await store.quad_count() == 3


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }",
        "SELECT * WHERE { ?s ?p ?o OPTIONAL { SERVICE SILENT ?endpoint { ?s ?q ?r } } }",
        "SELECT * WHERE { ?s ?p ?o FILTER EXISTS { SERVICE <http://127.0.0.1:1/sparql> { ?s ?q ?r } } }",
        "ASK { { SELECT ?s WHERE { service <http://127.0.0.1:1/sparql> { ?s ?p ?o } } } }",
    ],
)
async def test_federated_queries_are_refused(client: Client, query: str) -> None:
    response = await client.get("/sparql", params={"query": query})
    await problem(response, 403, "service-refused")


async def test_keywords_in_comments_and_strings_are_not_refused(client: Client) -> None:
    query = (
        "# DROP ALL ; SERVICE <http://evil/> { }\n"
        'SELECT ?s WHERE { ?s ?p ?o FILTER (?o != "INSERT DATA { <a> <b> <c> }" && ?o != "SERVICE <x> {}") }'
    )
    response = await client.get("/sparql", params={"query": query})
    assert response.status == 200, await response.text()
    assert json_subjects(await response.read()) == ALL


async def test_a_query_that_does_not_parse_is_400_with_the_parser_message(client: Client) -> None:
    response = await client.get("/sparql", params={"query": "SELECT ?s WHERE { ?s ?p }"})
    body = await problem(response, 400, "invalid-query")
    assert "does not parse" in body["detail"] and "char" in body["detail"]


async def test_a_query_update_mix_is_400(client: Client, store: OxigraphStore) -> None:
    response = await client.get("/sparql", params={"query": f"{SELECT} ; DROP ALL"})
    await problem(response, 400, "invalid-query")
    assert await store.quad_count() == 3


@pytest.mark.parametrize("params", [{}, {"query": " "}, {"default-graph-uri": A}])
async def test_a_request_without_query_is_400(client: Client, params: dict[str, str]) -> None:
    response = await client.get("/sparql", params=params)
    await problem(response, 400, "missing-query")


async def test_a_query_over_max_query_bytes_is_413(client: Client) -> None:
    query = SELECT + " #" + "x" * 2000
    response = await client.get("/sparql", params={"query": query})
    body = await problem(response, 413, "query-too-large")
    assert "max_query_bytes = 2000" in body["detail"]
    response = await client.post("/sparql", data=query.encode(), headers={"Content-Type": "application/sparql-query"})
    await problem(response, 413, "query-too-large")
    response = await client.post("/sparql", data={"query": query})
    await problem(response, 413, "query-too-large")


async def test_an_answer_over_max_results_is_refused_naming_the_limit(client: Client, store: OxigraphStore) -> None:
    await store.add_nquads("".join(f'<urn:n{i}> <urn:p> "{i}" <{A}> .\n' for i in range(10)))
    response = await client.get("/sparql", params={"query": SELECT})
    body = await problem(response, 400, "too-many-results")
    assert "max_results = 5" in body["detail"]
    response = await client.get("/sparql", params={"query": SELECT + " LIMIT 5"})
    assert response.status == 200


async def test_a_query_past_the_time_limit_is_503_naming_the_limit(store: OxigraphStore) -> None:
    await store.add_nquads("".join(f'<urn:n{i}> <urn:p> "{i}" <{A}> .\n' for i in range(300)))
    async with serving(store, SparqlLimits(timeout_s=0.5)) as client:
        response = await client.get("/sparql", params={"query": ENDLESS})
        body = await problem(response, 503, "timeout")
        assert "timeout_s = 0.5 s" in body["detail"]
    # The killed worker is replaced: the store answers again. (A new worker starts in about 0.3 s,
    # within 0.5 s on a quiet machine only: the next query gets a limit a loaded one can meet.)
    async with serving(store, SparqlLimits(timeout_s=60)) as client:
        response = await client.get("/sparql", params={"query": "ASK {}"})
        assert response.status == 200


NARROWING = [
    # (graphs allowed, parameters, query, subjects seen)
    (None, {}, SELECT, ALL),
    (None, {"default-graph-uri": B}, SELECT, {"urn:b1"}),
    ([A], {}, SELECT, {"urn:a1", "urn:a2"}),
    ([A], {"default-graph-uri": B}, SELECT, set()),
    ([A], {"named-graph-uri": B}, "SELECT ?s WHERE { GRAPH ?g { ?s ?p ?o } }", set()),
    ([A, B], {"default-graph-uri": A}, SELECT, {"urn:a1", "urn:a2"}),
    ([A], {}, f"SELECT ?s FROM <{B}> WHERE {{ ?s ?p ?o }}", {"urn:a1", "urn:a2"}),
    ([A], {}, f"SELECT ?s WHERE {{ GRAPH <{B}> {{ ?s ?p ?o }} }}", set()),
    ([], {"default-graph-uri": A}, SELECT, set()),
]


@pytest.mark.parametrize(("allowed", "params", "query", "seen"), NARROWING)
async def test_graph_parameters_only_narrow_the_allowed_graphs(
    client: Client, allowed: list[str] | None, params: dict[str, str], query: str, seen: set[str]
) -> None:
    headers = {} if allowed is None else {"X-Graphs": " ".join(allowed)}
    response = await client.get("/sparql", params={"query": query, **params}, headers=headers)
    assert response.status == 200, await response.text()
    assert json_subjects(await response.read()) == seen


async def test_the_endpoint_over_a_remote_store(oxigraph_server: str) -> None:
    async with aiohttp.ClientSession() as session:
        remote = await remote_store(oxigraph_server, session)
        await remote.add_nquads(DATA)
        async with serving(remote) as client:
            response = await client.get(
                "/sparql",
                params={"query": f"SELECT ?s FROM <{B}> WHERE {{ ?s ?p ?o }}"},
                headers={"X-Graphs": A, "Accept": "text/csv"},
            )
            assert response.status == 200
            assert csv_subjects(await response.read()) == {"urn:a1", "urn:a2"}
            response = await client.get(
                "/sparql", params={"query": "SELECT * WHERE { SERVICE <http://127.0.0.1:1/> { ?s ?p ?o } }"}
            )
            await problem(response, 403, "service-refused")
