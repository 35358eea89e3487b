"""The outbox: a durable, bounded queue of entities waiting for the NGSI-LD broker.

Why it exists
    The broker may be down, slow or unreachable for hours; the network servers do not wait.
    An uplink is acknowledged to its network server (MQTT PUBACK, webhook 2xx) once its
    entities are in this queue, and the broker writer (``adapter.delivery``) empties it. So
    every entity the adapter accepted is either here, in the broker, or in the dead-letter store.

One transaction with the dedup mark
    The outbox lives in the pipeline state's SQLite file and uses the *same connection*
    (``Outbox.sharing(state)``). The pipeline opens ``PipelineState.transaction()`` and, inside it,
    marks the uplink seen, records its meter indexes and ``put``s its entities: all of it is
    committed together or not at all. A crash before the commit leaves the uplink unseen (the
    network server sends it again, it is processed again); after it, the entities are queued
    and a replay of the uplink is recognised as a duplicate. The connection is shared, not the
    file only: SQLite transactions do not span connections.

What an item is
    (tenant, entity id, observation time, the entity JSON as it will be sent, the uplink it
    came from). The observation time is the per-entity order key: the writer sends an
    entity's observations in that order, one at a time (see ``adapter.delivery``). Items are
    numbered (``seq``) in the order they were queued; numbers are never reused, so a reader
    can ask for what was queued after the last number it saw.

Bounded
    ``max_depth`` entities at most; a ``put`` that would exceed it raises ``OutboxFull`` and
    stores nothing, which the transports turn into back-pressure (no MQTT acknowledgement, a
    503 with ``Retry-After`` on webhooks). The depth is kept in the file itself (table
    ``outbox_depth``), updated by the same statement group that adds or removes items, in the
    same transaction, so it is exact even when another process (``deadletter replay``) adds
    items. (It used to be kept by a trigger per row; opening a file made by that version drops
    the triggers and recounts the depth once.)

Cost
    An item is encoded once, when it is queued: the writer sends the stored text as it is,
    spliced into the batch body (``NgsiLdClient.batch_upsert_encoded``). A ``put`` is a handful
    of statements whatever the number of entities; ``complete`` deletes in bulk.

Late observations
    ``complete`` records, per (tenant, entity, attribute with an ``observedAt``), the latest
    observation time delivered (table ``outbox_latest_attribute``, in the same transaction as
    the removal, so it survives restarts); ``latest_delivered`` reads it, and the writer sends
    an item with an attribute older than that to the entity's history instead of its current state.

Metrics: depth, age of the oldest item, and delivered / retried / refused counters (since this
process started; ``adapter.metrics`` renders them for Prometheus).

One writer per outbox: several processes may ``put``, only one may take items out.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapter.exceptions import AdapterError
from adapter.ngsild.client import encode_entity
from adapter.sqlite import open_database
from adapter.state import PipelineState
from adapter.uplink import DeviceStatus, Uplink

__all__ = [
    "Outbox",
    "OutboxFull",
    "OutboxItem",
    "OutboxMetrics",
    "PendingItem",
    "UplinkRef",
    "latest_observation",
]

DEFAULT_MAX_DEPTH = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    observed_us INTEGER NOT NULL,   -- order key: observation time, microseconds since 1970 (UTC)
    queued_at REAL NOT NULL,        -- seconds since 1970
    size INTEGER NOT NULL,          -- bytes of ``entity`` in UTF-8
    entity TEXT NOT NULL,           -- the entity as sent (adapter.ngsild.client.encode_entity)
    source TEXT NOT NULL            -- the uplink it came from (UplinkRef as JSON)
);
CREATE TABLE IF NOT EXISTS outbox_depth (one INTEGER PRIMARY KEY CHECK (one = 1), depth INTEGER NOT NULL);
DROP TABLE IF EXISTS outbox_latest;              -- kept one time per entity (development files only)
CREATE TABLE IF NOT EXISTS outbox_latest_attribute (  -- the latest observation delivered per attribute
    tenant TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    attribute TEXT NOT NULL,
    observed_us INTEGER NOT NULL,
    PRIMARY KEY (tenant, entity_id, attribute)
) WITHOUT ROWID;
INSERT OR IGNORE INTO outbox_depth VALUES (1, (SELECT COUNT(*) FROM outbox));
"""

