"""The one decision: (principal, typed request, agreements) -> a refusal naming the rule, or the
request narrowed to what an agreement grants.

Every partner request goes through ``decide``: queries of current entities, of their history,
subscriptions (and again each notification), the provenance of a value, whole records, SPARQL
and the access log. The narrowing rules live here once, so that the same question asked two
ways (a GET by id, a query by type, a POST of a query, a subscription) meets the same rules:

* **Attributes.** What a grant lets through of a type is its *visible* attributes (listed,
  less removed; ``adapter.access.policies.visible_attributes`` over the catalogue of the device
  profiles). An attribute is *raw* when visible and not coarsened. Every attribute a request
  names must be visible (``attrs``, ``pick``, ``omit``, the notified attributes), and every one it
  *filters or triggers on* must be raw (``q`` wherever it names it, ``watchedAttributes``,
  ``geoproperty``): a filter on a coarsened or hidden value answers yes or no about it. The
  request is refused otherwise, never silently widened or narrowed behind the partner's back.
  What goes to the broker is always an explicit attribute list.
* **Geo.** Any geo-query, whatever its georel or geoproperty, is refused when ``location`` is
  not raw: it would place a device whose location the agreement removes or coarsens. Under a
  grant with an area, the area *is* the geo-query; a partner's own geo-query is refused.
* **Time window.** A grant limited to a window of observation times cannot let a ``q`` or a
  geo-query through (they would test current values and places, observed outside the window),
  nor a ``timeproperty`` other than ``observedAt`` (``modifiedAt``/``createdAt`` do not bound
  observations), nor counts or system attributes (they tell about entities and changes outside
  it). Temporal queries are clamped to the window, and the answer filter drops every value and
  instance observed outside it.
* **Area.** The area is the broker's geo-query; the answer filter checks every location again
  (the gateway asks for ``location`` for that, and leaves it out unless asked), so that a sensor
  that was ever outside is left out of history answers. Counts are not offered under an area.
* **Subscriptions** watch only what they may see uncoarsened (the notified raw attributes when
  the partner names none: NGSI-LD's default, every attribute, would tell when a withheld one
  changed), and last ``SUBSCRIPTION_LIFETIME`` at most, so that a principal whose roles were
  removed stops receiving notifications when it cannot renew them.
* **Aggregated grants** answer temporal queries by type with the agreement's published cells
  only (``CellQuery``; ``adapter.access.cells``): nothing that chooses members (``q``, ids, an id
  pattern, a geo-query, ``lastN``, paging) and no single entity.

The result carries the ``AccessRequest`` and the ``Grant`` it was decided under (for the access
log), and the ``AnswerRules`` the gateway applies again to whatever the broker returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from adapter.access.model import AccessRequest, Action, Aggregation, Area, Decision, Grant, Principal, SparqlDataset
from adapter.access.policies import observation_window, personal_graph_of, visible_attributes
from adapter.access.requests import (
    AccessLogRequest,
    EntityFormat,
    EntityQuery,
    GeoQuery,
    PartnerRequest,
    Projection,
    RecordRequest,
    Selection,
    SparqlRequest,
    SubscriptionRequest,
    TemporalQuery,
    TimeQuery,
    ValueProvenanceRequest,
)

__all__ = [
    "AccessLogDecision",
    "AnswerRules",
    "CellQuery",
    "Narrowed",
    "NarrowedEntityQuery",
    "NarrowedSubscription",
    "NarrowedTemporalQuery",
    "Policies",
    "RECORD_REFUSAL",
    "SUBSCRIPTION_LIFETIME",
    "RecordDecision",
    "Refusal",
    "SparqlDecision",
    "ValueProvenanceDecision",
    "decide",
]

#: the attribute a geo-query is about unless it names another (NGSI-LD's default geoproperty)
LOCATION = "location"

RECORD_REFUSAL = (
    "a whole provenance record holds every value of its uplink and the device's names: it is for principals "
    "whose agreements open the collectivity's personal graph; ask for the lineage or the verification of a "
    "value you may read (/provenance/{tenant}/lineage or /verify)"
)


class Policies(Protocol):
    """What the decision needs of the agreements in force (``PolicySet`` and its reloading
    wrapper): the grants of a request, the SPARQL dataset of a principal, the attributes of
    each entity type, and the configured collectivities."""

    @property
    def tenants(self) -> frozenset[str]: ...

    def decide(self, principal: Principal, request: AccessRequest, *, now: datetime) -> Decision: ...

    def sparql_dataset(self, principal: Principal, *, purpose: str | None = None) -> SparqlDataset: ...

    def attributes(self, entity_type: str) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Denied: ``reason`` names the rule (never data). ``access`` is what was asked (None when
    the request named no collectivity's data)."""

    reason: str
    access: AccessRequest | None = None


