"""The lean index: its PROV-O shape, its size, and that it is a pure, store-exact function of the record."""

from __future__ import annotations

import copy
import json
import math
import random
import re
from typing import Any

import pyoxigraph
import pytest

from adapter.provenance import rdf
from adapter.provenance.integrity.canonical import canonicalize
from tests.provenance_rdf.support import (
    KEYS,
    device_iri,
    graph_of,
    indexed_values,
    log,
    personal_of,
    pseudonym,
    real_identifiers,
    records,
    uplink_iri,
    utc,
)

PREFIXES = """
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX nga:  <https://w3id.org/ngsild-adapter/ns#>
"""
ENVIRONMENT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
ADAPTER = "https://w3id.org/ngsild-adapter/context.jsonld"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
RECORD_IDS = [f"{tenant}-{n}" for tenant, n, _ in records()]


def ask(store: pyoxigraph.Store, query: str) -> bool:
    result = store.query(PREFIXES + query)
    assert isinstance(result, pyoxigraph.QueryBoolean)
    return bool(result)


def stored_triples(store: pyoxigraph.Store, graph: str) -> set[tuple[str, str, str]]:
    return {
        (str(q.subject), str(q.predicate), str(q.object))
        for q in store.quads_for_pattern(None, None, None, pyoxigraph.NamedNode(graph))
    }


def loaded(text: str, store: pyoxigraph.Store | None = None) -> pyoxigraph.Store:
    store = store if store is not None else pyoxigraph.Store()
    store.load(text.encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)
    return store


def pseudonymised(record: dict[str, Any]) -> set[str]:
    """The IRIs of broker entities a record names (entity ids, Relationship targets): each has a pseudonym."""
    found = set()
    for entity in record["entities"]:
        found.add(entity["id"])
        for attribute in entity["attributes"].values():
            target = attribute.get("object")
            found.update(target if isinstance(target, list) else [target] if isinstance(target, str) else [])
    return found


def expected_count(record: dict[str, Any]) -> int:
    """The quad count the module docstring documents, restated."""
    count = 3 + (2 if record["recordType"] == "uplink" else 1)
    for gateway in record["gateways"]:
        count += 2 + (gateway["rssi"] is not None) + (gateway["snr"] is not None)
    count += 2 + 2 * bool(record["steps"])
    for step in record["steps"]:
        count += {"decode": 1, "map": 1}.get(step["step"], 0) + len(step.get("rules", ()))
    count += 3 * len(record["entities"])
    for value in indexed_values(record["tenant"], 0, record):
        count += 1 + 3 * (value.observed_at != utc(record["observedAt"]))
    return count + 1 + len(pseudonymised(record))  # a link per pseudonym: the device's, each entity's


