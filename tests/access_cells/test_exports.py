"""The cells package's public names are listed, sorted, and exist (the facade and each module)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "adapter.access.cells",
    *(f"adapter.access.cells.{m}" for m in ("exceptions", "groups", "noise", "periods", "rules", "series", "store")),
]


@pytest.mark.parametrize("name", MODULES)
def test_public_names_are_listed_sorted_and_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__)
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.{public}"


def test_every_error_is_a_cells_error() -> None:
    from adapter.access import cells

    for error in (cells.PeriodsError, cells.PeriodLimitExceeded, cells.BudgetExhausted, cells.NoiseUnavailable):
        assert issubclass(error, cells.CellsError)
    assert issubclass(cells.PeriodLimitExceeded, ValueError)
