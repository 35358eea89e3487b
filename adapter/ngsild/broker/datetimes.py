"""ISO 8601 timestamps and durations the way Orion-LD reads and writes them.

Orion-LD accepts ``YYYY-MM-DD[THH[:mm[:SS[.sss]]]]`` with an optional ``Z`` or ``±HH[:mm]``
and always answers in UTC with milliseconds (``…12:00:00.000Z``). Keeping every stored time
in that one form means text order is time order, so SQLite can compare them as strings;
the temporal index uses epoch milliseconds, which are smaller still.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from adapter.ngsild.broker.errors import BadRequestData

__all__ = [
    "Duration",
    "format_datetime",
    "from_millis",
    "is_datetime",
    "normalize_datetime",
    "now",
    "parse_datetime",
    "parse_duration",
    "to_millis",
]

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?\Z"
)
_DURATION = re.compile(
    r"P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?\Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_datetime(text: str) -> datetime:
    """An aware UTC datetime, or ``BadRequestData`` "Invalid ISO8601 timestamp"."""
    match = _DATETIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise BadRequestData("Invalid ISO8601 timestamp", str(text))
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        value = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise BadRequestData("Invalid ISO8601 timestamp", text) from exc
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        value -= sign * offset
    return value


def is_datetime(text: str) -> bool:
    return _DATETIME.match(text) is not None


def format_datetime(value: datetime) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


@lru_cache(maxsize=8192)
def normalize_datetime(text: str) -> str:
    """``text`` in the broker's one output form (UTC, milliseconds, ``Z``)."""
    return format_datetime(parse_datetime(text))


@lru_cache(maxsize=8192)
def to_millis(text: str) -> int:
    """Epoch milliseconds of a timestamp (normalised or not)."""
    delta = parse_datetime(text) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_millis(millis: int) -> str:
    return format_datetime(_EPOCH + timedelta(milliseconds=millis))


def now() -> str:
    return format_datetime(datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Duration:
    """An ISO 8601 duration: calendar months plus exact seconds (months vary in length)."""

    months: int
    seconds: float

    @property
    def is_zero(self) -> bool:
        return self.months == 0 and self.seconds == 0

    def after(self, start: datetime, times: int = 1) -> datetime:
        """``start`` plus ``times`` of this duration (months first, clamped to month ends)."""
        result = start
        if self.months:
            total = result.month - 1 + self.months * times
            year, month = result.year + total // 12, total % 12 + 1
            day = min(result.day, _days_in_month(year, month))
            result = result.replace(year=year, month=month, day=day)
        return result + timedelta(seconds=self.seconds * times)


def parse_duration(text: str) -> Duration:
    """``P1D``, ``PT1H``, ``P1Y2M``, ``P1W``…, or ``BadRequestData``."""
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise BadRequestData("Invalid ISO8601 duration", text)
    years, months, weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    if years != int(years) or months != int(months):
        raise BadRequestData("Invalid ISO8601 duration", f"{text}: fractional years or months")
    return Duration(
        months=int(years) * 12 + int(months),
        seconds=((weeks * 7 + days) * 24 + hours) * 3600 + minutes * 60 + seconds,
    )


def _days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day
