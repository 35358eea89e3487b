"""Fixture records and independent helpers for the provenance RDF tests.

The helpers here restate the documented rules (which values are indexed, how they are typed,
which IRIs things get) in plain Python, without calling ``adapter.provenance.rdf``, so the
tests compare the module with the documentation rather than with itself.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pyoxigraph

from adapter.provenance import rdf

__all__ = [
    "FIXTURES",
    "Value",
    "device_iri",
    "graph_of",
    "indexed_values",
    "load_store",
    "log",
    "receipts",
    "records",
    "uplink_iri",
    "utc",
]

FIXTURES = Path(__file__).parent / "fixtures"
TENANTS = ("ville", "metropole")


@cache
def _read(name: str) -> Any:
    with (FIXTURES / name).open(encoding="utf-8") as file:
        return json.load(file)


def log(tenant: str) -> list[dict[str, Any]]:
    """The records of one collectivity's log, record n at position n (a fresh copy)."""
    return copy.deepcopy(_read(f"{tenant}.json")["records"])


def records() -> list[tuple[str, int, dict[str, Any]]]:
    """Every fixture record as (tenant, record number, record)."""
    return [(tenant, n, record) for tenant in TENANTS for n, record in enumerate(log(tenant))]


def receipts() -> list[dict[str, Any]]:
    return copy.deepcopy(_read("receipts.json")["receipts"])


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def graph_of(tenant: str) -> str:
    return f"urn:ngsild-adapter:graph:{tenant}"


def uplink_iri(tenant: str, n: int) -> str:
    return f"urn:ngsild-adapter:{tenant}:uplink:{n}"


def device_iri(tenant: str, dev_eui: str) -> str:
    return f"urn:ngsild-adapter:{tenant}:device:{dev_eui}"


@dataclass(frozen=True)
class Value:
    """One indexed attribute value of a record, as the documentation says it is indexed."""

    tenant: str
    record: int
    entity: str
    name: str
    term: pyoxigraph.NamedNode | pyoxigraph.Literal
    observed_at: datetime
    unit: str | None


def _term(attribute: dict[str, Any]) -> list[pyoxigraph.NamedNode | pyoxigraph.Literal]:
    if "value" in attribute:
        value = attribute["value"]
        if isinstance(value, bool):
            return [pyoxigraph.Literal(value)]
        if isinstance(value, float) and value.is_integer():
            return [pyoxigraph.Literal(int(value))]  # as its RFC 8785 form writes it
        if isinstance(value, int | float | str):
            return [pyoxigraph.Literal(value)]
        return []  # GeoJSON, DateTime objects, lists: not indexed
    target = attribute.get("object")
    targets = target if isinstance(target, list) else [target]
    if all(isinstance(t, str) for t in targets):
        return [pyoxigraph.NamedNode(t) for t in targets]
    return []


def indexed_values(tenant: str, n: int, record: dict[str, Any]) -> list[Value]:
    found = []
    for entity in record["entities"]:
        for name, attribute in entity["attributes"].items():
            for term in _term(attribute):
                found.append(Value(
                    tenant, n, entity["id"], name, term,
                    utc(attribute.get("observedAt") or record["observedAt"]), attribute.get("unitCode"),
                ))
    return found


def load_store(*, static: bool = True, deliveries: bool = True) -> pyoxigraph.Store:
    """An in-memory store with the lean index of every fixture record (and what goes with it)."""
    store = pyoxigraph.Store()
    for _, n, record in records():
        text = rdf.index_nquads(record, n) + (rdf.static_nquads(record) if static else "")
        store.load(text.encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)
    if deliveries:
        for receipt in receipts():
            store.load(rdf.delivery_nquads(receipt["tenant"], receipt).encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)
    return store