@dataclass(frozen=True, slots=True)
class AnswerRules:
    """What may leave in an answer, applied to every entity the broker returns.

    ``attributes``: the short names allowed (the narrowed request asked for these only);
    ``coarsened``: name -> decimals kept; ``not_before``/``not_after``: values and instances
    observed outside are dropped; ``area``: an entity not located inside (its location missing
    included) is dropped.
    """

    attributes: frozenset[str]
    coarsened: Mapping[str, int]
    not_before: datetime | None = None
    not_after: datetime | None = None
    area: Area | None = None

    @property
    def checks(self) -> frozenset[str]:
        """Attributes the gateway asks for its own checks, and leaves out of the answer unless
        asked: the location, which places every entity answered under an area."""
        return frozenset({LOCATION}) if self.area is not None else frozenset()

    def observed_inside(self, moment: datetime) -> bool:
        return not (
            (self.not_before is not None and moment < self.not_before)
            or (self.not_after is not None and moment >= self.not_after)
        )

    @property
    def windowed(self) -> bool:
        return self.not_before is not None or self.not_after is not None


@dataclass(frozen=True, slots=True)
class NarrowedEntityQuery:
    request: EntityQuery
    rules: AnswerRules
    access: AccessRequest
    grant: Grant


@dataclass(frozen=True, slots=True)
class NarrowedTemporalQuery:
    request: TemporalQuery
    rules: AnswerRules
    access: AccessRequest
    grant: Grant


@dataclass(frozen=True, slots=True)
class CellQuery:
    """An aggregated grant's answer: the published cells of ``attributes`` for the whole
    periods inside ``[start, end)``, as the agreement's ``aggregation`` defines them."""

    tenant: str
    entity_type: str
    attributes: frozenset[str]
    start: datetime | None
    end: datetime | None
    aggregation: Aggregation
    area: Area | None
    access: AccessRequest
    grant: Grant


@dataclass(frozen=True, slots=True)
class NarrowedSubscription:
    request: SubscriptionRequest
    rules: AnswerRules
    access: AccessRequest
    grant: Grant


@dataclass(frozen=True, slots=True)
class ValueProvenanceDecision:
    """The provenance of one value may be given. ``area_check``: under a grant with an area,
    the query that must find the entity inside it first; ``personal``: whether the lineage may
    keep the device's names at the network server."""

    request: ValueProvenanceRequest
    area_check: NarrowedEntityQuery | None
    personal: bool
    access: AccessRequest
    grant: Grant


@dataclass(frozen=True, slots=True)
class RecordDecision:
    request: RecordRequest
    access: AccessRequest
    agreements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SparqlDecision:
    """The graphs the query runs over (the store enforces them) and whose they are."""

    request: SparqlRequest
    graphs: tuple[str, ...]
    tenants: tuple[str, ...]
    agreements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AccessLogDecision:
    request: AccessLogRequest


Narrowed = (
    NarrowedEntityQuery
    | NarrowedTemporalQuery
    | CellQuery
    | NarrowedSubscription
    | ValueProvenanceDecision
    | RecordDecision
    | SparqlDecision
    | AccessLogDecision
)


