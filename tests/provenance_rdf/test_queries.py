"""The researchers' example queries, answered over the lean index and checked against the fixtures.

Every expected answer is computed here from the fixture records and receipts in plain Python,
following the documented meaning of each query, never copied from a run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyoxigraph
import pytest
from rdflib.plugins.sparql.parser import parseQuery

from adapter.ngsild.contexts import load_context
from adapter.provenance import queries as queries_module
from adapter.provenance.queries import QUERY_NAMES, QueryError, load_query, queries
from tests.provenance_rdf.support import (
    Value,
    device_iri,
    graph_of,
    indexed_values,
    receipts,
    records,
    uplink_iri,
    utc,
)

CODEC_V1 = "d51d10d2c20f47da24ac5773d7dcb21e295694517ccee02b7fa2edd451335d5e"
CODEC_V2 = "71d57433cb6a8ee45ed668711de38b7b617990526bb0fcc76edb8b1c621f3b16"
WATER_CODEC = "b35ca7af5d82dbf9d1cffac2b6156c804e319c04a6de4f6609fb735e301fab43"
GATEWAY_A = "0016c001ff10a235"
GATEWAY_B = "0016c001ff10b7e0"


def rows(store: pyoxigraph.Store, query: str) -> list[dict[str, Any]]:
    result = store.query(query)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    names = [v.value for v in result.variables]
    return [{name: solution[name] for name in names} for solution in result]


def local_name(iri: str) -> str:
    return re.split(r"[/#:]", iri)[-1]


def all_values() -> list[Value]:
    return [v for tenant, n, record in records() for v in indexed_values(tenant, n, record)]


def value_key(value: Value) -> tuple[str, str, str, Any, datetime]:
    return (graph_of(value.tenant), value.entity, value.name, value.term, value.observed_at)


def row_key(row: dict[str, Any]) -> tuple[str, str, str, Any, datetime]:
    return (
        row["graph"].value,
        row["entity"].value,
        local_name(row["attribute"].value),
        row["value"],
        utc(row["observedAt"].value),
    )


def number_text(number: float | None) -> str:
    """How STR() of an indexed number reads: an integral value without a fraction."""
    if number is None:
        return "?"
    return str(int(number)) if float(number).is_integer() else repr(float(number))


# ------------------------------------------------------------------ the catalogue


def test_every_query_file_is_listed_and_documented() -> None:
    folder = Path(queries_module.__file__).parent
    assert sorted(p.stem for p in folder.glob("*.rq")) == sorted(QUERY_NAMES) == sorted(queries())
    for info in queries().values():
        assert info.description.startswith(f"{info.name}:"), info.name
        for parameter in info.parameters:
            assert f"${parameter.name}" in info.text.split("PREFIX", 1)[1], (info.name, parameter.name)


def test_queries_parse_once_parameters_are_written(index_store: pyoxigraph.Store) -> None:
    examples = {
        "lineage": {"entity": "urn:x:e", "attribute": "no2", "observedAt": "2026-11-20T08:15:30Z"},
        "gateway_window": {"gateway": GATEWAY_A, "start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"},
        "daily_mean_no2": {},
        "codec_version": {"codec": CODEC_V1},
        "accesses": {"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"},
    }
    assert set(examples) == set(QUERY_NAMES)
    for name, params in examples.items():
        text = load_query(name, **params)
        assert "$" not in "".join(line for line in text.splitlines() if not line.startswith("#"))
        index_store.query(text)  # parses and runs


# ------------------------------------------------------------------ lineage


def _lineage_cases() -> list[tuple[Value, str]]:
    cases = []
    for value in all_values():
        if value.tenant == "ville" and value.record in (1, 3):
            cases.append((value, "iri"))  # by expanded IRI, and one case in another UTC offset
        else:
            cases.append((value, "name"))
    return cases


def _expected_deliveries(tenant: str, n: int, entity: str) -> set[tuple[str, int, datetime, str, str | None]]:
    found = set()
    for receipt in receipts():
        carried = n in receipt["records"] or any(r["record"] == n for r in receipt["refused"])
        if receipt["tenant"] != tenant or not carried:
            continue
        detail = next((r["detail"] for r in receipt["refused"] if r["record"] == n and r["entity"] == entity), None)
        found.add(
            (
                f"urn:ngsild-adapter:{tenant}:delivery:{receipt['id']}",
                receipt["status"],
                utc(receipt["endedAt"]),
                receipt["broker"],
                detail,
            )
        )
    return found


def _parsed_deliveries(text: str) -> set[tuple[str, int, datetime, str, str | None]]:
    found = set()
    for item in filter(None, text.split(" | ")):
        match = re.fullmatch(r"(\S+) status=(\d+) at=(\S+) broker=(\S+)(?: refused=(.*))?", item, re.S)
        assert match, item
        iri, status, at, broker, detail = match.groups()
        found.add((iri, int(status), utc(at), broker, detail))
    return found


@pytest.mark.parametrize(
    ("value", "how"), _lineage_cases(), ids=lambda c: c if isinstance(c, str) else f"{c.tenant}-{c.record}-{c.name}"
)
def test_lineage_of_every_indexed_value(index_store: pyoxigraph.Store, value: Value, how: str) -> None:
    record = {(t, n): r for t, n, r in records()}[(value.tenant, value.record)]
    entity = next(e for e in record["entities"] if e["id"] == value.entity)
    observed = value.observed_at  # in UTC: record 3 states it at +01:00
    attribute = value.name
    if how == "iri":
        attribute = _expanded(entity, value.name)
        observed = observed.astimezone(timezone(timedelta(hours=-5)))
    answer = rows(
        index_store, load_query("lineage", entity=value.entity, attribute=attribute, observedAt=observed.isoformat())
    )
    mine = [r for r in answer if r["value"] == value.term and local_name(r["attribute"].value) == value.name]
    assert len(mine) == 1, answer
    (row,) = mine
    steps = {s["step"]: s for s in record["steps"]}
    assert row["graph"].value == graph_of(value.tenant)
    assert row["uplink"].value == uplink_iri(value.tenant, value.record)
    assert row["device"].value == device_iri(value.tenant, record["device"]["devEui"])
    assert utc(row["receivedAt"].value) == utc(record["uplink"]["receivedAt"])
    assert utc(row["processingStarted"].value) == utc(record["steps"][0]["startedAt"])
    assert utc(row["processingEnded"].value) == utc(record["steps"][-1]["endedAt"])
    assert row["softwareVersion"].value == record["adapter"]["version"]
    assert row["profileName"].value == steps["map"]["profile"]
    assert row["profileSha256"].value == steps["map"]["profileSha256"]
    assert (row["unitCode"].value if row["unitCode"] else None) == _profile_unit(
        steps["map"]["profileSha256"], entity, value.name
    )
    if record["recordType"] == "uplink":
        assert row["payloadSha256"].value == record["uplink"]["payloadSha256"]
        assert int(row["fCnt"].value) == record["uplink"]["fCnt"]
        assert row["codecSha256"].value == steps["decode"]["codecSha256"]
        assert row["codecName"].value == steps["decode"]["codec"]
    else:
        assert row["payloadSha256"] is None and row["codec"] is None
    gateways = {
        f"urn:ngsild-adapter:gateway:{g['id']} rssi={number_text(g['rssi'])} snr={number_text(g['snr'])}"
        for g in record["gateways"]
    }
    assert set(filter(None, text(row["gateways"]).split(" | "))) == gateways
    assert set(text(row["privacyRules"]).split()) == set(steps.get("privacy", {}).get("rules", []))
    assert _parsed_deliveries(text(row["deliveries"])) == _expected_deliveries(value.tenant, value.record, value.entity)


def text(term: Any) -> str:
    """A GROUP_CONCAT over nothing: Oxigraph leaves it unbound where other stores give ""."""
    return "" if term is None else str(term.value)


def _expanded(entity: dict[str, Any], name: str) -> str:
    """The attribute IRI, looked up in the local copy of the entity's first (Smart Data Models) context."""
    context = load_context(entity["@context"][0])["@context"]
    assert isinstance(context, dict)
    iri = context.get(name)
    if iri is None:  # not a Smart Data Models term: the adapter's context, then the core @vocab
        iri = {"linkMargin": "https://w3id.org/ngsild-adapter/ns#linkMargin"}.get(
            name, f"https://uri.etsi.org/ngsi-ld/default-context/{name}"
        )
    return str(iri)


