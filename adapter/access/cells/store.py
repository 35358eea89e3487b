"""Computed cells, stored once and answered identically ever after (SQLite).

A period's cells are computed the first time someone asks for them after the period is
published, and stored under ``CellKey`` (the definition's fingerprint, tenant, entity type,
attribute, period start). They are never recomputed: data arriving later, a repeated
question, a window that overlaps another, or noise drawn again cannot change an answer,
so no difference of two answers says more than the cells themselves. Two agreements with
the same cell definition share the same fingerprint, hence the same cells.

The store also keeps the privacy-budget ledger of noisy definitions: what each principal
has spent, one row per (attribute, period) it has been given, so that reading a cell again
costs nothing (the noise is the same) and a principal cannot go past its budget.

``published_cells`` is what the gateway calls: it reads the stored cells, asks ``fetch``
(the broker) only for periods not stored yet, computes and stores them, then answers.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from adapter.access.cells.exceptions import BudgetExhausted, PeriodLimitExceeded
from adapter.access.cells.groups import group_names
from adapter.access.cells.noise import NoiseSource
from adapter.access.cells.periods import DEFAULT_PUBLICATION_DELAY, MAX_PERIODS, Period, check_period, is_published
from adapter.access.cells.rules import Cell, compute_cells
from adapter.access.cells.series import SensorSeries
from adapter.sqlite import open_database

if TYPE_CHECKING:
    from adapter.access.model import Aggregation

__all__ = ["CellKey", "CellStore", "Fetch", "budget_cost", "published_cells"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    fingerprint TEXT NOT NULL, tenant TEXT NOT NULL, entity_type TEXT NOT NULL, attribute TEXT NOT NULL,
    period_start TEXT NOT NULL, period_end TEXT NOT NULL, cells TEXT NOT NULL, computed_at TEXT NOT NULL,
    PRIMARY KEY (fingerprint, tenant, entity_type, attribute, period_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budget (
    principal TEXT NOT NULL, fingerprint TEXT NOT NULL, tenant TEXT NOT NULL, entity_type TEXT NOT NULL,
    attribute TEXT NOT NULL, period_start TEXT NOT NULL, epsilon REAL NOT NULL, spent_at TEXT NOT NULL,
    PRIMARY KEY (principal, fingerprint, tenant, entity_type, attribute, period_start)
) WITHOUT ROWID;
"""

#: fetch(period) -> every sensor's series of the attributes asked, over that period
Fetch = Callable[[Period], Awaitable[Mapping[str, SensorSeries]]]


