"""The contract of ``RdfStore``, run on the embedded and on the remote store alike."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import pyoxigraph
import pytest

from adapter.provenance.store import (
    BULK_LOAD_MIN_CHARS,
    InvalidQuery,
    QueryTimeout,
    QueryTooLarge,
    RdfStore,
    RdfStoreError,
    UnsupportedFormat,
)

XSD = "http://www.w3.org/2001/XMLSchema#"
A = "urn:ngsild-adapter:graph:a"
B = "urn:ngsild-adapter:graph:b"
TWO_GRAPHS = f"""\
<urn:a1> <urn:p> "1"^^<{XSD}integer> <{A}> .
<urn:a2> <urn:p> "2"^^<{XSD}integer> <{A}> .
<urn:b1> <urn:p> "3"^^<{XSD}integer> <{B}> .
"""
# Runs for hours on a few hundred quads: an aggregate over a four-way cross product.
ENDLESS = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"


def nquads(count: int, graph: str = A, prefix: str = "urn:s") -> str:
    return "".join(f'<{prefix}{i}> <urn:value> "{i}.5"^^<{XSD}double> <{graph}> .\n' for i in range(count))


async def subjects(store: RdfStore, query: str, **kwargs: object) -> set[object]:
    return {row["s"] for row in await store.select(query, **kwargs)}  # type: ignore[arg-type]


async def protocol_subjects(store: RdfStore, query: str, graphs: list[str] | None) -> set[str]:
    body, content_type = await store.query_protocol(
        query, accept="application/sparql-results+json", graphs=graphs, timeout_s=10, max_results=100
    )
    assert content_type == "application/sparql-results+json"
    return {b["s"]["value"] for b in json.loads(body)["results"]["bindings"]}


async def test_adding_the_same_quads_twice_changes_nothing(store: RdfStore) -> None:
    await store.add_nquads(TWO_GRAPHS)
    await store.add_nquads(TWO_GRAPHS)
    assert await store.quad_count() == 3


async def test_a_large_text_is_added_once_however_often_it_is_written(store: RdfStore) -> None:
    text = nquads(40_000)
    assert len(text) >= BULK_LOAD_MIN_CHARS  # the embedded store takes its bulk path
    await store.add_nquads(text)
    await store.add_nquads(text)
    await store.add_nquads(nquads(10))  # and a small one, its other path
    assert await store.quad_count() == 40_000
    rows = await store.select(f"SELECT (SUM(?v) AS ?total) WHERE {{ GRAPH <{A}> {{ ?s <urn:value> ?v }} }}")
    assert rows == [{"total": sum(i + 0.5 for i in range(40_000))}]


async def test_invalid_nquads_are_refused(store: RdfStore) -> None:
    with pytest.raises(RdfStoreError):
        await store.add_nquads("<urn:a> <urn:p> not-a-term .\n")


async def test_without_graphs_the_default_graph_is_the_union_of_named_graphs(store: RdfStore) -> None:
    await store.add_nquads(TWO_GRAPHS)
    assert await subjects(store, "SELECT ?s WHERE { ?s ?p ?o }") == {"urn:a1", "urn:a2", "urn:b1"}
    assert await protocol_subjects(store, "SELECT ?s WHERE { ?s ?p ?o }", None) == {"urn:a1", "urn:a2", "urn:b1"}


@pytest.mark.parametrize(
    "query",
    [
        "SELECT ?s WHERE { ?s ?p ?o }",
        f"SELECT ?s FROM <{B}> WHERE {{ ?s ?p ?o }}",
        f"SELECT ?s WHERE {{ {{ ?s ?p ?o }} UNION {{ GRAPH <{B}> {{ ?s ?p ?o }} }} }}",
        f"SELECT ?s FROM NAMED <{B}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
        f"SELECT ?s FROM <{B}> FROM NAMED <{B}> WHERE {{ {{ ?s ?p ?o }} UNION {{ GRAPH ?g {{ ?s ?p ?o }} }} }}",
    ],
    ids=["plain", "FROM", "GRAPH", "FROM NAMED", "FROM and FROM NAMED"],
)
async def test_a_query_restricted_to_graphs_cannot_reach_others(store: RdfStore, query: str) -> None:
    await store.add_nquads(TWO_GRAPHS)
    assert await subjects(store, query, graphs=[A]) <= {"urn:a1", "urn:a2"}
    assert await protocol_subjects(store, query, [A]) <= {"urn:a1", "urn:a2"}
    # and the graph that was given is really there
    assert await subjects(store, "SELECT ?s WHERE { ?s ?p ?o }", graphs=[A]) == {"urn:a1", "urn:a2"}


async def test_graph_names_visible_to_a_restricted_query_are_the_given_ones(store: RdfStore) -> None:
    await store.add_nquads(TWO_GRAPHS)
    rows = await store.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", graphs=[B])
    assert rows == [{"g": B}]


async def test_a_query_restricted_to_no_graph_sees_nothing(store: RdfStore) -> None:
    await store.add_nquads(TWO_GRAPHS)
    query = f"SELECT ?s FROM <{A}> WHERE {{ {{ ?s ?p ?o }} UNION {{ GRAPH ?g {{ ?s ?p ?o }} }} }}"
    assert await subjects(store, query, graphs=[]) == set()
    assert await protocol_subjects(store, query, []) == set()


async def test_select_gives_python_values(store: RdfStore) -> None:
    await store.add_nquads(f"""\
