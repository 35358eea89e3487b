"""``[provenance] index_in = "serve"``: the adapter only logs the records; ``ngsild-adapter serve``,
another process on the same files, keeps the RDF index (and answers SPARQL over it)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from adapter.app import standalone_provenance
from adapter.config import load_config
from adapter.exceptions import ConfigError
from tests.provenance_e2e.support import World


async def test_the_serve_process_indexes_what_the_adapter_logged(world_template: World, tmp_path: Path) -> None:
    world = world_template.copy(tmp_path / "w")  # the adapter's pipeline logged, and indexed once
    config = world.config()
    async with standalone_provenance(config) as runtime:
        assert runtime.store is not None and runtime.indexer is not None
        await runtime.store.clear_graph("urn:ngsild-adapter:graph:ville")
        await runtime.indexer.rebuild("ville")  # as `serve` does from its first round
        rows = await runtime.store.select(
            "SELECT (COUNT(?u) AS ?n) WHERE { ?u <http://www.w3.org/ns/prov#wasAttributedTo> ?d }"
        )
        assert rows[0]["n"] == runtime.ledger.size("ville")
        assert runtime.indexer.lag()["ville"] == 0


def test_index_in_names_a_process(tmp_path: Path) -> None:
    config_file = tmp_path / "adapter.toml"
    config_file.write_text('[[collectivity]]\ntenant = "ville"\nname = "Ville"\n[provenance]\nindex_in = "elsewhere"\n')
    with pytest.raises(ConfigError, match="index_in"):
        load_config(config_file, env={})
    assert load_config(None, env={"NGSILD_ADAPTER_PROVENANCE_INDEX_IN": "serve"}).provenance.index_in == "serve"
    assert dataclasses.replace(World(tmp_path).config().provenance).index_in == "listen"


async def test_serve_runs_as_its_own_process_and_reports_its_lag(world_template: World, tmp_path: Path) -> None:
    import asyncio
    import subprocess

    import aiohttp

    from adapter.demo.network import free_port
    from tests.e2e.support import ADAPTER_BIN

    world = world_template.copy(tmp_path / "w")
    config = world.config()
    toml = tmp_path / "adapter.toml"
    toml.write_text(
        f'[adapter]\nmodels = "{config.models_dir}"\nstate_dir = "{config.state_dir}"\n'
        '[[collectivity]]\ntenant = "ville"\nname = "Ville"\n'
        f'[provenance]\nkey_dir = "{config.provenance.key_dir}"\nlog_origin = "test.example/logs"\nindex_in = "serve"\n'
    )
    port = free_port()
    env = {**os.environ, "NGSILD_ADAPTER_PROVENANCE_KEY_DIR": str(config.provenance.key_dir)}
    process = subprocess.Popen(
        [str(ADAPTER_BIN), "serve", "--config", str(toml), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        async with aiohttp.ClientSession() as http:
            lag = None
            for _ in range(100):  # bounded: the process starts, then indexes
                try:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as answer:
                        text = await answer.text()
                    lag = next(
                        (
                            line
                            for line in text.splitlines()
                            if line.startswith('ngsild_adapter_provenance_index_lag_records{tenant="ville"}')
                        ),
                        None,
                    )
                    if lag is not None and lag.endswith(" 0"):
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            assert lag is not None and lag.endswith(" 0"), lag
            assert 'ngsild_adapter_provenance_index_quarantined_records{kind="record",tenant="ville"} 0' in text
            assert 'ngsild_adapter_provenance_index_quarantined_records{kind="access"} 0' in text
            async with http.get(f"http://127.0.0.1:{port}/logs/ville/checkpoint") as answer:
                assert answer.status == 200 and (await answer.text()).startswith("test.example/logs/ville\n")
    finally:
        process.terminate()
        process.wait(timeout=10)