# Files made when the depth was kept by per-row triggers: drop them and recount, atomically.
_OLD_TRIGGERS = ("outbox_depth_put", "outbox_depth_take")
_MIGRATE = """
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS outbox_depth_put;
DROP TRIGGER IF EXISTS outbox_depth_take;
UPDATE outbox_depth SET depth = (SELECT COUNT(*) FROM outbox);
COMMIT;
"""
_COLUMNS = "(tenant, entity_id, observed_us, queued_at, size, entity, source)"
_ROW = "(?, ?, ?, ?, ?, ?, ?)"
#: items deleted per statement (well under SQLite's limit of bound parameters)
_DELETE_CHUNK = 500

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OutboxFull(AdapterError):
    """The outbox holds ``max_depth`` entities already; nothing was stored. Retry later."""

    def __init__(self, depth: int, max_depth: int, adding: int) -> None:
        super().__init__(f"the outbox is full: {depth} of {max_depth} entities waiting, {adding} more refused")
        self.depth = depth
        self.max_depth = max_depth


_REF_PREFIXES: dict[tuple[str, str, str, str | None], str] = {}
_REF_PREFIXES_MAX = 100_000


@dataclass(frozen=True, slots=True)
class UplinkRef:
    """Where an entity came from: enough to trace it, and to file a dead letter if refused."""

    connection: str
    lns: str
    event: str  # "up", "status", or the event of a dead letter sent again
    dev_eui: str | None = None
    f_cnt: int | None = None
    record: int | None = None  # the provenance record of the event in its tenant's log

    @classmethod
    def of(cls, event: Uplink | DeviceStatus, record: int | None = None) -> UplinkRef:
        if isinstance(event, Uplink):
            return cls(event.origin.lns_id, event.lns, "up", event.dev_eui, event.f_cnt, record)
        return cls(event.origin.lns_id, event.lns, "status", event.dev_eui, None, record)

    def to_json(self) -> str:
        # Every uplink of a device shares all but the frame counter: that prefix is encoded once.
        head = (self.connection, self.lns, self.event, self.dev_eui)
        prefix = _REF_PREFIXES.get(head)
        if prefix is None:
            if len(_REF_PREFIXES) >= _REF_PREFIXES_MAX:
                _REF_PREFIXES.clear()
            prefix = _REF_PREFIXES[head] = (
                json.dumps(
                    {"connection": self.connection, "lns": self.lns, "event": self.event, "dev_eui": self.dev_eui}
                )[:-1]
                + ', "f_cnt": '
            )
        f_cnt = json.dumps(self.f_cnt) if type(self.f_cnt) is not int else self.f_cnt
        if self.record is None:
            return f"{prefix}{f_cnt}}}"
        return f'{prefix}{f_cnt}, "record": {self.record}}}'

    @classmethod
    def from_json(cls, text: str) -> UplinkRef:
        return cls(**json.loads(text))


@dataclass(frozen=True, slots=True)
class PendingItem:
    """What the writer needs to plan batches, without the entity body."""

    seq: int
    tenant: str
    entity_id: str
    observed_us: int
    queued_at: float
    size: int


@dataclass(frozen=True, slots=True)
class OutboxItem:
    seq: int
    tenant: str
    entity_id: str
    observed_us: int
    entity_json: str  # exactly the text sent in a batch body
    source_json: str

    @property
    def observed_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.observed_us)

    @property
    def source(self) -> UplinkRef:
        return UplinkRef.from_json(self.source_json)

    @property
    def entity(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.entity_json)
        return value


@dataclass(frozen=True, slots=True)
class OutboxMetrics:
    depth: int
    max_depth: int
    oldest_age_s: float  # 0 when empty
    delivered: int
    retried: int
    refused: int


