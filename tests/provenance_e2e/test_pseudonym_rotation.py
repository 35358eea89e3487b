"""Pseudonym keys on disk and their rotation, through the indexer and the verifier: a rotation
dated ahead of the records changes nothing indexed; one dated among them rebuilds the graphs,
records from its date get new pseudonyms, older ones keep theirs, and the verifier holds on
both sides; a changed key rebuilds; keys stay out of a Git work tree."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapter.exceptions import ConfigError
from adapter.provenance.rdf import NGA, PROV, graph_iri, personal_graph_iri
from adapter.provenance.verify import Verification
from tests.provenance_e2e.indexing import Setup
from tests.provenance_rdf.support import log, utc

ROTATION = "2026-11-21"  # the fixtures of 'ville' were received on the 20th and the 21st


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    opened = Setup.open(tmp_path / "files")
    opened.record_fixtures("ville")
    opened.ledger.sign_checkpoints()
    yield opened
    await opened.close()


async def device_of(setup: Setup, n: int) -> str:
    quads = await setup.store.quads([f"urn:ngsild-adapter:ville:uplink:{n}"], graph_iri("ville"))
    (device,) = {o for _, p, o in quads if p == f"<{PROV}wasAttributedTo>"}
    return device[1:-1]


async def verify(setup: Setup, indexer: Any, n: int) -> Verification:
    """The verification of one indexed value of record ``n`` (its first entity's first number)."""
    stored = setup.ledger.get("ville", n)
    assert stored is not None
    record = stored.record
    entity = record["entities"][0]
    name, attribute = next(
        (k, a) for k, a in sorted(entity["attributes"].items()) if isinstance(a.get("value"), int | float)
    )
    observed = utc(attribute.get("observedAt") or record["observedAt"])
    return await setup.runtime(indexer).verify(
        "ville", entity["id"], name, observed, value=json.dumps(attribute["value"]), record=n
    )


def received_on(n: int) -> str:
    return utc(log("ville")[n]["uplink"]["receivedAt"]).date().isoformat()


async def test_rotations_on_disk_through_index_and_verifier(setup: Setup) -> None:
    before = [n for n in range(len(log("ville"))) if received_on(n) < ROTATION]
    after = [n for n in range(len(log("ville"))) if received_on(n) >= ROTATION]
    assert before and after
    first = setup.indexer()
    assert await first.catch_up() == len(log("ville"))
    keys = setup.folder / "keys" / "pseudonyms" / "ville"
    assert sorted(p.name for p in keys.iterdir()) == ["initial.key"]  # created by the indexing process
    assert stat.S_IMODE((keys / "initial.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    old = {n: await device_of(setup, n) for n in range(len(log("ville")))}

    # a rotation ahead of every record: a new key file, nothing to rebuild, nothing changed
    ahead = setup.indexer(rotations=["2026-12-01"])
    assert await ahead.catch_up() == 0
    assert (keys / "2026-12-01.key").exists()
    assert {n: await device_of(setup, n) for n in old} == old

    # a rotation among the records: rebuilt; from its date on, new pseudonyms, before it the same
    rotated = setup.indexer(rotations=[ROTATION, "2026-12-01"])
    assert await rotated.catch_up() == len(log("ville"))
    new = {n: await device_of(setup, n) for n in old}
    for n in before:
        assert new[n] == old[n]
    for n in after:
        assert new[n] != old[n] and new[n].split(":")[4] != old[n].split(":")[4]  # another key id
    devices = {log("ville")[n]["device"]["devEui"] for n in after} & {
        log("ville")[n]["device"]["devEui"] for n in before
    }
    assert devices, "a device heard on both sides"
    for eui in devices:  # the data admin's join: both pseudonyms, one device
        links = {new[n] for n in old if log("ville")[n]["device"]["devEui"] == eui}
        assert len(links) == 2
        for pseudonym in links:
            (link,) = await setup.store.quads([pseudonym], personal_graph_iri("ville"))
            assert link == (f"<{pseudonym}>", f"<{NGA}pseudonymOf>", f"<urn:ngsild-adapter:ville:device:{eui}>")
    for n in (before[-1], after[0]):
        result = await verify(setup, rotated, n)
        assert result.holds, result.to_json()
        index = next(c for c in result.checks if c.name == "index")
        assert index.status == "ok"
    # the verifier with the keys of another configuration: the index differs, it says so
    stale = await verify(setup, setup.indexer(), after[0])
    assert not stale.holds and next(c for c in stale.checks if c.name == "index").status == "failed"


async def test_a_replaced_key_rebuilds_the_graphs(setup: Setup) -> None:
    first = setup.indexer()
    await first.catch_up()
    old = await device_of(setup, 0)
    key = setup.folder / "keys" / "pseudonyms" / "ville" / "initial.key"
    key.unlink()  # lost: the indexing process makes a new one, and all pseudonyms change
    again = setup.indexer()
    assert await again.catch_up() == len(log("ville"))
    assert await device_of(setup, 0) != old
    assert (await verify(setup, again, 0)).holds


def test_pseudonym_keys_are_refused_inside_a_repository(setup: Setup, tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    from adapter.provenance.pseudonyms import PseudonymKeys

    keys = PseudonymKeys(tmp_path / "repo" / "keys" / "pseudonyms", ["ville"])
    with pytest.raises(ConfigError, match="outside any repository"):
        keys.ensure()
    assert not (tmp_path / "repo" / "keys").exists()


def test_a_key_others_may_read_is_refused(setup: Setup) -> None:
    keys = setup.keys()
    keys.ensure()
    path = keys.path("ville", None)
    assert path is not None
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="group or others"):
        setup.keys().key("ville", None)


def test_rotations_are_dates_in_the_configuration(tmp_path: Path) -> None:
    import datetime as dt

    from adapter.config import load_config

    toml = tmp_path / "adapter.toml"
    base = '[[collectivity]]\ntenant = "ville"\nname = "Ville"\n[provenance]\n'
    toml.write_text(base + 'pseudonym_rotations = [2028-01-01, "2027-01-01", "2027-01-01"]\n')
    assert load_config(toml, env={}).provenance.pseudonym_rotations == (dt.date(2027, 1, 1), dt.date(2028, 1, 1))
    from_env = load_config(toml, env={"NGSILD_ADAPTER_PROVENANCE_PSEUDONYM_ROTATIONS": "2029-06-01, 2029-01-01"})
    assert from_env.provenance.pseudonym_rotations == (dt.date(2029, 1, 1), dt.date(2029, 6, 1))
    assert load_config(None, env={}).provenance.pseudonym_rotations == ()
    for bad in ('["next year"]', "[2027-01-01T00:00:00Z]", '"2027-01-01"'):
        toml.write_text(base + f"pseudonym_rotations = {bad}\n")
        with pytest.raises(ConfigError, match="pseudonym_rotations"):
            load_config(toml, env={})
