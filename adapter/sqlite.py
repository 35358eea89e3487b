"""Opening the adapter's SQLite files the same way everywhere.

WAL lets readers (the CLI's ``deadletter list``) work while the adapter writes, and
``synchronous=NORMAL`` in WAL mode loses nothing on a process crash (only the last
transactions on a power cut). Autocommit (``isolation_level=None``): transactions are
opened explicitly where several writes must land together.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["open_database"]


def open_database(path: Path | str, schema: str) -> sqlite3.Connection:
    """An SQLite connection with the schema applied (``":memory:"`` for tests)."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db
