"""Narrowing requests and filtering answers to what a grant allows: the gateway's pure functions.

The gateway (``adapter.gateway.ngsild``) decides with the policies, then calls these to make
the request it sends to the broker no wider than the grant, and the answer it returns no
richer. Kept free of I/O so that each rule is tested on its own, and so that every way of
asking (by id, by type, by ``q``, temporal, subscriptions) goes through the same functions.

Rules:

* attributes: the broker is asked for the granted attributes only (the request's ``attrs``
  intersected with the grant's, less the removed ones); the answer keeps only those (plus
  ``id``, ``type``, ``@context`` and the provenance link ``wasDerivedFrom``, an IRI). An
  attribute the broker returns under a full IRI (not in the type's context) is dropped.
* ``q``: may name granted attributes only; a filter on an attribute one cannot read would
  tell its values (``q=pm25>50`` answers yes or no).
* area: the grant's polygon becomes the broker's geo-query; a request with its own geo-query
  under an area-restricted grant is refused rather than combined.
* time window: temporal queries are clamped to it; current values outside it are dropped.
* coarsening: numbers and coordinates rounded to the grant's decimals.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from statistics import fmean
from typing import Any

from adapter.access.model import Aggregation, Grant

__all__ = [
    "ALWAYS_KEPT",
    "NarrowingRefused",
    "aggregate_across",
    "allowed_attributes",
    "area_params",
    "check_q",
    "clamp_window",
    "filter_entity",
    "parse_duration",
    "q_attributes",
]

#: entity members every answer keeps (the link is an IRI to the value's provenance record)
ALWAYS_KEPT = frozenset(("id", "type", "@context", "wasDerivedFrom", "http://www.w3.org/ns/prov#wasDerivedFrom"))

# An attribute path in an NGSI-LD q: a name (possibly with .sub-attribute or [key]) before an
# operator, or alone (existence); string literals are skipped first.
_Q_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_Q_NAME = re.compile(r"(?<![\w.:/#\"])([A-Za-z_][\w]*)(?:[.\[][\w.\[\]]*)?\s*(?=(==|!=|>=|<=|>|<|~=|!~=|[;|)]|$))")


class NarrowingRefused(Exception):
    """The request cannot be made as narrow as the grant: refused, with the reason (no data)."""


def allowed_attributes(grant: Grant, requested: Iterable[str] | None) -> frozenset[str] | None:
    """The attributes to ask the broker for: None means every attribute the grant allows.

    Raises ``NarrowingRefused`` when the request names only attributes the grant does not allow.
    """
    allowed = grant.attributes
    if requested is None:
        if allowed is None:
            return None  # everything (the removed ones are dropped from the answer)
        wanted = allowed - grant.removed
    else:
        wanted = frozenset(a for a in requested if a) - grant.removed
        if allowed is not None:
            wanted &= allowed
    if not wanted:
        raise NarrowingRefused(f"none of the requested attributes is granted by agreement {grant.agreement}")
    return wanted


def q_attributes(q: str) -> set[str]:
    """The attribute names a ``q`` expression filters on."""
    return {match.group(1) for match in _Q_NAME.finditer(_Q_STRING.sub('""', q))}


def check_q(grant: Grant, q: str | None, readable: frozenset[str] | None) -> None:
    """Refuse a ``q`` that filters on an attribute the principal cannot read.

    Attributes are named by their short names only: a full IRI (anything with ``:`` outside a
    string) could name an attribute the grant removes under another spelling.
    """
    if not q:
        return
    if ":" in _Q_STRING.sub('""', q):
        raise NarrowingRefused("q names attributes by their short names only (no IRIs, no prefixes)")
    names = q_attributes(q)
    hidden = {n for n in names if n in grant.removed or (readable is not None and n not in readable)}
    if hidden:
        raise NarrowingRefused(f"q filters on attributes agreement {grant.agreement} does not grant: "
                               f"{', '.join(sorted(hidden))}")


def area_params(grant: Grant, params: Mapping[str, str]) -> dict[str, str]:
    """The geo-query to send: the grant's area, or the request's own when the grant has none."""
    geo = {k: params[k] for k in ("georel", "geometry", "coordinates", "geoproperty") if k in params}
    geoproperty = geo.get("geoproperty")
    if geoproperty is not None and (geoproperty in grant.removed or ":" in geoproperty or (
            grant.attributes is not None and geoproperty not in grant.attributes)):
        raise NarrowingRefused(f"the geo-query's geoproperty is not an attribute agreement {grant.agreement} grants")
    if grant.area is None:
        return geo
    if geo:
        raise NarrowingRefused(f"agreement {grant.agreement} restricts the data to an area; "
                               "a geo-query of your own cannot be combined with it")
    ring = [list(point) for point in grant.area.polygon]
    return {"georel": "within", "geometry": "Polygon", "coordinates": json.dumps([ring], separators=(",", ":"))}


def clamp_window(grant: Grant, start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """A temporal query's [start, end) clamped to the grant's window; refused if they do not meet."""
    if grant.not_before is not None and (start is None or start < grant.not_before):
        start = grant.not_before
    if grant.not_after is not None and (end is None or end > grant.not_after):
        end = grant.not_after
    if start is not None and end is not None and start >= end:
        raise NarrowingRefused(f"the time asked for is outside the window of agreement {grant.agreement}")
    return start, end


def _round(value: Any, decimals: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float | int):
        return round(float(value), decimals)
    if isinstance(value, list):
        return [_round(v, decimals) for v in value]
    if isinstance(value, dict):  # a GeoJSON geometry: its coordinates
        return {k: (_round(v, decimals) if k == "coordinates" else v) for k, v in value.items()}
    return value


def _observed(attribute: Any) -> datetime | None:
    text = attribute.get("observedAt") if isinstance(attribute, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _coarsen(attribute: Any, decimals: int) -> Any:
    if isinstance(attribute, list):  # temporal: instances
        return [_coarsen(a, decimals) for a in attribute]
    if isinstance(attribute, dict):
        out = dict(attribute)
        for key in ("value", "values"):
            if key in out:
                out[key] = _round(out[key], decimals)
        return out
    return _round(attribute, decimals)  # keyValues


def _adapter_terms() -> dict[str, str]:
    """IRI -> term of the adapter's own context (``linkMargin``, ``qualityFlag``, ``wasDerivedFrom``...)."""
    from adapter.ngsild.contexts import ADAPTER_CONTEXT, load_context

    context = load_context(ADAPTER_CONTEXT)["@context"]
    prefixes = {k: v for k, v in context.items() if isinstance(v, str) and v.endswith(("#", "/"))}
    terms = {}
    for term, definition in context.items():
        iri = definition.get("@id") if isinstance(definition, dict) else definition
        if not isinstance(iri, str) or term in prefixes:
            continue
        prefix, _, local = iri.partition(":")
        terms[prefixes[prefix] + local if prefix in prefixes else iri] = term
    return terms


