"""The shared graph a researcher reads names no device: keyed pseudonyms instead of devEuis,
device IRIs and broker entity ids, the links back kept in the personal graph, where the
collectivity's data admins join on real identifiers. Keys rotate by date.

The researcher's dataset here is the one the gateway gives an agreement that removes personal
fields (``default_graph`` and ``named_graphs`` set to the shared graphs); the admin's is every
graph of the collectivity. Pseudonyms are recomputed with ``hmac`` (``support.pseudonym``)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pyoxigraph
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.provenance import rdf
from adapter.provenance.pseudonyms import MissingPseudonymKey, PseudonymKeys
from adapter.provenance.queries import load_query
from tests.provenance_rdf.support import (
    KEYS,
    SECRETS,
    device_iri,
    graph_of,
    indexed_values,
    log,
    personal_of,
    pseudonym,
    records,
    shared_graphs,
    uplink_iri,
    utc,
)

ALL_QUADS = "SELECT * WHERE { GRAPH ?g { ?s ?p ?o } }"
DEV_EUIS = sorted({record["device"]["devEui"] for _, _, record in records()})
NO2 = "https://smartdatamodels.org/dataModel.Environment/no2"


def select(
    store: pyoxigraph.Store, query: str, graphs: list[pyoxigraph.NamedNode] | None = None
) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {} if graphs is None else {"default_graph": graphs, "named_graphs": graphs}
    result = store.query(query, **kwargs)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    names = [v.value for v in result.variables]
    return [{name: solution[name] for name in names} for solution in result]


def researcher(store: pyoxigraph.Store, query: str) -> list[dict[str, Any]]:
    return select(store, query, shared_graphs())


def names_a_device(text: str) -> str | None:
    """The devEui ``text`` holds, in any case and with any separators between its digits."""
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    return next((eui for eui in DEV_EUIS if eui in digits or eui in text.lower()), None)


def terms(rows: list[dict[str, Any]]) -> list[str]:
    return [str(term.value) for row in rows for term in row.values() if term is not None]


# ------------------------------------------------------------------ what a researcher reads


def test_a_researcher_reads_no_device_identity(index_store: pyoxigraph.Store) -> None:
    rows = researcher(index_store, ALL_QUADS)
    assert len(rows) > 300  # the research is possible: every measured value is there
    assert {row["g"].value for row in rows} == {graph_of("ville"), graph_of("metropole")}
    for text in terms(rows):
        assert names_a_device(text) is None, text
        assert re.match(r"urn:ngsild-adapter:[^:]+:device:", text) is None, text  # no device IRI
        assert not text.startswith("urn:ngsi-ld:"), text  # no entity id of the broker
    personal = {
        (str(q.subject), str(q.predicate), str(q.object))
        for tenant in ("ville", "metropole")
        for q in index_store.quads_for_pattern(None, None, None, pyoxigraph.NamedNode(personal_of(tenant)))
    }
    seen = {(f"<{r['s'].value}>", f"<{r['p'].value}>", str(r["o"])) for r in rows}
    assert personal and not personal & seen
    assert not any(p == f"<{rdf.NGA}pseudonymOf>" for _, p, _ in seen)


def test_the_same_value_is_found_by_the_data_admin_through_the_personal_graph(index_store: pyoxigraph.Store) -> None:
    # a researcher's NO2 values, each with its pseudonymous entity and device
    found = researcher(
        index_store,
        f"""
        PREFIX prov: <http://www.w3.org/ns/prov#>  PREFIX sosa: <http://www.w3.org/ns/sosa/>
        SELECT ?feature ?sensor ?t ?no2 WHERE {{ GRAPH ?g {{
          ?o <{NO2}> ?no2 ; sosa:hasFeatureOfInterest ?feature ; sosa:resultTime ?t ;
             prov:wasGeneratedBy/prov:used/prov:wasAttributedTo ?sensor }} }}""",
    )
    expected = {
        (
            pseudonym(v.tenant, "entity", v.entity),
            pseudonym(v.tenant, "device", record["device"]["devEui"]),
            v.observed_at,
            v.term,
        )
        for tenant, n, record in records()
        for v in indexed_values(tenant, n, record)
        if v.name == "no2"
    }
    assert {(r["feature"].value, r["sensor"].value, utc(r["t"].value), r["no2"]) for r in found} == expected
    # the admin reads the personal graph too: each pseudonym names its real entity and device
    for row in found:
        (link,) = select(
            index_store,
            f"""SELECT ?entity ?device ?eui WHERE {{
            GRAPH ?p {{ <{row["feature"].value}> <{rdf.NGA}pseudonymOf> ?entity .
                        <{row["sensor"].value}> <{rdf.NGA}pseudonymOf> ?device . ?device <{rdf.NGA}devEui> ?eui }} }}""",
        )
        lineage = select(
            index_store, load_query("lineage", entity=link["entity"].value, attribute="no2", observedAt=row["t"].value)
        )
        assert [(r["value"], r["device"].value) for r in lineage] == [(row["no2"], link["device"].value)]
        assert link["device"].value == device_iri(row["sensor"].value.split(":")[2], link["eui"].value)


def test_pseudonyms_have_the_documented_form() -> None:
    (tenant, n, record), *_ = records()
    text = rdf.index_nquads(record, n, pseudonyms=KEYS)
    found = set(re.findall(r"<(urn:ngsild-adapter:[^>]*:pseudonym:[^>]*)>", text))
    assert found == {pseudonym(tenant, "device", record["device"]["devEui"])} | {
        pseudonym(tenant, "entity", e["id"]) for e in record["entities"]
    }
    for iri in found:
        assert re.fullmatch(r"urn:ngsild-adapter:ville:pseudonym:[0-9a-f]{8}:(device|entity):[0-9a-f]{32}", iri)
    other = PseudonymKeys.in_memory({"ville": {None: bytes(32)}})
    assert not found & set(re.findall(r"<(urn:[^>]*:pseudonym:[^>]*)>", rdf.index_nquads(record, n, pseudonyms=other)))


# ------------------------------------------------------------------ the example queries, both ways


QUERIES = {
    "codec_version": {"codec": "d51d10d2c20f47da24ac5773d7dcb21e295694517ccee02b7fa2edd451335d5e"},
    "gateway_window": {"gateway": "0016c001ff10a235", "start": "2026-11-20T00:00:00Z", "end": "2026-11-22T00:00:00Z"},
    "daily_mean_no2": {},
}


def _links(store: pyoxigraph.Store) -> dict[str, str]:
    return {
        r["s"].value: r["o"].value
        for r in select(store, f"SELECT ?s ?o WHERE {{ GRAPH ?g {{ ?s <{rdf.NGA}pseudonymOf> ?o }} }}")
    }


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_each_example_query_answers_a_researcher_with_pseudonyms(index_store: pyoxigraph.Store, name: str) -> None:
    admin = select(index_store, load_query(name, **QUERIES[name]))
    shown = researcher(index_store, load_query(name, **QUERIES[name]))
    assert admin and len(shown) == len(admin)
    for text in terms(shown):
        assert names_a_device(text) is None and "urn:ngsi-ld:" not in text, text
        assert re.search(r"urn:ngsild-adapter:[^:]+:device:", text) is None, text
    # the researcher's rows are the admin's, with every real identifier read as its pseudonym
    real = {pseudo: iri for pseudo, iri in _links(index_store).items()}

    def unpseudonymised(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        out = []
        for row in rows:
            cells = []
            for term in row.values():
                text = str(term.value) if term is not None else None
                cells.append(" ".join(sorted(real.get(t, t) for t in text.split(" "))) if text else text)
            out.append(tuple(cells))
        return sorted(out, key=str)

    assert unpseudonymised(shown) == unpseudonymised(admin)
    assert any("urn:ngsi-ld:" in t or re.search(r"adapter:[^:]+:device:", t) for t in terms(admin)), "real identifiers"


def test_lineage_answers_a_researcher_asking_by_pseudonym(index_store: pyoxigraph.Store) -> None:
    tenant, n, record = next(r for r in records() if r[0] == "ville" and r[1] == 4)  # a water meter, a refusal
    (value,) = [v for v in indexed_values(tenant, n, record) if v.name == "batteryLevel" and "Device" in v.entity]
    entity = value.entity
    asked = {"attribute": "batteryLevel", "observedAt": value.observed_at.isoformat()}
    (admin,) = select(index_store, load_query("lineage", entity=entity, **asked))
    (shown,) = researcher(index_store, load_query("lineage", entity=pseudonym(tenant, "entity", entity), **asked))
    assert shown["value"] == admin["value"] == value.term
    assert admin["device"].value == device_iri(tenant, record["device"]["devEui"])
    assert shown["device"].value == pseudonym(tenant, "device", record["device"]["devEui"])
    assert shown["uplink"].value == admin["uplink"].value == uplink_iri(tenant, n)
    assert admin["fCnt"] is not None and admin["payloadSha256"] is not None
    assert shown["fCnt"] is None and shown["payloadSha256"] is None  # personal: they link and reveal
    assert "refused=" in admin["deliveries"].value and "refused=" not in shown["deliveries"].value
    assert shown["gateways"] == admin["gateways"] and shown["codecSha256"] == admin["codecSha256"]
    # a researcher asking with the real id (known from elsewhere) finds nothing
    assert researcher(index_store, load_query("lineage", entity=entity, **asked)) == []


# ------------------------------------------------------------------ strings that name the device


@pytest.mark.parametrize("form", ["{eui}", "{upper}", "{dashed}", "{colons}", "Meter {spaced} (school)"])
def test_a_string_naming_the_device_goes_to_the_personal_graph(form: str) -> None:
    record = log("ville")[0]
    eui = record["device"]["devEui"]
    pairs = [eui[i : i + 2] for i in range(0, 16, 2)]
    text = form.format(
        eui=eui, upper=eui.upper(), dashed="-".join(pairs).upper(), colons=":".join(pairs), spaced=" ".join(pairs)
    )
    record["entities"][1]["attributes"]["deviceState"] = {"value": text}
    by_graph = rdf.index_triples_by_graph(record, 0, pseudonyms=KEYS)
    literal = rdf.string_term(text)
    assert not any(o == literal for _, _, o in by_graph[graph_of("ville")])
    assert any(o == literal for _, _, o in by_graph[personal_of("ville")])


def test_other_strings_stay_shared() -> None:
    record = log("ville")[0]
    record["entities"][1]["attributes"]["deviceState"] = {"value": "ok 70b3d5"}  # a vendor prefix is not the device
    by_graph = rdf.index_triples_by_graph(record, 0, pseudonyms=KEYS)
    assert any(o == '"ok 70b3d5"' for _, _, o in by_graph[graph_of("ville")])


# ------------------------------------------------------------------ rotation


ROTATED = PseudonymKeys.in_memory(
    {
        "ville": {None: SECRETS["ville"], "2026-11-21": bytes(range(100, 132))},
        "metropole": {None: SECRETS["metropole"], "2026-11-21": bytes(range(132, 164))},
    }
)


def test_a_rotation_gives_new_pseudonyms_from_its_date_and_keeps_the_old_ones() -> None:
    store = pyoxigraph.Store()
    for _, n, record in records():
        text = rdf.index_nquads(record, n, pseudonyms=ROTATED) + rdf.static_nquads(record, pseudonyms=ROTATED)
        store.load(text.encode(), pyoxigraph.RdfFormat.N_QUADS)
    seen: dict[tuple[str, str], set[str]] = {}
    for tenant, n, record in records():
        received = utc(record["uplink"]["receivedAt"]).date().isoformat()
        secret = bytes(range(100, 132)) if tenant == "ville" else bytes(range(132, 164))
        expected = pseudonym(tenant, "device", record["device"]["devEui"], secret if received >= "2026-11-21" else None)
        (row,) = select(
            store,
            f"SELECT ?d WHERE {{ GRAPH ?g {{ <{uplink_iri(tenant, n)}> <http://www.w3.org/ns/prov#wasAttributedTo> ?d }} }}",
        )
        assert (
            row["d"].value
            == expected
            == rdf.index_nquads(record, n, pseudonyms=ROTATED).split("wasAttributedTo> <")[1].split(">")[0]
        )
        # before the rotation, the pseudonyms of the keys before it: the same as without rotation
        if received < "2026-11-21":
            assert rdf.index_nquads(record, n, pseudonyms=ROTATED) == rdf.index_nquads(record, n, pseudonyms=KEYS)
        seen.setdefault((tenant, record["device"]["devEui"]), set()).add(expected)
    rotated = [device for device, pseudonyms in seen.items() if len(pseudonyms) == 2]
    assert rotated, "a device of the fixtures was heard on both sides of the rotation"
    for tenant, eui in rotated:  # both of its pseudonyms lead the admin to the one device
        links = select(
            store,
            f"SELECT ?p WHERE {{ GRAPH <{personal_of(tenant)}> {{ ?p <{rdf.NGA}pseudonymOf> <{device_iri(tenant, eui)}> }} }}",
        )
        assert {r["p"].value for r in links} == seen[(tenant, eui)]
        key_ids = {iri.split(":")[4] for iri in seen[(tenant, eui)]}
        assert len(key_ids) == 2  # the key id is part of the IRI


def test_a_missing_key_is_said_not_replaced(tmp_path: Any) -> None:
    keys = PseudonymKeys(tmp_path / "pseudonyms", ["ville"], ["2026-11-21"])
    record = log("ville")[0]
    with pytest.raises(MissingPseudonymKey, match="initial.key"):
        rdf.index_nquads(record, 0, pseudonyms=keys)
    assert not (tmp_path / "pseudonyms").exists()
    keys.ensure()
    assert sorted(p.name for p in (tmp_path / "pseudonyms" / "ville").iterdir()) == ["2026-11-21.key", "initial.key"]
    assert (tmp_path / "pseudonyms" / "ville" / "initial.key").stat().st_mode & 0o777 == 0o600
    first = rdf.index_nquads(record, 0, pseudonyms=keys)
    again = PseudonymKeys(tmp_path / "pseudonyms", ["ville"], ["2026-11-21"])
    again.ensure()  # existing keys are kept
    assert rdf.index_nquads(record, 0, pseudonyms=again) == first


def test_a_record_of_a_collectivity_without_keys_is_refused() -> None:
    record = copy.deepcopy(log("ville")[0])
    record["tenant"] = "eau"
    with pytest.raises(rdf.ProvenanceRecordError, match="no pseudonym keys"):
        rdf.index_nquads(record, 0, pseudonyms=KEYS)


# ------------------------------------------------------------------ any string in, valid quads or a refusal


_ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=24) | st.sampled_from(
    ["", " ", "a b", 'x"y', "a>b", "l\nm", "urn:x> <urn:y", "\\u0000", "70B3-D57E-D000-1A01"]
)


@settings(derandomize=True, database=None, max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["entity id", "object", "gateway", "devEui", "value", "rule", "deviceId", "name"]),
    text=_ANY_TEXT,
)
def test_any_stored_string_yields_valid_quads_or_a_refusal(field: str, text: str) -> None:
    record = log("ville")[1]
    entity = record["entities"][0]
    if field == "entity id":
        entity["id"] = text
    elif field == "object":
        entity["attributes"]["refDevice"]["object"] = text
    elif field == "gateway":
        record["gateways"][0]["id"] = text
    elif field == "devEui":
        record["device"]["devEui"] = text
    elif field == "value":
        entity["attributes"]["no2"] = {"value": text}
    elif field == "rule":
        record["steps"][1]["rules"] = [text]
    elif field == "deviceId":
        record["device"]["deviceId"] = text
    else:
        entity["attributes"][text] = {"value": 1}
    try:
        quads = rdf.index_nquads(record, 1, pseudonyms=KEYS) + rdf.static_nquads(record, pseudonyms=KEYS)
    except rdf.ProvenanceRecordError:
        return
    store = pyoxigraph.Store()
    store.load(quads.encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)  # every line is one valid quad
    assert len(store) == len(set(quads.split("\n")) - {""})  # (not splitlines: U+0085 is a valid character)
    assert {str(g) for g in store.named_graphs()} <= {f"<{graph_of('ville')}>", f"<{personal_of('ville')}>"}
