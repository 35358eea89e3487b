"""The full PROV-O / SOSA record of one uplink (provenance API) and its lineage summary."""

from __future__ import annotations

import json
from typing import Any

import pyoxigraph
import pytest
import rdflib

from adapter.provenance import rdf
from tests.provenance_rdf.support import (
    KEYS,
    device_iri,
    graph_of,
    log,
    receipts,
    records,
    uplink_iri,
)

PREFIXES = """
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX dcterms: <http://purl.org/dc/terms/>
PREFIX rdf:  <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX xsd:  <http://www.w3.org/2001/XMLSchema#>
PREFIX nga:  <https://w3id.org/ngsild-adapter/ns#>
"""
RECORD_IDS = [f"{t}-{n}" for t, n, _ in records()]


def ask(graph: rdflib.Graph, query: str) -> bool:
    result = graph.query(PREFIXES + query)
    assert result.askAnswer is not None
    return bool(result.askAnswer)


@pytest.fixture(scope="module")
def water() -> rdflib.Graph:
    """Record 4 of 'ville': a water meter uplink with a privacy step, delivered with one refusal."""
    return rdf.provenance_dataset(log("ville")[4], 4, receipts())


def test_is_the_tenant_graph_with_the_prefixes(water: rdflib.Graph) -> None:
    assert str(water.identifier) == graph_of("ville")
    assert dict(water.namespaces())["prov"] == rdflib.URIRef("http://www.w3.org/ns/prov#")
    assert len(water) == rdf.provenance_nquads(log("ville")[4], 4, receipts()).count("\n")


def test_raw_uplink_device_collectivity_gateways_and_network_server(water: rdflib.Graph) -> None:
    u = uplink_iri("ville", 4)
    record = log("ville")[4]
    assert ask(
        water,
        f"""ASK {{
        <{u}> a prov:Entity, nga:Uplink ;
            nga:payloadSha256 "{record["uplink"]["payloadSha256"]}" ;
            nga:fCnt 5021 ; nga:fPort 1 ; nga:size 9 ; nga:formatVersion 1 ; nga:chainSeq 0 ;
            nga:recordSha256 ?digest ;
            prov:generatedAtTime ?generated ;
            prov:wasAttributedTo <{device_iri("ville", "70b3d57ed0003c01")}> ;
            prov:wasGeneratedBy ?reception ;
            nga:reception ?r .
        <{device_iri("ville", "70b3d57ed0003c01")}> a sosa:Sensor, prov:Agent ;
            prov:actedOnBehalfOf ?org .
        ?org a prov:Organization .
        ?reception a prov:Activity ; prov:endedAtTime ?received ;
            prov:wasAssociatedWith <urn:ngsild-adapter:gateway:0016c001ff10a235>, ?lns .
        ?lns a prov:SoftwareAgent ; nga:lnsKind "chirpstack" ; prov:actedOnBehalfOf ?org .
        ?r a nga:Reception ; nga:gateway <urn:ngsild-adapter:gateway:0016c001ff10a235> ;
           nga:rssi -105 ; nga:snr ?snr .
        <urn:ngsild-adapter:gateway:0016c001ff10a235> a prov:Agent .
        FILTER(?snr = 2.5 && ?generated = "2026-11-21T10:00:00.25Z"^^xsd:dateTime)
    }}""",
    )
    assert not ask(water, f"ASK {{ <{u}> nga:chainPrev ?p }}")  # the device's first record


