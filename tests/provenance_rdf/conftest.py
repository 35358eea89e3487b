"""Shared fixtures of the provenance RDF tests: one in-memory Oxigraph store of the whole index."""

from __future__ import annotations

import pyoxigraph
import pytest

from tests.provenance_rdf.support import load_store


@pytest.fixture(scope="module")
def index_store() -> pyoxigraph.Store:
    """The lean index, static quads and deliveries of every fixture record (read-only)."""
    return load_store()
