"""Cells are calendar periods: aligned, never overlapping, whole, and published only once closed
(plus a delay for late uplinks); a window is rounded in, never cut into a partial period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapter.access.cells import (
    MAX_PERIODS,
    Period,
    PeriodLimitExceeded,
    PeriodsError,
    check_period,
    is_published,
    period_containing,
    periods,
    time_zone,
)
from adapter.access.model import Aggregation

PARIS = "Europe/Paris"
LATER = datetime(2030, 1, 1, tzinfo=UTC)


def definition(period: str, zone: str = "UTC") -> Aggregation:
    return Aggregation("sum", period, 3, time_zone=zone)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_the_machine_knows_the_time_zones_agreements_name() -> None:
    assert time_zone(PARIS).key == PARIS
    with pytest.raises(PeriodsError, match="unknown time zone 'Europe/Atlantis'"):
        time_zone("Europe/Atlantis")
    with pytest.raises(PeriodsError, match="unknown time zone"):
        time_zone("../../etc/passwd")


def test_days_in_paris_start_at_local_midnight_and_last_23_or_25_hours_on_dst_days() -> None:
    found = periods(definition("P1D", PARIS), utc(2025, 3, 29), utc(2025, 4, 1), now=LATER)
    # 2025-03-29 00:00Z is 01:00 in Paris: that day is not whole in the window (rounded in)
    assert [p.start for p in found] == [utc(2025, 3, 29, 23), utc(2025, 3, 30, 22)]
    assert [p.end - p.start for p in found] == [timedelta(hours=23), timedelta(hours=24)]
    autumn = periods(definition("P1D", PARIS), utc(2025, 10, 25, 22), utc(2025, 10, 26, 23), now=LATER)
    assert autumn == (Period(utc(2025, 10, 25, 22), utc(2025, 10, 26, 23)),)  # 25 hours


def test_hours_across_the_dst_end_are_three_distinct_hours_not_one_repeated() -> None:
    found = periods(definition("PT1H", PARIS), utc(2025, 10, 26, 0), utc(2025, 10, 26, 3), now=LATER)
    assert [p.start for p in found] == [utc(2025, 10, 26, 0), utc(2025, 10, 26, 1), utc(2025, 10, 26, 2)]
    local = [p.start.astimezone(time_zone(PARIS)).strftime("%H:%M%z") for p in found]
    assert local == ["02:00+0200", "02:00+0100", "03:00+0100"]  # 02:00 twice, one hour each
    spring = periods(definition("PT1H", PARIS), utc(2025, 3, 30, 0), utc(2025, 3, 30, 2), now=LATER)
    assert [p.start.astimezone(time_zone(PARIS)).hour for p in spring] == [1, 3]  # 02:00 does not exist


def test_hours_of_a_half_hour_zone_are_its_own_clock_hours() -> None:
    (hour,) = periods(definition("PT1H", "Asia/Kolkata"), utc(2025, 1, 1, 0), utc(2025, 1, 1, 1, 30), now=LATER)
    assert hour == Period(utc(2025, 1, 1, 0, 30), utc(2025, 1, 1, 1, 30))


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    weeks = periods(definition("P1W", PARIS), utc(2025, 10, 19), utc(2025, 11, 10), now=LATER)
    assert [p.start.astimezone(time_zone(PARIS)).strftime("%a %d") for p in weeks] == ["Mon 20", "Mon 27", "Mon 03"]
    assert weeks[0].end - weeks[0].start == timedelta(days=7, hours=1)  # the week of the DST end
    months = periods(definition("P1M"), utc(2024, 11, 15), utc(2025, 4, 1), now=LATER)
    assert [(p.start.month, (p.end - p.start).days) for p in months] == [(12, 31), (1, 31), (2, 28), (3, 31)]
    leap = periods(definition("P1M"), utc(2024, 2, 1), utc(2024, 3, 1), now=LATER)
    assert leap == (Period(utc(2024, 2, 1), utc(2024, 3, 1)),)


def test_periods_tile_time_without_gap_or_overlap() -> None:
    for period in ("PT1H", "P1D", "P1W", "P1M"):
        found = periods(
            definition(period, PARIS),
            utc(2024, 1, 1),
            utc(2025, 1, 1) if period != "PT1H" else utc(2024, 1, 20),
            now=LATER,
        )
        assert found and all(a.end == b.start for a, b in zip(found, found[1:], strict=False))
        for p in found:
            assert period_containing(definition(period, PARIS), p.start) == p
            assert period_containing(definition(period, PARIS), p.end - timedelta(microseconds=1)) == p


def test_a_window_is_rounded_in_to_the_whole_periods_it_holds() -> None:
    day = definition("P1D")
    assert periods(day, utc(2025, 3, 3, 12), utc(2025, 3, 6, 12), now=LATER) == (
        Period(utc(2025, 3, 4), utc(2025, 3, 5)),
        Period(utc(2025, 3, 5), utc(2025, 3, 6)),
    )
    assert periods(day, utc(2025, 3, 3, 1), utc(2025, 3, 3, 23), now=LATER) == ()  # no whole day: nothing


def test_only_closed_periods_past_the_publication_delay_are_published() -> None:
    day = definition("P1D")
    now = utc(2025, 3, 5, 0, 30)  # the 4th ended 30 minutes ago
    found = periods(day, utc(2025, 3, 1), None, now=now, publication_delay=timedelta(hours=1))
    assert found[-1] == Period(utc(2025, 3, 3), utc(2025, 3, 4))
    assert periods(day, utc(2025, 3, 1), None, now=now, publication_delay=timedelta(0))[-1].end == utc(2025, 3, 5)
    assert not is_published(Period(utc(2025, 3, 4), utc(2025, 3, 5)), now=now, publication_delay=timedelta(hours=1))
    assert is_published(
        Period(utc(2025, 3, 4), utc(2025, 3, 5)), now=utc(2025, 3, 5, 1), publication_delay=timedelta(hours=1)
    )


def test_an_unbounded_or_too_long_window_is_refused_naming_the_limit() -> None:
    with pytest.raises(PeriodLimitExceeded, match="needs a start time") as raised:
        periods(definition("P1D"), None, None, now=LATER)
    assert raised.value.limit == MAX_PERIODS and isinstance(raised.value, ValueError)
    with pytest.raises(PeriodLimitExceeded, match=f"more than {MAX_PERIODS} periods of PT1H"):
        periods(definition("PT1H"), utc(2020, 1, 1), utc(2025, 1, 1), now=LATER)
    assert len(periods(definition("P1D"), utc(2020, 1, 1), None, now=LATER, limit=5000)) > 3000
    assert len(periods(definition("PT1H"), utc(2025, 1, 1), utc(2025, 2, 11, 16), now=LATER)) == MAX_PERIODS


def test_naive_times_and_foreign_periods_are_refused() -> None:
    with pytest.raises(PeriodsError, match="start must be a timezone-aware"):
        periods(definition("P1D"), datetime(2025, 1, 1), None, now=LATER)
    with pytest.raises(PeriodsError, match="must end after"):
        Period(utc(2025, 1, 2), utc(2025, 1, 1))
    with pytest.raises(PeriodsError, match="is not a P1D period of Europe/Paris"):
        check_period(definition("P1D", PARIS), Period(utc(2025, 1, 1), utc(2025, 1, 2)))  # a UTC day
    with pytest.raises(PeriodsError, match="unknown period 'PT15M'"):
        periods(definition("PT15M"), utc(2025, 1, 1), None, now=LATER)