def test_each_step_is_an_activity_chained_to_the_previous(water: rdflib.Graph) -> None:
    u = uplink_iri("ville", 4)
    a = f"{u}:processing"
    assert ask(
        water,
        f"""ASK {{
        <{a}> a prov:Activity ; prov:used <{u}> ; prov:startedAtTime ?s ; prov:endedAtTime ?e ;
              prov:wasAssociatedWith ?software .
        ?software a prov:SoftwareAgent ; nga:version "0.1.1" .
        <{a}:decode> a prov:Activity ; dcterms:isPartOf <{a}> ; nga:step "decode" ;
            prov:used <{u}>, ?codec ; prov:wasAssociatedWith ?software ;
            prov:startedAtTime ?ds ; prov:endedAtTime ?de .
        FILTER(?ds = "2026-11-21T10:00:00.251Z"^^xsd:dateTime && ?de = "2026-11-21T10:00:00.254Z"^^xsd:dateTime)
        ?codec a nga:CodecFile ; nga:name "water-meter-pulse" ;
            nga:sha256 "b35ca7af5d82dbf9d1cffac2b6156c804e319c04a6de4f6609fb735e301fab43" .
        <{a}:privacy> a prov:Activity ; dcterms:isPartOf <{a}> ; prov:wasInformedBy <{a}:decode> ;
            nga:privacyRule "drop:instant_flow_lph", "coarsen:people_count:5" ;
            prov:startedAtTime ?ps ; prov:endedAtTime ?pe .
        <{a}:map> a prov:Activity ; dcterms:isPartOf <{a}> ; prov:wasInformedBy <{a}:privacy> ;
            prov:used ?profile ; prov:startedAtTime ?ms ; prov:endedAtTime ?me .
        ?profile a nga:ProfileFile ; nga:name "water-meter" ;
            nga:sha256 "6d01e40552ad72fad1acb9ab16ba7761badf152d18d17c7eeb8113665e89990c" .
    }}""",
    )


def test_each_attribute_value_is_an_entity_and_an_observation(water: rdflib.Graph) -> None:
    u = uplink_iri("ville", 4)
    v = f"{u}:obs:0:waterConsumption"
    assert ask(
        water,
        f"""ASK {{
        <{v}> a prov:Entity, sosa:Observation ;
            prov:wasDerivedFrom <{u}> ;
            prov:wasGeneratedBy <{u}:processing:map> ;
            prov:generatedAtTime ?generated ;
            nga:entity <urn:ngsi-ld:WaterConsumptionObserved:ville:70b3d57ed0003c01> ;
            nga:attribute <https://smartdatamodels.org/dataModel.WaterConsumption/waterConsumption> ;
            nga:attributeName "waterConsumption" ;
            nga:observedAt ?observed ;
            prov:value 123456 ;
            nga:unitCode "LTR" ;
            sosa:observedProperty <https://smartdatamodels.org/dataModel.WaterConsumption/waterConsumption> ;
            sosa:hasFeatureOfInterest <urn:ngsi-ld:WaterConsumptionObserved:ville:70b3d57ed0003c01> ;
            sosa:hasSimpleResult 123456 ;
            sosa:madeBySensor <{device_iri("ville", "70b3d57ed0003c01")}> ;
            sosa:resultTime ?observed .
        FILTER(?generated = "2026-11-21T10:00:00.2548Z"^^xsd:dateTime && ?observed = "2026-11-21T10:00:00Z"^^xsd:dateTime)
        <{u}:obs:0> a sosa:ObservationCollection ; sosa:hasMember <{v}> ;
            nga:entityType <https://smartdatamodels.org/dataModel.WaterConsumption/WaterConsumptionObserved> .
        <{u}:obs:0:refDevice> a prov:Entity ; nga:object <urn:ngsi-ld:Device:ville:70b3d57ed0003c01> .
    }}""",
    )
    assert not ask(water, f"ASK {{ <{u}:obs:0:refDevice> a sosa:Observation }}")  # a Relationship is no observation


@pytest.mark.parametrize(("tenant", "n", "record"), records(), ids=RECORD_IDS)
def test_every_attribute_of_the_record_has_its_value_node(tenant: str, n: int, record: dict[str, Any]) -> None:
    graph = rdf.provenance_dataset(record, n, receipts())
    names = {
        (str(row[0]), str(row[1]))
        for row in graph.query(
            PREFIXES
            + """SELECT ?e ?name WHERE {
            ?v a prov:Entity ; nga:entity ?e ; nga:attributeName ?name ; prov:wasDerivedFrom ?u ;
               prov:wasGeneratedBy ?map ; prov:generatedAtTime ?t ; nga:observedAt ?o .
            ?map a prov:Activity . }"""
        )
    }
    assert names == {(e["id"], name) for e in record["entities"] for name in e["attributes"]}


