"""The provenance ledger: records, device chains and Merkle logs, in the pipeline's SQLite file.

Hot path (``record``), inside the pipeline's transaction, so that the record commits together
with the dedup mark and the outbox items of its uplink (no entity queued without its record,
no record twice):

1. the device's chain head is read and the record gets ``chain = {seq, prev}``;
2. the record is canonicalised (RFC 8785) and its SHA-256 becomes the next leaf of its
   collectivity's Merkle log (``adapter.provenance.integrity``);
3. the canonical text is stored with its leaf index, device and chain position (a value read
   from the broker finds its record through its ``wasDerivedFrom`` link, docs/provenance.md);
4. the raw payload is kept beside it when retention allows (the record keeps its digest only).

Off the hot path: signed checkpoints (``sign_checkpoints``, at an interval), delivery receipts
(``record_delivery``, from the broker writer), payload pruning, and reads for the RDF indexer,
the HTTP surface and the verifier.

Tables are created on the connection given (the pipeline state's), one statement at a time:
``executescript`` would commit a transaction the caller has open.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from hashlib import sha256
from typing import Any

from adapter.exceptions import AdapterError
from adapter.provenance.integrity.canonical import canonicalize
from adapter.provenance.integrity.log import CollectivityLog
from adapter.provenance.integrity.note import NoteSigner
from adapter.provenance.integrity.storage import SQLiteStore
from adapter.provenance.record import uplink_iri

__all__ = ["DeliveryReceipt", "ProvenanceLedger", "RecordRef", "StoredRecord", "UnknownTenant"]

_TABLES = (
    "CREATE TABLE IF NOT EXISTS prov_log (tenant TEXT PRIMARY KEY, origin TEXT NOT NULL)",
    # rowid table: records are a few KiB, and WITHOUT ROWID suits small rows only
    """CREATE TABLE IF NOT EXISTS prov_record (
        tenant TEXT NOT NULL, idx INTEGER NOT NULL, dev_eui TEXT NOT NULL, seq INTEGER NOT NULL,
        digest BLOB NOT NULL, record TEXT NOT NULL, recorded_at REAL NOT NULL,
        UNIQUE (tenant, idx), UNIQUE (tenant, dev_eui, seq))""",
    """CREATE TABLE IF NOT EXISTS prov_payload (
        tenant TEXT NOT NULL, idx INTEGER NOT NULL, payload BLOB NOT NULL, stored_at REAL NOT NULL,
        PRIMARY KEY (tenant, idx))""",
    "CREATE INDEX IF NOT EXISTS prov_payload_age ON prov_payload (stored_at)",
    """CREATE TABLE IF NOT EXISTS prov_checkpoint (
        tenant TEXT NOT NULL, size INTEGER NOT NULL, note BLOB NOT NULL, signed_at REAL NOT NULL,
        PRIMARY KEY (tenant, size))""",
    """CREATE TABLE IF NOT EXISTS prov_delivery (
        id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, started_at TEXT NOT NULL,
        ended_at TEXT NOT NULL, broker TEXT NOT NULL, status INTEGER NOT NULL, software TEXT NOT NULL,
        records TEXT NOT NULL, refused TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS prov_delivered (
        tenant TEXT NOT NULL, idx INTEGER NOT NULL, delivery INTEGER NOT NULL,
        PRIMARY KEY (tenant, idx, delivery)) WITHOUT ROWID""",
)


#: device chain heads kept in memory (one per active device)
_MAX_CACHED_HEADS = 100_000


class UnknownTenant(AdapterError):
    """No log exists for this collectivity (nothing was ever recorded for it)."""


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Where a record went: its collectivity, leaf ``index`` and ``digest``."""

    tenant: str
    index: int
    digest: bytes

    @property
    def iri(self) -> str:
        return uplink_iri(self.tenant, self.index)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as stored: its text (the canonical form it was logged with) and its place."""

    tenant: str
    index: int
    dev_eui: str
    seq: int
    digest: bytes  # as stored beside the record; the verifier recomputes it from ``text``
    text: str

    @property
    def record(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.text)
        return value


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """One broker batch: when, where, the answer, and the records whose entities it carried."""

    id: int
    tenant: str
    started_at: str
    ended_at: str
    broker: str
    status: int
    software: str
    records: tuple[int, ...]
    refused: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
            "broker": self.broker,
            "status": self.status,
            "software": self.software,
            "records": list(self.records),
            "refused": list(self.refused),
        }


class ProvenanceLedger:
    """Records, chains and logs of every collectivity, on one SQLite connection.

    ``signer_for(tenant)`` gives the collectivity's log key (created on first use by
    ``adapter.provenance.integrity.keys``); its name is the log's origin.

    Device chain heads and the Merkle logs' right edges are cached (one writer): whoever owns
    the transactions calls ``forget_cached`` when one rolls back (``PipelineState.on_rollback``).
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        signer_for: Callable[[str], NoteSigner],
        *,
        tenants: Sequence[str] = (),
        payload_retention: timedelta | None = timedelta(days=30),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._signer_for = signer_for
        self._logs: dict[str, CollectivityLog] = {}
        self._heads: dict[tuple[str, str], tuple[int, str | None]] = {}  # chain head: (seq, digest hex)
        self.payload_retention = payload_retention
        self._clock = clock
        # Here, not on first use: a table created inside an event's transaction that rolls back is gone.
        SQLiteStore.create_tables(db)
        for statement in _TABLES:
            db.execute(statement)
        for tenant in tenants:
            self.open_log(tenant)

    # -- hot path ---------------------------------------------------------------------------

    def open_log(self, tenant: str) -> CollectivityLog:
        """The Merkle log of ``tenant``, registered (and its key created) on first use.

        Call it at start-up for the configured collectivities: registering is a write, and one
        made inside an event's transaction that rolls back is undone (it is then made again by
        the next record of that collectivity).
        """
        log = self._logs.get(tenant)
        if log is None:
            log = CollectivityLog(SQLiteStore(self._db, tenant, cached=True), self._signer_for(tenant))
            self._db.execute("INSERT OR IGNORE INTO prov_log VALUES (?, ?)", (tenant, log.origin))
            if not self._db.in_transaction:
                self._logs[tenant] = log
        return log

    def record(self, record: dict[str, Any], *, payload: bytes | None = None) -> RecordRef:
        """Chain, log and store ``record`` (call inside the pipeline's transaction)."""
        tenant = record["tenant"]
        dev_eui = record["device"]["devEui"]
        head = self._heads.get((tenant, dev_eui))
        if head is None:
            row = self._db.execute(
                "SELECT seq, digest FROM prov_record WHERE tenant = ? AND dev_eui = ? ORDER BY seq DESC LIMIT 1",
                (tenant, dev_eui),
            ).fetchone()
            head = (-1, None) if row is None else (row[0], bytes(row[1]).hex())
        seq = head[0] + 1
        record["chain"] = {"seq": seq, "prev": head[1]}
        canonical = canonicalize(record, keys_are_strings=True)
        digest = sha256(canonical).digest()
        log = self._logs.get(tenant) or self.open_log(tenant)
        index = log.tree.extend([digest]).start
        now = self._clock()
        self._db.execute(
            "INSERT INTO prov_record (tenant, idx, dev_eui, seq, digest, record, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tenant, index, dev_eui, seq, digest, canonical.decode("utf-8"), now),
        )
        if payload is not None and self.payload_retention is not None and self.payload_retention > timedelta(0):
            self._db.execute("INSERT INTO prov_payload VALUES (?, ?, ?, ?)", (tenant, index, payload, now))
        if len(self._heads) >= _MAX_CACHED_HEADS:
            self._heads.clear()
        self._heads[(tenant, dev_eui)] = (seq, digest.hex())
        return RecordRef(tenant, index, digest)

    def forget_cached(self) -> None:
        """Drop what is cached of the stored state: call it when a transaction rolls back."""
        self._heads.clear()
        for log in self._logs.values():
            store = log.tree.store
            if isinstance(store, SQLiteStore):
                store.forget()

    # -- off the hot path -------------------------------------------------------------------

    def tenants(self) -> list[str]:
        """Collectivities with a log."""
        return [tenant for (tenant,) in self._db.execute("SELECT tenant FROM prov_log ORDER BY tenant")]

    def log(self, tenant: str) -> CollectivityLog:
        """The log of ``tenant``; ``UnknownTenant`` if it was never opened."""
        if (
            tenant not in self._logs
            and self._db.execute("SELECT 1 FROM prov_log WHERE tenant = ?", (tenant,)).fetchone() is None
        ):
            raise UnknownTenant(f"no provenance log for collectivity {tenant!r}")
        return self._logs.get(tenant) or self.open_log(tenant)

    def sign_checkpoints(self) -> dict[str, bytes]:
        """Sign the tree head of every log that grew since its last checkpoint; returns them."""
        signed = {}
        for tenant in self.tenants():
            log = self.log(tenant)
            size = log.tree.size()
            latest = self.latest_checkpoint_size(tenant)
            if latest == size:
                continue
            note = log.signed_checkpoint(size)
            self._db.execute(
                "INSERT OR IGNORE INTO prov_checkpoint VALUES (?, ?, ?, ?)", (tenant, size, note, self._clock())
            )
            signed[tenant] = note
        return signed

    def latest_checkpoint_size(self, tenant: str) -> int | None:
        row = self._db.execute("SELECT max(size) FROM prov_checkpoint WHERE tenant = ?", (tenant,)).fetchone()
        return None if row[0] is None else int(row[0])

    def latest_checkpoint(self, tenant: str) -> bytes | None:
        """The last signed checkpoint of ``tenant`` (None before the first)."""
        row = self._db.execute(
            "SELECT note FROM prov_checkpoint WHERE tenant = ? ORDER BY size DESC LIMIT 1", (tenant,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def checkpoint_at(self, tenant: str, size: int) -> bytes | None:
        row = self._db.execute(
            "SELECT note FROM prov_checkpoint WHERE tenant = ? AND size = ?", (tenant, size)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def get(self, tenant: str, index: int) -> StoredRecord | None:
        row = self._db.execute(
            "SELECT dev_eui, seq, digest, record FROM prov_record WHERE tenant = ? AND idx = ?", (tenant, index)
        ).fetchone()
        return None if row is None else StoredRecord(tenant, index, row[0], row[1], bytes(row[2]), row[3])

    def chain_neighbour(self, tenant: str, dev_eui: str, seq: int) -> StoredRecord | None:
        """The record at position ``seq`` of the device's chain."""
        row = self._db.execute(
            "SELECT idx, digest, record FROM prov_record WHERE tenant = ? AND dev_eui = ? AND seq = ?",
            (tenant, dev_eui, seq),
        ).fetchone()
        return None if row is None else StoredRecord(tenant, row[0], dev_eui, seq, bytes(row[1]), row[2])

    def chain_length(self, tenant: str, dev_eui: str) -> int:
        row = self._db.execute(
            "SELECT max(seq) FROM prov_record WHERE tenant = ? AND dev_eui = ?", (tenant, dev_eui)
        ).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def records(self, tenant: str, start: int, limit: int) -> Iterator[StoredRecord]:
        """Records ``start``, ``start + 1``... of ``tenant`` (at most ``limit``), for the indexer."""
        rows = self._db.execute(
            "SELECT idx, dev_eui, seq, digest, record FROM prov_record WHERE tenant = ? AND idx >= ? ORDER BY idx LIMIT ?",
            (tenant, start, limit),
        )
        for idx, dev_eui, seq, digest, text in rows:
            yield StoredRecord(tenant, idx, dev_eui, seq, bytes(digest), text)

    def size(self, tenant: str) -> int:
        """Records logged for ``tenant``."""
        try:
            return self.log(tenant).tree.size()
        except UnknownTenant:
            return 0

    def payload(self, tenant: str, index: int) -> bytes | None:
        row = self._db.execute(
            "SELECT payload FROM prov_payload WHERE tenant = ? AND idx = ?", (tenant, index)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def prune_payloads(self) -> int:
        """Forget raw payloads older than the retention (their digests stay in the records)."""
        if self.payload_retention is None:
            return 0
        cutoff = self._clock() - self.payload_retention.total_seconds()
        return self._db.execute("DELETE FROM prov_payload WHERE stored_at < ?", (cutoff,)).rowcount

    def record_delivery(
        self,
        tenant: str,
        *,
        started_at: str,
        ended_at: str,
        broker: str,
        status: int,
        software: str,
        records: Sequence[int],
        refused: Sequence[dict[str, Any]] = (),
    ) -> int:
        """Keep the receipt of one broker batch; returns its id."""
        delivered = sorted(set(records))
        cursor = self._db.execute(
            "INSERT INTO prov_delivery (tenant, started_at, ended_at, broker, status, software, records, refused) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (tenant, started_at, ended_at, broker, status, software, json.dumps(delivered), json.dumps(list(refused))),
        )
        receipt = cursor.lastrowid
        assert receipt is not None
        self._db.executemany(
            "INSERT OR IGNORE INTO prov_delivered VALUES (?, ?, ?)", [(tenant, idx, receipt) for idx in delivered]
        )
        return receipt

    def deliveries_of(self, tenant: str, index: int) -> list[DeliveryReceipt]:
        rows = self._db.execute(
            "SELECT d.id, d.tenant, d.started_at, d.ended_at, d.broker, d.status, d.software, d.records, d.refused "
            "FROM prov_delivered r JOIN prov_delivery d ON d.id = r.delivery WHERE r.tenant = ? AND r.idx = ? ORDER BY d.id",
            (tenant, index),
        ).fetchall()
        return [_receipt(row) for row in rows]

    def deliveries(self, after: int, limit: int) -> list[DeliveryReceipt]:
        """Receipts with an id above ``after``, for the indexer."""
        rows = self._db.execute(
            "SELECT id, tenant, started_at, ended_at, broker, status, software, records, refused FROM prov_delivery "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        ).fetchall()
        return [_receipt(row) for row in rows]


def _receipt(row: Sequence[Any]) -> DeliveryReceipt:
    return DeliveryReceipt(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], tuple(json.loads(row[7])), tuple(json.loads(row[8]))
    )
