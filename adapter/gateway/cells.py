"""Aggregated grants answered with published cells: the broker read and the NGSI-LD rendering.

The rules are in ``adapter.access.cells`` (pure, tested there); this module gives them the
sensors' histories (``fetch``: every sensor of the type over one whole period, paged; nothing of
the partner's request but the attributes and the periods) and renders the cells as NGSI-LD
temporal entities, one per group of sensors, in the aggregated temporal representation::

    {"id": "urn:ngsild-adapter:cells:ville:AirQualityObserved:all", "type": "AirQualityObserved",
     "no2": {"type": "Property", "avg": [[31.5, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"]],
             "cells": [{"group": "all", "status": "published", "value": 31.5, "sensors": 4, ...}]}}

``avg`` (or ``sum``) lists the published values only; ``cells`` says, period by period, what was
published and what was suppressed and why (a suppressed cell is never silent).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from adapter.access.cells import (
    BudgetExhausted,
    Cell,
    CellStore,
    PeriodsError,
    Period,
    SensorSeries,
    cell_json,
    group_names,
    periods,
    published_cells,
    series_from_temporal,
)
from adapter.access.decide import CellQuery
from adapter.access.model import Principal
from adapter.gateway import upstream
from adapter.gateway.upstream import Vocabulary

__all__ = ["MAX_COMPUTED_PER_REQUEST", "CellsRefused", "answer_cells"]

_PAGE = 100
_MAX_PAGES = 100  # 10,000 sensors of one type: beyond, the cells are not computed
#: periods whose cells one request may compute (read from the broker); the others of its window
#: are answered pending, and computed by the next requests
MAX_COMPUTED_PER_REQUEST = 31


class _Deferred(Exception):
    """This request has computed its share of periods."""


class CellsRefused(Exception):
    """The cells cannot be answered (``status``: 400 for a window they cannot have, 403 for a
    privacy budget spent, 502 when the broker cannot give every sensor's history)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def answer_cells(
    query: CellQuery,
    store: CellStore,
    session: aiohttp.ClientSession,
    broker_url: str,
    temporal_url: str | None,
    vocabulary: Vocabulary,
    *,
    principal: Principal,
    now: datetime,
    publication_delay: timedelta,
) -> tuple[list[dict[str, Any]], int]:
    """The cells of ``query`` as NGSI-LD entities (one per group), and how many broker reads it took."""
    try:
        chosen = periods(query.aggregation, query.start, query.end, now=now, publication_delay=publication_delay)
    except PeriodsError as exc:
        raise CellsRefused(400, f"timeAt: {exc}") from None
    reads = 0
    located: list[Any] | None = None

    async def pages(build: Any) -> list[Any]:
        nonlocal reads
        entities: list[Any] = []
        for page in range(_MAX_PAGES):
            answer = await upstream.send(session, broker_url, build(page * _PAGE), temporal_base=temporal_url)
            reads += 1
            body = answer.json()
            if answer.status != 200 or not isinstance(body, list):
                raise CellsRefused(502, f"the broker answered {answer.status}: the cells are not computed")
            entities.extend(e for e in body if isinstance(e, dict))
            if len(body) < _PAGE:
                return entities
        raise CellsRefused(502, f"more than {_PAGE * _MAX_PAGES} sensors: the cells are not computed")

    computed = 0

    async def budgeted(period: Period) -> Mapping[str, SensorSeries]:
        nonlocal computed
        if computed >= MAX_COMPUTED_PER_REQUEST:
            raise _Deferred
        computed += 1
        return await fetch(period)

    async def fetch(period: Period) -> Mapping[str, SensorSeries]:
        nonlocal located
        history = await pages(
            lambda offset: upstream.cells_read(query, period.start, period.end, offset, vocabulary, page_size=_PAGE)
        )
        if query.aggregation.districts and located is None:  # read once per answer
            located = await pages(lambda offset: upstream.cells_locations(query, offset, vocabulary, page_size=_PAGE))
        return series_from_temporal([*(located or ()), *history], query.attributes)

    cells: list[Cell] = []
    for period in chosen:  # period by period: past the computing budget, the rest waits as pending
        try:
            cells.extend(
                await published_cells(
                    query.aggregation,
                    store,
                    tenant=query.tenant,
                    entity_type=query.entity_type,
                    attributes=query.attributes,
                    periods=[period],
                    fetch=budgeted,
                    now=now,
                    publication_delay=publication_delay,
                    principal=f"{principal.issuer} {principal.subject}",
                )
            )
        except _Deferred:
            cells.extend(
                Cell(group, period, name, "pending")
                for name in sorted(query.attributes)
                for group in group_names(query.aggregation)
            )
        except BudgetExhausted as exc:
            raise CellsRefused(403, str(exc)) from None
    return _entities(query, tuple(cells)), reads


def _entities(query: CellQuery, cells: tuple[Cell, ...]) -> list[dict[str, Any]]:
    method = query.aggregation.method
    groups: dict[str, dict[str, Any]] = {
        group: {"id": f"urn:ngsild-adapter:cells:{query.tenant}:{query.entity_type}:{group}", "type": query.entity_type}
        for group in group_names(query.aggregation)
    }
    for cell in cells:
        entity = groups[cell.group]
        attribute = entity.setdefault(cell.attribute, {"type": "Property", method: [], "cells": []})
        described = cell_json(cell, query.aggregation)
        attribute["cells"].append(described)
        if cell.status == "published":
            attribute[method].append([cell.value, described["start"], described["end"]])
    return list(groups.values())
