"""Optional calibrated noise: drawn once per cell (OpenDP's Laplace mechanism), stored, so
asking again cannot average it out; a principal's privacy budget is charged once per
(attribute, period) it is given, and refused past its cap."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from adapter.access.cells import BudgetExhausted, CellStore, budget_cost, compute_cells, periods, published_cells
from adapter.access.cells import noise as noise_module
from adapter.access.model import Aggregation
from tests.access_cells.support import IN_EAST, IN_NORTH, IN_WEST, T0, FakeBroker, at, daily, day, districts, one_each

NOW = T0 + timedelta(days=40)


def noisy(method: str = "sum", **changes: object) -> Aggregation:
    return daily(method, 3, noise_epsilon=0.5, contribution_bounds=(0.0, 100.0), **changes)


class Recorder:
    """A noise source that adds a known amount and records the scales it was asked for."""

    def __init__(self) -> None:
        self.scales: list[float] = []

    def __call__(self, value: float, scale: float) -> float:
        self.scales.append(scale)
        return value + 1000.0


def test_the_scale_is_the_sensitivity_over_epsilon_with_clamped_contributions() -> None:
    series = one_each({"a": (IN_WEST, 250.0), "b": (IN_WEST, -5.0), "c": (IN_WEST, 30.0), "d": (IN_WEST, 40.0)})
    draw = Recorder()
    (total,) = compute_cells(noisy("sum"), "x", day(0), series, noise=draw)
    assert total.value == 100.0 + 0.0 + 30.0 + 40.0 + 1000.0  # 250 clamped to 100, -5 to 0
    (mean,) = compute_cells(noisy("avg"), "x", day(0), series, noise=draw)
    assert mean.value == pytest.approx(170.0 / 4 + 1000.0) and mean.sensors == 4
    assert draw.scales == [100.0 / 0.5, 100.0 / 4 / 0.5]  # width / epsilon; width / n / epsilon


def test_suppressed_cells_draw_no_noise() -> None:
    draw = Recorder()
    (cell,) = compute_cells(noisy(), "x", day(0), one_each({"a": (IN_WEST, 1.0)}), noise=draw)
    assert cell.rule == "threshold" and draw.scales == []


def test_opendp_draws_the_noise_and_its_privacy_map_says_epsilon() -> None:
    pytest.importorskip("opendp")
    assert noise_module.noise_available()
    assert noise_module.privacy_spent(100.0, noise_module.scale_for(100.0, 0.5)) == pytest.approx(0.5)
    draws = {noise_module.laplace(10.0, 2.0) for _ in range(20)}
    assert len(draws) > 1 and all(isinstance(d, float) for d in draws)
    assert noise_module.laplace(10.0, 0.0) == 10.0


async def test_noise_is_drawn_once_and_every_later_answer_is_the_same_noisy_value() -> None:
    pytest.importorskip("opendp")
    broker, store = FakeBroker(), CellStore(":memory:")
    for i in range(5):
        broker.add(f"s{i}", IN_WEST, "x", 50.0, at(0))
    definition = noisy("sum")
    answers = [
        await published_cells(
            definition,
            store,
            tenant="t",
            entity_type="T",
            attributes=["x"],
            periods=[day(0)],
            fetch=broker.fetch,
            now=NOW,
        )
        for _ in range(20)
    ]
    assert len({a[0].value for a in answers}) == 1 and len(broker.reads) == 1
    assert answers[0][0].value != 250.0  # noise was added (a draw of exactly 0 has probability 0)


def test_each_period_of_each_attribute_costs_epsilon_twice_with_a_total() -> None:
    assert budget_cost(noisy()) == 0.5
    assert budget_cost(districts(noise_epsilon=0.5, contribution_bounds=(0.0, 1.0))) == 1.0
    assert budget_cost(districts(noise_epsilon=0.5, contribution_bounds=(0.0, 1.0), total=False)) == 0.5
    assert budget_cost(daily()) == 0.0


def test_the_budget_is_charged_once_per_cell_and_refused_past_its_cap() -> None:
    broker, store = FakeBroker(), CellStore(":memory:")
    for i, place in enumerate((IN_WEST, IN_EAST, IN_NORTH)):
        for n_day in range(5):
            broker.add(f"s{i}", place, "x", 10.0, at(n_day))
    definition = noisy(privacy_budget=1.5)  # three (attribute, period) reads of epsilon 0.5

    def ask(first: int, last: int, who: str = "alice") -> object:
        chosen = periods(definition, day(first).start, day(last).end, now=NOW)
        return asyncio.run(
            published_cells(
                definition,
                store,
                tenant="t",
                entity_type="T",
                attributes=["x"],
                periods=chosen,
                fetch=broker.fetch,
                now=NOW,
                principal=who,
                noise=Recorder(),
            )
        )

    ask(0, 1)
    assert store.spent("alice", definition.fingerprint, "t", "T") == 1.0
    ask(0, 1)  # the same cells again: free, they are the same noisy values
    assert store.spent("alice", definition.fingerprint, "t", "T") == 1.0
    with pytest.raises(BudgetExhausted, match="would spend epsilon 1 of a privacy budget of 1.5, of which 1 is spent"):
        ask(1, 3)  # days 2 and 3 are new: 1.0 more
    assert store.spent("alice", definition.fingerprint, "t", "T") == 1.0  # all or nothing
    ask(2, 2)
    assert store.spent("alice", definition.fingerprint, "t", "T") == 1.5
    ask(0, 0, who="bob")  # a budget per principal
    assert store.spent("bob", definition.fingerprint, "t", "T") == 0.5
    with pytest.raises(ValueError, match="needs the principal"):
        ask(0, 0, who=None)  # type: ignore[arg-type]
