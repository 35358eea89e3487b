"""Where a Merkle log keeps its entries and hashes: a small protocol, in memory or in SQLite.

What is stored: every entry, and the hash of every *complete* subtree, addressed as
``(level, index)``: level 0 holds the leaf hashes, and the hash at ``(level, index)`` covers
leaves ``[index * 2**level, (index + 1) * 2**level)``. That is 2n - 1 hashes for n entries, the
layout of Go's ``sumdb/tlog``. An append adds one entry and the O(log n) hashes it completes,
and nothing stored ever changes afterwards, so tree heads, proofs and tlog-tiles are all read
from stored hashes, never recomputed from the entries.

One writer per log. The SQLite store works on a connection it is given, so that appending to
the log can share a transaction with the rest of an uplink's writes (the outbox, the dedup
mark): it joins the caller's transaction when one is open, and is atomic on its own otherwise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Protocol

__all__ = ["HashKey", "MemoryStore", "MerkleStore", "SQLiteStore"]

#: ``(level, index)`` of a stored subtree hash.
HashKey = tuple[int, int]


class MerkleStore(Protocol):
    """Entries and complete-subtree hashes of one append-only Merkle log."""

    def size(self) -> int:
        """Number of entries."""
        ...

    def read_entries(self, start: int, stop: int) -> list[bytes]:
        """Entries ``start`` to ``stop - 1``; ``LookupError`` if any is missing."""
        ...

    def read_hashes(self, keys: Sequence[HashKey]) -> list[bytes]:
        """The stored hashes at ``keys``, in order; ``LookupError`` if any is missing."""
        ...

    def append(self, start: int, entries: Sequence[bytes], hashes: Sequence[tuple[int, int, bytes]]) -> None:
        """Store ``entries`` from index ``start`` on, with the ``(level, index, hash)`` they make.

        All or nothing. Raises ``ValueError`` (and stores nothing) unless ``start`` is the
        current size and none of the hashes is stored yet: that is how a second writer is caught.
        """
        ...


class MemoryStore:
    """A ``MerkleStore`` in lists: for tests, tools and logs rebuilt on the fly."""

    def __init__(self) -> None:
        self._entries: list[bytes] = []
        self._levels: list[list[bytes]] = []

    def size(self) -> int:
        return len(self._entries)

    def read_entries(self, start: int, stop: int) -> list[bytes]:
        if not 0 <= start <= stop <= len(self._entries):
            raise LookupError(f"entries [{start}, {stop}) are not all stored")
        return self._entries[start:stop]

    def read_hashes(self, keys: Sequence[HashKey]) -> list[bytes]:
        hashes = []
        for level, index in keys:
            if not (0 <= level < len(self._levels) and 0 <= index < len(self._levels[level])):
                raise LookupError(f"hash ({level}, {index}) not stored")
            hashes.append(self._levels[level][index])
        return hashes

    def append(self, start: int, entries: Sequence[bytes], hashes: Sequence[tuple[int, int, bytes]]) -> None:
        if start != len(self._entries):
            raise ValueError(f"append at {start}, but the log holds {len(self._entries)} entries")
        levels = [len(level) for level in self._levels]
        for level, index, _ in hashes:
            while len(levels) <= level:
                levels.append(0)
            if index != levels[level]:
                raise ValueError(f"hash ({level}, {index}) is not the next one of its level")
            levels[level] += 1
        for level, _, digest in hashes:
            while len(self._levels) <= level:
                self._levels.append([])
            self._levels[level].append(digest)
        self._entries.extend(entries)


_TABLES = (
    """CREATE TABLE IF NOT EXISTS merkle_entry (
        log TEXT NOT NULL,
        idx INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (log, idx)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS merkle_hash (
        log TEXT NOT NULL,
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (log, level, idx)
    ) WITHOUT ROWID""",
)


class SQLiteStore:
    """A ``MerkleStore`` in two tables of an SQLite file, several logs side by side.

    ``log`` names the log (one per collectivity). The tables are created if missing, one
    statement at a time: ``executescript`` would commit a transaction the caller has open.

    With ``cached=True`` the size and the right edge of the tree (the last hash of each level:
    the only ones an append reads) are kept in memory, as the store has one writer; then a
    caller whose transaction rolls back after an append must call ``forget()``, or the cache
    would describe writes that are gone (the provenance ledger does, on every rollback).
    """

    def __init__(self, db: sqlite3.Connection, log: str, *, cached: bool = False) -> None:
        self._db = db
        self._log = log
        self._cached = cached
        self._size: int | None = None
        self._edge: dict[int, tuple[int, bytes]] = {}  # level -> (index, hash) of its last hash
        self.create_tables(db)

    def forget(self) -> None:
        """Drop the cached size and right edge (after a rollback)."""
        self._size = None
        self._edge.clear()

    @staticmethod
    def create_tables(db: sqlite3.Connection) -> None:
        """Create the tables if missing. Call it outside any transaction that may roll back:
        a rolled-back CREATE TABLE is undone too."""
        for statement in _TABLES:
            db.execute(statement)

    def size(self) -> int:
        if self._size is None:
            (size,) = self._db.execute(
                "SELECT coalesce(max(idx) + 1, 0) FROM merkle_entry WHERE log = ?", (self._log,)
            ).fetchone()
            if not self._cached:
                return int(size)
            self._size = int(size)
        return self._size

    def read_entries(self, start: int, stop: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT data FROM merkle_entry WHERE log = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (self._log, start, stop),
        ).fetchall()
        if start < 0 or len(rows) != stop - start:
            raise LookupError(f"entries [{start}, {stop}) are not all stored")
        return [bytes(data) for (data,) in rows]

    def read_hashes(self, keys: Sequence[HashKey]) -> list[bytes]:
        hashes = []
        for level, index in keys:
            edge = self._edge.get(level)
            if edge is not None and edge[0] == index:
                hashes.append(edge[1])
                continue
            row = self._db.execute(
                "SELECT hash FROM merkle_hash WHERE log = ? AND level = ? AND idx = ?",
                (self._log, level, index),
            ).fetchone()
            if row is None:
                raise LookupError(f"hash ({level}, {index}) not stored")
            hashes.append(bytes(row[0]))
        return hashes

    def append(self, start: int, entries: Sequence[bytes], hashes: Sequence[tuple[int, int, bytes]]) -> None:
        self._db.execute("SAVEPOINT merkle_append")
        try:
            size = self.size()
            if start != size:
                raise ValueError(f"append at {start}, but log {self._log!r} holds {size} entries")
            self._db.executemany(
                "INSERT INTO merkle_entry (log, idx, data) VALUES (?, ?, ?)",
                [(self._log, start + offset, entry) for offset, entry in enumerate(entries)],
            )
            self._db.executemany(
                "INSERT INTO merkle_hash (log, level, idx, hash) VALUES (?, ?, ?, ?)",
                [(self._log, level, index, digest) for level, index, digest in hashes],
            )
        except BaseException as exc:
            self.forget()
            if self._db.in_transaction:
                self._db.execute("ROLLBACK TO merkle_append")
                self._db.execute("RELEASE merkle_append")
            if isinstance(exc, sqlite3.IntegrityError):
                raise ValueError(f"log {self._log!r} already holds one of these hashes") from exc
            raise
        self._db.execute("RELEASE merkle_append")
        if self._cached:
            self._size = start + len(entries)
            for level, index, digest in hashes:
                self._edge[level] = (index, digest)
