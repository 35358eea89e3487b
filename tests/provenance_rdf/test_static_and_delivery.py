"""Quads described once (devices, software, files, units) and broker deliveries."""

from __future__ import annotations

from typing import Any

import pyoxigraph
import pytest

from adapter.provenance import rdf
from tests.provenance_rdf.support import KEYS, device_iri, graph_of, log, pseudonym, receipts, records, uplink_iri

PREFIXES = """
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX nga:  <https://w3id.org/ngsild-adapter/ns#>
"""


def ask(store: pyoxigraph.Store, query: str) -> bool:
    return bool(store.query(PREFIXES + query))


def loaded(text: str) -> pyoxigraph.Store:
    store = pyoxigraph.Store()
    store.load(text.encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)
    return store


def stored(store: pyoxigraph.Store) -> set[tuple[str, str, str]]:
    return {(str(q.subject), str(q.predicate), str(q.object)) for q in store}


@pytest.mark.parametrize(("tenant", "n", "record"), records(), ids=[f"{t}-{n}" for t, n, _ in records()])
def test_static_triples_are_what_the_store_holds(tenant: str, n: int, record: dict[str, Any]) -> None:
    text = rdf.static_nquads(record, pseudonyms=KEYS)
    store = loaded(text)
    assert stored(store) == rdf.static_triples(record, pseudonyms=KEYS)
    by_graph = rdf.static_triples_by_graph(record, pseudonyms=KEYS)
    for graph, triples in by_graph.items():
        assert {
            (str(q.subject), str(q.predicate), str(q.object))
            for q in store.quads_for_pattern(None, None, None, pyoxigraph.NamedNode(graph))
        } == triples
    personal = by_graph[rdf.personal_graph_iri(tenant)]
    # what identifies the device (its devEui, its names at the network server), and nothing
    # else, is personal, on the device's real IRI; the shared graph knows its pseudonym only
    names = {"devEui", *(key for key in record["device"] if key in ("deviceId", "application"))}
    assert {p for _, p, _ in personal} == {f"<{rdf.NGA}{key}>" for key in names}
    assert {s for s, _, _ in personal} == {f"<{device_iri(tenant, record['device']['devEui'])}>"}
    shared_terms = {term for triple in by_graph[graph_of(tenant)] for term in triple}
    assert f"<{pseudonym(tenant, 'device', record['device']['devEui'])}>" in shared_terms
    assert not any(record["device"]["devEui"] in term for term in shared_terms)
    assert {str(g) for g in store.named_graphs()} <= {f"<{graph_of(tenant)}>", f"<{rdf.personal_graph_iri(tenant)}>"}
    assert rdf.static_nquads(record, pseudonyms=KEYS) == text  # the cached parts give the same text


def test_device_software_network_server_and_files(index_store: pyoxigraph.Store) -> None:
    meter = pseudonym("ville", "device", "70b3d57ed0003c01")
    assert ask(
        index_store,
        """ASK { GRAPH <urn:ngsild-adapter:graph:ville> {
        <METER> a sosa:Sensor, prov:Agent ;
            prov:actedOnBehalfOf <urn:ngsild-adapter:organization:ville> .
        <urn:ngsild-adapter:organization:ville> a prov:Organization ; nga:tenant "ville" .
        <urn:ngsild-adapter:software:0.1.1> a prov:SoftwareAgent ; nga:version "0.1.1" ; rdfs:label "ngsild-adapter" .
        <urn:ngsild-adapter:ville:lns:chirpstack-ville> a prov:SoftwareAgent ; nga:lnsKind "chirpstack" ;
            prov:actedOnBehalfOf <urn:ngsild-adapter:organization:ville> .
        <urn:ngsild-adapter:gateway:0016c001ff10b7e0> a prov:Agent, nga:Gateway ; nga:gatewayId "0016c001ff10b7e0" .
        ?codec a prov:Entity, nga:CodecFile ; nga:name "water-meter-pulse" ;
            nga:sha256 "b35ca7af5d82dbf9d1cffac2b6156c804e319c04a6de4f6609fb735e301fab43" .
        ?profile a prov:Entity, nga:ProfileFile ; nga:name "water-meter" ; nga:unit ?unit .
        ?unit nga:attribute <https://smartdatamodels.org/dataModel.WaterConsumption/waterConsumption> ; nga:unitCode "LTR" .
    }
    GRAPH <urn:ngsild-adapter:graph:ville:personal> {
        <urn:ngsild-adapter:ville:device:70b3d57ed0003c01> nga:deviceId "compteur-ecole-jules-ferry" ;
            nga:application "eau" ; nga:devEui "70b3d57ed0003c01" .
        <METER> nga:pseudonymOf <urn:ngsild-adapter:ville:device:70b3d57ed0003c01> .
    } }""".replace("METER", meter),
    )
    # a meter's devEui and name at the network server name its household: never in the shared graph
    assert not ask(
        index_store,
        """ASK { GRAPH <urn:ngsild-adapter:graph:ville> {
        ?device nga:deviceId|nga:devEui|nga:application|nga:pseudonymOf ?name } }""",
    )


