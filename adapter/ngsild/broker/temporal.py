"""The temporal API (``/temporal/entities``), answered as Mintaka answers for Orion-LD.

Orion-LD itself answers 501 here and leaves temporal queries to Mintaka over its TRoE
database; the embedded broker keeps the history itself (``store.py``) and answers with the
NGSI-LD temporal representations (ETSI GS CIM 009 clauses 4.5.7–4.5.9, 4.11, 6.18–6.19):

- normalized: each attribute is an array of instances, each with its ``instanceId``;
- ``options=temporalValues``: ``{"type", "values": [[value, time], ...]}`` (``objects`` for
  Relationships, ``languageMaps`` for LanguageProperties);
- aggregated (``aggrMethods`` + ``aggrPeriodDuration``): ``{"type", "<method>": [[value,
  periodStart, periodEnd], ...]}``, one entry per period that holds instances; periods start
  at ``timeAt`` (or the first instance) and ``PT0S`` means one period over the whole range.

Time windows: ``before`` is ``t < timeAt``, ``after`` is ``t > timeAt``, ``between`` is
``timeAt <= t < endTimeAt``, on ``timeproperty`` (``observedAt`` by default; ``modifiedAt`` and
``createdAt`` both mean the time the instance was written). Instances come oldest first;
with ``lastN`` only the newest N per attribute, newest first, as Mintaka returns them.
``q`` holds for an entity when each of its terms holds for some instance in the window.

Writes: ``add_temporal_attributes`` (``POST /temporal/entities/{id}/attrs``, clause 5.6.12)
appends instances to the history of an existing entity without touching its current state:
that is where a late observation goes (older than the entity's current value).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapter.ngsild.broker.datetimes import (
    Duration,
    format_datetime,
    from_millis,
    parse_datetime,
    parse_duration,
    to_millis,
)
from adapter.ngsild.broker.errors import BadRequestData, ResourceNotFound
from adapter.ngsild.broker.jsonld import TermContext
from adapter.ngsild.broker.payload import VALUE_MEMBER, normalize_attributes
from adapter.ngsild.broker.query import Query
from adapter.ngsild.broker.render import render_attribute
from adapter.ngsild.broker.store import Instance, Store

__all__ = [
    "AGGREGATION_METHODS",
    "TemporalQuery",
    "add_temporal_attributes",
    "parse_temporal_query",
    "temporal_entity",
]

AGGREGATION_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
_TIMEPROPERTIES = {"observedAt": "observed_at", "modifiedAt": "modified_at", "createdAt": "modified_at"}
_SERIES_MEMBER = {"Relationship": "objects", "LanguageProperty": "languageMaps"}


@dataclass(frozen=True, slots=True)
class TemporalQuery:
    """The time window, the time property and the representation asked for."""

    timeproperty: str = "observedAt"
    start: int | None = None  # epoch ms, inclusive
    end: int | None = None  # epoch ms, exclusive
    window_start: str | None = None
    window_end: str | None = None
    last_n: int | None = None
    temporal_values: bool = False
    aggr_methods: tuple[str, ...] = ()
    aggr_period: Duration | None = None
    sys_attrs: bool = False

    @property
    def column(self) -> str:
        return _TIMEPROPERTIES[self.timeproperty]


def parse_temporal_query(params: Mapping[str, str], options: Collection[str]) -> TemporalQuery:
    """Reads timerel/timeAt/endTimeAt/timeproperty/lastN/aggr* (or raises ``BadRequestData``)."""
    timeproperty = params.get("timeproperty", "observedAt")
    if timeproperty not in _TIMEPROPERTIES:
        raise BadRequestData("Invalid value for URI parameter /timeproperty/", timeproperty)
    timerel, time_at, end_time_at = params.get("timerel"), params.get("timeAt"), params.get("endTimeAt")
    start = end = None
    window_start = window_end = None
    if timerel is None:
        if time_at is not None or end_time_at is not None:
            raise BadRequestData("Invalid temporal query", "timeAt and endTimeAt need timerel")
    else:
        if time_at is None:
            raise BadRequestData("Invalid temporal query", "timerel needs timeAt")
        at = to_millis(time_at)
        if timerel == "before":
            end, window_end = at, from_millis(at)
        elif timerel == "after":
            start, window_start = at + 1, from_millis(at)
        elif timerel == "between":
            if end_time_at is None:
                raise BadRequestData("Invalid temporal query", "timerel=between needs endTimeAt")
            start, end = at, to_millis(end_time_at)
            window_start, window_end = from_millis(start), from_millis(end)
            if end <= start:
                raise BadRequestData("Invalid temporal query", "endTimeAt must be after timeAt")
        else:
            raise BadRequestData("Invalid value for URI parameter /timerel/", timerel)
    last_n = None
    if "lastN" in params:
        try:
            last_n = int(params["lastN"])
        except ValueError:
            last_n = 0
        if last_n <= 0:
            raise BadRequestData("Invalid value for URI parameter /lastN/", params["lastN"])
    methods: tuple[str, ...] = ()
    period = None
    if "aggrMethods" in params or "aggregatedValues" in options:
        methods = tuple(m for m in params.get("aggrMethods", "").split(",") if m)
        if not methods:
            raise BadRequestData("Invalid temporal query", "aggregatedValues needs aggrMethods")
        for method in methods:
            if method not in AGGREGATION_METHODS:
                raise BadRequestData("Invalid value for URI parameter /aggrMethods/", method)
        period = parse_duration(params.get("aggrPeriodDuration", "PT0S"))
    elif "aggrPeriodDuration" in params:
        raise BadRequestData("Invalid temporal query", "aggrPeriodDuration needs aggrMethods")
    return TemporalQuery(
        timeproperty,
        start,
        end,
        window_start,
        window_end,
        last_n,
        temporal_values="temporalValues" in options,
        aggr_methods=methods,
        aggr_period=period,
        sys_attrs="sysAttrs" in options,
    )


def temporal_entity(
    store: Store,
    tkey: int,
    entity_id: str,
    entity_type: str,
    tq: TemporalQuery,
    context: TermContext,
    *,
    attrs: Collection[str] | None = None,
    query: Query | None = None,
) -> dict[str, Any] | None:
    """The temporal representation of one entity, or ``None`` when ``attrs``/``q`` rule it out."""
    wanted = None if attrs is None else set(attrs) | (query.attributes if query else set())
    instances = store.instances(tkey, None if wanted is None else sorted(wanted), tq.column, tq.start, tq.end)
    bodies = store.written_attributes([i.wkey for i in instances])
    series: dict[str, list[tuple[Instance, dict[str, Any]]]] = {}
    for instance in instances:
        body = bodies[instance.wkey].get(instance.attr)
        if body is not None:
            series.setdefault(instance.attr, []).append((instance, body))
    if query is not None and not query.matches({name: [b for _, b in pairs] for name, pairs in series.items()}):
        return None
    if attrs is not None:
        series = {name: pairs for name, pairs in series.items() if name in attrs}
        if not series:
            return None
    out: dict[str, Any] = {"id": entity_id, "type": context.compact(entity_type)}
    for name, pairs in series.items():
        if tq.last_n is not None:
            pairs = pairs[-tq.last_n :][::-1]
        out[context.compact(name)] = _represent(pairs, tq, context)
    return out


def add_temporal_attributes(
    store: Store, tenant: str, entity_id: str, body: Any, context: TermContext, now: str
) -> int:
    """Appends the attribute instances of ``body`` to the entity's history; returns how many.

    Each attribute of the fragment is one instance (an object) or several (an array of
    objects), checked as an attribute of an entity write. The entity's current state, its
    ``modifiedAt`` and its subscriptions are left alone: only temporal queries see them.
    Raises ``ResourceNotFound`` for an unknown entity, ``BadRequestData`` for a bad fragment.
    """
    if not isinstance(body, dict):
        raise BadRequestData("Invalid payload", "the attributes must be a JSON object")
    instances: list[dict[str, dict[str, Any]]] = []
    for name, value in body.items():
        if name in ("@context", "id", "type", "createdAt", "modifiedAt"):
            continue
        for raw in value if type(value) is list and value and all(type(i) is dict for i in value) else [value]:
            instances.append(normalize_attributes({name: raw}, context))
    if not instances:
        raise BadRequestData("Invalid payload", "no attribute instance to add")
    entity = store.get_entity(tenant, entity_id)
    if entity is None:
        raise ResourceNotFound("Entity not found", entity_id)
    # the current attributes are stored again as they are, with the same modifiedAt: unchanged
    store.write(tenant, [(entity, written) for written in instances], now)
    return len(instances)


def _time(instance: Instance, tq: TemporalQuery) -> int:
    if tq.column == "observed_at" and instance.observed_at is not None:
        return instance.observed_at
    return instance.modified_at


def _represent(pairs: list[tuple[Instance, dict[str, Any]]], tq: TemporalQuery, context: TermContext) -> Any:
    kind = max(pairs, key=lambda pair: pair[0].wkey)[1].get("type", "Property")
    member = VALUE_MEMBER.get(kind, "value")
    if tq.aggr_methods:
        return _aggregate(pairs, kind, member, tq)
    if tq.temporal_values:
        return {
            "type": kind,
            _SERIES_MEMBER.get(kind, "values"): [
                [body.get(member), from_millis(_time(instance, tq))] for instance, body in pairs
            ],
        }
    instances = []
    for instance, body in pairs:
        written = from_millis(instance.modified_at)
        with_times = tq.sys_attrs or tq.timeproperty != "observedAt"
        rendered = render_attribute(body, context, modified_at=written if with_times else None)
        rendered["instanceId"] = instance.instance_id
        instances.append(rendered)
    return instances


def _aggregate(
    pairs: list[tuple[Instance, dict[str, Any]]], kind: str, member: str, tq: TemporalQuery
) -> dict[str, Any]:
    points = sorted(((_time(i, tq), _scalar(body.get(member))) for i, body in pairs), key=lambda p: p[0])
    period = tq.aggr_period
    assert period is not None
    first = parse_datetime(tq.window_start) if tq.window_start else _datetime(points[0][0])
    buckets: list[tuple[str, str, list[Any]]] = []
    if period.is_zero:
        last = parse_datetime(tq.window_end) if tq.window_end else _datetime(points[-1][0])
        buckets.append((format_datetime(first), format_datetime(last), [v for _, v in points]))
    else:
        index, low, high = 0, first, period.after(first)
        high_ms = to_millis(format_datetime(high))
        for moment, value in points:
            while high_ms <= moment:
                index += 1
                low, high = high, period.after(first, index + 1)
                high_ms = to_millis(format_datetime(high))
            start = format_datetime(low)
            if not buckets or buckets[-1][0] != start:
                buckets.append((start, format_datetime(high), []))
            buckets[-1][2].append(value)
    out: dict[str, Any] = {"type": kind}
    for method in tq.aggr_methods:
        rows = []
        for start, end, values in buckets:
            result = _apply(method, values)
            if result is not None:
                rows.append([result, start, end])
        out[method] = rows
    return out


def _datetime(millis: int) -> datetime:
    return parse_datetime(from_millis(millis))


def _scalar(value: Any) -> Any:
    if isinstance(value, dict) and "@value" in value:
        return value["@value"]
    return value


def _apply(method: str, values: list[Any]) -> Any:
    if method == "totalCount":
        return len(values)
    if method == "distinctCount":
        return len({json.dumps(v, sort_keys=True) for v in values})
    numbers = [v for v in values if type(v) in (int, float)]
    if method in ("min", "max"):
        if numbers:
            return min(numbers) if method == "min" else max(numbers)
        strings = [v for v in values if isinstance(v, str)]
        if strings:
            return min(strings) if method == "min" else max(strings)
        return None
    if not numbers:
        return None
    if method == "sum":
        return sum(numbers)
    if method == "avg":
        return sum(numbers) / len(numbers)
    if method == "sumsq":
        return sum(n * n for n in numbers)
    mean = sum(numbers) / len(numbers)
    return math.sqrt(sum((n - mean) ** 2 for n in numbers) / (len(numbers) - 1)) if len(numbers) > 1 else 0.0