class _Refused(Exception):
    """One grant cannot answer the request: why (the next grant may)."""


def decide(principal: Principal, request: PartnerRequest, policies: Policies, *, now: datetime) -> Narrowed | Refusal:
    """The request narrowed to the first grant (best first) that can answer it, or a refusal
    naming the rule of the best grant (or why no agreement applies)."""
    if isinstance(request, EntityQuery):
        access = AccessRequest(Action.READ, request.selection.tenant, request.selection.entity_type, request.purpose)
        return _under_grants(principal, access, policies, now, lambda g: _entity_query(request, g, access, policies))
    if isinstance(request, TemporalQuery):
        access = AccessRequest(
            Action.QUERY_HISTORY, request.selection.tenant, request.selection.entity_type, request.purpose
        )
        return _under_grants(principal, access, policies, now, lambda g: _temporal_query(request, g, access, policies))
    if isinstance(request, SubscriptionRequest):
        access = AccessRequest(
            Action.SUBSCRIBE, request.selection.tenant, request.selection.entity_type, request.purpose
        )
        return _under_grants(
            principal, access, policies, now, lambda g: _subscription(request, g, access, policies, now)
        )
    if isinstance(request, ValueProvenanceRequest):
        return _value_provenance(principal, request, policies, now)
    if isinstance(request, RecordRequest):
        access = AccessRequest(Action.SPARQL_QUERY, request.tenant, "provenance-record", request.purpose)
        dataset = policies.sparql_dataset(principal, purpose=request.purpose)
        if personal_graph_of(request.tenant) not in dataset.graphs:
            return Refusal(RECORD_REFUSAL, access)
        return RecordDecision(request, access, dataset.agreements)
    if isinstance(request, SparqlRequest):
        return _sparql(principal, request, policies)
    if isinstance(request, AccessLogRequest):
        if principal.organization != request.tenant or "data-admin" not in principal.roles:
            return Refusal("the access log of a collectivity is for its own data-admin role")
        return AccessLogDecision(request)
    raise TypeError(f"no decision for {type(request).__name__}: logs are public and need none")


def _under_grants(
    principal: Principal, access: AccessRequest, policies: Policies, now: datetime, narrow: _Narrowing
) -> Narrowed | Refusal:
    decision = policies.decide(principal, access, now=now)
    if not decision.permitted or not decision.grants:
        return Refusal(decision.reason or "no agreement grants this", access)
    first: str | None = None
    for grant in decision.grants:
        try:
            return narrow(grant)
        except _Refused as refused:
            first = first or str(refused)
    assert first is not None
    return Refusal(first, access)


class _Narrowing(Protocol):
    def __call__(self, grant: Grant, /) -> Narrowed: ...


# -- the rules, once ---------------------------------------------------------------------------


def _visible(grant: Grant, policies: Policies, entity_type: str) -> frozenset[str]:
    return visible_attributes(grant, policies.attributes(entity_type))


def _raw(grant: Grant, visible: frozenset[str]) -> frozenset[str]:
    return visible - {name for name, _ in grant.coarsened}


def _windowed(grant: Grant) -> bool:
    return grant.not_before is not None or grant.not_after is not None


def _names(names: Set[str]) -> str:
    return ", ".join(sorted(names))


def _require(names: Set[str], allowed: frozenset[str], grant: Grant, what: str) -> None:
    outside = set(names) - allowed
    if outside:
        raise _Refused(
            f"{what} {_names(outside)}: agreement {grant.agreement} does not grant "
            f"{'it' if len(outside) == 1 else 'them'}"
        )


def _rules(grant: Grant, attributes: frozenset[str]) -> AnswerRules:
    return AnswerRules(attributes, dict(grant.coarsened), grant.not_before, grant.not_after, grant.area)


def _area_query(area: Area) -> GeoQuery:
    ring = tuple(tuple(point) for point in area.polygon)
    return GeoQuery("within", "Polygon", (ring,), LOCATION)


