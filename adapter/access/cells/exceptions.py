"""The errors of published cells, one tree under ``CellsError``::

    CellsError
    ├── PeriodsError (also a ValueError)     a window or a period the cell definition cannot answer
    │   └── PeriodLimitExceeded              the window holds more periods than one answer may
    ├── BudgetExhausted                      the principal's privacy budget would be exceeded
    └── NoiseUnavailable                     noise is asked for but OpenDP is not installed

Each message is for the caller: it names the rule or the limit, never a value.
"""

from __future__ import annotations

__all__ = ["BudgetExhausted", "CellsError", "NoiseUnavailable", "PeriodLimitExceeded", "PeriodsError"]


class CellsError(Exception):
    """Something about published cells went wrong: the message says what, never a value."""


class PeriodsError(CellsError, ValueError):
    """A window or a period does not fit the cell definition (naive time, misaligned period...)."""


class PeriodLimitExceeded(PeriodsError):
    """The window holds more whole periods than ``limit`` (or has no start): narrow it."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class BudgetExhausted(CellsError):
    """Reading these cells would take the principal past its privacy budget.

    ``spent`` is what the principal has spent so far, ``asked`` what this answer would add,
    ``budget`` the agreement's cap (all in epsilon)."""

    def __init__(self, spent: float, asked: float, budget: float) -> None:
        super().__init__(
            f"this answer would spend epsilon {asked:g} of a privacy budget of {budget:g}, "
            f"of which {spent:g} is spent: ask for fewer periods or attributes"
        )
        self.spent, self.asked, self.budget = spent, asked, budget


class NoiseUnavailable(CellsError):
    """The cell definition adds noise, and OpenDP (``pip install opendp==0.16.0``) is missing."""
