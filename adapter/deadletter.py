"""The dead-letter store: every rejected input, kept whole, with a specific reason.

Nothing the adapter refuses is lost: the raw body, where it came from (connection,
LNS, topic or HTTP event), when, and why (a code from ``adapter.exceptions.REASONS`` and
a detail). Once the cause is fixed (a profile added, a codec repaired) the records are
replayed through the pipeline. SQLite in WAL mode: one file, safe against crashes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.sqlite import open_database

__all__ = ["DeadLetter", "DeadLetterStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stored_at TEXT NOT NULL,
    connection TEXT NOT NULL,
    lns TEXT NOT NULL,
    tenant TEXT NOT NULL,
    topic TEXT,
    event TEXT,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    dev_eui TEXT,
    status TEXT NOT NULL DEFAULT 'open',   -- open | replayed
    attempts INTEGER NOT NULL DEFAULT 1,
    replayed_at TEXT
);
CREATE INDEX IF NOT EXISTS dead_letter_status_reason ON dead_letter (status, reason);
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    stored_at: str
    connection: str
    lns: str
    tenant: str
    topic: str | None
    event: str | None
    body: bytes
    reason: str
    detail: str
    dev_eui: str | None
    status: str
    attempts: int
    replayed_at: str | None

    def to_json(self, *, with_body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "id",
                "stored_at",
                "connection",
                "lns",
                "tenant",
                "topic",
                "event",
                "reason",
                "detail",
                "dev_eui",
                "status",
                "attempts",
                "replayed_at",
            )
        }
        if with_body:
            try:
                out["body"] = self.body.decode("utf-8")
            except UnicodeDecodeError:
                out["body_hex"] = self.body.hex()
        return out


class DeadLetterStore:
    """Dead letters in an SQLite file (``":memory:"`` for tests)."""

    def __init__(self, path: Path | str) -> None:
        self._db = open_database(path, _SCHEMA)
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        self._db.close()

    def add(
        self,
        *,
        connection: str,
        lns: str,
        tenant: str,
        body: bytes,
        reason: str,
        detail: str,
        topic: str | None = None,
        event: str | None = None,
        dev_eui: str | None = None,
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO dead_letter (stored_at, connection, lns, tenant, topic, event, body, reason, detail, dev_eui)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_now(), connection, lns, tenant, topic, event, body, reason, detail, dev_eui),
        )
        return int(cursor.lastrowid or 0)

    def get(self, letter_id: int) -> DeadLetter | None:
        row = self._db.execute("SELECT * FROM dead_letter WHERE id = ?", (letter_id,)).fetchone()
        return DeadLetter(**dict(row)) if row else None

    def list(self, *, status: str | None = "open", reason: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return list(self._iter(status=status, reason=reason, limit=limit))

    def _iter(self, *, status: str | None, reason: str | None, limit: int) -> Iterator[DeadLetter]:
        clauses, params = [], []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if reason:
            clauses.append("reason = ?")
            params.append(reason)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        for row in self._db.execute(f"SELECT * FROM dead_letter {where} ORDER BY id LIMIT ?", (*params, limit)):
            yield DeadLetter(**dict(row))

    def counts(self, *, status: str | None = "open") -> dict[str, int]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self._db.execute(f"SELECT reason, COUNT(*) FROM dead_letter {where} GROUP BY reason", params)
        return {reason: count for reason, count in rows}

    def mark_replayed(self, letter_id: int) -> None:
        self._db.execute(
            "UPDATE dead_letter SET status = 'replayed', replayed_at = ? WHERE id = ?", (_now(), letter_id)
        )

    def record_failed_replay(self, letter_id: int, reason: str, detail: str) -> None:
        self._db.execute(
            "UPDATE dead_letter SET reason = ?, detail = ?, attempts = attempts + 1 WHERE id = ?",
            (reason, detail, letter_id),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
