"""The nga: vocabulary file documents every adapter term the RDF uses; the public API is listed."""

from __future__ import annotations

import re
from pathlib import Path

import rdflib

from adapter.provenance import queries, rdf
from tests.provenance_rdf.support import KEYS, receipts, records

VOCABULARY = Path(__file__).resolve().parents[2] / "contexts" / "ngsild-adapter-vocabulary.ttl"
RDFS = rdflib.Namespace("http://www.w3.org/2000/01/rdf-schema#")


def used_terms() -> set[str]:
    text = "".join(
        rdf.provenance_nquads(record, n, receipts())
        + rdf.static_nquads(record, pseudonyms=KEYS)
        + rdf.index_nquads(record, n, pseudonyms=KEYS)
        for _, n, record in records()
    )
    return set(re.findall(r"<(https://w3id\.org/ngsild-adapter/ns#[A-Za-z0-9]+)>", text))


def test_every_term_used_is_described() -> None:
    vocabulary = rdflib.Graph().parse(VOCABULARY, format="turtle")
    used = used_terms()
    assert len(used) > 30
    for term in sorted(used):
        subject = rdflib.URIRef(term)
        assert (subject, RDFS.label, None) in vocabulary, f"{term} has no rdfs:label in {VOCABULARY.name}"
        assert (subject, RDFS.comment, None) in vocabulary, f"{term} has no rdfs:comment in {VOCABULARY.name}"


def test_the_vocabulary_is_documentation_not_a_registered_context() -> None:
    index = (VOCABULARY.parent / "index.json").read_text(encoding="utf-8")
    assert VOCABULARY.name not in index


def test_public_names_are_listed_and_sorted() -> None:
    for module in (rdf, queries):
        names = module.__all__
        assert names == sorted(names)
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"
        public = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and getattr(value, "__module__", module.__name__) == module.__name__
            and callable(value)
        }
        assert public <= set(names), f"{module.__name__} leaves out {public - set(names)}"