def test_structured_values_are_json_literals() -> None:
    graph = rdf.provenance_dataset(log("ville")[1], 1)
    location = rdflib.URIRef(f"{uplink_iri('ville', 1)}:obs:0:location")
    (value,) = graph.objects(location, rdflib.URIRef("http://www.w3.org/ns/prov#value"))
    assert isinstance(value, rdflib.Literal)
    assert value.datatype == rdflib.URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON")
    assert json.loads(str(value)) == {"type": "Point", "coordinates": [-1.675, 48.114]}


def test_deliveries_of_the_record_with_the_broker_answer(water: rdflib.Graph) -> None:
    u = uplink_iri("ville", 4)
    assert ask(
        water,
        f"""ASK {{
        <urn:ngsild-adapter:ville:delivery:1> a prov:Activity ;
            prov:used <{u}>, <{u}:obs:1:batteryLevel> ;
            prov:wasInformedBy <{u}:processing> ;
            prov:startedAtTime ?s ; prov:endedAtTime ?e ;
            nga:broker <http://orion-ld.ville.example:1026/ngsi-ld/v1/entityOperations/upsert> ;
            nga:httpStatus 207 ;
            nga:refusal ?x .
        ?x nga:uplink <{u}> ; nga:entity <urn:ngsi-ld:Device:ville:70b3d57ed0003c01> ; nga:detail ?detail .
    }}""",
    )
    assert not ask(water, "ASK { <urn:ngsild-adapter:ville:delivery:0> ?p ?o }")  # did not carry record 4


def test_status_record_first_step_uses_the_event() -> None:
    graph = rdf.provenance_dataset(log("ville")[5], 5, receipts())
    u = uplink_iri("ville", 5)
    assert ask(
        graph,
        f"""ASK {{ <{u}> a nga:DeviceStatus ; prov:generatedAtTime ?t .
        <{u}:processing:map> prov:used <{u}> . }}""",
    )
    assert not ask(graph, f"ASK {{ <{u}> a nga:Uplink }}")
    assert ask(graph, "ASK { ?d a prov:Activity ; nga:httpStatus 503 . ?d2 nga:httpStatus 201 }")


@pytest.mark.parametrize(("tenant", "n", "record"), records(), ids=RECORD_IDS)
def test_full_record_holds_the_lean_and_static_quads(tenant: str, n: int, record: dict[str, Any]) -> None:
    store = pyoxigraph.Store()
    store.load(rdf.provenance_nquads(record, n, receipts()).encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)
    held = {(str(q.subject), str(q.predicate), str(q.object)) for q in store}
    # The full record goes to the collectivity's own readers: it names devices and entities by
    # their real IRIs. With each pseudonym read back through its link, the index is in it.
    lean = rdf.index_triples(record, n, pseudonyms=KEYS) | rdf.static_triples(record, pseudonyms=KEYS)
    links = {s: o for s, p, o in lean if p == f"<{rdf.NGA}pseudonymOf>"}
    assert links, "the index names the device and entities by pseudonyms"
    real = {(links.get(s, s), p, links.get(o, o)) for s, p, o in lean if p != f"<{rdf.NGA}pseudonymOf>"}
    assert real <= held
    assert not any("pseudonym" in term for triple in held for term in triple)


def test_serialises_as_turtle_and_json_ld(water: rdflib.Graph) -> None:
    turtle = water.serialize(format="turtle")
    assert "prov:wasDerivedFrom" in turtle
    again = rdflib.Graph().parse(data=turtle, format="turtle")
    assert len(again) == len(water)
    document = json.loads(water.serialize(format="json-ld"))
    assert any("http://www.w3.org/ns/prov#wasDerivedFrom" in node for node in document)


