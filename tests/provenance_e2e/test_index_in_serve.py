"""``[provenance] index_in = "serve"``: the adapter only logs the records; ``ngsild-adapter serve``,
another process on the same files, keeps the RDF index (and answers SPARQL over it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adapter.app import standalone_provenance
from adapter.config import load_config
from adapter.exceptions import ConfigError
from tests.provenance_e2e.support import World, build_world


async def test_the_serve_process_indexes_what_the_adapter_logged(tmp_path: Path) -> None:
    world = await build_world(tmp_path / "w")  # the adapter's pipeline logged, and indexed once
    config = world.config()
    async with standalone_provenance(config) as runtime:
        assert runtime.store is not None and runtime.indexer is not None
        await runtime.store.clear_graph("urn:ngsild-adapter:graph:ville")
        await runtime.indexer.rebuild("ville")  # as `serve` does from its first round
        rows = await runtime.store.select(
            "SELECT (COUNT(?u) AS ?n) WHERE { ?u <http://www.w3.org/ns/prov#wasAttributedTo> ?d }")
        assert rows[0]["n"] == runtime.ledger.size("ville")
        assert runtime.indexer.lag()["ville"] == 0


def test_index_in_names_a_process(tmp_path: Path) -> None:
    config_file = tmp_path / "adapter.toml"
    config_file.write_text('[[collectivity]]\ntenant = "ville"\nname = "Ville"\n[provenance]\nindex_in = "elsewhere"\n')
    with pytest.raises(ConfigError, match="index_in"):
        load_config(config_file, env={})
    assert load_config(None, env={"NGSILD_ADAPTER_PROVENANCE_INDEX_IN": "serve"}).provenance.index_in == "serve"
    assert dataclasses.replace(World(tmp_path).config().provenance).index_in == "listen"
