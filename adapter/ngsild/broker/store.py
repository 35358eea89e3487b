"""SQLite persistence of the broker: tenants, entities, attribute history, subscriptions.

The schema is shaped by the hot path, a batch upsert of up to 1,000 entities in one
transaction:

- ``entities`` holds the current state, one row per entity; ``seq`` is the creation order
  every query answers in. When a write replaced the whole entity (create, replace-upsert),
  the row points to that write's JSON (``wkey``) instead of holding a second copy in
  ``attrs``: a batch upsert then encodes and stores each entity's JSON once.
- History (the temporal API, and billing, which needs every observation) is append-only.
  Each entity write stores its attributes once as JSON in ``writes``, with its time;
  ``instances`` holds one all-integer row per attribute written: (entity key, attribute
  key, observedAt in epoch milliseconds or -1, write key), which is also its primary key,
  so the (entity, attribute, observedAt) index is the table itself. Integer keys keep it
  small: text keys made the same inserts three times slower, a separate index 30 %.
- ``history_entities`` gives each (tenant, id) a key that outlives deletion of the entity,
  so the history of a deleted and re-created entity stays one history.

One SQLite connection, used from the event loop only; every request's writes go in one
transaction. ``db_path=None`` keeps everything in memory (same code, ``:memory:``). With a
file, WAL checkpoints run from a second connection in a worker thread (``checkpoint``),
not inside the commits of the requests, where they doubled the time of every other batch.

Queries read with ``select_entities(shared=True)``: each distinct stored JSON text is decoded
once and its attributes shared, read-only, by the queries that meet it again (bounded by
``MEMO_SIZE``). The memo is keyed by the text itself, so an update, which stores a new text,
is never answered from an older decoding.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from adapter.ngsild.broker.datetimes import to_millis
from adapter.sqlite import open_database

__all__ = ["MEMO_SIZE", "Instance", "Store", "StoredEntity", "dumps", "forget_oldest"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entities (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    tkey INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    attrs TEXT,
    wkey INTEGER,
    UNIQUE (tenant, id)
);
CREATE INDEX IF NOT EXISTS entities_by_type ON entities (tenant, type, seq);
CREATE TABLE IF NOT EXISTS history_entities (
    tkey INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE TABLE IF NOT EXISTS attribute_names (akey INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS writes (wkey INTEGER PRIMARY KEY, modified_at INTEGER NOT NULL, attrs TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instances (
    tkey INTEGER NOT NULL,
    akey INTEGER NOT NULL,
    observed_at INTEGER NOT NULL,
    wkey INTEGER NOT NULL,
    PRIMARY KEY (tkey, akey, observed_at, wkey)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE TABLE IF NOT EXISTS contexts (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
"""
_CHUNK = 900  # stays below SQLite's default limit of host parameters
#: Entries of the query path's memos (decoded attributes here, renderings in ``render``).
MEMO_SIZE = 4096
WAL_SIZE_LIMIT = 64 * 1024 * 1024
_ENTITY_COLUMNS = (
    "e.id, e.type, e.created_at, e.modified_at, COALESCE(e.attrs, w.attrs), e.seq, e.tkey"
    " FROM entities e LEFT JOIN writes w ON w.wkey = e.wkey"
)

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def forget_oldest(memo: dict[Any, Any], size: int) -> None:
    """Drops the oldest quarter of a memo once it holds ``size`` entries (insertion order is age)."""
    if len(memo) >= size:
        for key in list(islice(memo, max(1, size // 4))):
            del memo[key]


@dataclass(slots=True)
class StoredEntity:
    """An entity as stored: expanded type and attribute names, attributes in normalized form."""

    id: str
    type: str
    created_at: str
    modified_at: str
    attrs: dict[str, dict[str, Any]]
    seq: int = 0
    tkey: int = 0
    #: the attributes' JSON text as stored, when read by a query (the key of its memos)
    source: str = ""


@dataclass(slots=True)
class Instance:
    """One stored attribute instance of the history (times in epoch milliseconds)."""

    tkey: int
    attr: str
    observed_at: int | None
    modified_at: int
    wkey: int
    akey: int

    @property
    def instance_id(self) -> str:
        return f"urn:ngsi-ld:attribute:instance:{self.wkey}-{self.akey}"


class Store:
    """The broker's database; ``path=None`` keeps it in memory."""

    def __init__(self, path: Path | None = None) -> None:
        self._db = open_database(path if path is not None else ":memory:", SCHEMA)
        self._db.execute("PRAGMA cache_size=-65536")
        self.commits = 0
        self._checkpointer: sqlite3.Connection | None = None
        if path is not None:
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            self._checkpointer = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._tenants = {row[0] for row in self._db.execute("SELECT name FROM tenants")}
        self._tenants.add("")
        self._akeys = {name: akey for akey, name in self._db.execute("SELECT akey, name FROM attribute_names")}
        self._names = {akey: name for name, akey in self._akeys.items()}
        # attributes' JSON text -> (that text, decoded): shared by queries, see select_entities
        self._decoded: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {}

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    @property
    def checkpoints(self) -> bool:
        """Whether ``checkpoint`` has work to do (a database file, not memory)."""
        return self._checkpointer is not None

    def checkpoint(self) -> None:
        """Copies committed WAL pages into the database file; blocking, for a worker thread."""
        if self._checkpointer is not None:
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self.commits += 1

    # --- tenants ------------------------------------------------------------------------

    def has_tenant(self, name: str) -> bool:
        return name in self._tenants

    def add_tenant(self, name: str) -> None:
        if name not in self._tenants:
            self._db.execute("INSERT OR IGNORE INTO tenants (name) VALUES (?)", (name,))
            self._tenants.add(name)

    # --- entities -----------------------------------------------------------------------

    def get_entity(self, tenant: str, entity_id: str) -> StoredEntity | None:
        found = self.get_entities(tenant, [entity_id])
        return found.get(entity_id)

    def get_entities(self, tenant: str, ids: Sequence[str], *, with_attrs: bool = True) -> dict[str, StoredEntity]:
        """The stored entities among ``ids`` (attributes left empty when ``with_attrs`` is false)."""
        found: dict[str, StoredEntity] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            if with_attrs:
                rows = self._db.execute(
                    f"SELECT {_ENTITY_COLUMNS} WHERE e.tenant = ? AND e.id IN ({marks})", (tenant, *chunk)
                )
                for row in rows:
                    found[row[0]] = StoredEntity(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])
            else:
                rows = self._db.execute(
                    f"SELECT id, type, created_at, modified_at, seq, tkey FROM entities"
                    f" WHERE tenant = ? AND id IN ({marks})",
                    (tenant, *chunk),
                )
                for row in rows:
                    found[row[0]] = StoredEntity(row[0], row[1], row[2], row[3], {}, row[4], row[5])
        return found

    def select_entities(
        self,
        tenant: str,
        *,
        types: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        shared: bool = False,
    ) -> Generator[StoredEntity, None, None]:
        """Entities in creation order, filtered by type and id lists in SQL.

        ``shared``: for readers that do not modify what they get (queries). The attributes
        are then decoded once per distinct stored text and shared between calls, and each
        entity carries that text as ``source``. An update stores a new text, so it is never
        answered from an older decoding. Stop iterating early by closing the iterator.
        """
        sql, params = self._entity_filter(tenant, types, ids, prefix="e.")
        sql = f"SELECT {_ENTITY_COLUMNS} WHERE {sql} ORDER BY e.seq"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        cursor = self._db.execute(sql, params)
        try:
            if not shared:
                for row in cursor:
                    yield StoredEntity(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])
                return
            memo = self._decoded
            for row in cursor:
                text = row[4]
                found = memo.get(text)
                if found is None:
                    forget_oldest(memo, MEMO_SIZE)
                    found = memo[text] = (text, json.loads(text))
                yield StoredEntity(row[0], row[1], row[2], row[3], found[1], row[5], row[6], found[0])
        finally:
            cursor.close()

    def count_entities(
        self, tenant: str, *, types: Sequence[str] | None = None, ids: Sequence[str] | None = None
    ) -> int:
        sql, params = self._entity_filter(tenant, types, ids)
        count: int = self._db.execute(f"SELECT COUNT(*) FROM entities WHERE {sql}", params).fetchone()[0]
        return count

    @staticmethod
    def _entity_filter(
        tenant: str, types: Sequence[str] | None, ids: Sequence[str] | None, prefix: str = ""
    ) -> tuple[str, list[Any]]:
        sql, params = f"{prefix}tenant = ?", [tenant]
        if types is not None:
            sql += f" AND {prefix}type IN ({','.join('?' * len(types))})"
            params += list(types)
        if ids is not None:
            sql += f" AND {prefix}id IN ({','.join('?' * len(ids))})"
            params += list(ids)
        return sql, params

    def write(self, tenant: str, writes: Sequence[tuple[StoredEntity, dict[str, dict[str, Any]]]], now: str) -> None:
        """Stores new entity states and appends each write's attributes to the history.

        ``writes`` pairs each entity's new state with the attributes written by this request
        (the same dict when the whole entity was written). New entities (``tkey == 0``) get
        their history key here.
        """
        if not writes:
            return
        db = self._db
        fresh = [entity for entity, _ in writes if entity.tkey == 0]
        if fresh:
            db.executemany(
                "INSERT INTO history_entities (tenant, id, type) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant, id) DO UPDATE SET type = excluded.type",
                [(tenant, e.id, e.type) for e in fresh],
            )
            tkeys = self._history_keys(tenant, [e.id for e in fresh])
            for entity in fresh:
                entity.tkey = tkeys[entity.id]
        rows: list[tuple[str, str, str, int, str, str, str | None, int | None]] = []
        write_rows = []
        instance_rows = []
        next_wkey: int = db.execute("SELECT COALESCE(MAX(wkey), 0) FROM writes").fetchone()[0]
        modified = to_millis(now)
        akeys = self._akeys
        for entity, written in writes:
            if written is entity.attrs:
                next_wkey += 1
                write_rows.append((next_wkey, modified, dumps(written)))
                rows.append(
                    (
                        tenant,
                        entity.id,
                        entity.type,
                        entity.tkey,
                        entity.created_at,
                        entity.modified_at,
                        None,
                        next_wkey,
                    )
                )
            else:
                rows.append(
                    (
                        tenant,
                        entity.id,
                        entity.type,
                        entity.tkey,
                        entity.created_at,
                        entity.modified_at,
                        dumps(entity.attrs),
                        None,
                    )
                )
                if not written:
                    continue
                next_wkey += 1
                write_rows.append((next_wkey, modified, dumps(written)))
            tkey = entity.tkey
            for name, attribute in written.items():
                akey = akeys.get(name)
                if akey is None:
                    akey = self._add_attribute_name(name)
                observed = attribute.get("observedAt")
                instance_rows.append((tkey, akey, to_millis(observed) if observed else -1, next_wkey))
        db.executemany(
            "INSERT INTO entities (tenant, id, type, tkey, created_at, modified_at, attrs, wkey)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (tenant, id) DO UPDATE SET type = excluded.type, modified_at = excluded.modified_at,"
            " attrs = excluded.attrs, wkey = excluded.wkey",
            rows,
        )
        db.executemany("INSERT INTO writes (wkey, modified_at, attrs) VALUES (?, ?, ?)", write_rows)
        db.executemany("INSERT INTO instances (tkey, akey, observed_at, wkey) VALUES (?, ?, ?, ?)", instance_rows)

    def delete_entities(self, tenant: str, ids: Sequence[str]) -> None:
        self._db.executemany("DELETE FROM entities WHERE tenant = ? AND id = ?", [(tenant, i) for i in ids])

    def _history_keys(self, tenant: str, ids: Sequence[str]) -> dict[str, int]:
        keys: dict[str, int] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for entity_id, tkey in self._db.execute(
                f"SELECT id, tkey FROM history_entities WHERE tenant = ? AND id IN ({marks})", (tenant, *chunk)
            ):
                keys[entity_id] = tkey
        return keys

    def _add_attribute_name(self, name: str) -> int:
        cursor = self._db.execute("INSERT INTO attribute_names (name) VALUES (?)", (name,))
        akey = cursor.lastrowid
        assert akey is not None
        self._akeys[name] = akey
        self._names[akey] = name
        return akey

    # --- history ------------------------------------------------------------------------

    def history_entities(
        self, tenant: str, *, types: Sequence[str] | None = None, ids: Sequence[str] | None = None
    ) -> list[tuple[int, str, str]]:
        """``(tkey, id, type)`` of every entity with a history, in order of first write."""
        sql, params = "tenant = ?", [tenant]
        if types is not None:
            sql += f" AND type IN ({','.join('?' * len(types))})"
            params += list(types)
        if ids is not None:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            params += list(ids)
        return list(self._db.execute(f"SELECT tkey, id, type FROM history_entities WHERE {sql} ORDER BY tkey", params))

    def instances(
        self, tkey: int, attrs: Sequence[str] | None, column: str, start: int | None, end: int | None
    ) -> list[Instance]:
        """The instances of one entity, oldest first by ``column`` (``observed_at``/``modified_at``).

        ``start`` is inclusive, ``end`` exclusive (epoch milliseconds). Without observedAt an
        instance sorts by its write time, and is left out when an observedAt bound is given.
        """
        sql, params = "i.tkey = ?", [tkey]
        if attrs is not None:
            akeys = [self._akeys[name] for name in attrs if name in self._akeys]
            if not akeys:
                return []
            sql += f" AND i.akey IN ({','.join('?' * len(akeys))})"
            params += akeys
        if column == "observed_at":
            time, order = "i.observed_at", "CASE WHEN i.observed_at >= 0 THEN i.observed_at ELSE w.modified_at END"
            if start is not None or end is not None:
                sql += " AND i.observed_at >= 0"
        elif column == "modified_at":
            time = order = "w.modified_at"
        else:
            raise ValueError(f"unknown time column {column!r}")
        if start is not None:
            sql += f" AND {time} >= ?"
            params.append(start)
        if end is not None:
            sql += f" AND {time} < ?"
            params.append(end)
        rows = self._db.execute(
            "SELECT i.tkey, i.akey, i.observed_at, w.modified_at, i.wkey FROM instances i"
            f" JOIN writes w ON w.wkey = i.wkey WHERE {sql} ORDER BY {order}, i.wkey, i.akey",
            params,
        )
        names = self._names
        return [Instance(r[0], names[r[1]], r[2] if r[2] >= 0 else None, r[3], r[4], r[1]) for r in rows]

    def written_attributes(self, wkeys: Sequence[int]) -> dict[int, dict[str, dict[str, Any]]]:
        found: dict[int, dict[str, dict[str, Any]]] = {}
        unique = list(dict.fromkeys(wkeys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for wkey, attrs in self._db.execute(f"SELECT wkey, attrs FROM writes WHERE wkey IN ({marks})", chunk):
                found[wkey] = json.loads(attrs)
        return found

    # --- subscriptions and contexts -----------------------------------------------------

    def save_subscription(self, tenant: str, sub_id: str, body: dict[str, Any], status: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO subscriptions (tenant, id, body, status) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (tenant, id) DO UPDATE SET body = excluded.body, status = excluded.status",
            (tenant, sub_id, dumps(body), dumps(status)),
        )

    def save_subscription_status(self, tenant: str, sub_id: str, status: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE subscriptions SET status = ? WHERE tenant = ? AND id = ?", (dumps(status), tenant, sub_id)
        )

    def delete_subscription(self, tenant: str, sub_id: str) -> bool:
        cursor = self._db.execute("DELETE FROM subscriptions WHERE tenant = ? AND id = ?", (tenant, sub_id))
        return cursor.rowcount > 0

    def subscriptions(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """``(tenant, body, status)`` of every subscription, in creation order."""
        rows = self._db.execute("SELECT tenant, body, status FROM subscriptions ORDER BY seq")
        return [(tenant, json.loads(body), json.loads(status)) for tenant, body, status in rows]

    def save_context(self, context_id: str, value: Any) -> None:
        self._db.execute("INSERT OR IGNORE INTO contexts (id, body) VALUES (?, ?)", (context_id, dumps(value)))

    def get_context(self, context_id: str) -> Any:
        row = self._db.execute("SELECT body FROM contexts WHERE id = ?", (context_id,)).fetchone()
        return None if row is None else json.loads(row[0])