# ------------------------------------------------------------------ lineage summary


def test_lineage_from_raw_bytes_to_broker() -> None:
    record = log("ville")[4]
    summary = rdf.lineage(record, 4, "urn:ngsi-ld:Device:ville:70b3d57ed0003c01", "batteryLevel", receipts())
    json.dumps(summary)  # plain JSON
    assert summary["value"] == {
        "node": f"{uplink_iri('ville', 4)}:obs:1:batteryLevel",
        "observation": f"{uplink_iri('ville', 4)}:obs:1",
        "entity": "urn:ngsi-ld:Device:ville:70b3d57ed0003c01",
        "entityType": "Device",
        "attribute": "batteryLevel",
        "attributeIri": "https://smartdatamodels.org/dataModel.Device/batteryLevel",
        "observedAt": record["observedAt"],
        "value": 0.91,
        "unitCode": "C62",
    }
    assert summary["uplink"]["payloadSha256"] == record["uplink"]["payloadSha256"]
    assert summary["uplink"]["device"]["devEui"] == "70b3d57ed0003c01"
    assert summary["gateways"] == [
        {
            "iri": "urn:ngsild-adapter:gateway:0016c001ff10a235",
            "id": "0016c001ff10a235",
            "rssi": -105,
            "snr": 2.5,
        }
    ]
    assert [s["step"] for s in summary["steps"]] == ["decode", "privacy", "map"]
    assert summary["steps"][0]["codecIri"] == f"urn:ngsild-adapter:codec:{record['steps'][0]['codecSha256']}"
    assert summary["steps"][1]["rules"] == ["drop:instant_flow_lph", "coarsen:people_count:5"]
    assert summary["software"]["version"] == "0.1.1"
    (delivery,) = summary["deliveries"]
    assert delivery["status"] == 207 and delivery["accepted"] is False
    assert delivery["detail"] == receipts()[1]["refused"][0]["detail"]


def test_lineage_of_a_retried_delivery_and_by_iri() -> None:
    record = log("ville")[6]
    by_name = rdf.lineage(record, 6, "urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01", "no2", receipts())
    by_iri = rdf.lineage(
        record,
        6,
        "urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01",
        "https://smartdatamodels.org/dataModel.Environment/no2",
        receipts(),
    )
    assert by_name == by_iri
    assert [(d["id"], d["status"], d["accepted"]) for d in by_name["deliveries"]] == [(2, 503, True), (3, 201, True)]
    assert [g["id"] for g in by_name["gateways"]] == ["0016c001ff10a235", "0016c001ff10b7e0"]
    own = rdf.lineage(record, 6, "urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01", "pm25")
    assert own["value"]["observedAt"] == "2026-11-21T08:10:00Z" and own["deliveries"] == []


@pytest.mark.parametrize(
    ("entity", "attribute"),
    [
        ("urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01", "o3"),
        ("urn:ngsi-ld:AirQualityObserved:ville:nowhere", "no2"),
    ],
)
def test_lineage_of_a_value_not_in_the_record(entity: str, attribute: str) -> None:
    with pytest.raises(rdf.ValueNotInRecord):
        rdf.lineage(log("ville")[6], 6, entity, attribute)


def test_a_malformed_receipt_is_refused() -> None:
    broken = receipts()
    broken[1]["endedAt"] = "soon"
    with pytest.raises(rdf.ProvenanceRecordError):
        rdf.provenance_dataset(log("ville")[4], 4, broken)
    with pytest.raises(rdf.ProvenanceRecordError):
        rdf.lineage(log("ville")[4], 4, "urn:ngsi-ld:Device:ville:70b3d57ed0003c01", "rssi", broken)
    with pytest.raises(rdf.ProvenanceRecordError):
        rdf.lineage(log("ville")[4], 4, "urn:ngsi-ld:Device:ville:70b3d57ed0003c01", "rssi", [{"tenant": "ville"}])