def test_every_unit_of_a_record_is_reachable_from_its_profile(index_store: pyoxigraph.Store) -> None:
    for tenant, n, record in records():
        profile = next(s["profileSha256"] for s in record["steps"] if s["step"] == "map")
        for entity in record["entities"]:
            for name, attribute in entity["attributes"].items():
                if "unitCode" not in attribute:
                    continue
                iri = rdf.expand_attribute(entity["@context"], name)
                assert ask(
                    index_store,
                    f"""ASK {{ GRAPH <{graph_of(tenant)}> {{
                    <urn:ngsild-adapter:profile:{profile}> nga:unit ?u .
                    ?u nga:attribute <{iri}> ; nga:unitCode "{attribute["unitCode"]}" }} }}""",
                ), (tenant, n, name)


def test_static_quads_hold_nothing_per_uplink() -> None:
    first, second = log("ville")[0], log("ville")[6]  # same device, profile; other times and values
    second["steps"][0] = {**second["steps"][0], "codecSha256": first["steps"][0]["codecSha256"]}
    second["adapter"] = first["adapter"]
    second["gateways"] = first["gateways"]
    second["entities"] = [
        {**entity, "attributes": {k: v for k, v in entity["attributes"].items() if k in ("no2",)}}
        for entity in second["entities"]
    ]
    assert rdf.static_triples(second, pseudonyms=KEYS) <= rdf.static_triples(first, pseudonyms=KEYS)


# ------------------------------------------------------------------ deliveries


@pytest.mark.parametrize("receipt", receipts(), ids=lambda r: f"{r['tenant']}-{r['id']}")
def test_delivery_triples_are_what_the_store_holds(receipt: dict[str, Any]) -> None:
    store = loaded(rdf.delivery_nquads(receipt["tenant"], receipt))
    assert stored(store) == rdf.delivery_triples(receipt["tenant"], receipt)
    d = f"urn:ngsild-adapter:{receipt['tenant']}:delivery:{receipt['id']}"
    assert ask(
        store,
        f"""ASK {{ GRAPH <{graph_of(receipt["tenant"])}> {{
        <{d}> a prov:Activity ; prov:startedAtTime ?s ; prov:endedAtTime ?e ;
            nga:broker <{receipt["broker"]}> ; nga:httpStatus {receipt["status"]} ;
            prov:wasAssociatedWith <urn:ngsild-adapter:software:{receipt["software"]}> }} }}""",
    )
    used = store.query(PREFIXES + f"SELECT ?u WHERE {{ GRAPH ?g {{ <{d}> prov:used ?u }} }}")
    assert {s["u"].value for s in used} == {uplink_iri(receipt["tenant"], n) for n in receipt["records"]}
    refusals = store.query(
        PREFIXES
        + f"""SELECT ?u ?e ?detail WHERE {{
        GRAPH <{graph_of(receipt["tenant"])}> {{ <{d}> nga:refusal ?x . ?x nga:uplink ?u }}
        GRAPH <{rdf.personal_graph_iri(receipt["tenant"])}> {{ ?x nga:entity ?e ; nga:detail ?detail }} }}"""
    )
    assert {(s["u"].value, s["e"].value, s["detail"].value) for s in refusals} == {
        (uplink_iri(receipt["tenant"], r["record"]), r["entity"], r["detail"]) for r in receipt["refused"]
    }
    # the refused entity and the broker's words (which often repeat its id) are personal
    shared = {
        str(q.predicate)
        for q in store.quads_for_pattern(None, None, None, pyoxigraph.NamedNode(graph_of(receipt["tenant"])))
    }
    assert not shared & {f"<{rdf.NGA}entity>", f"<{rdf.NGA}detail>"}


@pytest.mark.parametrize("change", ["tenant", "id", "status", "broker", "records", "time"])
def test_a_receipt_without_the_format_is_refused(change: str) -> None:
    receipt = receipts()[1]
    tenant = "ville"
    if change == "tenant":
        tenant = "metropole"
    elif change == "id":
        receipt["id"] = "1"
    elif change == "status":
        receipt["status"] = "207"
    elif change == "broker":
        receipt["broker"] = "http://broker> <urn:x"
    elif change == "records":
        receipt["records"] = [2, -3]
    elif change == "time":
        receipt["endedAt"] = "2026-11-21T10:00:01"
    with pytest.raises(rdf.ProvenanceRecordError):
        rdf.delivery_nquads(tenant, receipt)