def docs_sample() -> dict[str, Any]:
    """The record of docs/provenance.md, with real digests and times in place of the ellipses."""
    sha = "3b1e" + "0" * 60
    return {
        "recordType": "uplink",
        "formatVersion": 1,
        "tenant": "ville",
        "adapter": {"software": "ngsild-adapter", "version": "0.1.0"},
        "device": {"devEui": "70b3d57ed0001a01", "deviceId": "aq-rue-de-la-paix", "application": "air"},
        "chain": {"seq": 41, "prev": "9f2c" + "0" * 60},
        "lns": {"kind": "chirpstack", "connection": "chirpstack-ville"},
        "uplink": {
            "payloadSha256": sha,
            "size": 11,
            "fCnt": 1234,
            "fPort": 2,
            "receivedAt": "2026-11-20T08:15:30.456789+00:00",
        },
        "gateways": [{"id": "0016c001ff10a235", "rssi": -97, "snr": 7.5}],
        "steps": [
            {
                "step": "decode",
                "codec": "cayenne-lpp",
                "codecSha256": sha,
                "startedAt": "2026-11-20T08:15:30.457+00:00",
                "endedAt": "2026-11-20T08:15:30.458+00:00",
            },
            {
                "step": "privacy",
                "rules": ["coarsen:location"],
                "startedAt": "2026-11-20T08:15:30.458+00:00",
                "endedAt": "2026-11-20T08:15:30.459+00:00",
            },
            {
                "step": "map",
                "profile": "air-quality",
                "profileSha256": sha,
                "startedAt": "2026-11-20T08:15:30.459+00:00",
                "endedAt": "2026-11-20T08:15:30.460+00:00",
            },
        ],
        "observedAt": "2026-11-20T08:15:30.123000+00:00",
        "entities": [
            {
                "id": "urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01",
                "type": "AirQualityObserved",
                "@context": [ENVIRONMENT, ADAPTER, CORE],
                "attributes": {
                    "no2": {"value": 38.5, "unitCode": "GQ"},
                    "refDevice": {"object": "urn:ngsi-ld:Device:ville:70b3d57ed0001a01"},
                    "location": {"value": {"type": "Point", "coordinates": [-1.6794, 48.1109]}},
                },
            }
        ],
    }


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize(("tenant", "n", "record"), records(), ids=RECORD_IDS)
def test_index_triples_are_what_the_store_holds(tenant: str, n: int, record: dict[str, Any]) -> None:
    text = rdf.index_nquads(record, n, pseudonyms=KEYS)
    store = loaded(text)
    by_graph = rdf.index_triples_by_graph(record, n, pseudonyms=KEYS)
    for graph, triples in by_graph.items():
        assert stored_triples(store, graph) == triples
    assert set().union(*by_graph.values()) == rdf.index_triples(record, n, pseudonyms=KEYS)
    assert len(store) == text.count("\n") == len(rdf.index_triples(record, n, pseudonyms=KEYS))  # no quad twice
    # the personal graph: the pseudonyms' links (and the digest and counter of an uplink)
    assert {str(g) for g in store.named_graphs()} == {f"<{graph_of(tenant)}>", f"<{personal_of(tenant)}>"}


@pytest.mark.parametrize(("tenant", "n", "record"), records(), ids=RECORD_IDS)
def test_indexing_again_adds_nothing(tenant: str, n: int, record: dict[str, Any]) -> None:
    store = loaded(rdf.index_nquads(record, n, pseudonyms=KEYS) + rdf.static_nquads(record, pseudonyms=KEYS))
    size = len(store)
    loaded(
        rdf.index_nquads(copy.deepcopy(record), n, pseudonyms=KEYS) + rdf.static_nquads(record, pseudonyms=KEYS), store
    )
    assert len(store) == size
    assert rdf.index_nquads(record, n, pseudonyms=KEYS) == rdf.index_nquads(copy.deepcopy(record), n, pseudonyms=KEYS)


@pytest.mark.parametrize(("tenant", "n", "record"), records(), ids=RECORD_IDS)
def test_same_quads_after_the_canonical_json_round_trip(tenant: str, n: int, record: dict[str, Any]) -> None:
    # The verifier recomputes from the record read back from the log, where 52.0 became 52.
    read_back = json.loads(canonicalize(record))
    assert rdf.index_nquads(read_back, n, pseudonyms=KEYS) == rdf.index_nquads(record, n, pseudonyms=KEYS)
    assert rdf.static_nquads(read_back, pseudonyms=KEYS) == rdf.static_nquads(record, pseudonyms=KEYS)


def test_no_blank_nodes(index_store: pyoxigraph.Store) -> None:
    assert not ask(index_store, "ASK { GRAPH ?g { ?s ?p ?o FILTER(isBlank(?s) || isBlank(?o)) } }")
    assert not ask(index_store, "ASK { ?s ?p ?o }")  # nothing in the default graph