def _selection(selection: Selection, grant: Grant, raw: frozenset[str]) -> Selection:
    """The selection under ``grant``: q and geo checked, the grant's area as the geo-query."""
    if selection.q is not None:
        if _windowed(grant):
            raise _Refused(
                f"agreement {grant.agreement} covers observations "
                f"{observation_window(grant.not_before, grant.not_after)} only: a q would test values "
                "observed outside it, so q is not offered under it"
            )
        _require(selection.q_attributes, raw, grant, "q filters on")
    geo = selection.geo
    if geo is not None:
        if _windowed(grant):
            raise _Refused(
                f"agreement {grant.agreement} covers observations "
                f"{observation_window(grant.not_before, grant.not_after)} only: a geo-query would place "
                "entities by where they are now"
            )
        if LOCATION not in raw:
            raise _Refused(
                f"agreement {grant.agreement} removes or coarsens location: no geo-query is answered under it"
            )
        _require({geo.geoproperty}, raw, grant, "the geo-query is about")
        if grant.area is not None:
            raise _Refused(
                f"agreement {grant.agreement} restricts the data to an area; a geo-query of your own "
                "cannot be combined with it"
            )
    if grant.area is not None:
        geo = _area_query(grant.area)
    return replace(selection, geo=geo)


def _projection(projection: Projection, grant: Grant, visible: frozenset[str]) -> Projection:
    _require(projection.named, visible, grant, "the request names")
    if _windowed(grant) and projection.sys_attrs:
        raise _Refused(
            f"agreement {grant.agreement} limits the data to a time window: system attributes "
            "(createdAt, modifiedAt) would tell about changes outside it"
        )
    attributes = (projection.attrs if projection.attrs is not None else visible) - projection.omit
    if not attributes:
        raise _Refused("the request leaves no attribute to return")
    return replace(projection, attrs=frozenset(attributes), omit=frozenset())


def _no_count_under_window(count: bool, grant: Grant) -> None:
    """A count is the broker's: offered only where it counts exactly what may be seen."""
    if count and _windowed(grant):
        raise _Refused(
            f"agreement {grant.agreement} limits the data to a time window: a count would include "
            "entities observed only outside it"
        )
    if count and grant.area is not None:
        raise _Refused(
            f"agreement {grant.agreement} restricts the data to an area: a count would include "
            "entities whose location cannot be checked"
        )


def _entity_query(request: EntityQuery, grant: Grant, access: AccessRequest, policies: Policies) -> NarrowedEntityQuery:
    if grant.aggregation is not None:
        raise _Refused(
            f"agreement {grant.agreement} grants aggregated indicators only: "
            "GET /ngsi-ld/v1/temporal/entities?type=... answers its published cells"
        )
    visible = _visible(grant, policies, access.entity_type)
    selection = _selection(request.selection, grant, _raw(grant, visible))
    projection = _projection(request.projection, grant, visible)
    _no_count_under_window(request.page.count, grant)
    narrowed = replace(request, selection=selection, projection=projection)
    return NarrowedEntityQuery(narrowed, _rules(grant, projection.attrs or frozenset()), access, grant)


