"""What the pipeline must remember across uplinks and restarts.

- uplinks already processed (device, frame counter, payload digest), so an LNS retry or a
  second network-server path is processed once;
- the last index of each cumulative meter attribute, so a water index that goes down
  without a meter-change event is caught.

SQLite (WAL) file; bounded: entries older than the retention window are pruned.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapter.sqlite import open_database

__all__ = ["PipelineState"]

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


class PipelineState:
    def __init__(self, path: Path | str, *, retention: timedelta = timedelta(days=7)) -> None:
        self._db = open_database(path, _SCHEMA)
        self.retention = retention
        self._inserts_since_prune = 0

    def close(self) -> None:
        self._db.close()

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

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction over every write made on this connection inside the block (not nestable)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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