_ADAPTER_TERMS: dict[str, str] | None = None


def filter_entity(entity: Mapping[str, Any], grant: Grant, readable: frozenset[str] | None) -> dict[str, Any] | None:
    """The entity as the grant lets it be seen (None when nothing granted remains).

    ``readable``: the attributes asked for and granted (None: every attribute the grant allows).
    The broker is read with the type's Smart Data Models context, so the adapter's own terms
    (``linkMargin``, ``wasDerivedFrom``...) come back as IRIs: they get their short names first.
    """
    global _ADAPTER_TERMS
    if _ADAPTER_TERMS is None:
        _ADAPTER_TERMS = _adapter_terms()
    coarsened = dict(grant.coarsened)
    out: dict[str, Any] = {}
    kept = 0
    for iri, attribute in entity.items():
        name = _ADAPTER_TERMS.get(iri, iri)
        if name in ALWAYS_KEPT:
            out[name] = attribute
            continue
        if name in grant.removed or (readable is not None and name not in readable):
            continue
        if grant.attributes is not None and name not in grant.attributes:
            continue
        if ":" in name:  # not compacted by the type's context: unknown to the grant
            continue
        if (grant.not_before or grant.not_after) and isinstance(attribute, dict):
            observed = _observed(attribute)
            if observed is not None and (
                (grant.not_before and observed < grant.not_before) or (grant.not_after and observed >= grant.not_after)
            ):
                continue
        out[name] = _coarsen(attribute, coarsened[name]) if name in coarsened else attribute
        kept += 1
    return out if kept else None


_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
_METHODS: dict[str, Callable[[list[float]], float]] = {"avg": fmean, "min": min, "max": max, "sum": sum}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes and seconds (``P1D``, ``PT15M``)."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not an ISO 8601 duration of weeks, days, hours, minutes or seconds")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    period = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if period <= timedelta(0):
        raise ValueError(f"{text!r} is not a positive duration")
    return period


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def aggregate_across(
    entities: Sequence[Mapping[str, Any]], attributes: Iterable[str], aggregation: Aggregation, *,
    tenant: str, entity_type: str,
) -> dict[str, Any]:
    """One indicator per attribute and period, over every sensor: never a single sensor's value.

    ``entities`` are temporal entities (``temporalValues``: ``{"values": [[value, time], ...]}``
    or normalized instances). A period's value is ``aggregation.method`` over every numeric
    value of every entity in it, and is given only when at least ``min_group_size`` distinct
    entities contributed; ``sensors`` gives that count. Periods start at multiples of the
    period since 1970-01-01T00:00Z.
    """
    period = parse_duration(aggregation.period)
    method = _METHODS[aggregation.method]
    out: dict[str, Any] = {"id": f"urn:ngsild-adapter:aggregate:{tenant}:{entity_type}", "type": entity_type}
    for name in sorted(set(attributes)):
        buckets: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for entity in entities:
            for value, moment in _points(entity.get(name)):
                bucket = (moment - _EPOCH) // period
                buckets[bucket][str(entity.get("id"))].append(value)
        series, counts = [], []
        for bucket in sorted(buckets):
            sensors = buckets[bucket]
            if len(sensors) < aggregation.min_group_size:
                continue  # too few sensors: the aggregate would tell about one of them
            start = _EPOCH + bucket * period
            window = [_iso(start), _iso(start + period)]
            series.append([method([v for values in sensors.values() for v in values]), *window])
            counts.append([len(sensors), *window])
        out[name] = {"type": "Property", aggregation.method: series, "sensors": counts}
    return out


def _points(attribute: Any) -> Iterable[tuple[float, datetime]]:
    """(value, observedAt) of every numeric instance of a temporal attribute."""
    if isinstance(attribute, dict) and "values" in attribute:
        pairs = attribute["values"]
    elif isinstance(attribute, list):
        pairs = [[a.get("value"), a.get("observedAt")] for a in attribute if isinstance(a, dict)]
    elif isinstance(attribute, dict):
        pairs = [[attribute.get("value"), attribute.get("observedAt")]]
    else:
        return
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) < 2:
            continue
        value, moment = pair[0], pair[1]
        if isinstance(value, bool) or not isinstance(value, int | float) or not isinstance(moment, str):
            continue
        try:
            yield float(value), datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            continue
