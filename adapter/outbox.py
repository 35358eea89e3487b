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
    503 with ``Retry-After`` on webhooks). The depth is kept by SQL triggers in the file
    itself, so it is exact even when another process (``deadletter replay``) adds items.

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
INSERT OR IGNORE INTO outbox_depth VALUES (1, (SELECT COUNT(*) FROM outbox));
CREATE TRIGGER IF NOT EXISTS outbox_depth_put AFTER INSERT ON outbox
    BEGIN UPDATE outbox_depth SET depth = depth + 1; END;
CREATE TRIGGER IF NOT EXISTS outbox_depth_take AFTER DELETE ON outbox
    BEGIN UPDATE outbox_depth SET depth = depth - 1; END;
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OutboxFull(AdapterError):
    """The outbox holds ``max_depth`` entities already; nothing was stored. Retry later."""

    def __init__(self, depth: int, max_depth: int, adding: int) -> None:
        super().__init__(f"the outbox is full: {depth} of {max_depth} entities waiting, {adding} more refused")
        self.depth = depth
        self.max_depth = max_depth


@dataclass(frozen=True, slots=True)
class UplinkRef:
    """Where an entity came from: enough to trace it, and to file a dead letter if refused."""

    connection: str
    lns: str
    event: str  # "up", "status", or the event of a dead letter sent again
    dev_eui: str | None = None
    f_cnt: int | None = None

    @classmethod
    def of(cls, event: Uplink | DeviceStatus) -> UplinkRef:
        if isinstance(event, Uplink):
            return cls(event.origin.lns_id, event.lns, "up", event.dev_eui, event.f_cnt)
        return cls(event.origin.lns_id, event.lns, "status", event.dev_eui)

    def to_json(self) -> str:
        return json.dumps(
            {"connection": self.connection, "lns": self.lns, "event": self.event, "dev_eui": self.dev_eui,
             "f_cnt": self.f_cnt}
        )

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
    observed_at: datetime
    entity_json: str
    source: UplinkRef

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

    @classmethod
    def open(
        cls, path: Path | str, *, max_depth: int = DEFAULT_MAX_DEPTH, clock: Callable[[], float] = time.time
    ) -> Outbox:
        """An outbox on its own connection: for a process that only delivers or inspects it."""
        return cls(open_database(path, _SCHEMA), max_depth=max_depth, clock=clock)

    @classmethod
    def sharing(
        cls, state: PipelineState, *, max_depth: int = DEFAULT_MAX_DEPTH, clock: Callable[[], float] = time.time
    ) -> Outbox:
        """An outbox on the pipeline state's own connection, so both commit in one transaction."""
        db = state.connection
        db.executescript(_SCHEMA)
        return cls(db, max_depth=max_depth, clock=clock)

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
        order = (observed_at - _EPOCH) // timedelta(microseconds=1)
        now = self._clock()
        ref = source.to_json()
        rows = []
        for entity in entities:
            text = encode_entity(entity)
            rows.append((tenant, str(entity["id"]), order, now, len(text.encode("utf-8")), text, ref))
        self._db.execute("SAVEPOINT outbox_put")
        try:
            depth = self.depth()
            if depth + len(rows) > self.max_depth:
                raise OutboxFull(depth, self.max_depth, len(rows))
            seqs = [
                int(self._db.execute(
                    "INSERT INTO outbox (tenant, entity_id, observed_us, queued_at, size, entity, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)", row,
                ).lastrowid or 0)
                for row in rows
            ]
        except BaseException:
            self._db.execute("ROLLBACK TO outbox_put")
            self._db.execute("RELEASE outbox_put")
            raise
        self._db.execute("RELEASE outbox_put")
        return seqs

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
        return [
            OutboxItem(
                seq, tenant, entity_id, _EPOCH + timedelta(microseconds=observed_us), entity,
                UplinkRef.from_json(source),
            )
            for seq, tenant, entity_id, observed_us, entity, source in (found[s] for s in seqs if s in found)
        ]

    def complete(self, *, delivered: Sequence[int] = (), refused: Sequence[int] = ()) -> None:
        """Take out items the broker acknowledged (``delivered``) or that went to dead letters."""
        with self.transaction():
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in (*delivered, *refused)])
        self._delivered += len(delivered)
        self._refused += len(refused)

    def note_retried(self, count: int) -> None:
        """Count entities whose sending failed for a reason that may pass; they stay queued."""
        self._retried += count

    def metrics(self) -> OutboxMetrics:
        oldest = self._db.execute("SELECT queued_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
        age = max(self._clock() - oldest[0], 0.0) if oldest else 0.0
        return OutboxMetrics(self.depth(), self.max_depth, age, self._delivered, self._retried, self._refused)


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
