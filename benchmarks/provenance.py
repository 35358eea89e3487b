"""Provenance costs: the RDF index's rate and catch-up, store size per uplink, the lineage query
on a large store, and the time to verify one value.

    .venv/bin/python benchmarks/provenance.py [--burst 100000] [--triples 10000000]

1. A burst of ``--burst`` air-quality uplinks (two devices' worth of profiles: the demo's
   Cayenne LPP air-quality sample with new frame counters and values) goes through the real
   pipeline in groups of 100 (the MQTT path), recording provenance; nothing is indexed meanwhile.
   Then the indexer catches up on the on-disk pyoxigraph store: the time it takes, hence the
   sustained indexing rate (uplinks/s), which must stay above the ingestion rate.
2. Size per uplink: the records' canonical text, the ledger's share of the SQLite file (after
   the outbox and dedup tables are emptied and the file vacuumed), and the RDF store's folder.
3. ``--triples`` quads of synthetic records (the burst's record with other devices, times and
   values) are bulk-loaded into a fresh on-disk store; the lineage query
   (``adapter/provenance/queries/lineage.rq``) of one value is timed (median of 20).
4. One value is verified end to end (record, digest, signature, inclusion, chain, index; no
   broker): median of 50.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dataclasses  # noqa: E402

from adapter.app import build_pipeline, rdf_indexer  # noqa: E402
from adapter.config import load_config  # noqa: E402
from adapter.pipeline import PipelineResult, RawEvent  # noqa: E402
from adapter.provenance.pseudonyms import PseudonymKeys  # noqa: E402
from adapter.provenance.queries import load_query  # noqa: E402
from adapter.provenance.rdf import index_nquads, static_nquads  # noqa: E402
from adapter.provenance.runtime import ProvenanceRuntime  # noqa: E402
from adapter.provenance.store import OxigraphStore  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "adapter" / "demo" / "events" / "01-chirpstack-air-quality.json"
START = datetime(2026, 11, 1, tzinfo=UTC)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def uplink_bodies(n: int) -> list[bytes]:
    spec = json.loads(SAMPLE.read_text())
    bodies = []
    for i in range(n):
        body = copy.deepcopy(spec["body"])
        body["fCnt"] = i
        body["time"] = (START + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
        lpp = bytes.fromhex("01670070026894") + struct.pack(">BBh", 3, 2, 2000 + i % 3000)
        body["data"] = base64.b64encode(lpp).decode()
        bodies.append(json.dumps(body).encode())
    return bodies


async def burst_and_catch_up(n: int, workdir: Path) -> tuple[Path, int]:
    config = load_config(None)
    config = dataclasses.replace(
        config,
        state_dir=workdir / "state",
        outbox_max_depth=4 * n,  # no broker here: the outbox keeps it all
        provenance=dataclasses.replace(config.provenance, key_dir=workdir / "keys"),
    )
    pipeline = build_pipeline(config, config.state_dir)
    origin = config.connection("ville-chirpstack").origin
    events = [RawEvent(body, "chirpstack", origin) for body in uplink_bodies(n)]
    started = time.perf_counter()
    for first in range(0, n, 100):
        for outcome in pipeline.process_many(events[first : first + 100]):
            assert isinstance(outcome, PipelineResult) and outcome.status == "mapped", outcome
    ingest_s = time.perf_counter() - started
    assert pipeline.ledger is not None
    pipeline.ledger.sign_checkpoints()
    print(f"ingested {n:,} uplinks with provenance in {ingest_s:.1f} s ({n / ingest_s:,.0f} uplinks/s)")

    store = OxigraphStore(workdir / "rdf")
    indexer = rdf_indexer(config, pipeline.ledger, pipeline.state.connection, store)
    started = time.perf_counter()
    indexed = await indexer.catch_up()
    catch_up_s = time.perf_counter() - started
    quads = await store.quad_count()
    print(
        f"RDF index caught up with a burst of {indexed:,} records in {catch_up_s:.1f} s: "
        f"{indexed / catch_up_s:,.0f} uplinks/s sustained on disk, {quads / n:.1f} quads per uplink"
    )

    db = pipeline.state.connection
    (record_bytes,) = db.execute("SELECT avg(length(record)) FROM prov_record").fetchone()
    runtime = ProvenanceRuntime(pipeline.ledger, store=store, indexer=indexer, contexts={})
    index = n // 2
    record = pipeline.ledger.get("ville", index)
    assert record is not None
    entity = record.record["entities"][0]
    observed = datetime.fromisoformat(record.record["observedAt"].replace("Z", "+00:00"))
    times = []
    for _ in range(50):
        started = time.perf_counter()
        result = await runtime.verify(
            "ville", entity["id"], "no2", observed, value=json.dumps(entity["attributes"]["no2"]["value"]), record=index
        )
        times.append(time.perf_counter() - started)
        assert result.holds, result.to_json()
    print(
        f"verify one value (record, digest, signature, inclusion, chain, index): "
        f"median {statistics.median(times) * 1000:.1f} ms"
    )
    await store.close()
    pipeline.close()

    state_file = config.state_dir / "state.sqlite"
    vacuum = sqlite3.connect(state_file, isolation_level=None)
    vacuum.execute("DELETE FROM outbox")
    vacuum.execute("DELETE FROM seen_uplink")
    vacuum.execute("DELETE FROM meter_index")
    vacuum.execute("DROP TABLE IF EXISTS prov_payload")  # raw payloads: their retention is a setting
    vacuum.execute("VACUUM")
    vacuum.close()
    ledger_bytes = state_file.stat().st_size
    rdf_bytes = folder_size(workdir / "rdf")
    print(
        f"size per uplink: record {record_bytes:,.0f} B canonical JSON; ledger (records, chain, Merkle log) "
        f"{ledger_bytes / n:,.0f} B in SQLite; RDF index {rdf_bytes / n:,.0f} B on disk (RocksDB)"
    )
    return workdir, index


async def lineage_on_large_store(triples: int, workdir: Path) -> None:
    spec = json.loads(SAMPLE.read_text())
    del spec
    config = load_config(None)
    config = dataclasses.replace(
        config,
        state_dir=workdir / "state-large",
        provenance=dataclasses.replace(config.provenance, key_dir=workdir / "keys"),
    )
    pipeline = build_pipeline(config, None)
    origin = config.connection("ville-chirpstack").origin
    result = pipeline.process(uplink_bodies(1)[0], lns="chirpstack", origin=origin)
    assert pipeline.ledger is not None and result.status == "mapped"
    template = pipeline.ledger.get("ville", 0)
    assert template is not None
    base = template.record
    pipeline.close()
    keys = PseudonymKeys.ephemeral()
    per_record = len(index_nquads(base, 0, pseudonyms=keys).splitlines())
    records = triples // per_record
    store = OxigraphStore(workdir / "rdf-large")
    started = time.perf_counter()
    chunk: list[str] = [static_nquads(base, pseudonyms=keys)]
    target = None
    for i in range(records):
        record = copy.deepcopy(base)
        eui = f"{i % 5000:016x}"
        record["device"]["devEui"] = eui
        moment = (START + timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record["observedAt"] = moment
        record["uplink"]["fCnt"] = i
        for entity in record["entities"]:
            entity["id"] = entity["id"].rsplit(":", 1)[0] + ":" + eui
            if "no2" in entity["attributes"]:
                entity["attributes"]["no2"]["value"] = round(10 + (i % 700) / 10, 1)
        if i == records // 2:
            target = record
        chunk.append(index_nquads(record, i, pseudonyms=keys))
        if len(chunk) >= 5000:
            await store.add_nquads("".join(chunk))
            chunk = []
    await store.add_nquads("".join(chunk))
    quads = await store.quad_count()
    print(f"loaded {quads:,} quads ({records:,} synthetic records) in {time.perf_counter() - started:.0f} s")
    assert target is not None
    entity = target["entities"][0]
    query = load_query("lineage", entity=entity["id"], attribute="no2", observedAt=target["observedAt"])
    times = []
    rows = []
    for _ in range(20):
        started = time.perf_counter()
        rows = await store.select(query)
        times.append(time.perf_counter() - started)
    assert rows, "the lineage query found nothing"
    print(
        f"lineage query of one value with {quads:,} quads in the store: median {statistics.median(times) * 1000:.1f} ms, "
        f"p90 {sorted(times)[17] * 1000:.1f} ms ({len(rows)} rows)"
    )
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=100_000, help="uplinks in the burst (default 100,000; 0: skip)")
    parser.add_argument(
        "--triples", type=int, default=10_000_000, help="quads for the lineage query (default 10M; 0: skip)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ngsild-adapter-bench-"))
    try:
        if args.burst:
            asyncio.run(burst_and_catch_up(args.burst, workdir))
        if args.triples:
            asyncio.run(lineage_on_large_store(args.triples, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
