"""The verifier on intact data, and on each thing an attacker or a fault could change.

Every test gets its own copy of one world (uplinks processed by the pipeline, delivered to the
embedded broker, tree heads signed, RDF index built), changes one thing, and checks that the
verifier names what no longer holds, and that nothing is reported on untouched data.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapter.cli import main
from adapter.demo.network import free_port
from adapter.provenance.indexer import graph_iri
from adapter.provenance.rdf import NGA, PROV, index_nquads, personal_graph_iri, static_nquads
from adapter.provenance.runtime import ProvenanceRuntime
from adapter.provenance.integrity.note import NoteSigner
from adapter.provenance.verify import Verification
from tests.e2e.support import ADAPTER_BIN
from tests.provenance_e2e.support import (
    AQ_ENTITY,
    DEVICES,
    UPLINKS_PER_DEVICE,
    World,
    no2_of,
    observed_at_of,
    record_index,
)

OTHER_KEY = NoteSigner.generate("other")


@pytest.fixture
def world(world_template: World, tmp_path: Path) -> World:
    return world_template.copy(tmp_path / "w")


def statuses(result: Verification) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}


async def verify(world: World, device: int = 0, n: int = 2, **kwargs: object) -> Verification:
    async with world.running() as (runtime, _):
        return await runtime.verify(
            "ville",
            AQ_ENTITY.format(eui=DEVICES[device]),
            "no2",
            observed_at_of(device, n),
            **kwargs,  # type: ignore[arg-type]
        )


def state_db(world: World) -> sqlite3.Connection:
    return sqlite3.connect(world.folder / "state" / "state.sqlite", isolation_level=None)


async def test_every_value_delivered_holds_with_every_check_ok(world: World) -> None:
    for device in range(len(DEVICES)):
        for n in range(UPLINKS_PER_DEVICE):
            if (device, n) == (1, 3):
                continue  # never sent
            result = await verify(world, device, n)
            assert result.holds, result.to_json()
            expected = {"record", "value", "digest", "signature", "inclusion", "chain", "index"}
            assert set(statuses(result)) == expected
            assert all(s == "ok" for name, s in statuses(result).items() if name != "chain" or (device, n) != (1, 4))


async def test_a_lost_frame_is_a_warning_not_a_failure(world: World) -> None:
    result = await verify(world, 1, 4)
    assert result.holds
    chain = next(c for c in result.checks if c.name == "chain")
    assert chain.status == "warning" and "1 frame(s) between fCnt 102 and 104" in chain.detail


async def test_the_value_read_must_be_the_recorded_one(world: World) -> None:
    assert (await verify(world, value=str(no2_of(0, 2)))).holds
    tampered = await verify(world, value=str(no2_of(0, 2) + 1))
    assert not tampered.holds and statuses(tampered)["value"] == "failed"
    assert {n for n, s in statuses(tampered).items() if s == "failed"} == {"value"}


async def test_a_value_changed_in_the_broker_is_detected(world: World) -> None:
    broker_db = sqlite3.connect(world.folder / "broker.sqlite", isolation_level=None)
    tables = [r[0] for r in broker_db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    changed = 0
    for table in tables:
        columns = [r[1] for r in broker_db.execute(f"PRAGMA table_info({table})")]
        for column in columns:
            changed += broker_db.execute(
                f"UPDATE {table} SET {column} = replace({column}, '{no2_of(0, 2)}', '99.99') "
                f"WHERE typeof({column}) = 'text' AND {column} LIKE '%{no2_of(0, 2)}%'"
            ).rowcount
    broker_db.close()
    assert changed > 0, "the test did not find the value in the broker's database"
    result = await verify(world)
    assert not result.holds
    assert statuses(result)["value"] == "failed" and "99.99" in next(
        c.detail for c in result.checks if c.name == "value"
    )


async def rewrite_graph(runtime: ProvenanceRuntime, graph: str, index: int, change: Callable[[str], str]) -> None:
    """Clear ``graph`` and index every record again, the quads of record ``index`` changed."""
    assert runtime.store is not None and runtime.indexer is not None
    keys = runtime.indexer.pseudonyms
    await runtime.store.clear_graph(graph)
    for stored in runtime.ledger.records("ville", 0, 1000):
        text = index_nquads(stored.record, stored.index, pseudonyms=keys) + static_nquads(
            stored.record, pseudonyms=keys
        )
        await runtime.store.add_nquads(change(text) if stored.index == index else text)


async def test_a_triple_changed_in_the_rdf_store_is_detected(world: World) -> None:
    async with world.running() as (runtime, _):
        assert runtime.store is not None
        index = record_index(runtime, 0, 2)
        personal = personal_graph_iri("ville")
        quads = await runtime.store.quads([f"urn:ngsild-adapter:ville:uplink:{index}"], personal)
        s, p, o = next(q for q in quads if "fCnt" in q[1])  # the frame counter: in the personal graph
        await rewrite_graph(
            runtime,
            personal,
            index,
            lambda text: text.replace(
                f"{s} {p} {o} <{personal}> .",
                f'{s} {p} "999"^^<http://www.w3.org/2001/XMLSchema#integer> <{personal}> .',
            ),
        )
        result = await runtime.verify("ville", AQ_ENTITY.format(eui=DEVICES[0]), "no2", observed_at_of(0, 2))
    assert not result.holds and statuses(result)["index"] == "failed"
    assert {n for n, s in statuses(result).items() if s == "failed"} == {"index"}


async def test_a_changed_pseudonym_is_detected(world: World) -> None:
    async with world.running() as (runtime, _):
        assert runtime.store is not None and runtime.indexer is not None
        index = record_index(runtime, 0, 2)
        key = runtime.indexer.pseudonyms.key_for("ville", observed_at_of(0, 2).date().isoformat())
        mine, other = key.device(DEVICES[0]), key.device(DEVICES[1])
        # the value said to come from the other device: its pseudonym in the shared graph
        await rewrite_graph(
            runtime,
            graph_iri("ville"),
            index,
            lambda text: text.replace(f"<{PROV}wasAttributedTo> <{mine}>", f"<{PROV}wasAttributedTo> <{other}>"),
        )
        moved = await runtime.verify("ville", AQ_ENTITY.format(eui=DEVICES[0]), "no2", observed_at_of(0, 2))
        assert not moved.holds and statuses(moved)["index"] == "failed"
        # the pseudonym's link to the real device copied into the shared graph: it would undo it
        await rewrite_graph(runtime, graph_iri("ville"), -1, lambda text: text)
        link = f"<{mine}> <{NGA}pseudonymOf> <urn:ngsild-adapter:ville:device:{DEVICES[0]}>"
        await runtime.store.add_nquads(f"{link} <{graph_iri('ville')}> .\n")
        leaked = await runtime.verify("ville", AQ_ENTITY.format(eui=DEVICES[0]), "no2", observed_at_of(0, 2))
    assert not leaked.holds and statuses(leaked)["index"] == "failed"
    assert "wrong graph" in next(c.detail for c in leaked.checks if c.name == "index")


async def test_without_its_pseudonym_key_the_index_check_says_so(world: World) -> None:
    (world.folder / "keys" / "pseudonyms" / "ville" / "initial.key").unlink()
    async with world.running() as (runtime, _):
        result = await runtime.verify("ville", AQ_ENTITY.format(eui=DEVICES[0]), "no2", observed_at_of(0, 2))
    index = next(c for c in result.checks if c.name == "index")
    assert not result.holds and index.status == "failed"
    assert "pseudonym key of ville" in index.detail and "missing" in index.detail
    assert {n for n, s in statuses(result).items() if s == "failed"} == {"index"}
    assert not (world.folder / "keys" / "pseudonyms" / "ville" / "initial.key").exists(), "a verifier makes no key"


async def test_a_changed_leaf_of_the_log_is_detected(world: World) -> None:
    async with world.running() as (runtime, _):
        index = record_index(runtime, 0, 2)
    db = state_db(world)
    db.execute("UPDATE merkle_entry SET data = zeroblob(32) WHERE log = 'ville' AND idx = ?", (index,))
    db.close()
    result = await verify(world)
    assert not result.holds and statuses(result)["digest"] == "failed"


async def test_a_changed_record_breaks_its_digest_and_the_chain(world: World) -> None:
    async with world.running() as (runtime, _):
        index = record_index(runtime, 0, 2)
    db = state_db(world)
    (text,) = db.execute("SELECT record FROM prov_record WHERE tenant = 'ville' AND idx = ?", (index,)).fetchone()
    db.execute(
        "UPDATE prov_record SET record = ? WHERE tenant = 'ville' AND idx = ?",
        (text.replace(str(no2_of(0, 2)), "12.5"), index),
    )
    db.close()
    result = await verify(world, value="12.5")  # the forged record agrees with the forged value...
    assert not result.holds  # ...but not with the log, nor with the next record's link
    assert statuses(result)["digest"] == "failed" and statuses(result)["chain"] == "failed"


async def test_a_changed_tree_head_is_detected(world: World) -> None:
    db = state_db(world)
    (note,) = db.execute(
        "SELECT note FROM prov_checkpoint WHERE tenant = 'ville' ORDER BY size DESC LIMIT 1"
    ).fetchone()
    lines = bytes(note).decode().split("\n")
    lines[1] = str(int(lines[1]) + 1)  # claim one more record
    db.execute("UPDATE prov_checkpoint SET note = ? WHERE tenant = 'ville'", ("\n".join(lines).encode(),))
    db.close()
    result = await verify(world)
    assert not result.holds and statuses(result)["signature"] == "failed"


async def test_a_changed_chain_link_is_detected(world: World) -> None:
    async with world.running() as (runtime, _):
        previous = record_index(runtime, 0, 1)
    db = state_db(world)
    (text,) = db.execute("SELECT record FROM prov_record WHERE tenant = 'ville' AND idx = ?", (previous,)).fetchone()
    record = json.loads(text)
    record["chain"]["prev"] = "00" * 32
    db.execute(
        "UPDATE prov_record SET record = ? WHERE tenant = 'ville' AND idx = ?",
        (json.dumps(record, sort_keys=True, separators=(",", ":")), previous),
    )
    db.close()
    result = await verify(world, 0, 2)  # the value after the changed link
    assert not result.holds and statuses(result)["chain"] == "failed"
    assert "does not hash to this record's prev" in next(c.detail for c in result.checks if c.name == "chain")


async def test_a_deleted_record_is_detected_from_its_value_and_from_its_successor(world: World) -> None:
    async with world.running() as (runtime, _):
        deleted = record_index(runtime, 0, 2)
    db = state_db(world)
    db.execute("DELETE FROM prov_record WHERE tenant = 'ville' AND idx = ?", (deleted,))
    db.close()
    own = await verify(world, 0, 2)
    assert not own.holds and statuses(own)["record"] == "failed"
    successor = await verify(world, 0, 3)
    assert not successor.holds and statuses(successor)["chain"] == "failed"
    assert "is missing" in next(c.detail for c in successor.checks if c.name == "chain")


async def test_a_record_not_yet_signed_is_pending_not_holding(world: World) -> None:
    db = state_db(world)
    db.execute("DELETE FROM prov_checkpoint")
    db.close()
    result = await verify(world)
    assert not result.holds and statuses(result)["signature"] == "pending"


def test_cli_exit_status_and_report(world: World) -> None:
    port = free_port()
    broker = subprocess.Popen(
        [str(ADAPTER_BIN), "broker", "--port", str(port), "--db", str(world.folder / "broker.sqlite")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):  # bounded wait for the broker's port
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        config = world.config(f"http://127.0.0.1:{port}")
        toml = world.folder / "adapter.toml"
        toml.write_text(
            f'[adapter]\nmodels = "{config.models_dir}"\nstate_dir = "{config.state_dir}"\n'
            '[[collectivity]]\ntenant = "ville"\nname = "Ville"\n'
            f'[broker]\nurl = "http://127.0.0.1:{port}"\n'
            f'[provenance]\nkey_dir = "{config.provenance.key_dir}"\nlog_origin = "test.example/logs"\n'
        )
        args = [
            "verify",
            "--config",
            str(toml),
            "--tenant",
            "ville",
            "--entity",
            AQ_ENTITY.format(eui=DEVICES[0]),
            "--attr",
            "no2",
            "--observed-at",
            observed_at_of(0, 2).isoformat(),
        ]
        runner = CliRunner(env={"NGSILD_ADAPTER_PROVENANCE_KEY_DIR": str(config.provenance.key_dir)})
        ok = runner.invoke(main, args, catch_exceptions=False)
        assert ok.exit_code == 0, ok.output
        assert "HOLDS" in ok.output and "FAILED" not in ok.output
        bad = runner.invoke(main, [*args, "--value", "1.5", "--json"], catch_exceptions=False)
        assert bad.exit_code == 1
        report = json.loads(bad.output)
        assert report["holds"] is False
        assert [c["check"] for c in report["checks"] if c["status"] == "failed"] == ["value"]
        wrong_key = runner.invoke(
            main, [*args, "--key", OTHER_KEY.verifier.vkey.replace("other", "test.example/logs/ville")]
        )
        assert wrong_key.exit_code != 0
    finally:
        broker.terminate()
        broker.wait(timeout=10)