def _profile_unit(profile: str, entity: dict[str, Any], name: str) -> str | None:
    """The unit the profile file gives this attribute: the index keeps units per profile, not per value."""
    units = {
        attribute["unitCode"]
        for _, _, record in records()
        for step in record["steps"]
        if step["step"] == "map" and step["profileSha256"] == profile
        for other in record["entities"]
        if other["type"] == entity["type"]
        for key, attribute in other["attributes"].items()
        if key == name and "unitCode" in attribute
    }
    assert len(units) <= 1, f"the fixtures give {name} two units in one profile: {units}"
    return units.pop() if units else None


def test_lineage_finds_nothing_for_another_time(index_store: pyoxigraph.Store) -> None:
    answer = rows(
        index_store,
        load_query(
            "lineage",
            entity="urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01",
            attribute="no2",
            observedAt="2026-11-20T08:15:31Z",
        ),
    )
    assert answer == []


# ------------------------------------------------------------------ gateway window


@pytest.mark.parametrize(
    ("gateway", "start", "end"),
    [
        (GATEWAY_A, "2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z"),
        (GATEWAY_B, "2026-11-20T00:00:00+00:00", "2026-11-21T09:00:00+00:00"),
        (f"urn:ngsild-adapter:gateway:{GATEWAY_B}", "2026-11-21T09:00:00+00:00", "2026-11-21T13:30:00.400000+00:00"),
        (GATEWAY_A, "2026-11-20T09:15:30.456789+01:00", "2026-11-20T09:02:11.002+00:00"),
    ],
)
def test_gateway_window(index_store: pyoxigraph.Store, gateway: str, start: str, end: str) -> None:
    gateway_id = gateway.rsplit(":", 1)[-1]
    expected = set()
    for tenant, n, record in records():
        received = utc(record["uplink"]["receivedAt"])
        heard = [g for g in record["gateways"] if g["id"] == gateway_id]
        if heard and utc(start) <= received < utc(end):
            for value in indexed_values(tenant, n, record):
                expected.add((*value_key(value), uplink_iri(tenant, n), heard[0]["rssi"], heard[0]["snr"]))
    assert expected, "each case must select something"
    answer = rows(index_store, load_query("gateway_window", gateway=gateway, start=start, end=end))
    found = {
        (
            *row_key(row),
            row["uplink"].value,
            None if row["rssi"] is None else float(row["rssi"].value),
            None if row["snr"] is None else float(row["snr"].value),
        )
        for row in answer
    }
    assert found == expected
    assert len(answer) == len(found)
    times = [utc(row["receivedAt"].value) for row in answer]
    assert times == sorted(times)