<urn:t> <urn:integer> "42"^^<{XSD}integer> <{A}> .
<urn:t> <urn:unsigned> "7"^^<{XSD}unsignedShort> <{A}> .
<urn:t> <urn:double> "38.5"^^<{XSD}double> <{A}> .
<urn:t> <urn:decimal> "1.10"^^<{XSD}decimal> <{A}> .
<urn:t> <urn:boolean> "true"^^<{XSD}boolean> <{A}> .
<urn:t> <urn:dateTime> "2026-11-20T08:15:30.456789+00:00"^^<{XSD}dateTime> <{A}> .
<urn:t> <urn:string> "plain" <{A}> .
<urn:t> <urn:lang> "bonjour"@fr <{A}> .
<urn:t> <urn:iri> <urn:x> <{A}> .
<urn:t> <urn:wkt> "POINT(-1.68 48.11)"^^<http://www.opengis.net/ont/geosparql#wktLiteral> <{A}> .
<urn:t> <urn:bad> "many"^^<{XSD}integer> <{A}> .
""")
    rows = await store.select("SELECT ?p ?o ?unbound WHERE { <urn:t> ?p ?o }")
    values = {row["p"]: row["o"] for row in rows}
    expected = {
        "urn:integer": 42,
        "urn:unsigned": 7,
        "urn:double": 38.5,
        "urn:decimal": Decimal("1.10"),
        "urn:boolean": True,
        "urn:dateTime": datetime(2026, 11, 20, 8, 15, 30, 456789, tzinfo=UTC),
        "urn:string": "plain",
        "urn:lang": "bonjour",
        "urn:iri": "urn:x",
        "urn:wkt": "POINT(-1.68 48.11)",
        "urn:bad": "many",
    }
    assert values == expected
    assert {p: type(v) for p, v in values.items()} == {p: type(v) for p, v in expected.items()}
    assert all("unbound" not in row for row in rows)


async def test_select_refuses_other_query_forms(store: RdfStore) -> None:
    with pytest.raises(InvalidQuery):
        await store.select("ASK { ?s ?p ?o }")


async def test_quads_are_the_subjects_triples_in_n_triples_form(store: RdfStore) -> None:
    text = f"""\