def test_literals_are_written_as_oxigraph_stores_them() -> None:
    """Doubles of every magnitude, awkward strings and times in any offset survive a store round trip."""
    rng = random.Random(20261120)
    floats = [rng.uniform(-1, 1) * 10 ** rng.randint(-12, 24) for _ in range(300)]
    floats += [
        0.1 + 0.2,
        1e-7,
        1.5e-5,
        123456.789,
        9007199254740993.0,
        1e16,
        2.5e22,
        -0.0,
        5e-324,
        1.7976931348623157e308,
    ]
    strings = ["", "é", 'a"b\\c', "\t\n\r\b\f", "\x00\x01\x1f\x7f", "\ufffe\uffff", "😀 \u2028 \xa0", "x" * 500]
    times = [
        "2026-11-20T08:15:30+00:00",
        "2026-11-20T08:15:30.100000+00:00",
        "2026-11-20T08:15:30.000001Z",
        "2026-11-21T00:30:00+01:00",
        "2026-11-20T08:15:30.5-05:30",
        "2024-02-29T23:59:59.999999+14:00",
    ]
    attributes: dict[str, Any] = {}
    for i, number in enumerate(floats):
        attributes[f"f{i}"] = {"value": number}
    for i, text in enumerate(strings):
        attributes[f"s{i}"] = {"value": text}
    for i, time in enumerate(times):
        attributes[f"t{i}"] = {"value": 1, "observedAt": time}
    attributes.update({"yes": {"value": True}, "no": {"value": False}, "big": {"value": 2**70}, "neg": {"value": -7}})
    record = log("ville")[0]
    record["entities"] = [{"id": "urn:x:e", "type": "Thing", "@context": [CORE], "attributes": attributes}]
    record["observedAt"] = times[3]
    record["uplink"]["receivedAt"] = times[4]
    store = loaded(rdf.index_nquads(record, 7, pseudonyms=KEYS))
    assert stored_triples(store, graph_of("ville")) | stored_triples(store, personal_of("ville")) == rdf.index_triples(
        record, 7, pseudonyms=KEYS
    )
    values = {
        str(q.predicate).rsplit("/", 1)[-1][:-1]: q.object
        for q in store.quads_for_pattern(None, None, None, None)
        if "default-context" in str(q.predicate)
    }
    for i, number in enumerate(floats):
        assert float(values[f"f{i}"].value) == number or (number == 0 and float(values[f"f{i}"].value) == 0)
    for i, text in enumerate(strings):
        assert values[f"s{i}"].value == text


def test_times_are_utc() -> None:
    record = log("ville")[3]  # observed at 00:30 on the 21st in Paris
    triples = rdf.index_triples(record, 3, pseudonyms=KEYS)
    times = {o for _, p, o in triples if p == "<http://www.w3.org/ns/sosa/resultTime>"}
    assert times == {'"2026-11-20T23:30:00Z"^^<http://www.w3.org/2001/XMLSchema#dateTime>'}


# ------------------------------------------------------------------ size


def test_typical_air_quality_uplink_stays_lean() -> None:
    record = log("ville")[0]  # 2 entities (8 measured values), 1 gateway, decode + map
    assert len(record["entities"]) == 2 and len(record["gateways"]) == 1
    count = rdf.index_nquads(record, 0, pseudonyms=KEYS).count("\n")
    assert count <= 32, f"the lean index of a typical air-quality uplink grew to {count} quads"
    assert f"**{count}**" in (rdf.__doc__ or ""), "the module docstring states the count"


def test_docs_sample_quad_count_is_the_documented_one() -> None:
    count = rdf.index_nquads(docs_sample(), 41, pseudonyms=KEYS).count("\n")
    assert count == expected_count(docs_sample())
    assert f"**{count}**" in (rdf.__doc__ or "")


@pytest.mark.parametrize(("tenant", "n", "record"), records(), ids=RECORD_IDS)
def test_quad_count_follows_the_documented_formula(tenant: str, n: int, record: dict[str, Any]) -> None:
    assert len(rdf.index_triples(record, n, pseudonyms=KEYS)) == expected_count(record)


# ------------------------------------------------------------------ shape