class CellKey(NamedTuple):
    """Where one attribute's cells of one period are stored (``period_start`` in any zone)."""

    fingerprint: str
    tenant: str
    entity_type: str
    attribute: str
    period_start: datetime


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class CellStore:
    """Computed cells, insert-once::

    store = CellStore(":memory:")            # or a Path (WAL SQLite file)
    store.put(key, cells)                    # the first put of a key wins
    store.get(key)                           # those cells, or None when not computed
    """

    def __init__(self, path: Path | str) -> None:
        self._db = open_database(path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def get(self, key: CellKey) -> tuple[Cell, ...] | None:
        """The stored cells of ``key``, in the definition's group order; None if none are."""
        row = self._db.execute(
            "SELECT period_start, period_end, cells FROM cells WHERE fingerprint = ? AND tenant = ? AND "
            "entity_type = ? AND attribute = ? AND period_start = ?",
            (key.fingerprint, key.tenant, key.entity_type, key.attribute, _instant(key.period_start)),
        ).fetchone()
        if row is None:
            return None
        period = Period(datetime.fromisoformat(row[0]), datetime.fromisoformat(row[1]))
        return tuple(
            Cell(c["group"], period, key.attribute, c["status"], c["value"], c["sensors"], c["rule"])
            for c in json.loads(row[2])
        )

    def put(self, key: CellKey, cells: Sequence[Cell], *, now: datetime | None = None) -> tuple[Cell, ...]:
        """Store ``cells`` under ``key`` unless some already are; returns what is stored (the
        first put's cells, whatever a later put brings)."""
        if not cells:
            raise ValueError("no cells to store")
        period = cells[0].period
        for cell in cells:
            if cell.attribute != key.attribute or cell.period != period or cell.period.start != key.period_start:
                raise ValueError("every cell stored under a key has the key's attribute and period")
            if cell.status == "pending":
                raise ValueError("a pending cell is never stored")
            if cell.value is not None and not math.isfinite(cell.value):
                raise ValueError("a cell's value must be a finite number")
        body = json.dumps(
            [
                {"group": c.group, "status": c.status, "value": c.value, "sensors": c.sensors, "rule": c.rule}
                for c in cells
            ],
            separators=(",", ":"),
            allow_nan=False,
        )
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.fingerprint,
                    key.tenant,
                    key.entity_type,
                    key.attribute,
                    _instant(period.start),
                    _instant(period.end),
                    body,
                    _instant(now or datetime.now(UTC)),
                ),
            )
        stored = self.get(key)
        assert stored is not None
        return stored

    def spent(self, principal: str, fingerprint: str, tenant: str, entity_type: str) -> float:
        """The epsilon ``principal`` has spent on this definition's cells of one type."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(epsilon), 0) FROM budget WHERE principal = ? AND fingerprint = ? AND tenant = ? "
            "AND entity_type = ?",
            (principal, fingerprint, tenant, entity_type),
        ).fetchone()
        return float(row[0])

    def charge(
        self,
        principal: str,
        fingerprint: str,
        tenant: str,
        entity_type: str,
        reads: Iterable[tuple[str, datetime]],
        *,
        cost: float,
        budget: float,
        now: datetime,
    ) -> float:
        """Charge ``cost`` for each (attribute, period start) of ``reads`` the principal has not
        been given before, all or none: ``BudgetExhausted`` if that would pass ``budget``.
        Returns what the principal has spent afterwards."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                given = {
                    (row[0], row[1])
                    for row in self._db.execute(
                        "SELECT attribute, period_start FROM budget WHERE principal = ? AND fingerprint = ? AND "
                        "tenant = ? AND entity_type = ?",
                        (principal, fingerprint, tenant, entity_type),
                    )
                }
                new = sorted({(attribute, _instant(start)) for attribute, start in reads} - given)
                spent = self.spent(principal, fingerprint, tenant, entity_type)
                asked = cost * len(new)
                # a tiny tolerance: a budget of exactly k cells is spent in k reads, float sums aside
                if spent + asked > budget * (1 + 1e-9):
                    raise BudgetExhausted(spent, asked, budget)
                self._db.executemany(
                    "INSERT INTO budget VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(principal, fingerprint, tenant, entity_type, a, s, cost, _instant(now)) for a, s in new],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return spent + asked


def budget_cost(aggregation: Aggregation) -> float:
    """The epsilon one (attribute, period) costs a principal: a sensor is in one district's
    cell, and in the total too when there is one (sequential composition of the two)."""
    if aggregation.noise_epsilon is None:
        return 0.0
    return aggregation.noise_epsilon * (2 if aggregation.districts and aggregation.total else 1)


def _pending(aggregation: Aggregation, attribute: str, period: Period) -> tuple[Cell, ...]:
    return tuple(Cell(group, period, attribute, "pending") for group in group_names(aggregation))


async def published_cells(
    aggregation: Aggregation,
    store: CellStore,
    *,
    tenant: str,
    entity_type: str,
    attributes: Iterable[str],
    periods: Sequence[Period],
    fetch: Fetch,
    now: datetime,
    publication_delay: timedelta = DEFAULT_PUBLICATION_DELAY,
    principal: str | None = None,
    noise: NoiseSource | None = None,
) -> tuple[Cell, ...]:
    """The cells of ``attributes`` over ``periods`` (period by period, attribute by attribute,
    each in group order): stored ones as stored; others computed from ``fetch(period)``
    (called once per period that has any attribute not stored), then stored.

    A period not published by ``now`` gives ``pending`` cells and is neither fetched nor
    stored. With noise and a ``privacy_budget``, ``principal`` (a stable id of the reader)
    is charged for the (attribute, period) pairs it has not been given before, or
    ``BudgetExhausted`` is raised and nothing is answered.
    """
    names = sorted(set(attributes))
    if len(periods) > MAX_PERIODS:
        raise PeriodLimitExceeded(f"more than {MAX_PERIODS} periods asked: narrow the window", MAX_PERIODS)
    fingerprint = aggregation.fingerprint
    found: list[Cell] = []
    given: list[tuple[str, datetime]] = []
    for period in periods:
        check_period(aggregation, period)
        if not is_published(period, now=now, publication_delay=publication_delay):
            for name in names:
                found.extend(_pending(aggregation, name, period))
            continue
        keys = {name: CellKey(fingerprint, tenant, entity_type, name, period.start) for name in names}
        stored: dict[str, tuple[Cell, ...] | None] = {name: store.get(key) for name, key in keys.items()}
        if any(cells is None for cells in stored.values()):
            series = await fetch(period)
            for name, cells in stored.items():
                if cells is None:
                    computed = compute_cells(aggregation, name, period, series, noise=noise)
                    stored[name] = store.put(keys[name], computed, now=now)
        for name in names:
            cells = stored[name]
            assert cells is not None
            found.extend(cells)
            given.append((name, period.start))
    if aggregation.noise_epsilon is not None and aggregation.privacy_budget is not None and given:
        if principal is None:
            raise ValueError("a cell definition with a privacy budget needs the principal who reads")
        store.charge(
            principal,
            fingerprint,
            tenant,
            entity_type,
            given,
            cost=budget_cost(aggregation),
            budget=aggregation.privacy_budget,
            now=now,
        )
    return tuple(found)
