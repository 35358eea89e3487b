"""The personal graph of a collectivity: what goes there, what the verifier says when a
personal value turns up in the shared graph, and an index rebuilt when the list changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapter.provenance.indexer import RdfIndexer
from adapter.provenance.rdf import graph_iri, personal_graph_iri
from adapter.provenance.runtime import ProvenanceRuntime
from tests.provenance_e2e.support import AQ_ENTITY, DEVICES, World, observed_at_of, record_index

TEMPERATURE = "<https://smartdatamodels.org/dataModel.Environment/temperature>"
NO2 = "<https://smartdatamodels.org/dataModel.Environment/no2>"
DEVICE_ID = "<https://w3id.org/ngsild-adapter/ns#deviceId>"


@pytest.fixture
def world(world_template: World, tmp_path: Path) -> World:
    return world_template.copy(tmp_path / "w")


async def predicates(runtime: ProvenanceRuntime, graph: str) -> set[str]:
    assert runtime.store is not None
    subjects = [
        f"urn:ngsild-adapter:ville:uplink:{stored.index}:obs:{k}"
        for stored in runtime.ledger.records("ville", 0, 1000)
        for k in range(2)
    ]
    subjects.append(f"urn:ngsild-adapter:ville:device:{DEVICES[0]}")
    return {p for _, p, _ in await runtime.store.quads(subjects, graph)}


def personal_indexer(world: World, runtime: ProvenanceRuntime, personal: set[str]) -> RdfIndexer:
    assert runtime.store is not None
    db = sqlite3.connect(world.folder / "state" / "state.sqlite", isolation_level=None)
    assert runtime.indexer is not None  # the same pseudonym keys: only the list differs
    return RdfIndexer(runtime.ledger, db, runtime.store, personal=personal, pseudonyms=runtime.indexer.pseudonyms)


async def test_device_names_at_the_network_server_are_personal(world: World) -> None:
    async with world.running() as (runtime, _):
        shared, personal = (
            await predicates(runtime, graph_iri("ville")),
            await predicates(runtime, personal_graph_iri("ville")),
        )
    assert DEVICE_ID in personal and DEVICE_ID not in shared
    assert NO2 in shared and TEMPERATURE in shared


async def test_a_changed_list_of_personal_attributes_rebuilds_the_index(world: World) -> None:
    async with world.running() as (runtime, _):
        indexer = personal_indexer(world, runtime, {"temperature"})
        assert await indexer.catch_up() > 0
        shared = await predicates(runtime, graph_iri("ville"))
        personal = await predicates(runtime, personal_graph_iri("ville"))
        assert TEMPERATURE in personal and TEMPERATURE not in shared
        assert NO2 in shared and NO2 not in personal
        # the same list again: nothing to rebuild, nothing to index
        assert await personal_indexer(world, runtime, {"temperature"}).catch_up() == 0
        runtime.indexer = indexer
        result = await runtime.verify("ville", AQ_ENTITY.format(eui=DEVICES[0]), "no2", observed_at_of(0, 2))
    assert result.holds, [c for c in result.checks if c.status != "ok"]


async def test_a_personal_value_copied_into_the_shared_graph_is_detected(world: World) -> None:
    async with world.running() as (runtime, _):
        assert runtime.store is not None
        runtime.indexer = personal_indexer(world, runtime, {"temperature"})
        await runtime.indexer.catch_up()
        index = record_index(runtime, 0, 2)
        leaked = await runtime.store.quads(
            [f"urn:ngsild-adapter:ville:uplink:{index}:obs:0"], personal_graph_iri("ville")
        )
        assert {p for _, p, _ in leaked} == {TEMPERATURE}
        graph = f"<{graph_iri('ville')}>"
        await runtime.store.add_nquads("".join(f"{s} {p} {o} {graph} .\n" for s, p, o in leaked))
        result = await runtime.verify("ville", AQ_ENTITY.format(eui=DEVICES[0]), "no2", observed_at_of(0, 2))
    checks = {c.name: c for c in result.checks}
    assert not result.holds and checks["index"].status == "failed"
    assert "wrong graph" in checks["index"].detail