def test_every_uplink_is_an_entity_attributed_to_a_sensor_of_its_collectivity(index_store: pyoxigraph.Store) -> None:
    assert not ask(
        index_store,
        """ASK { GRAPH ?g {
        ?u prov:generatedAtTime ?t .
        FILTER NOT EXISTS {
          ?u a prov:Entity ; prov:wasAttributedTo ?d .
          ?d a sosa:Sensor, prov:Agent ; prov:actedOnBehalfOf ?org .
          ?org a prov:Organization .
        } } }""",
    )
    for tenant, n, record in records():
        u = uplink_iri(tenant, n)
        d = pseudonym(tenant, "device", record["device"]["devEui"])
        assert ask(
            index_store,
            f"""ASK {{ GRAPH <{graph_of(tenant)}> {{
            <{u}> prov:wasAttributedTo <{d}> .
            <{d}> prov:actedOnBehalfOf <urn:ngsild-adapter:organization:{tenant}> }}
            GRAPH <{personal_of(tenant)}> {{
            <{d}> nga:pseudonymOf <{device_iri(tenant, record["device"]["devEui"])}> }} }}""",
        )


def test_uplink_digest_counter_and_gateways(index_store: pyoxigraph.Store) -> None:
    for tenant, n, record in records():
        u = uplink_iri(tenant, n)
        if record["recordType"] != "uplink":
            continue
        # personal: a short payload is found again from its digest, and consecutive frame
        # counters link a device's records across a key rotation
        assert ask(
            index_store,
            f"""ASK {{ GRAPH <{personal_of(tenant)}> {{
            <{u}> nga:payloadSha256 "{record["uplink"]["payloadSha256"]}" ; nga:fCnt {record["uplink"]["fCnt"]} }} }}""",
        )
        assert not ask(
            index_store, f"""ASK {{ GRAPH <{graph_of(tenant)}> {{ <{u}> nga:payloadSha256|nga:fCnt ?x }} }}"""
        )
        for gateway in record["gateways"]:
            rssi = (
                ""
                if gateway["rssi"] is None
                else f"FILTER EXISTS {{ ?r nga:rssi ?rssi FILTER(?rssi = {gateway['rssi']}) }}"
            )
            no_rssi = "FILTER NOT EXISTS { ?r nga:rssi ?x }" if gateway["rssi"] is None else ""
            assert ask(
                index_store,
                f"""ASK {{ GRAPH <{graph_of(tenant)}> {{
                <{u}> nga:reception ?r . ?r nga:gateway <urn:ngsild-adapter:gateway:{gateway["id"]}> ;
                nga:snr ?snr . FILTER(?snr = {gateway["snr"]}) {rssi} {no_rssi} }} }}""",
            )


def test_status_record_shape(index_store: pyoxigraph.Store) -> None:
    ((tenant, n, record),) = [r for r in records() if r[2]["recordType"] == "status"]
    u = uplink_iri(tenant, n)
    assert ask(index_store, f"ASK {{ GRAPH ?g {{ <{u}> a prov:Entity, nga:DeviceStatus ; prov:generatedAtTime ?t }} }}")
    assert not ask(index_store, f"ASK {{ GRAPH ?g {{ <{u}> nga:payloadSha256|nga:fCnt|nga:reception ?x }} }}")
    assert not ask(index_store, f"ASK {{ GRAPH ?g {{ <{u}:processing> nga:codecFile ?c }} }}")


def test_processing_links_software_codec_profile_and_rules(index_store: pyoxigraph.Store) -> None:
    for tenant, n, record in records():
        a = f"{uplink_iri(tenant, n)}:processing"
        steps = {s["step"]: s for s in record["steps"]}
        assert ask(
            index_store,
            f"""ASK {{ GRAPH <{graph_of(tenant)}> {{
            <{a}> prov:used <{uplink_iri(tenant, n)}> ;
                  prov:wasAssociatedWith <urn:ngsild-adapter:software:{record["adapter"]["version"]}> ;
                  nga:profileFile <urn:ngsild-adapter:profile:{steps["map"]["profileSha256"]}> ;
                  prov:startedAtTime ?start ; prov:endedAtTime ?end .
            FILTER(?start = "{record["steps"][0]["startedAt"]}"^^<http://www.w3.org/2001/XMLSchema#dateTime>
                   && ?end = "{record["steps"][-1]["endedAt"]}"^^<http://www.w3.org/2001/XMLSchema#dateTime>) }} }}""",
        )
        if "decode" in steps:
            assert ask(
                index_store,
                f"""ASK {{ GRAPH ?g {{ <{a}> nga:codecFile ?c .
                ?c a nga:CodecFile ; nga:sha256 "{steps["decode"]["codecSha256"]}" ; nga:name "{steps["decode"]["codec"]}" }} }}""",
            )
        rules = index_store.query(PREFIXES + f"SELECT ?r WHERE {{ GRAPH ?g {{ <{a}> nga:privacyRule ?r }} }}")
        assert {s["r"].value for s in rules} == set(steps.get("privacy", {}).get("rules", []))


