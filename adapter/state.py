"""What the pipeline must remember across uplinks and restarts.

- uplinks already processed (device, frame counter, payload digest), so an LNS retry or a
  second network-server path is processed once;
- the last index of each cumulative meter attribute, so a water index that goes down
  without a meter-change event is caught.

SQLite (WAL) file; bounded: entries older than the retention window are pruned.

Group commit
    A COMMIT is the dearest statement by far (the WAL append, and now and then a checkpoint);
    one per uplink caps a listener at a few thousand uplinks a second. ``batch()`` opens one
    transaction for a burst of events: inside it each ``transaction()`` is a SAVEPOINT, so
    every event is still all or nothing (its seen mark, meter indexes and outbox items), and
    reads see the writes of the events before it in the burst (an uplink repeated inside one
    burst is recognised as a duplicate). Nothing of the burst is durable before the batch
    commits: whoever acknowledges the events to the network server does it after ``batch()``
    returned, never inside it.

Checkpoints off the event loop
    In WAL mode the connection that commits also copies the WAL back into the database file
    (a checkpoint, with its fsyncs) whenever the WAL passed 1,000 pages: two thirds of the
    cost of a commit under load, paid on the event loop. A file-backed state runs them in a
    thread instead, on its own connection, every ``CHECKPOINT_EVERY_S`` (PASSIVE: it never
    blocks the writer; ``sqlite3`` releases the GIL meanwhile). The committing connection keeps
    an automatic checkpoint at ``FALLBACK_CHECKPOINT_PAGES``, so the WAL stays bounded even if
    the thread falls behind. Durability is unchanged: the same ``synchronous=NORMAL`` WAL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from adapter.sqlite import open_database

__all__ = ["CHECKPOINT_EVERY_S", "FALLBACK_CHECKPOINT_PAGES", "PipelineState"]

log = logging.getLogger(__name__)

#: seconds between two background WAL checkpoints
CHECKPOINT_EVERY_S = 0.25
#: WAL pages (4 KiB) after which the committing connection checkpoints by itself
FALLBACK_CHECKPOINT_PAGES = 8_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_uplink (
    tenant TEXT NOT NULL, dev_eui TEXT NOT NULL, f_cnt INTEGER NOT NULL, digest TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (tenant, dev_eui, f_cnt, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_uplink_age ON seen_uplink (seen_at);
CREATE TABLE IF NOT EXISTS meter_index (
    entity_id TEXT NOT NULL, attribute TEXT NOT NULL, value REAL NOT NULL, observed_at TEXT NOT NULL,
    PRIMARY KEY (entity_id, attribute)
) WITHOUT ROWID;
"""


