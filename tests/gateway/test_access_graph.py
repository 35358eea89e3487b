"""The access records' quads are exactly what JSON-LD processing (pyld) makes of the PROV-O
document the data owner reads at /gateway/access: one description, two encodings."""

from __future__ import annotations

from datetime import UTC, datetime

from pyld import jsonld

from adapter.access.graph import access_nquads
from adapter.access.log import AccessLog, AccessRecord


def records() -> list[AccessRecord]:
    at = datetime(2026, 11, 28, 9, 30, 15, 123456, tzinfo=UTC)
    return [
        AccessRecord(
            1,
            at,
            "region",
            "read",
            "AirQualityObserved",
            "https://sso.example.org/realms/ville",
            "u-1",
            "alice",
            "ville",
            "portail",
            "urn:ngsild-adapter:agreement:schools",
            "permitted",
            "",
            "/ngsi-ld/v1/entities?type=AirQualityObserved&q=no2>40",
            ("urn:ngsi-ld:AirQualityObserved:region:1", "urn:ngsi-ld:AirQualityObserved:region:2"),
        ),
        AccessRecord(
            2,
            at,
            "region",
            "sparqlQuery",
            "graph",
            "https://sso.example.org/realms/metropole",
            "u-2",
            None,
            "metropole",
            None,
            "urn:ngsild-adapter:agreement:a, urn:ngsild-adapter:agreement:b",
            "permitted",
            'graphs "quoted"\nand a backslash \\',
            "/sparql",
            (),
        ),
        AccessRecord(
            3,
            at,
            "ville",
            "subscribe",
            "Device",
            "https://sso.example.org/realms/ville",
            "u-3",
            "bob",
            "ville",
            None,
            None,
            "refused",
            "no agreement grants subscribe",
            "/ngsi-ld/v1/subscriptions",
            (),
        ),
    ]


def pyld_quads(records: list[AccessRecord]) -> set[str]:
    quads: set[str] = set()
    for tenant in {r.tenant for r in records}:
        document = AccessLog.as_prov([r for r in records if r.tenant == tenant])
        named = {
            "@context": document["@context"],
            "@id": f"urn:ngsild-adapter:graph:{tenant}:access",
            "@graph": document["@graph"],
        }
        quads |= set(jsonld.to_rdf(named, {"format": "application/n-quads"}).splitlines())
    return quads


def test_the_quads_are_the_json_ld_document_as_rdf() -> None:
    written = access_nquads(records())
    assert set(written.splitlines()) == pyld_quads(records())
    assert len(written.splitlines()) == len(set(written.splitlines()))  # none twice


def test_an_access_to_no_collectivity_has_no_graph() -> None:
    nobody = AccessRecord(
        4,
        datetime(2026, 11, 28, tzinfo=UTC),
        "-",
        "sparqlQuery",
        "graph",
        "https://i/",
        "u",
        None,
        "eau",
        None,
        None,
        "refused",
        "no agreement opens a graph",
        "/sparql",
        (),
    )
    assert access_nquads([nobody]) == ""


def test_each_collectivity_gets_its_own_access_graph() -> None:
    lines = access_nquads(records()).splitlines()
    assert {line.rsplit(" ", 2)[1] for line in lines} == {
        "<urn:ngsild-adapter:graph:region:access>",
        "<urn:ngsild-adapter:graph:ville:access>",
    }
    assert sum("agreement>" in line for line in lines) == 3  # a SPARQL query under two agreements names both