<urn:obs> <urn:value> "38.5"^^<{XSD}double> <{A}> .
<urn:obs> <urn:label> "a \\"quoted\\"\\nline, café"@fr <{A}> .
<urn:obs> <urn:plain> "x" <{A}> .
<urn:obs> <urn:link> <urn:uplink:41> <{A}> .
<urn:dev> <urn:type> <urn:Device> <{A}> .
<urn:other> <urn:value> "1" <{A}> .
<urn:obs> <urn:value> "elsewhere" <{B}> .
"""
    await store.add_nquads(text)
    found = await store.quads(["urn:obs", "urn:dev"], A)
    assert ("<urn:obs>", "<urn:value>", f'"38.5"^^<{XSD}double>') in found
    assert ("<urn:obs>", "<urn:plain>", '"x"') in found
    parsed = {
        (str(q.subject), str(q.predicate), str(q.object))
        for q in pyoxigraph.parse(text, format=pyoxigraph.RdfFormat.N_QUADS)
        if q.graph_name == pyoxigraph.NamedNode(A) and str(q.subject) in ("<urn:obs>", "<urn:dev>")
    }
    assert found == parsed
    assert len(found) == 5
    assert await store.quads([], A) == set()


async def test_clear_graph_drops_that_graph_only(store: RdfStore) -> None:
    await store.add_nquads(TWO_GRAPHS)
    assert await protocol_subjects(store, "SELECT ?s WHERE { ?s ?p ?o }", None) == {"urn:a1", "urn:a2", "urn:b1"}
    await store.clear_graph(A)
    await store.clear_graph("urn:ngsild-adapter:graph:never-written")
    assert await store.quad_count() == 1
    assert await store.quads(["urn:a1"], A) == set()
    assert await subjects(store, "SELECT ?s WHERE { ?s ?p ?o }") == {"urn:b1"}
    assert await protocol_subjects(store, "SELECT ?s WHERE { ?s ?p ?o }", None) == {"urn:b1"}


async def test_protocol_queries_see_every_write_done_before_them(store: RdfStore) -> None:
    for i in range(3):
        await store.add_nquads(nquads(1, prefix=f"urn:w{i}-"))
        seen = await protocol_subjects(store, "SELECT ?s WHERE { ?s ?p ?o }", None)
        assert seen == {f"urn:w{j}-0" for j in range(i + 1)}


async def test_a_query_past_its_time_limit_is_stopped(store: RdfStore) -> None:
    await store.add_nquads(nquads(300))
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="timeout_s"):
        await store.query_protocol(ENDLESS, accept="text/csv", graphs=None, timeout_s=0.5, max_results=10)
    assert time.monotonic() - started < 2.5
    # the store still answers
    assert await protocol_subjects(
        store, 'SELECT ?s WHERE { ?s ?p "7.5"^^<http://www.w3.org/2001/XMLSchema#double> }', None
    ) == {"urn:s7"}


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("SELECT ?s WHERE { ?s ?p ?o }", "application/sparql-results+json"),
        ("CONSTRUCT WHERE { ?s ?p ?o }", "text/turtle"),
    ],
)
async def test_an_answer_over_max_results_is_refused(store: RdfStore, query: str, accept: str) -> None:
    await store.add_nquads(nquads(6))
    with pytest.raises(QueryTooLarge, match="max_results = 5"):
        await store.query_protocol(query, accept=accept, graphs=None, timeout_s=10, max_results=5)
    body, _ = await store.query_protocol(query + " LIMIT 5", accept=accept, graphs=None, timeout_s=10, max_results=5)
    assert body.count(b"urn:s") == 5


async def test_an_answer_format_of_another_query_form_is_refused(store: RdfStore) -> None:
    with pytest.raises(UnsupportedFormat):
        await store.query_protocol("ASK {}", accept="text/turtle", graphs=None, timeout_s=10, max_results=5)
    with pytest.raises(UnsupportedFormat):
        await store.query_protocol(
            "CONSTRUCT WHERE { ?s ?p ?o }", accept="text/csv", graphs=None, timeout_s=10, max_results=5
        )


async def test_a_query_that_does_not_parse_is_invalid(store: RdfStore) -> None:
    with pytest.raises(InvalidQuery):
        await store.query_protocol("SELEC ?s", accept="text/csv", graphs=None, timeout_s=10, max_results=5)
    with pytest.raises(InvalidQuery):
        await store.select("SELECT ?s WHERE { ?s ?p }")