def clamp_window(grant: Grant, start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """A temporal query's [start, end) clamped to the grant's window; refused if they do not meet."""
    if grant.not_before is not None and (start is None or start < grant.not_before):
        start = grant.not_before
    if grant.not_after is not None and (end is None or end > grant.not_after):
        end = grant.not_after
    if start is not None and end is not None and start >= end:
        raise _Refused(f"the time asked for is outside the window of agreement {grant.agreement}")
    return start, end


def _time(time: TimeQuery | None, grant: Grant) -> TimeQuery | None:
    if time is not None and time.timeproperty != "observedAt":
        raise _Refused(
            f"the agreements speak of observation times: timeproperty={time.timeproperty} is not "
            "offered (ask by observedAt)"
        )
    start, end = clamp_window(grant, time.start if time else None, time.end if time else None)
    if start is not None and end is not None:
        return TimeQuery("between", start, end)
    if start is not None:
        return TimeQuery("after", start)
    if end is not None:
        return TimeQuery("before", end)
    return None


def _temporal_query(
    request: TemporalQuery, grant: Grant, access: AccessRequest, policies: Policies
) -> NarrowedTemporalQuery | CellQuery:
    visible = _visible(grant, policies, access.entity_type)
    if grant.aggregation is not None:
        return _cells(request, grant, access, visible)
    raw = _raw(grant, visible)
    selection = _selection(request.selection, grant, raw)
    projection = _projection(request.projection, grant, visible)
    if request.aggregation is not None:
        if _windowed(grant):
            raise _Refused(
                f"agreement {grant.agreement} limits the data to a time window: the broker's periods "
                "could not be checked against it; ask for the instances"
            )
        _require(projection.attrs or frozenset(), raw, grant, "the broker's aggregation would be over exact values of")
    _no_count_under_window(request.page.count, grant)
    narrowed = replace(request, selection=selection, projection=projection, time=_time(request.time, grant))
    return NarrowedTemporalQuery(narrowed, _rules(grant, projection.attrs or frozenset()), access, grant)


def _cells(request: TemporalQuery, grant: Grant, access: AccessRequest, visible: frozenset[str]) -> CellQuery:
    assert grant.aggregation is not None
    who = f"agreement {grant.agreement} grants aggregated indicators only"
    if request.single:
        raise _Refused(
            f"{who}, never one sensor's history: GET /ngsi-ld/v1/temporal/entities?type=... answers its published cells"
        )
    selection, page = request.selection, request.page
    choosers = [
        name
        for name, used in (
            ("q", selection.q is not None),
            ("id", bool(selection.ids)),
            ("idPattern", selection.id_pattern is not None),
            ("a geo-query", selection.geo is not None),
            ("lastN", request.last_n is not None),
            ("aggrMethods", request.aggregation is not None),
            ("limit/offset", page.offset != 0 or page.limit != 20),
            ("count", page.count),
            ("options=sysAttrs", request.projection.sys_attrs),
        )
        if used
    ]
    if choosers:
        raise _Refused(
            f"{who}: its cells (the groups of sensors and periods the agreement defines) are answered "
            f"whole, so {', '.join(choosers)} cannot choose among them"
        )
    if request.projection.format not in (EntityFormat.NORMALIZED, EntityFormat.TEMPORAL_VALUES):
        raise _Refused(f"{who}: cells are answered in the aggregated temporal representation only")
    projection = _projection(request.projection, grant, visible)
    time = request.time
    if time is not None and time.timeproperty != "observedAt":
        raise _Refused(f"{who}: cells are periods of observation time (timeproperty=observedAt)")
    start, end = clamp_window(grant, time.start if time else None, time.end if time else None)
    return CellQuery(
        access.tenant,
        access.entity_type,
        projection.attrs or frozenset(),
        start,
        end,
        grant.aggregation,
        grant.area,
        access,
        grant,
    )


#: the longest a subscription lasts: renewed with a fresh token, so that a principal whose
#: roles or account were removed since stops receiving notifications
SUBSCRIPTION_LIFETIME = timedelta(days=30)


def _subscription(
    request: SubscriptionRequest, grant: Grant, access: AccessRequest, policies: Policies, now: datetime
) -> NarrowedSubscription:
    if grant.aggregation is not None:
        raise _Refused(
            f"agreement {grant.agreement} grants aggregated indicators only: no notifications of single sensors"
        )
    visible = _visible(grant, policies, access.entity_type)
    raw = _raw(grant, visible)
    selection = _selection(request.selection, grant, raw)
    projection = _projection(Projection(attrs=request.attributes), grant, visible)
    if request.watched is not None:
        _require(request.watched, raw, grant, "watchedAttributes names")
        watched = request.watched
    else:  # NGSI-LD's default, every attribute, would notify changes of withheld ones
        watched = (projection.attrs or frozenset()) & raw
        if not watched:
            raise _Refused(
                f"agreement {grant.agreement} lets no notified attribute through uncoarsened: name the "
                "watchedAttributes (raw ones)"
            )
    if request.expires_at is not None and request.expires_at <= now:
        raise _Refused("the subscription has expired (expiresAt)")
    latest = now + SUBSCRIPTION_LIFETIME
    expires = latest if request.expires_at is None or request.expires_at > latest else request.expires_at
    narrowed = replace(
        request, selection=selection, attributes=projection.attrs, watched=frozenset(watched), expires_at=expires
    )
    return NarrowedSubscription(narrowed, _rules(grant, projection.attrs or frozenset()), access, grant)


def value_refusal(grant: Grant, attribute: str, observed_at: datetime, visible: frozenset[str]) -> str | None:
    """Why ``grant`` does not let its holder see the provenance of one value (None: it does)."""
    if grant.aggregation is not None:
        return (
            f"agreement {grant.agreement} grants aggregated indicators only: the provenance of one value "
            "shows that sensor's value"
        )
    if attribute not in visible:
        return f"agreement {grant.agreement} does not grant attribute {attribute}"
    if attribute in dict(grant.coarsened):
        return f"agreement {grant.agreement} coarsens {attribute}: its provenance would show the exact value"
    if (grant.not_before is not None and observed_at < grant.not_before) or (
        grant.not_after is not None and observed_at >= grant.not_after
    ):
        window = observation_window(grant.not_before, grant.not_after)
        return f"agreement {grant.agreement} covers observations {window} only"
    return None


def _value_provenance(
    principal: Principal, request: ValueProvenanceRequest, policies: Policies, now: datetime
) -> ValueProvenanceDecision | Refusal:
    """A raw ``read`` grant, else a raw ``queryHistory`` one, that lets this value through; else
    the refusal of the best grant that applies (or why none does)."""
    by_grant: Refusal | None = None
    no_grant: Refusal | None = None
    for action in (Action.READ, Action.QUERY_HISTORY):
        access = AccessRequest(action, request.tenant, request.entity_type, request.purpose)
        decision = policies.decide(principal, access, now=now)
        if not decision.permitted:
            no_grant = no_grant or Refusal(decision.reason or "no agreement grants this", access)
            continue
        for grant in decision.grants:
            visible = _visible(grant, policies, request.entity_type)
            why = value_refusal(grant, request.attribute, request.observed_at, visible)
            if why is not None:
                by_grant = by_grant or Refusal(why, access)
                continue
            check = None
            if grant.area is not None:  # outside the area is "not found", as for the entity itself
                query = EntityQuery(
                    Selection(request.tenant, request.entity_type, ids=(request.entity_id,)),
                    Projection(attrs=frozenset({request.attribute})),
                    single=True,
                    purpose=request.purpose,
                )
                check = _entity_query(query, grant, access, policies)
            dataset = policies.sparql_dataset(principal, purpose=request.purpose)
            return ValueProvenanceDecision(
                request, check, personal_graph_of(request.tenant) in dataset.graphs, access, grant
            )
    refusal = by_grant or no_grant
    assert refusal is not None
    return refusal


def _sparql(principal: Principal, request: SparqlRequest, policies: Policies) -> SparqlDecision | Refusal:
    dataset = policies.sparql_dataset(principal, purpose=request.purpose)
    asked = set(request.graphs)
    graphs = tuple(g for g in dataset.graphs if g in asked) if asked else dataset.graphs  # narrowing only
    if not graphs:
        why = "; ".join(dataset.refusals) or "no agreement opens a graph to SPARQL queries for you"
        if dataset.graphs:
            why = "none of the graphs the request names (default-graph-uri, named-graph-uri) is open to you"
        return Refusal(why)
    return SparqlDecision(request, graphs, SparqlDataset(graphs).tenants, dataset.agreements)