class Outbox:
    """The durable queue; build it with ``Outbox.sharing(state)`` or ``Outbox.open(path)``.

    Usage::

        outbox = Outbox.sharing(state, max_depth=100_000)
        with state.transaction():
            state.mark_seen(key)
            outbox.put("ville", entities, observed_at=at, source=UplinkRef.of(uplink))

    Parameters:
        db: an SQLite connection holding the outbox tables, in autocommit mode (as
            ``adapter.sqlite.open_database`` opens it).
        max_depth: the most entities the outbox may hold.
        clock: seconds since 1970, for the age of items.
    """

    def __init__(
        self, db: sqlite3.Connection, *, max_depth: int = DEFAULT_MAX_DEPTH, clock: Callable[[], float] = time.time
    ) -> None:
        if max_depth < 1:
            raise ValueError("max_depth must be at least 1")
        self._db = db
        self.max_depth = max_depth
        self._clock = clock
        self._delivered = self._retried = self._refused = 0
        self._state: PipelineState | None = None  # set by ``sharing``

    @classmethod
    def open(
        cls, path: Path | str, *, max_depth: int = DEFAULT_MAX_DEPTH, clock: Callable[[], float] = time.time
    ) -> Outbox:
        """An outbox on its own connection: for a process that only delivers or inspects it."""
        db = open_database(path, _SCHEMA)
        _migrate(db)
        return cls(db, max_depth=max_depth, clock=clock)

    @classmethod
    def sharing(
        cls, state: PipelineState, *, max_depth: int = DEFAULT_MAX_DEPTH, clock: Callable[[], float] = time.time
    ) -> Outbox:
        """An outbox on the pipeline state's own connection, so both commit in one transaction."""
        db = state.connection
        db.executescript(_SCHEMA)
        _migrate(db)
        outbox = cls(db, max_depth=max_depth, clock=clock)
        outbox._state = state
        return outbox

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One SQLite transaction over every write made on this connection inside the block (not nestable)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(
        self, tenant: str, entities: Sequence[Mapping[str, Any]], *, observed_at: datetime, source: UplinkRef
    ) -> list[int]:
        """Queue the entities of one event, all or none; returns their ``seq``.

        Raises ``OutboxFull`` (storing nothing) if they do not all fit. Inside ``transaction()``
        the items commit with it; outside, ``put`` commits on its own.
        """
        if observed_at.tzinfo is None:
            raise ValueError("observed_at must be timezone-aware")
        if not entities:
            return []
        order = (observed_at - _EPOCH) // timedelta(microseconds=1)
        now = self._clock()
        ref = source.to_json()
        values: list[Any] = []
        for entity in entities:
            text = encode_entity(entity)
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
            values += (tenant, str(entity["id"]), order, now, size, text, ref)
        count = len(entities)
        db = self._db
        # Inside the state's transaction() block, an exception undoes the whole event anyway.
        own = self._state is None or not self._state.in_transaction
        if own:
            db.execute("SAVEPOINT outbox_put")
        try:
            depth = self.depth()
            if depth + count > self.max_depth:
                raise OutboxFull(depth, self.max_depth, count)
            # One statement for all the rows: under the write lock their numbers are consecutive.
            last = db.execute(_insert_sql(count), values).lastrowid
            db.execute("UPDATE outbox_depth SET depth = depth + ?", (count,))
        except BaseException:
            if own and db.in_transaction:
                db.execute("ROLLBACK TO outbox_put")
                db.execute("RELEASE outbox_put")
            raise
        if own:
            db.execute("RELEASE outbox_put")
        assert last is not None
        return list(range(last - count + 1, last + 1))

    def depth(self) -> int:
        return int(self._db.execute("SELECT depth FROM outbox_depth").fetchone()[0])

    def pending(self, *, after: int = 0, limit: int = 10_000) -> list[PendingItem]:
        """Items numbered above ``after``, in queue order, without their bodies."""
        rows = self._db.execute(
            "SELECT seq, tenant, entity_id, observed_us, queued_at, size FROM outbox"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [PendingItem(*row) for row in rows]

    def load(self, seqs: Sequence[int]) -> list[OutboxItem]:
        """The items with these numbers that are still queued, in the order asked."""
        if not seqs:
            return []
        marks = ",".join("?" * len(seqs))
        found = {
            row[0]: row
            for row in self._db.execute(
                f"SELECT seq, tenant, entity_id, observed_us, entity, source FROM outbox WHERE seq IN ({marks})",
                tuple(seqs),
            )
        }
        return [OutboxItem(*found[s]) for s in seqs if s in found]

    def complete(self, *, delivered: Sequence[int] = (), refused: Sequence[int] = ()) -> None:
        """Take out items the broker acknowledged (``delivered``) or that went to dead letters."""
        seqs = [*delivered, *refused]
        if seqs:
            db = self._db
            with self.transaction():
                removed = 0
                for start in range(0, len(delivered), _DELETE_CHUNK):
                    chunk = delivered[start : start + _DELETE_CHUNK]
                    # in the same transaction as their removal: a crash keeps both or neither
                    # per attribute that carries an observedAt: a Device entity is written by uplinks
                    # and by status events, with different attributes and interleaved times
                    db.execute(
                        "INSERT INTO outbox_latest_attribute (tenant, entity_id, attribute, observed_us)"
                        " SELECT o.tenant, o.entity_id, a.key, MAX(o.observed_us) FROM outbox o, json_each(o.entity) a"
                        f" WHERE o.seq IN ({','.join('?' * len(chunk))}) AND a.type = 'object'"
                        " AND json_type(a.value, '$.observedAt') IS NOT NULL GROUP BY o.tenant, o.entity_id, a.key"
                        " ON CONFLICT (tenant, entity_id, attribute)"
                        " DO UPDATE SET observed_us = MAX(observed_us, excluded.observed_us)",
                        chunk,
                    )
                for start in range(0, len(seqs), _DELETE_CHUNK):
                    chunk = seqs[start : start + _DELETE_CHUNK]
                    removed += db.execute(
                        f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(chunk))})", chunk
                    ).rowcount
                # Only the rows that were still there: the depth stays exact if one was gone.
                db.execute("UPDATE outbox_depth SET depth = depth - ?", (removed,))
        self._delivered += len(delivered)
        self._refused += len(refused)

    def latest_delivered(self, tenant: str, entity_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """The latest observation time (``observed_us``) delivered of each attribute (with an
        ``observedAt``) of each of these entities: entity id -> attribute -> time.

        An item carrying an attribute older than that is a late observation: sending it as an
        upsert would move that value back in time (``adapter.delivery`` sends it to the history).
        """
        found: dict[str, dict[str, int]] = {}
        unique = list(dict.fromkeys(entity_ids))
        for start in range(0, len(unique), _DELETE_CHUNK):
            chunk = unique[start : start + _DELETE_CHUNK]
            for entity_id, attribute, observed_us in self._db.execute(
                f"SELECT entity_id, attribute, observed_us FROM outbox_latest_attribute WHERE tenant = ?"
                f" AND entity_id IN ({','.join('?' * len(chunk))})",
                (tenant, *chunk),
            ):
                found.setdefault(entity_id, {})[attribute] = observed_us
        return found

    def note_retried(self, count: int) -> None:
        """Count entities whose sending failed for a reason that may pass; they stay queued."""
        self._retried += count

    def metrics(self) -> OutboxMetrics:
        oldest = self._db.execute("SELECT queued_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
        age = max(self._clock() - oldest[0], 0.0) if oldest else 0.0
        return OutboxMetrics(self.depth(), self.max_depth, age, self._delivered, self._retried, self._refused)


def _insert_sql(count: int) -> str:
    sql = _INSERTS.get(count)
    if sql is None:
        sql = _INSERTS[count] = f"INSERT INTO outbox {_COLUMNS} VALUES {','.join([_ROW] * count)}"
    return sql


_INSERTS: dict[int, str] = {}


def _migrate(db: sqlite3.Connection) -> None:
    names = tuple(_OLD_TRIGGERS)
    found = db.execute(
        f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({','.join('?' * len(names))})", names
    ).fetchone()[0]
    if found:
        db.executescript(_MIGRATE)


def latest_observation(entity: Mapping[str, Any]) -> datetime | None:
    """The latest ``observedAt`` among an entity's attributes (the order key of an entity sent again)."""
    times = []
    for value in entity.values():
        at = value.get("observedAt") if isinstance(value, Mapping) else None
        if isinstance(at, str):
            try:
                parsed = datetime.fromisoformat(at)
            except ValueError:
                continue
            times.append(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    return max(times, default=None)