def test_each_indexed_value_is_one_quad_of_its_observation(index_store: pyoxigraph.Store) -> None:
    for tenant, n, record in records():
        expected = {
            (
                pseudonym(tenant, "entity", v.entity),
                v.name,
                pyoxigraph.NamedNode(pseudonym(tenant, "entity", v.term.value))
                if isinstance(v.term, pyoxigraph.NamedNode)
                else v.term,
                v.observed_at,
            )
            for v in indexed_values(tenant, n, record)
        }
        rows = index_store.query(
            PREFIXES
            + f"""
            SELECT ?entity ?attribute ?value ?time WHERE {{ GRAPH <{graph_of(tenant)}> {{
              ?o prov:wasGeneratedBy <{uplink_iri(tenant, n)}:processing> ;
                 sosa:hasFeatureOfInterest ?entity ; sosa:resultTime ?time ; ?attribute ?value .
              FILTER(?attribute NOT IN (sosa:hasFeatureOfInterest, sosa:resultTime, prov:wasGeneratedBy)) }} }}"""
        )
        found = set()
        for row in rows:
            name = re.split(r"[/#]", row["attribute"].value)[-1]
            found.add((row["entity"].value, name, row["value"], utc(row["time"].value)))
        assert found == expected, f"{tenant} record {n}"


def test_attribute_names_are_expanded_with_the_entity_context() -> None:
    triples = rdf.index_triples(log("ville")[0], 0, pseudonyms=KEYS)
    predicates = {p for _, p, _ in triples}
    assert "<https://smartdatamodels.org/dataModel.Environment/no2>" in predicates
    assert "<https://smartdatamodels.org/dataModel.Device/rssi>" in predicates
    assert (
        rdf.expand_attribute([ENVIRONMENT, ADAPTER, CORE], "no2")
        == "https://smartdatamodels.org/dataModel.Environment/no2"
    )
    assert (
        rdf.expand_attribute([ENVIRONMENT, ADAPTER, CORE], "linkMargin")
        == "https://w3id.org/ngsild-adapter/ns#linkMargin"
    )
    assert rdf.expand_attribute(None, "anything") == "https://uri.etsi.org/ngsi-ld/default-context/anything"


def test_geoproperties_and_structured_values_are_not_indexed() -> None:
    record = docs_sample()
    text = rdf.index_nquads(record, 41, pseudonyms=KEYS)
    assert "ngsi-ld/location>" not in text and "Point" not in text and "coordinates" not in text
    target = pseudonym("ville", "entity", "urn:ngsi-ld:Device:ville:70b3d57ed0001a01")
    assert f"<https://smartdatamodels.org/dataModel.Environment/refDevice> <{target}>" in text


# ------------------------------------------------------------------ refusals


def _broken(change: str) -> dict[str, Any]:
    record = docs_sample()
    if change == "version":
        record["formatVersion"] = 2
    elif change == "type":
        record["recordType"] = "join"
    elif change == "tenant":
        record["tenant"] = "Ville de Rennes"
    elif change == "no-tenant":
        del record["tenant"]
    elif change == "nan":
        record["entities"][0]["attributes"]["no2"]["value"] = math.nan
    elif change == "naive-time":
        record["observedAt"] = "2026-11-20T08:15:30"
    elif change == "bad-time":
        record["uplink"]["receivedAt"] = "yesterday"
    elif change == "entity-id":
        record["entities"][0]["id"] = "AirQualityObserved 1"
    elif change == "entity-id-injection":
        record["entities"][0]["id"] = "urn:x> <urn:y> <urn:z"
    elif change == "object":
        record["entities"][0]["attributes"]["refDevice"]["object"] = "urn:a:%zz"
    elif change == "digest":
        record["uplink"]["payloadSha256"] = "not-hex"
    elif change == "unknown-context":
        record["entities"][0]["@context"] = ["https://example.org/remote-context.jsonld"]
    elif change == "attributes":
        record["entities"][0]["attributes"]["no2"] = 38.5
    elif change == "surrogate":
        record["entities"][0]["attributes"]["no2"]["value"] = "\ud800"
    return record


