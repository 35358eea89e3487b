"""Calendar periods of published cells: aligned, never overlapping, closed before published.

A cell definition names one of four periods, read in its time zone (IANA, through
``zoneinfo``): ``PT1H`` (clock hours), ``P1D`` (local days, 23 or 25 hours long on the days
daylight saving time starts or ends), ``P1W`` (ISO weeks, from Monday 00:00) and ``P1M``
(calendar months). Any instant lies in exactly one period, so two periods never overlap and
a sum over a day is never the difference of two windows.

A window asked for is rounded *in*: it selects the periods it holds whole, never a part of
one (a part would be a new, smaller cell, and a difference of two parts a sensor's value).
A period is published once it has ended and ``publication_delay`` has passed (for late
uplinks); before that it is pending. Periods are ``datetime`` pairs in UTC: arithmetic on
local times would be wall-clock arithmetic, wrong across a DST change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapter.access.cells.exceptions import PeriodLimitExceeded, PeriodsError

if TYPE_CHECKING:
    from adapter.access.model import Aggregation

__all__ = [
    "DEFAULT_PUBLICATION_DELAY",
    "MAX_PERIODS",
    "PERIODS",
    "Period",
    "check_period",
    "is_published",
    "period_containing",
    "periods",
    "time_zone",
]

#: The periods a cell definition may name, with what each is (for messages and docs).
PERIODS: dict[str, str] = {
    "PT1H": "clock hours",
    "P1D": "calendar days",
    "P1W": "ISO weeks, from Monday",
    "P1M": "calendar months",
}
#: Most periods one answer may hold: a bound on the work one request can cause.
MAX_PERIODS = 1000
#: How long after its end a period waits for late uplinks before its cells are computed.
DEFAULT_PUBLICATION_DELAY = timedelta(hours=1)


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One period ``[start, end)``, as UTC instants (given in any zone, kept in UTC)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise PeriodsError("a period's start and end must be timezone-aware")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.end <= self.start:
            raise PeriodsError("a period must end after it starts")


@lru_cache(maxsize=64)
def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ``PeriodsError`` if this machine's zone database lacks it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise PeriodsError(f"unknown time zone {name!r} (an IANA name such as Europe/Paris or UTC)") from exc


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # fold=0: a midnight skipped by DST maps to the first instant of the day
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _floor_hour(instant: datetime, zone: ZoneInfo) -> datetime:
    # astimezone sets fold, so the repeated hour of a DST end keeps its own occurrence
    return instant.astimezone(zone).replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def _floor(kind: str, zone: ZoneInfo, instant: datetime) -> datetime:
    local = instant.astimezone(zone)
    if kind == "PT1H":
        return _floor_hour(instant, zone)
    if kind == "P1D":
        return _midnight(local.date(), zone)
    if kind == "P1W":
        return _midnight(local.date() - timedelta(days=local.weekday()), zone)
    return _midnight(local.date().replace(day=1), zone)


def _next(kind: str, zone: ZoneInfo, start: datetime) -> datetime:
    """The start of the period after the one starting at ``start`` (always later)."""
    if kind == "PT1H":
        return _floor_hour(start + timedelta(hours=1), zone)
    day = start.astimezone(zone).date()
    if kind == "P1D":
        return _midnight(day + timedelta(days=1), zone)
    if kind == "P1W":
        return _midnight(day + timedelta(days=7), zone)
    return _midnight(date(day.year + day.month // 12, day.month % 12 + 1, 1), zone)


def _stepper(aggregation: Aggregation) -> tuple[Callable[[datetime], datetime], Callable[[datetime], datetime]]:
    if aggregation.period not in PERIODS:
        raise PeriodsError(f"unknown period {aggregation.period!r} (known: {', '.join(PERIODS)})")
    zone = time_zone(aggregation.time_zone)
    kind = aggregation.period
    return (lambda t: _floor(kind, zone, t)), (lambda t: _next(kind, zone, t))


def _aware(name: str, moment: datetime | None) -> None:
    if moment is not None and moment.tzinfo is None:
        raise PeriodsError(f"{name} must be a timezone-aware datetime")


def period_containing(aggregation: Aggregation, instant: datetime) -> Period:
    """The period of the definition that ``instant`` lies in."""
    _aware("instant", instant)
    floor, step = _stepper(aggregation)
    start = floor(instant)
    return Period(start, step(start))


def is_published(period: Period, *, now: datetime, publication_delay: timedelta = DEFAULT_PUBLICATION_DELAY) -> bool:
    """Whether ``period`` has ended and waited ``publication_delay`` for late data by ``now``."""
    _aware("now", now)
    return period.end + publication_delay <= now


def periods(
    aggregation: Aggregation,
    start: datetime | None,
    end: datetime | None,
    *,
    now: datetime,
    publication_delay: timedelta = DEFAULT_PUBLICATION_DELAY,
    limit: int = MAX_PERIODS,
) -> tuple[Period, ...]:
    """The whole periods inside ``[start, end)`` that are published by ``now``, oldest first.

    ``end`` None: up to now. ``start`` None or more than ``limit`` periods:
    ``PeriodLimitExceeded`` naming the limit (the answer would be unbounded).
    """
    for name, moment in (("start", start), ("end", end), ("now", now)):
        _aware(name, moment)
    if start is None:
        raise PeriodLimitExceeded(
            f"aggregated history needs a start time: at most {limit} periods of {aggregation.period} "
            "from a start are answered",
            limit,
        )
    floor, step = _stepper(aggregation)
    horizon = now - publication_delay
    stop = horizon if end is None else min(end, horizon)
    current = floor(start)
    if current < start:  # rounded in: the period holding ``start`` is not whole in the window
        current = step(current)
    found: list[Period] = []
    while True:
        following = step(current)
        if following > stop:
            return tuple(found)
        if len(found) == limit:
            raise PeriodLimitExceeded(
                f"the window holds more than {limit} periods of {aggregation.period}: narrow it", limit
            )
        found.append(Period(current, following))
        current = following


def check_period(aggregation: Aggregation, period: Period) -> None:
    """Refuse a period that is not one of the definition's (a misaligned or partial one)."""
    floor, step = _stepper(aggregation)
    if floor(period.start) != period.start or step(period.start) != period.end:
        raise PeriodsError(
            f"[{period.start.isoformat()}, {period.end.isoformat()}) is not a {aggregation.period} period "
            f"of {aggregation.time_zone}"
        )
