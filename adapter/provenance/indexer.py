"""The RDF index of the provenance log: built from the records in batches, off the hot path.

Why an index and not the store of record: writing ~20 quads per uplink into an RDF store costs
more than the rest of the pipeline, and the store is not part of the outbox's transaction. The
records in the ledger are the durable truth; this module turns them into quads
(``adapter.provenance.rdf``) in rounds of ``batch`` records per collectivity, and remembers in
the ledger's SQLite file how far it got. The quads of a record are a pure function of the
record, so a round that is repeated after a crash (quads written, position not yet saved)
adds nothing: the index never misses a record and never holds one twice.

It may lag behind during a burst (``lag()``, exported as a metric) and catches up; ``rebuild``
drops a collectivity's graphs and indexes its log again from the first record.

The gateway's access records (``adapter.access.log``, the SQLite file at
``access_log``) go to each collectivity's access graph the same way, in order of their ids, once
the gateway has created the file.

Which attributes go to the personal graphs (``personal``, see ``adapter.provenance.rdf``) is
remembered with the positions: an index built with another list (or before there was one) is
rebuilt from the logs at the first round, so that no personal value stays in a shared graph.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

from adapter.access.graph import access_graph_of, access_nquads
from adapter.access.log import AccessLog
from adapter.provenance.ledger import ProvenanceLedger, StoredRecord
from adapter.provenance.rdf import delivery_nquads, graph_iri, index_nquads, personal_graph_iri, static_nquads
from adapter.provenance.store import RdfStore, RdfStoreUnavailable

__all__ = ["RdfIndexer", "graph_iri"]

log = logging.getLogger(__name__)

#: records per write to the store (~15,000 quads: large enough for pyoxigraph's bulk loader)
CHUNK = 500
_MAX_STATIC_KEYS = 100_000
#: the position of the gateway's access records (not a tenant name: those have no ':')
_ACCESSES = ":access"

_TABLE = """CREATE TABLE IF NOT EXISTS prov_index_position (
    what TEXT PRIMARY KEY,   -- a tenant's records, '' for delivery receipts, ':access' for the gateway's accesses
    next INTEGER NOT NULL    -- records: the next record number to index; receipts, accesses: the last id indexed
)"""
_SETTINGS = """CREATE TABLE IF NOT EXISTS prov_index_settings (
    name TEXT PRIMARY KEY,   -- 'personal': the attributes the index keeps in personal graphs
    value TEXT NOT NULL      -- a JSON array of names, sorted
)"""


class RdfIndexer:
    """Keeps ``store`` up to date with ``ledger``; one indexer per store.

    ``personal``: the attribute names whose values go to the collectivities' personal graphs
    (``[provenance] personal_attributes``); ``access_log``: the gateway's access log file, if any.
    """

    def __init__(
        self, ledger: ProvenanceLedger, db: sqlite3.Connection, store: RdfStore, *, batch: int = 2000,
        personal: Set[str] = frozenset(), access_log: Path | None = None,
    ) -> None:
        self._ledger = ledger
        self._db = db
        self._store = store
        self.batch = batch
        self.personal = frozenset(personal)
        self._access_path = access_log
        self._access: AccessLog | None = None
        self._partition_checked = False
        db.execute(_TABLE)
        db.execute(_SETTINGS)
        self._wake = asyncio.Event()
        self._static_written: set[tuple[Any, ...]] = set()

    def position(self, tenant: str) -> int:
        """The number of ``tenant``'s records indexed (they are indexed in order)."""
        row = self._db.execute("SELECT next FROM prov_index_position WHERE what = ?", (tenant,)).fetchone()
        return 0 if row is None else int(row[0])

    def _save(self, what: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO prov_index_position VALUES (?, ?) ON CONFLICT (what) DO UPDATE SET next = excluded.next",
            (what, value),
        )

    def lag(self) -> Mapping[str, int]:
        """Records logged but not indexed yet, per collectivity."""
        return {tenant: self._ledger.size(tenant) - self.position(tenant) for tenant in self._ledger.tenants()}

    def wake(self) -> None:
        self._wake.set()

    async def index_round(self) -> int:
        """Index up to ``batch`` new records of each collectivity and the new receipts; returns
        how many records and receipts were indexed.

        Records go to the store in chunks of ``CHUNK``; the quads of the next chunk are
        written while the store loads the previous one in its thread (it releases the GIL).
        A collectivity's position is saved once its chunk is in the store.
        """
        if not self._partition_checked:
            await self._check_partition()
        done = 0
        loading: tuple[asyncio.Task[None], str, int] | None = None
        for tenant in self._ledger.tenants():
            start = self.position(tenant)
            records = list(self._ledger.records(tenant, start, self.batch))
            for first in range(0, len(records), CHUNK):
                chunk = records[first:first + CHUNK]
                text = self._quads(chunk)
                if loading is not None:
                    await self._finish(loading)
                loading = (asyncio.create_task(self._store.add_nquads(text)), tenant, chunk[-1].index + 1)
                done += len(chunk)
        if loading is not None:
            await self._finish(loading)
        receipts = self._ledger.deliveries(self._receipts_position(), self.batch)
        if receipts:
            await self._store.add_nquads("".join(delivery_nquads(r.tenant, r.to_json()) for r in receipts))
            self._save("", receipts[-1].id)
            done += len(receipts)
        return done + await self._index_accesses()

    async def _index_accesses(self) -> int:
        if self._access is None:
            if self._access_path is None or not self._access_path.exists():
                return 0  # no gateway (yet)
            self._access = AccessLog(self._access_path)
        accesses = self._access.after(self.position(_ACCESSES), self.batch)
        if accesses:
            await self._store.add_nquads(access_nquads(accesses))
            self._save(_ACCESSES, accesses[-1].id)
        return len(accesses)

    def close(self) -> None:
        if self._access is not None:
            self._access.close()
            self._access = None

    def _quads(self, records: list[StoredRecord]) -> str:
        parts = []
        for stored in records:
            record = stored.record
            # What is described once (device, organisation, software, codec and profile files)
            # is written once per process; writing it again would add nothing.
            key = (record["tenant"], record["device"]["devEui"], record["adapter"]["version"],
                   *(step.get("codecSha256") or step.get("profileSha256") for step in record["steps"]))
            if key not in self._static_written:
                if len(self._static_written) >= _MAX_STATIC_KEYS:
                    self._static_written.clear()
                self._static_written.add(key)
                parts.append(static_nquads(record))
            parts.append(index_nquads(record, stored.index, personal=self.personal))
        return "".join(parts)

    async def _check_partition(self) -> None:
        """Rebuild every graph if the index was built with another list of personal attributes."""
        wanted = json.dumps(sorted(self.personal))
        row = self._db.execute("SELECT value FROM prov_index_settings WHERE name = 'personal'").fetchone()
        built = row[0] if row is not None else None
        if built != wanted:
            started = [t for t in self._ledger.tenants() if self.position(t) > 0]
            if started:
                log.warning("the RDF index was built with personal attributes %s, now %s: rebuilding the graphs of %s",
                            built or "(none recorded)", wanted, ", ".join(started))
            for tenant in started:
                await self._clear(tenant)
            self._db.execute(
                "INSERT INTO prov_index_settings VALUES ('personal', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (wanted,),
            )
        self._partition_checked = True

    async def _clear(self, tenant: str) -> None:
        for graph in (graph_iri(tenant), personal_graph_iri(tenant), access_graph_of(tenant)):
            await self._store.clear_graph(graph)
        self._save(tenant, 0)
        self._save("", 0)
        self._save(_ACCESSES, 0)
        self._static_written.clear()

    async def _finish(self, loading: tuple[asyncio.Task[None], str, int]) -> None:
        task, tenant, position = loading
        await task
        self._save(tenant, position)

    def _receipts_position(self) -> int:
        row = self._db.execute("SELECT next FROM prov_index_position WHERE what = ''").fetchone()
        return 0 if row is None else int(row[0])

    async def catch_up(self) -> int:
        """Index until nothing is left; returns how many records and receipts were indexed."""
        total = 0
        while (done := await self.index_round()) > 0:
            total += done
        return total

    async def run(self, *, idle_s: float = 0.5, retry_s: float = 5.0) -> None:
        """Index for ever: a round whenever woken or every ``idle_s``; store outages are waited out."""
        while True:
            try:
                done = await self.index_round()
            except RdfStoreUnavailable as exc:
                log.warning("RDF store unavailable, indexing again in %.0f s: %s", retry_s, exc)
                await asyncio.sleep(retry_s)
                continue
            if done == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), idle_s)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)  # let ingestion run between rounds

    async def rebuild(self, tenant: str) -> int:
        """Drop ``tenant``'s graphs and index its log again; returns the records indexed."""
        await self._clear(tenant)
        return await self.catch_up()