@pytest.mark.parametrize(
    "change",
    [
        "version",
        "type",
        "tenant",
        "no-tenant",
        "nan",
        "naive-time",
        "bad-time",
        "entity-id",
        "entity-id-injection",
        "object",
        "digest",
        "unknown-context",
        "attributes",
        "surrogate",
    ],
)
def test_a_record_without_the_format_is_refused(change: str) -> None:
    with pytest.raises(rdf.ProvenanceRecordError):
        rdf.index_nquads(_broken(change), 41, pseudonyms=KEYS)


@pytest.mark.parametrize("index", [-1, True, "41", 4.0])
def test_a_bad_record_number_is_refused(index: Any) -> None:
    with pytest.raises(rdf.ProvenanceRecordError):
        rdf.index_nquads(docs_sample(), index, pseudonyms=KEYS)


def test_ids_that_are_not_iri_safe_are_percent_encoded() -> None:
    record = docs_sample()
    record["gateways"][0]["id"] = "gw <1>"
    record["device"]["devEui"] = "a b"
    store = loaded(rdf.index_nquads(record, 41, pseudonyms=KEYS) + rdf.static_nquads(record, pseudonyms=KEYS))
    assert ask(
        store,
        "ASK { GRAPH ?g { ?r nga:gateway <urn:ngsild-adapter:gateway:gw%20%3C1%3E> } "
        'GRAPH ?p { <urn:ngsild-adapter:ville:device:a%20b> nga:devEui "a b" } }',
    )


# ------------------------------------------------------------------ personal graph


PERSONAL = frozenset({"refDevice", "name", "pm25"})


@pytest.mark.parametrize(("tenant", "n", "record"), records(), ids=RECORD_IDS)
def test_personal_attributes_go_to_the_personal_graph_only(tenant: str, n: int, record: dict[str, Any]) -> None:
    store = loaded(rdf.index_nquads(record, n, pseudonyms=KEYS, personal=PERSONAL))
    by_graph = rdf.index_triples_by_graph(record, n, pseudonyms=KEYS, personal=PERSONAL)
    for graph, triples in by_graph.items():
        assert stored_triples(store, graph) == triples
    # moved (a personal Relationship keeps its real target), none lost or added
    assert real_identifiers(set().union(*by_graph.values())) == real_identifiers(
        rdf.index_triples(record, n, pseudonyms=KEYS)
    )
    shared = stored_triples(store, graph_of(tenant))
    personal = stored_triples(store, rdf.personal_graph_iri(tenant))
    named = {name for entity in record["entities"] for name in entity["attributes"]}
    iris = {
        rdf.expand_attribute(e.get("@context"), name)
        for e in record["entities"]
        for name in e["attributes"]
        if name in PERSONAL
    }
    assert not {p for _, p, _ in shared} & {f"<{iri}>" for iri in iris}, "a personal value in the shared graph"
    if named & {"refDevice", "pm25"}:  # values these fixtures index
        assert personal


def test_a_personal_value_observed_at_its_own_time_takes_its_node_along() -> None:
    record = log("ville")[-1]  # pm25 observed at 08:10, the record at 08:15:30
    assert record["entities"][0]["attributes"]["pm25"]["observedAt"] != record["observedAt"]
    n = len(log("ville")) - 1
    by_graph = rdf.index_triples_by_graph(record, n, pseudonyms=KEYS, personal=PERSONAL)
    node = f"<{uplink_iri('ville', n)}:obs:0:pm25>"
    assert {s for s, _, _ in by_graph[rdf.personal_graph_iri("ville")]} >= {node}
    assert node not in {s for s, _, _ in by_graph[graph_of("ville")]}, "the node would tell a pm25 value exists"