class _Checkpointer:
    """WAL checkpoints of one database file, in a daemon thread on a connection of its own."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"checkpoint {path}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("no background checkpoints for %s (%s); the writer does them", self._path, exc)
            return
        try:
            while not self._stop.wait(CHECKPOINT_EVERY_S):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # e.g. busy: the next round, or the fallback, does it
                    log.debug("background checkpoint of %s: %s", self._path, exc)
        finally:
            db.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _commit(state: PipelineState) -> None:
    """COMMIT; if it fails, roll back rather than leave the transaction open (nothing was stored)."""
    db = state._db
    try:
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        state._rolled_back()
        raise


class _Transaction:
    """``PipelineState.transaction()``: a class rather than a generator, as it runs for every event."""

    __slots__ = ("_state",)

    def __init__(self, state: PipelineState) -> None:
        self._state = state

    def __enter__(self) -> None:
        state = self._state
        if state._in_transaction:
            raise RuntimeError("transactions do not nest")
        if state._in_batch:
            state._db.execute("SAVEPOINT event")
        else:
            if state._checkpointer is None:
                state._start_checkpoints()
            state._db.execute("BEGIN IMMEDIATE")
        state._in_transaction = True

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        state = self._state
        db = state._db
        state._in_transaction = False
        if kind is None:
            if state._in_batch:
                db.execute("RELEASE event")
            else:
                _commit(state)
        else:
            if db.in_transaction:  # some SQLite errors (disk full...) end the transaction themselves
                if state._in_batch:
                    db.execute("ROLLBACK TO event")
                    db.execute("RELEASE event")
                else:
                    db.execute("ROLLBACK")
            state._rolled_back()


class PipelineState:
    def __init__(self, path: Path | str, *, retention: timedelta = timedelta(days=7)) -> None:
        self._db = open_database(path, _SCHEMA)
        self._path = None if str(path) == ":memory:" else str(path)
        self._checkpointer: _Checkpointer | None = None
        self.retention = retention
        self._inserts_since_prune = 0
        self._in_batch = False
        self._in_transaction = False
        self._transaction = _Transaction(self)
        self._rollback_listeners: list[Callable[[], None]] = []

    def on_rollback(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever writes on this connection are rolled back: for caches of
        what is stored (the provenance ledger's chain heads and Merkle edges)."""
        self._rollback_listeners.append(listener)

    def _rolled_back(self) -> None:
        for listener in self._rollback_listeners:
            listener()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self._db.close()

    def _start_checkpoints(self) -> None:
        """Move WAL checkpoints to a thread (on the first write transaction of a file-backed state)."""
        if self._path is None or self._checkpointer is not None:
            return
        self._db.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}")
        self._checkpointer = _Checkpointer(self._path)

    def seen(self, key: tuple[str, str, int, str]) -> bool:
        return (
            self._db.execute(
                "SELECT 1 FROM seen_uplink WHERE tenant=? AND dev_eui=? AND f_cnt=? AND digest=?", key
            ).fetchone()
            is not None
        )

    def mark_seen(self, key: tuple[str, str, int, str], now: datetime | None = None) -> None:
        moment = (now or datetime.now(UTC)).isoformat()
        self._db.execute("INSERT OR IGNORE INTO seen_uplink VALUES (?, ?, ?, ?, ?)", (*key, moment))
        self._inserts_since_prune += 1
        if self._inserts_since_prune >= 10_000:
            self.prune(now)

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection, for stores that must commit in the same transaction (the outbox)."""
        return self._db

    def transaction(self) -> _Transaction:
        """One transaction over every write made on this connection inside the ``with`` block.

        Not nestable, except inside ``batch()``: there it is a savepoint, rolled back alone if
        the block raises and committed with the batch.
        """
        return self._transaction

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction (group commit) over many ``transaction()`` blocks; not nestable.

        Committed when the block ends, rolled back if it raises. Some SQLite errors (disk full,
        I/O error) end the transaction on their own: check ``batch_intact`` after a failed
        ``transaction()`` block and give the whole batch up if it is false (the final COMMIT
        then fails too, so nothing of the batch can pass for stored).
        """
        if self._in_batch:
            raise RuntimeError("batches do not nest")
        if self._checkpointer is None:
            self._start_checkpoints()
        self._db.execute("BEGIN IMMEDIATE")
        self._in_batch = True
        try:
            yield
        except BaseException:
            self._in_batch = False
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._rolled_back()
            raise
        self._in_batch = False
        _commit(self)

    @property
    def in_batch(self) -> bool:
        return self._in_batch

    @property
    def in_transaction(self) -> bool:
        """Inside a ``transaction()`` block: whatever is written there is undone if the block raises."""
        return self._in_transaction

    @property
    def batch_intact(self) -> bool:
        """Inside ``batch()``: whether its transaction is still open (SQLite did not end it)."""
        return self._db.in_transaction

    def accept(
        self, key: tuple[str, str, int, str], indexes: list[tuple[str, str, float]], observed_at: datetime
    ) -> None:
        """Remember an accepted uplink and its meter indexes (inside ``transaction()``)."""
        self.mark_seen(key)
        for entity_id, attribute, value in indexes:
            self.set_index(entity_id, attribute, value, observed_at)

    def prune(self, now: datetime | None = None) -> int:
        cutoff = ((now or datetime.now(UTC)) - self.retention).isoformat()
        self._inserts_since_prune = 0
        return self._db.execute("DELETE FROM seen_uplink WHERE seen_at < ?", (cutoff,)).rowcount

    def last_index(self, entity_id: str, attribute: str) -> tuple[float, datetime] | None:
        row = self._db.execute(
            "SELECT value, observed_at FROM meter_index WHERE entity_id=? AND attribute=?", (entity_id, attribute)
        ).fetchone()
        return (row[0], datetime.fromisoformat(row[1])) if row else None

    def set_index(self, entity_id: str, attribute: str, value: float, observed_at: datetime) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meter_index VALUES (?, ?, ?, ?)",
            (entity_id, attribute, value, observed_at.isoformat()),
        )