# ------------------------------------------------------------------ daily mean NO2


def test_daily_mean_no2_per_collectivity(index_store: pyoxigraph.Store) -> None:
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    sensors: dict[tuple[str, str], set[str]] = defaultdict(set)
    for tenant, _, record in records():
        for entity in record["entities"]:
            no2 = entity["attributes"].get("no2")
            if no2 is None:
                continue
            day = utc(no2.get("observedAt") or record["observedAt"]).date().isoformat()
            groups[(graph_of(tenant), day)].append(float(no2["value"]))
            sensors[(graph_of(tenant), day)].add(device_iri(tenant, record["device"]["devEui"]))
    assert len({graph for graph, _ in groups}) == 2 and len({day for _, day in groups}) == 2
    answer = rows(index_store, load_query("daily_mean_no2"))
    found = {(row["graph"].value, row["day"].value): row for row in answer}
    assert set(found) == set(groups)
    for key, values in groups.items():
        row = found[key]
        assert float(row["mean"].value) == pytest.approx(sum(values) / len(values))
        assert int(row["values"].value) == len(values)
        assert set(row["sensors"].value.split()) == sensors[key]
    assert [(row["graph"].value, row["day"].value) for row in answer] == sorted(found)


def test_daily_mean_no2_uses_the_utc_day() -> None:
    # Record 3 of 'ville' was observed at 00:30 on the 21st, Paris time: the 20th in UTC.
    ((_, _, record),) = [r for r in records() if r[0] == "ville" and r[1] == 3]
    assert record["observedAt"].startswith("2026-11-21") and utc(record["observedAt"]).day == 20


# ------------------------------------------------------------------ codec version


@pytest.mark.parametrize("codec", [CODEC_V1, CODEC_V2, WATER_CODEC])
def test_codec_version(index_store: pyoxigraph.Store, codec: str) -> None:
    expected = set()
    names = set()
    for tenant, n, record in records():
        decode = next((s for s in record["steps"] if s["step"] == "decode"), None)
        if decode is not None and decode["codecSha256"] == codec:
            names.add(decode["codec"])
            expected |= {(*value_key(v), uplink_iri(tenant, n)) for v in indexed_values(tenant, n, record)}
    answer = rows(index_store, load_query("codec_version", codec=codec))
    assert {(*row_key(row), row["uplink"].value) for row in answer} == expected
    assert len(answer) == len(expected)
    assert {row["codecName"].value for row in answer} == names


def test_two_codec_versions_split_the_values(index_store: pyoxigraph.Store) -> None:
    v1 = rows(index_store, load_query("codec_version", codec=CODEC_V1))
    v2 = rows(index_store, load_query("codec_version", codec=CODEC_V2))
    assert v1 and v2 and not {row["uplink"].value for row in v1} & {row["uplink"].value for row in v2}


