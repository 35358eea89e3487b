"""What only the embedded store does: its files, its query processes, the event loop."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import pytest

from adapter.provenance.store import OxigraphStore, QueryTimeout
from tests.rdfstore.test_contract import ENDLESS, nquads

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


def children() -> set[int]:
    """The running (not zombie) child processes of this process (Linux)."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            listed = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        for pid in listed:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
            except (FileNotFoundError, IndexError):
                continue
            if state != "Z":
                found.add(int(pid))
    return found


async def test_a_store_without_path_lives_in_a_temporary_folder_removed_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    store = OxigraphStore(None)
    await store.add_nquads(nquads(3))
    await store.query_protocol(COUNT, accept="text/csv", graphs=None, timeout_s=10, max_results=10)
    assert list(tmp_path.iterdir())
    await store.close()
    assert list(tmp_path.iterdir()) == []


async def test_the_store_keeps_its_quads_across_a_reopening(tmp_path: Path) -> None:
    store = OxigraphStore(tmp_path / "index")
    await store.add_nquads(nquads(5))
    await store.close()
    reopened = OxigraphStore(tmp_path / "index")
    try:
        assert await reopened.quad_count() == 5
    finally:
        await reopened.close()


async def test_only_the_latest_snapshot_is_kept_and_none_after_close(tmp_path: Path) -> None:
    store = OxigraphStore(tmp_path / "index")
    snapshots = tmp_path / "index.sparql-snapshots"
    try:
        for i in range(3):
            await store.add_nquads(nquads(1, prefix=f"urn:n{i}-"))
            body, _ = await store.query_protocol(COUNT, accept="text/csv", graphs=None, timeout_s=10, max_results=10)
            assert body.split(b"\r\n")[1] == str(i + 1).encode()
            assert len(list(snapshots.iterdir())) == 1
    finally:
        await store.close()
    assert not snapshots.exists()


async def test_a_timed_out_query_process_is_killed(tmp_path: Path) -> None:
    store = OxigraphStore(tmp_path / "index", query_workers=1)
    try:
        await store.add_nquads(nquads(300))
        before = children()
        await store.query_protocol(COUNT, accept="text/csv", graphs=None, timeout_s=10, max_results=10)
        (worker,) = children() - before
        with pytest.raises(QueryTimeout):
            await store.query_protocol(ENDLESS, accept="text/csv", graphs=None, timeout_s=0.5, max_results=10)
        assert worker not in children()
        body, _ = await store.query_protocol(COUNT, accept="text/csv", graphs=None, timeout_s=10, max_results=10)
        assert body.split(b"\r\n")[1] == b"300"
    finally:
        await store.close()
    assert children() == before


async def test_waiting_for_a_busy_query_process_counts_in_the_time_limit(tmp_path: Path) -> None:
    store = OxigraphStore(tmp_path / "index", query_workers=1)
    try:
        await store.add_nquads(nquads(300))
        endless = asyncio.create_task(
            store.query_protocol(ENDLESS, accept="text/csv", graphs=None, timeout_s=2, max_results=10)
        )
        await asyncio.sleep(0.1)
        with pytest.raises(QueryTimeout):
            await store.query_protocol(COUNT, accept="text/csv", graphs=None, timeout_s=0.5, max_results=10)
        with pytest.raises(QueryTimeout):
            await endless
    finally:
        await store.close()


async def test_the_event_loop_runs_while_a_long_select_is_evaluated(tmp_path: Path) -> None:
    """pyoxigraph releases the GIL during evaluation: the loop keeps its turns meanwhile."""
    store = OxigraphStore(tmp_path / "index")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    try:
        await store.add_nquads(nquads(2000))
        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        rows = await store.select("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f }")
        elapsed = time.monotonic() - started
        ticker.cancel()
        assert rows == [{"n": 2000 * 2000}]
        assert elapsed > 0.1, "the query is too quick to tell anything"
        # a loop blocked by the GIL would not tick at all during the query (margin for slow machines)
        assert ticks >= max(5, elapsed / 0.005 / 10)
    finally:
        await store.close()
