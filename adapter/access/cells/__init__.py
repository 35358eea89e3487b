"""Published cells: what an aggregated-only grant answers, built so it cannot be differenced.

An elected official with an "aggregated only" agreement does not get ad-hoc aggregates
(which two overlapping windows or two chosen sensor sets would difference into one sensor's
value). It gets *cells*, fixed by the agreement: a group of sensors (every sensor of the
type, or each named district, plus optionally their total) times a calendar period (hour,
day, ISO week or month in a time zone). A window selects whole periods only; nothing in a
request chooses the members of a group. Each cell is judged by the rules of statistical
disclosure control (threshold, (n, k) dominance, secondary suppression against the total),
computed once after its period has closed, and stored: it answers identically every time.

The gateway's use::

    chosen = periods(grant.aggregation, start, end, now=now, publication_delay=delay)
    cells = await published_cells(grant.aggregation, store, tenant=t, entity_type=type_,
                                  attributes=names, periods=chosen, fetch=read_broker, now=now)

where ``read_broker(period)`` reads every sensor of the type (no ``q``, ids or geo from the
client) and returns ``series_from_temporal(entities, names)``. See
``docs/sharing-agreements.md`` ("Published cells") for the rules in plain words.
"""

from __future__ import annotations

from adapter.access.cells.exceptions import (
    BudgetExhausted,
    CellsError,
    NoiseUnavailable,
    PeriodLimitExceeded,
    PeriodsError,
)
from adapter.access.cells.groups import ALL, RESERVED_GROUPS, TOTAL, District, group_names, group_of
from adapter.access.cells.noise import NoiseSource, noise_available
from adapter.access.cells.periods import (
    DEFAULT_PUBLICATION_DELAY,
    MAX_PERIODS,
    PERIODS,
    Period,
    check_period,
    is_published,
    period_containing,
    periods,
    time_zone,
)
from adapter.access.cells.rules import DOMINANCE, SECONDARY, THRESHOLD, Cell, Status, cell_json, compute_cells
from adapter.access.cells.series import SensorSeries, series_from_temporal
from adapter.access.cells.store import CellKey, CellStore, Fetch, budget_cost, published_cells

__all__ = [
    "ALL",
    "BudgetExhausted",
    "Cell",
    "CellKey",
    "CellStore",
    "CellsError",
    "DEFAULT_PUBLICATION_DELAY",
    "DOMINANCE",
    "District",
    "Fetch",
    "MAX_PERIODS",
    "NoiseSource",
    "NoiseUnavailable",
    "PERIODS",
    "Period",
    "PeriodLimitExceeded",
    "PeriodsError",
    "RESERVED_GROUPS",
    "SECONDARY",
    "SensorSeries",
    "Status",
    "THRESHOLD",
    "TOTAL",
    "budget_cost",
    "cell_json",
    "check_period",
    "compute_cells",
    "group_names",
    "group_of",
    "is_published",
    "noise_available",
    "period_containing",
    "periods",
    "published_cells",
    "series_from_temporal",
    "time_zone",
]