# ------------------------------------------------------------------ parameters


VALID = {
    "lineage": {"entity": "urn:x:e", "attribute": "no2", "observedAt": "2026-11-20T08:15:30Z"},
    "gateway_window": {"gateway": GATEWAY_A, "start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"},
    "codec_version": {"codec": CODEC_V1},
}


@pytest.mark.parametrize(
    ("name", "parameter", "value"),
    [
        ("lineage", "entity", "urn:x:e> } } ; DROP ALL ; SELECT * { { <urn:y"),
        ("lineage", "entity", 'urn:x:e"'),
        ("lineage", "entity", "urn:x:e with space"),
        ("lineage", "entity", "not-an-iri"),
        ("lineage", "entity", "urn:a:%zz"),
        ("lineage", "attribute", 'no2" || true || "'),
        ("lineage", "attribute", "https://smartdatamodels.org/no2>"),
        ("lineage", "observedAt", '2026-11-20T08:15:30Z"^^<urn:x> } #'),
        ("lineage", "observedAt", "2026-11-20T08:15:30"),
        ("lineage", "observedAt", 1763626530),
        ("gateway_window", "gateway", "gw>"),
        ("gateway_window", "gateway", 'gw"'),
        ("gateway_window", "gateway", "urn:ngsild-adapter:gateway:x> ?p ?o . <urn:y"),
        ("gateway_window", "start", "yesterday"),
        ("codec_version", "codec", CODEC_V1 + '"'),
        ("codec_version", "codec", CODEC_V1.upper()),
        ("codec_version", "codec", "> } ; CLEAR ALL"),
    ],
)
def test_injection_attempts_are_refused(name: str, parameter: str, value: Any) -> None:
    with pytest.raises(QueryError):
        load_query(name, **{**VALID[name], parameter: value})


def test_parameters_must_match_the_declaration() -> None:
    with pytest.raises(QueryError, match="missing"):
        load_query("lineage", entity="urn:x:e", attribute="no2")
    with pytest.raises(QueryError, match="unexpected"):
        load_query("daily_mean_no2", tenant="ville")
    with pytest.raises(QueryError, match="no example query"):
        load_query("../../etc/passwd")


def test_values_are_written_as_terms() -> None:
    text = load_query(
        "lineage",
        entity="urn:ngsi-ld:A:1",
        attribute="https://example.org/ns#no2",
        observedAt=datetime(2026, 11, 21, 0, 30, tzinfo=UTC).astimezone(),
    )
    assert "BIND(<urn:ngsi-ld:A:1> AS ?feature)" in text and "nga:pseudonymOf <urn:ngsi-ld:A:1>" in text
    assert "?attribute = <https://example.org/ns#no2>" in text
    assert '"2026-11-21T00:30:00Z"^^<http://www.w3.org/2001/XMLSchema#dateTime>' in text
    assert 'STR("no2")' in load_query(
        "lineage", entity="urn:ngsi-ld:A:1", attribute="no2", observedAt="2026-11-21T00:30:00Z"
    )
    assert "<urn:ngsild-adapter:gateway:0016c001ff10a235>" in load_query(
        "gateway_window", gateway=GATEWAY_A, start="2026-11-20T00:00:00Z", end="2026-11-21T00:00:00Z"
    )


# ------------------------------------------------------------------ the documentation


DOCS = Path(__file__).resolve().parents[2] / "docs" / "provenance-queries.md"


def test_every_query_and_parameter_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for info in queries().values():
        assert f"`{info.name}.rq`" in text, info.name
        for parameter in info.parameters:
            assert f"`${parameter.name}`" in text, (info.name, parameter.name)


def test_queries_parse_with_the_gateway_grammar() -> None:
    # adapter/gateway/sparql.py parses every query with rdflib's grammar before running it.
    for name, params in {**VALID, "daily_mean_no2": {}}.items():
        parseQuery(load_query(name, **params))


def test_the_documented_example_query_runs(index_store: pyoxigraph.Store) -> None:
    (example,) = re.findall(r"```sparql\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    expected = set()
    for tenant, _, record in records():
        rssis = [g["rssi"] for g in record["gateways"] if g["rssi"] is not None]
        for entity in record["entities"]:
            if "no2" in entity["attributes"] and rssis and max(rssis) < -100:
                expected.add((graph_of(tenant), entity["id"], utc(record["observedAt"]), max(rssis)))
    assert expected
    found = {
        (row["graph"].value, row["entity"].value, utc(row["t"].value), int(row["bestRssi"].value))
        for row in rows(index_store, example)
    }
    assert found == expected
