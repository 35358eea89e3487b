"""Fixture records and independent helpers for the provenance RDF tests.

The helpers here restate the documented rules (which values are indexed, how they are typed,
which IRIs things get) in plain Python, without calling ``adapter.provenance.rdf``, so the
tests compare the module with the documentation rather than with itself.
"""

from __future__ import annotations

import copy
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pyoxigraph

from adapter.provenance import rdf
from adapter.provenance.pseudonyms import PseudonymKeys

__all__ = [
    "FIXTURES",
    "KEYS",
    "SECRETS",
    "Value",
    "device_iri",
    "graph_of",
    "indexed_values",
    "load_store",
    "log",
    "personal_of",
    "pseudonym",
    "real_identifiers",
    "receipts",
    "records",
    "shared_graphs",
    "uplink_iri",
    "utc",
]

FIXTURES = Path(__file__).parent / "fixtures"
TENANTS = ("ville", "metropole")
#: the fixtures' pseudonym keys: one per collectivity, no rotation
SECRETS = {"ville": bytes(range(32)), "metropole": bytes(range(32, 64))}
KEYS = PseudonymKeys.in_memory({tenant: {None: secret} for tenant, secret in SECRETS.items()})


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


def personal_of(tenant: str) -> str:
    return f"urn:ngsild-adapter:graph:{tenant}:personal"


def shared_graphs() -> list[pyoxigraph.NamedNode]:
    """A researcher's dataset: the collectivities' shared graphs and nothing else."""
    return [pyoxigraph.NamedNode(graph_of(t)) for t in TENANTS]


def real_identifiers(triples: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """``triples`` with each pseudonym read back through its link (``nga:pseudonymOf``), links left out."""
    link = f"<{rdf.NGA}pseudonymOf>"
    real = {s: o for s, p, o in triples if p == link}
    return {(real.get(s, s), p, real.get(o, o)) for s, p, o in triples if p != link}


def pseudonym(tenant: str, kind: str, identifier: str, secret: bytes | None = None) -> str:
    """The pseudonym IRI docs/provenance.md describes, computed here with hmac."""
    key = SECRETS[tenant] if secret is None else secret
    key_id = hmac.digest(key, b"ngsild-adapter pseudonym key id", "sha256")[:4].hex()
    mac = hmac.digest(key, kind.encode() + b"\x00" + identifier.encode(), "sha256")[:16].hex()
    return f"urn:ngsild-adapter:{tenant}:pseudonym:{key_id}:{kind}:{mac}"


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
                found.append(
                    Value(
                        tenant,
                        n,
                        entity["id"],
                        name,
                        term,
                        utc(attribute.get("observedAt") or record["observedAt"]),
                        attribute.get("unitCode"),
                    )
                )
    return found


def load_store(*, static: bool = True, deliveries: bool = True) -> pyoxigraph.Store:
    """An in-memory store with the lean index of every fixture record (and what goes with it),
    under ``KEYS``: what a collectivity's data admin reads (every graph); query it with
    ``default_graph``/``named_graphs`` set to ``shared_graphs()`` for what a researcher reads."""
    store = pyoxigraph.Store()
    for _, n, record in records():
        text = rdf.index_nquads(record, n, pseudonyms=KEYS) + (
            rdf.static_nquads(record, pseudonyms=KEYS) if static else ""
        )
        store.load(text.encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)
    if deliveries:
        for receipt in receipts():
            store.load(rdf.delivery_nquads(receipt["tenant"], receipt).encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)
    return store
