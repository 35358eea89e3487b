"""Each cell is computed once, after its period is published, and stored: the store keeps the
first put, survives a restart, is shared by agreements with the same definition, and
``published_cells`` reads the broker only for periods not stored yet."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from adapter.access.cells import (
    Cell,
    CellKey,
    CellStore,
    Period,
    PeriodsError,
    SensorSeries,
    compute_cells,
    periods,
    published_cells,
)
from tests.access_cells.support import IN_EAST, IN_NORTH, IN_WEST, FakeBroker, at, daily, day, districts, one_each


def key(definition_fingerprint: str, attribute: str = "x", n_day: int = 0) -> CellKey:
    return CellKey(definition_fingerprint, "ville", "AirQualityObserved", attribute, day(n_day).start)


def test_a_second_put_of_the_same_key_keeps_the_first() -> None:
    store = CellStore(":memory:")
    definition = daily("sum", 1)
    first = compute_cells(definition, "x", day(0), one_each({"a": (IN_WEST, 1.0)}))
    second = compute_cells(definition, "x", day(0), one_each({"a": (IN_WEST, 99.0)}))
    assert store.get(key(definition.fingerprint)) is None
    assert store.put(key(definition.fingerprint), first) == first
    assert store.put(key(definition.fingerprint), second) == first
    assert store.get(key(definition.fingerprint)) == first


def test_stored_cells_survive_a_restart_exactly(tmp_path: Path) -> None:
    definition = districts("avg")
    series = one_each({**{f"w{i}": (IN_WEST, 0.1 * i) for i in range(3)}, "e": (IN_EAST, 1 / 3)})
    cells = compute_cells(definition, "x", day(0), series)
    store = CellStore(tmp_path / "cells.sqlite")
    store.put(key(definition.fingerprint), cells)
    store.close()
    reopened = CellStore(tmp_path / "cells.sqlite")
    assert reopened.get(key(definition.fingerprint)) == cells  # floats to the last bit, rules, order
    reopened.close()


def test_a_put_must_match_its_key_and_never_stores_pending_cells() -> None:
    store = CellStore(":memory:")
    cells = compute_cells(daily("sum", 1), "x", day(0), one_each({"a": (IN_WEST, 1.0)}))
    with pytest.raises(ValueError, match="key's attribute and period"):
        store.put(key("f", "y"), cells)
    with pytest.raises(ValueError, match="key's attribute and period"):
        store.put(key("f", n_day=1), cells)
    with pytest.raises(ValueError, match="pending"):
        store.put(key("f"), (Cell("all", day(0), "x", "pending"),))


def test_the_fingerprint_names_the_definition_not_the_agreement() -> None:
    assert daily("avg", 3).fingerprint == daily("avg", 3).fingerprint
    changed = [
        daily("sum", 3),
        daily("avg", 4),
        replace(daily("avg", 3), period="PT1H"),
        replace(daily("avg", 3), time_zone="Europe/Paris"),
        replace(daily("avg", 3), dominance_share=0.8),
        districts("avg"),
        districts("avg", total=False),
    ]
    prints = {d.fingerprint for d in changed} | {daily("avg", 3).fingerprint}
    assert len(prints) == len(changed) + 1
    assert replace(daily("avg", 3), privacy_budget=5.0).fingerprint == daily("avg", 3).fingerprint


async def test_the_broker_is_read_once_per_period_then_never_again() -> None:
    broker, store = FakeBroker(), CellStore(":memory:")
    for i, location in enumerate((IN_WEST, IN_WEST, IN_EAST, IN_NORTH)):
        broker.add(f"s{i}", location, "x", 10.0 + i, at(0))
        broker.add(f"s{i}", location, "y", 1.0, at(1))
    definition, now = daily("sum", 3), at(5)
    chosen = periods(definition, day(0).start, day(2).end, now=now)

    async def ask(attributes: list[str]) -> tuple[Cell, ...]:
        return await published_cells(
            definition,
            store,
            tenant="ville",
            entity_type="T",
            attributes=attributes,
            periods=chosen,
            fetch=broker.fetch,
            now=now,
        )

    first = await ask(["x"])
    assert broker.reads == [day(0), day(1), day(2)]
    assert [(c.period, c.status, c.value) for c in first] == [
        (day(0), "published", 46.0),
        (day(1), "suppressed", None),
        (day(2), "suppressed", None),
    ]
    assert await ask(["x"]) == first and len(broker.reads) == 3
    both = await ask(["x", "y"])  # y was never computed: each period is read once more, for y only
    assert len(broker.reads) == 6 and [c for c in both if c.attribute == "x"] == list(first)
    await ask(["y", "x"])
    assert len(broker.reads) == 6


async def test_an_unpublished_period_is_pending_and_neither_read_nor_stored() -> None:
    broker, store = FakeBroker(), CellStore(":memory:")
    definition = districts("sum")
    now = day(1).start + timedelta(minutes=30)  # day 0 ended, but the delay has not passed
    cells = await published_cells(
        definition,
        store,
        tenant="ville",
        entity_type="T",
        attributes=["x"],
        periods=[day(0)],
        fetch=broker.fetch,
        now=now,
    )
    assert [(c.group, c.status) for c in cells] == [
        ("west", "pending"),
        ("east", "pending"),
        ("north", "pending"),
        ("total", "pending"),
    ]
    assert broker.reads == [] and store.get(key(definition.fingerprint)) is None


async def test_a_period_that_is_not_the_definitions_is_refused() -> None:
    with pytest.raises(PeriodsError, match="is not a P1D period"):
        await published_cells(
            daily(),
            CellStore(":memory:"),
            tenant="t",
            entity_type="T",
            attributes=["x"],
            periods=[replace(day(0), end=day(0).end + timedelta(hours=1))],
            fetch=FakeBroker().fetch,
            now=at(9),
        )


async def test_two_questions_at_once_get_the_same_cells() -> None:
    broker, store = FakeBroker(), CellStore(":memory:")
    for i in range(3):
        broker.add(f"s{i}", IN_WEST, "x", float(i), at(0))
    definition = daily("sum", 3)
    original = broker.fetch

    async def slow_and_changing(period: Period) -> Mapping[str, SensorSeries]:
        answer = await original(period)
        broker.add(f"late{len(broker.reads)}", IN_WEST, "x", 1000.0, at(0))  # the second reader sees more data
        await asyncio.sleep(0)  # the second question starts while the first has not stored its cells
        return answer

    async def ask() -> tuple[Cell, ...]:
        return await published_cells(
            definition,
            store,
            tenant="t",
            entity_type="T",
            attributes=["x"],
            periods=[day(0)],
            fetch=slow_and_changing,
            now=at(9),
        )

    one, two = await asyncio.gather(ask(), ask())
    assert len(broker.reads) == 2  # both read the broker, the second saw the late reading
    assert one == two and one[0].value == 3.0 and one[0].sensors == 3
