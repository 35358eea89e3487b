"""The gateway's HTTP edge: every partner request parsed into the typed request model.

Each function takes what aiohttp received and returns one request of ``adapter.access.requests``,
or raises ``BadRequest`` naming the parameter, member or header that is wrong. What the model
does not know is refused here (400), never passed on: a query parameter no route lists, a second
value of a parameter, a subscription member the gateway does not offer, a ``Link`` context that
is not the type's, a tenant that is not one of the configured collectivities. After this, the
gateway never looks at the client's strings again: the decision takes the typed request, and the
broker request is built from the decision.

Names are short names only (``no2``, not an IRI nor a prefixed name): agreements name attributes
by their short names in the type's Smart Data Models context, and a client's own context or an
IRI could give a granted name to another attribute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from multidict import MultiMapping

from adapter.access.requests import (
    AccessLogRequest,
    BrokerAggregation,
    EntityFormat,
    EntityQuery,
    GeoQuery,
    LogRequest,
    Page,
    Projection,
    RecordRequest,
    Selection,
    SparqlRequest,
    SubscriptionRequest,
    TemporalQuery,
    TimeQuery,
    ValueProvenanceRequest,
)
from adapter.gateway import acceptable, negotiate
from adapter.ngsild.geojson import geometry_problem
from adapter.ngsild.qlang import (
    PATTERN_OPERATORS,
    And,
    Comparison,
    Expr,
    Or,
    QuerySyntaxError,
    String,
    parse_q,
)
from adapter.provenance.integrity.tiles import InvalidTilePath, parse_path

__all__ = [
    "BadRequest",
    "access_log_request",
    "Headers",
    "MAX_BODY_BYTES",
    "NotAcceptable",
    "SPARQL_MEDIA_TYPES",
    "entity_query",
    "entity_query_body",
    "entity_retrieval",
    "entity_type_of",
    "json_body",
    "log_request",
    "no_parameters",
    "patterns_of",
    "record_request",
    "safe_pattern",
    "sparql_request",
    "subscription_from",
    "subscription_id",
    "subscription_request",
    "temporal_query",
    "temporal_retrieval",
    "value_provenance_request",
]

#: the largest body the gateway reads from a partner (subscriptions, queries, SPARQL)
MAX_BODY_BYTES = 64 * 1024
_MAX_DEPTH = 16
_MAX_IDS = 100
_MAX_LIMIT = 1000
_MAX_OFFSET = 1_000_000
_MAX_LAST_N = 10_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
# An absolute URI of printable ASCII, without a comma (the broker reads a comma as a list of ids)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[!#-+\--;=?-\[\]_a-z~]{1,250}\Z")
_PURPOSE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}\Z")
_TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}\Z")
_EUI = re.compile(r"[0-9a-fA-F]{16}\Z")
_NUMBER = re.compile(r"(?:0|[1-9][0-9]{0,15})\Z")
#: the instants a request may name (sensors' data lies far inside; no arithmetic overflows near them)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"P(?!\Z)(?:\d{1,4}Y)?(?:\d{1,4}M)?(?:\d{1,4}W)?(?:\d{1,4}D)?(?:T(?=\d)(?:\d{1,4}H)?(?:\d{1,4}M)?"
                       r"(?:\d{1,6}(?:\.\d{1,3})?S)?)?\Z")
_DISTANCE = re.compile(r"(maxDistance|minDistance)==(\d{1,9}(?:\.\d{1,6})?)\Z")
_GEORELS = frozenset({"near", "within", "contains", "intersects", "equals", "disjoint", "overlaps"})
_TIMERELS = frozenset({"before", "after", "between"})
_TIMEPROPERTIES = frozenset({"observedAt", "createdAt", "modifiedAt", "deletedAt"})
_AGGREGATION_METHODS = frozenset({"totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq"})
_LINK_REL = "http://www.w3.org/ns/json-ld#context"
_CORE_CONTEXTS = ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context",)

#: the result formats of the adapter's SPARQL endpoint, in order of preference for */*
SPARQL_MEDIA_TYPES = (
    "application/sparql-results+json", "application/sparql-results+xml", "text/csv", "text/tab-separated-values",
    "text/turtle", "application/n-triples", "application/ld+json",
)

_SELECTION = ("type", "id", "idPattern", "q", "georel", "geometry", "coordinates", "geoproperty")
_PROJECTION = ("attrs", "pick", "omit", "options", "format")
_PAGE = ("limit", "offset", "count")
_TIME = ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods", "aggrPeriodDuration")


class BadRequest(Exception):
    """A request the model cannot hold: ``parameter`` names what is wrong (a query parameter, a
    body member such as ``notification.endpoint.uri``, or a header), ``reason`` says why."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


class NotAcceptable(BadRequest):
    """The ``Accept`` header names no format the gateway answers in (406)."""


class Headers:
    """The request headers the gateway reads, each at most once.

    ``tenants`` are the configured collectivities: ``NGSILD-Tenant`` must be one of them,
    exactly (a tenant the gateway does not know never reaches a decision or a log).
    """

    def __init__(self, headers: MultiMapping[str], tenants: frozenset[str]) -> None:
        self._headers = headers
        self._tenants = tenants

    def one(self, name: str) -> str | None:
        values = self._headers.getall(name, [])
        if len(values) > 1:
            raise BadRequest(name, "give this header once")
        return values[0] if values else None

    def tenant(self) -> str:
        value = self.one("NGSILD-Tenant")
        if value is None:
            raise BadRequest("NGSILD-Tenant", "required: it names the collectivity whose data is asked for")
        return self.known_tenant(value, "NGSILD-Tenant")

    def known_tenant(self, value: str, where: str) -> str:
        if not _TENANT.match(value) or value not in self._tenants:
            raise BadRequest(where, "not a collectivity of this gateway")
        return value

    def purpose(self) -> str | None:
        value = self.one("NGSILD-Purpose")
        if value is not None and not _PURPOSE.match(value):
            raise BadRequest("NGSILD-Purpose", "a purpose is a short token (letters, digits, . _ : / # -)")
        return value

    def check_link(self, context: str) -> None:
        """A ``Link`` context, if any, must be the type's own (or the core context): another
        context could map a granted short name onto another attribute's IRI."""
        value = self.one("Link")
        if value is None:
            return
        match = re.fullmatch(r'\s*<([^<>\s]+)>\s*((?:;\s*[A-Za-z]+\s*=\s*"[^"]*"\s*)*)', value)
        if match is None:
            raise BadRequest("Link", "one JSON-LD context link is expected: <url>; rel=\"" + _LINK_REL + "\"")
        url, attributes = match.group(1), dict(re.findall(r';\s*([A-Za-z]+)\s*=\s*"([^"]*)"', match.group(2)))
        if attributes.get("rel") != _LINK_REL:
            raise BadRequest("Link", f'the link must have rel="{_LINK_REL}"')
        if url != context and not url.startswith(_CORE_CONTEXTS):
            raise BadRequest("Link", f"the gateway reads this type with its Smart Data Models context {context}; "
                                     "send that one, or none")

    def json_accept(self) -> str:
        """``application/json`` or ``application/ld+json``, as NGSI-LD answers them."""
        chosen = negotiate(self.one("Accept") or "", ("application/json", "application/ld+json"))
        if chosen is None:
            raise NotAcceptable("Accept", "the gateway answers application/json or application/ld+json")
        return chosen

    def sparql_accept(self) -> str:
        """The result formats the client takes, best first, as an ``Accept`` header the gateway
        writes (the endpoint picks the first its query form has)."""
        taken = acceptable(self.one("Accept") or "", SPARQL_MEDIA_TYPES)
        if not taken:
            raise NotAcceptable("Accept", f"the SPARQL endpoint answers {', '.join(SPARQL_MEDIA_TYPES)}")
        return ", ".join(f"{kind};q={1 - position / 10:.1f}" for position, kind in enumerate(taken))


class _Params:
    """A request's query parameters, each at most once, only those the route lists."""

    def __init__(self, query: MultiMapping[str], allowed: Iterable[str]) -> None:
        allowed = frozenset(allowed)
        for name in query:
            if name not in allowed:
                raise BadRequest(name, f"unknown parameter here (known: {', '.join(sorted(allowed)) or 'none'})")
            if len(query.getall(name)) > 1:
                raise BadRequest(name, "give this parameter once")
        self._query = query

    def get(self, name: str) -> str | None:
        return self._query.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._query


# -- values ---------------------------------------------------------------------------------

def _name(value: str, where: str) -> str:
    if not _NAME.match(value):
        raise BadRequest(where, f"{value[:60]!r} is not an attribute short name (letters, digits, _)")
    return value


def _names(value: str | None, where: str, *, drop: Iterable[str] = ()) -> frozenset[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",")]
    if len(items) > 256 or any(not item for item in items):
        raise BadRequest(where, "a comma-separated list of attribute short names")
    skipped = frozenset(drop)
    return frozenset(_name(item, where) for item in items if item not in skipped)


def _name_list(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not value or len(value) > 256 or not all(isinstance(v, str) for v in value):
        raise BadRequest(where, "a non-empty array of attribute short names")
    return frozenset(_name(v, where) for v in value)


def entity_type_of(entity_id: str) -> str | None:
    """``urn:ngsi-ld:<Type>:...`` -> ``Type`` (the convention of the Smart Data Models ids)."""
    parts = entity_id.split(":")
    if len(parts) >= 4 and parts[0] == "urn" and parts[1] == "ngsi-ld" and _NAME.match(parts[2]):
        return parts[2]
    return None


def _entity_id(value: str, where: str) -> str:
    if not _URI.match(value):
        raise BadRequest(where, "an entity id is an absolute URI")
    return value


def _entity_type(value: str | None, where: str = "type") -> str:
    if value is None:
        raise BadRequest(where, "required: one entity type (it is what the agreements are about)")
    if not _NAME.match(value):
        raise BadRequest(where, "one entity type, by its short name (no list, no IRI)")
    return value


def _integer(value: str | None, where: str, *, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not _NUMBER.match(value) or not low <= int(value) <= high:
        raise BadRequest(where, f"a whole number from {low} to {high}")
    return int(value)


def _boolean(value: str | None, where: str) -> bool:
    if value is None:
        return False
    if value not in ("true", "false"):
        raise BadRequest(where, "true or false")
    return value == "true"


def _datetime(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise BadRequest(where, "an ISO 8601 date-time with a time zone")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(where, "an ISO 8601 date-time with a time zone") from None
    if moment.tzinfo is None:
        raise BadRequest(where, "an ISO 8601 date-time with a time zone")
    try:
        instant = moment.astimezone(UTC)
    except OverflowError:
        instant = None
    if instant is None or not _EARLIEST <= instant <= _LATEST:
        raise BadRequest(where, f"a date-time from {_EARLIEST.year} to {_LATEST.year}")
    return moment


# A regular expression in the subset every broker runs in bounded time: literal characters
# (punctuation escaped), one-character classes, "." with or without one quantifier, anchors; no
# group, alternation, repetition count or back-reference (the constructs that make a pattern
# backtrack exponentially, at the broker), and at most two quantifiers (polynomial of degree two).
_PATTERN_TOKEN = re.compile(r"\\[^A-Za-z0-9]|\[\^?(?:\\.|[^\\\]])+\]|\.[*+?]?|[^\\()[\]{}|*+?.^$]")
_MAX_QUANTIFIERS = 2


def safe_pattern(text: str) -> str | None:
    """Why ``text`` is not a pattern of the bounded subset (None when it is one)."""
    body = text[1:] if text.startswith("^") else text
    body = body[:-1] if body.endswith("$") and not body.endswith("\\$") else body
    position = quantifiers = 0
    while position < len(body):
        match = _PATTERN_TOKEN.match(body, position)
        if match is None:
            return (f"{body[position]!r} at position {position} is outside the patterns offered (literal characters, "
                    "[classes], '.', '.*', '.+', '.?', '^' and '$'; no groups, alternation or counts)")
        quantifiers += match.group().startswith(".") and len(match.group()) == 2
        position = match.end()
    if quantifiers > _MAX_QUANTIFIERS:
        return f"at most {_MAX_QUANTIFIERS} of '.*', '.+' or '.?'"
    return None


def patterns_of(expr: Expr) -> list[str]:
    """The regular expressions of a q's pattern comparisons (``~=``, ``!~=``)."""
    found: list[str] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, And | Or):
            stack.extend(node.terms)
        elif isinstance(node, Comparison) and node.op in PATTERN_OPERATORS and isinstance(node.value, String):
            found.append(node.value.value)
    return found


def _id_pattern(value: str | None, where: str = "idPattern") -> str | None:
    if value is None:
        return None
    if not value or len(value) > 256 or not value.isprintable():
        raise BadRequest(where, "a regular expression of at most 256 printable characters")
    why = safe_pattern(value)
    if why is not None:
        raise BadRequest(where, why)
    try:
        re.compile(value)
    except re.error:
        raise BadRequest(where, "not a valid regular expression") from None
    return value


def _q(value: str | None, where: str = "q") -> Expr | None:
    if value is None:
        return None
    try:
        expr = parse_q(value)
    except QuerySyntaxError as exc:
        raise BadRequest(where, f"not a valid NGSI-LD query: {exc}") from None
    for pattern in patterns_of(expr):
        why = safe_pattern(pattern)
        if why is not None:
            raise BadRequest(where, f"pattern {pattern[:40]!r}: {why}")
    return expr


def _ids(value: str | None, where: str = "id") -> tuple[str, ...]:
    if value is None:
        return ()
    ids = value.split(",")
    if len(ids) > _MAX_IDS:
        raise BadRequest(where, f"at most {_MAX_IDS} ids")
    return tuple(_entity_id(i, where) for i in ids)


def _coordinates(value: Any, where: str) -> tuple[object, ...]:
    def freeze(item: Any, depth: int) -> object:
        if depth > 4:
            raise BadRequest(where, "coordinates nest 4 levels deep at most")
        if isinstance(item, list):
            return tuple(freeze(i, depth + 1) for i in item)
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise BadRequest(where, "coordinates are numbers in nested arrays")
        return float(item)

    if isinstance(value, str):
        if len(value) > 16_384:
            raise BadRequest(where, "coordinates too long")
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRequest(where, "a JSON array of positions") from None
    if not isinstance(value, list):
        raise BadRequest(where, "a JSON array of positions")
    frozen = freeze(value, 0)
    assert isinstance(frozen, tuple)
    return frozen


def _thaw(value: object) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


def _geo(georel: Any, geometry: Any, coordinates: Any, geoproperty: Any, where: str) -> GeoQuery | None:
    given = [v is not None for v in (georel, geometry, coordinates)]
    if not any(given) and geoproperty is None:
        return None
    if not all(given):
        raise BadRequest(f"{where}georel", "georel, geometry and coordinates go together")
    if not isinstance(georel, str) or not isinstance(geometry, str):
        raise BadRequest(f"{where}georel", "georel and geometry are strings")
    relation, *modifiers = georel.split(";")
    if relation not in _GEORELS:
        raise BadRequest(f"{where}georel", f"one of {', '.join(sorted(_GEORELS))}")
    distances: dict[str, float] = {}
    for modifier in modifiers:
        match = _DISTANCE.match(modifier)
        if match is None or relation != "near" or match.group(1) in distances:
            raise BadRequest(f"{where}georel", "near takes maxDistance==M and/or minDistance==M (metres)")
        distances[match.group(1)] = float(match.group(2))
    if relation == "near" and not distances:
        raise BadRequest(f"{where}georel", "near needs maxDistance or minDistance")
    frozen = _coordinates(coordinates, f"{where}coordinates")
    problem = geometry_problem({"type": geometry, "coordinates": _thaw(frozen)})
    if problem:
        raise BadRequest(f"{where}coordinates", problem)
    if relation == "near" and geometry != "Point":
        raise BadRequest(f"{where}geometry", "near needs a Point")
    if relation == "within" and geometry not in ("Polygon", "MultiPolygon"):
        raise BadRequest(f"{where}geometry", "within needs a Polygon or a MultiPolygon")
    prop = "location" if geoproperty is None else geoproperty
    if not isinstance(prop, str):
        raise BadRequest(f"{where}geoproperty", "an attribute short name")
    return GeoQuery(relation, geometry, frozen, _name(prop, f"{where}geoproperty"),
                    distances.get("maxDistance"), distances.get("minDistance"))


def _format(params: _Params, *, temporal: bool) -> tuple[EntityFormat, bool]:
    """The format asked (``options`` and ``format``) and whether system attributes are."""
    formats = {"normalized": EntityFormat.NORMALIZED, "keyValues": EntityFormat.KEY_VALUES,
               "simplified": EntityFormat.KEY_VALUES, "concise": EntityFormat.CONCISE}
    if temporal:
        formats.update(temporalValues=EntityFormat.TEMPORAL_VALUES, simplified=EntityFormat.TEMPORAL_VALUES,
                       keyValues=EntityFormat.TEMPORAL_VALUES)
        formats.pop("concise")
    chosen: set[EntityFormat] = set()
    sys_attrs = False
    options = params.get("options")
    for option in options.split(",") if options is not None else ():
        if option == "sysAttrs":
            sys_attrs = True
        elif option in formats:
            chosen.add(formats[option])
        elif temporal and option == "aggregatedValues":
            continue
        else:
            raise BadRequest("options", f"{option[:40]!r} is not an option offered here "
                                        f"(offered: {', '.join(sorted({*formats, 'sysAttrs'}))})")
    name = params.get("format")
    if name is not None:
        if name not in formats:
            raise BadRequest("format", f"one of {', '.join(sorted(formats))}")
        chosen.add(formats[name])
    if len(chosen) > 1:
        raise BadRequest("options", "one format at a time")
    return (chosen.pop() if chosen else EntityFormat.NORMALIZED), sys_attrs


def _projection(params: _Params, *, temporal: bool) -> Projection:
    attrs, pick = params.get("attrs"), params.get("pick")
    if attrs is not None and pick is not None:
        raise BadRequest("pick", "give attrs or pick, not both")
    named = _names(attrs if attrs is not None else pick, "attrs" if attrs is not None else "pick",
                   drop=("id", "type"))
    omit = _names(params.get("omit"), "omit", drop=("id", "type")) or frozenset()
    entity_format, sys_attrs = _format(params, temporal=temporal)
    return Projection(named, omit, sys_attrs, entity_format)


def _page(params: _Params) -> Page:
    return Page(
        limit=_integer(params.get("limit"), "limit", default=20, low=1, high=_MAX_LIMIT),
        offset=_integer(params.get("offset"), "offset", default=0, low=0, high=_MAX_OFFSET),
        count=_boolean(params.get("count"), "count"),
    )


def _selection(params: _Params, tenant: str, entity_type: str, *, ids: tuple[str, ...] | None = None) -> Selection:
    return Selection(
        tenant, entity_type,
        ids=ids if ids is not None else _ids(params.get("id")),
        id_pattern=_id_pattern(params.get("idPattern")),
        q=_q(params.get("q")),
        geo=_geo(params.get("georel"), params.get("geometry"), params.get("coordinates"), params.get("geoproperty"), ""),
    )


def _time(timerel: Any, time_at: Any, end_time_at: Any, timeproperty: Any, where: str) -> TimeQuery | None:
    if timerel is None and time_at is None and end_time_at is None:
        if timeproperty is not None:
            raise BadRequest(f"{where}timeproperty", "goes with timerel and timeAt")
        return None
    if timerel not in _TIMERELS:
        raise BadRequest(f"{where}timerel", "before, after or between")
    start = _datetime(time_at, f"{where}timeAt")
    end = None
    if timerel == "between":
        end = _datetime(end_time_at, f"{where}endTimeAt")
        if end <= start:
            raise BadRequest(f"{where}endTimeAt", "must be after timeAt")
    elif end_time_at is not None:
        raise BadRequest(f"{where}endTimeAt", "goes with timerel=between only")
    prop = "observedAt" if timeproperty is None else timeproperty
    if prop not in _TIMEPROPERTIES:
        raise BadRequest(f"{where}timeproperty", f"one of {', '.join(sorted(_TIMEPROPERTIES))}")
    return TimeQuery(timerel, start, end, prop)


def _broker_aggregation(params: _Params) -> BrokerAggregation | None:
    methods, period = params.get("aggrMethods"), params.get("aggrPeriodDuration")
    if methods is None:
        if period is not None:
            raise BadRequest("aggrPeriodDuration", "goes with aggrMethods")
        return None
    names = tuple(sorted(set(methods.split(","))))
    if not set(names) <= _AGGREGATION_METHODS:
        raise BadRequest("aggrMethods", f"among {', '.join(sorted(_AGGREGATION_METHODS))}")
    if period is not None and not _DURATION.match(period):
        raise BadRequest("aggrPeriodDuration", "an ISO 8601 duration (P1D, PT1H...)")
    return BrokerAggregation(names, period or "P0D")


def _temporal_extras(params: _Params) -> tuple[TimeQuery | None, int | None, BrokerAggregation | None]:
    time = _time(params.get("timerel"), params.get("timeAt"), params.get("endTimeAt"), params.get("timeproperty"), "")
    last_n = params.get("lastN")
    return (time, None if last_n is None else _integer(last_n, "lastN", default=1, low=1, high=_MAX_LAST_N),
            _broker_aggregation(params))


def entity_query(query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str]) -> EntityQuery:
    """``GET /ngsi-ld/v1/entities``."""
    params = _Params(query, (*_SELECTION, *_PROJECTION, *_PAGE))
    entity_type = _entity_type(params.get("type"))
    _check_context(headers, contexts, entity_type)
    return EntityQuery(_selection(params, headers.tenant(), entity_type), _projection(params, temporal=False),
                       _page(params), purpose=headers.purpose())


def entity_retrieval(entity_id: str, query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str]
                     ) -> EntityQuery:
    """``GET /ngsi-ld/v1/entities/{id}``: the query of that one id (the same decision as by type)."""
    params = _Params(query, ("type", *_PROJECTION))
    entity_type = _retrieved_type(entity_id, params)
    _check_context(headers, contexts, entity_type)
    return EntityQuery(Selection(headers.tenant(), entity_type, ids=(entity_id,)),
                       _projection(params, temporal=False), single=True, purpose=headers.purpose())


def temporal_query(query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str]) -> TemporalQuery:
    """``GET /ngsi-ld/v1/temporal/entities``."""
    params = _Params(query, (*_SELECTION, *_PROJECTION, *_PAGE, *_TIME))
    entity_type = _entity_type(params.get("type"))
    _check_context(headers, contexts, entity_type)
    time, last_n, aggregation = _temporal_extras(params)
    return TemporalQuery(_selection(params, headers.tenant(), entity_type), _projection(params, temporal=True),
                         _page(params), time, last_n, aggregation, purpose=headers.purpose())


def temporal_retrieval(entity_id: str, query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str]
                       ) -> TemporalQuery:
    """``GET /ngsi-ld/v1/temporal/entities/{id}``."""
    params = _Params(query, ("type", *_PROJECTION, *_TIME))
    entity_type = _retrieved_type(entity_id, params)
    _check_context(headers, contexts, entity_type)
    time, last_n, aggregation = _temporal_extras(params)
    return TemporalQuery(Selection(headers.tenant(), entity_type, ids=(entity_id,)),
                         _projection(params, temporal=True), Page(), time, last_n, aggregation, single=True,
                         purpose=headers.purpose())


def _retrieved_type(entity_id: str, params: _Params) -> str:
    _entity_id(entity_id, "entityId")
    from_id = entity_type_of(entity_id)
    asked = params.get("type")
    if asked is not None:
        _entity_type(asked)
        if from_id is not None and asked != from_id:
            raise BadRequest("type", f"the id names type {from_id}")
    entity_type = from_id or asked
    if entity_type is None:
        raise BadRequest("type", "required for an id that does not name its type (urn:ngsi-ld:<Type>:...)")
    return entity_type


def _check_context(headers: Headers, contexts: Mapping[str, str], entity_type: str) -> None:
    context = contexts.get(entity_type)
    if context is not None:
        headers.check_link(context)


# -- bodies ---------------------------------------------------------------------------------

def json_body(body: bytes, where: str = "body") -> Any:
    """A JSON body no larger than ``MAX_BODY_BYTES`` and no deeper than 16 levels."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(where, f"larger than {MAX_BODY_BYTES} bytes")
    depth = deepest = 0
    quoted = escaped = False
    for byte in body:  # bounded before decoding: no decoder recursion on hostile nesting
        if quoted:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                quoted = False
        elif byte == 0x22:
            quoted = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > _MAX_DEPTH:
                raise BadRequest(where, f"nested deeper than {_MAX_DEPTH} levels")
        elif byte in (0x5D, 0x7D):
            depth -= 1
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest(where, "not valid JSON") from None


class _Members:
    """A JSON object's members, only those listed."""

    def __init__(self, value: Any, where: str, allowed: Iterable[str]) -> None:
        if not isinstance(value, dict):
            raise BadRequest(where or "body", "a JSON object is expected")
        allowed = frozenset(allowed)
        for key in value:
            if key not in allowed:
                raise BadRequest(f"{where}{key}", f"not a member the gateway offers here "
                                                  f"(offered: {', '.join(sorted(allowed))})")
        self.value: dict[str, Any] = value
        self.where = where

    def get(self, key: str) -> Any:
        return self.value.get(key)

    def string(self, key: str, *, limit: int = 1024) -> str | None:
        item = self.value.get(key)
        if item is None:
            return None
        if not isinstance(item, str) or len(item) > limit:
            raise BadRequest(f"{self.where}{key}", f"a string of at most {limit} characters")
        return item


def _body_context(members: _Members, contexts: Mapping[str, str], entity_type: str) -> None:
    context = members.get("@context")
    if context is None:
        return
    known = contexts.get(entity_type)
    listed = context if isinstance(context, list) else [context]
    if not all(isinstance(c, str) and (c == known or c.startswith(_CORE_CONTEXTS)) for c in listed):
        raise BadRequest(f"{members.where}@context", f"only the type's Smart Data Models context {known} "
                                                     "(or the core context)")


def _entities_member(value: Any, where: str) -> tuple[str, tuple[str, ...], str | None]:
    """``entities``: one type, with optional ids or one id pattern."""
    if not isinstance(value, list) or not value or len(value) > _MAX_IDS:
        raise BadRequest(where, f"an array of 1 to {_MAX_IDS} entity selectors")
    types, ids, patterns = set(), [], []
    for position, item in enumerate(value):
        selector = _Members(item, f"{where}[{position}].", ("type", "id", "idPattern"))
        types.add(_entity_type(selector.string("type", limit=128), f"{where}[{position}].type"))
        entity_id = selector.string("id", limit=256)
        if entity_id is not None:
            ids.append(_entity_id(entity_id, f"{where}[{position}].id"))
        pattern = selector.string("idPattern", limit=256)
        if pattern is not None:
            patterns.append(_id_pattern(pattern, f"{where}[{position}].idPattern"))
    if len(types) != 1:
        raise BadRequest(where, "one entity type per request: it is what the agreements are about")
    if patterns and (ids or len(patterns) > 1):
        raise BadRequest(where, "either ids or one idPattern")
    return types.pop(), tuple(ids), (patterns[0] if patterns else None)


def _geo_member(value: Any, where: str) -> GeoQuery | None:
    if value is None:
        return None
    geo = _Members(value, where, ("georel", "geometry", "coordinates", "geoproperty"))
    return _geo(geo.get("georel"), geo.get("geometry"), geo.get("coordinates"), geo.get("geoproperty"), where)


def entity_query_body(body: bytes, query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str], *,
                      temporal: bool) -> EntityQuery | TemporalQuery:
    """``POST /ngsi-ld/v1/[temporal/]entityOperations/query``: the same query, in a body."""
    params = _Params(query, ("options", "format", *_PAGE))
    members = _Members(json_body(body), "", ("type", "entities", "attrs", "pick", "omit", "q", "geoQ", "temporalQ",
                                             "@context"))
    if members.get("type") != "Query":
        raise BadRequest("type", 'a query body has "type": "Query"')
    entity_type, ids, pattern = _entities_member(members.get("entities"), "entities")
    _body_context(members, contexts, entity_type)
    _check_context(headers, contexts, entity_type)
    if members.get("attrs") is not None and members.get("pick") is not None:
        raise BadRequest("pick", "give attrs or pick, not both")
    named = members.get("attrs") if members.get("attrs") is not None else members.get("pick")
    attrs = None if named is None else _name_list(named, "attrs") - {"id", "type"}
    omit = frozenset() if members.get("omit") is None else _name_list(members.get("omit"), "omit") - {"id", "type"}
    entity_format, sys_attrs = _format(params, temporal=temporal)
    selection = Selection(headers.tenant(), entity_type, ids, pattern, _q(members.string("q", limit=4096)),
                          _geo_member(members.get("geoQ"), "geoQ."))
    projection = Projection(attrs, omit, sys_attrs, entity_format)
    if not temporal:
        if members.get("temporalQ") is not None:
            raise BadRequest("temporalQ", "goes to /temporal/entityOperations/query")
        return EntityQuery(selection, projection, _page(params), purpose=headers.purpose())
    time = last_n = None
    if members.get("temporalQ") is not None:
        t = _Members(members.get("temporalQ"), "temporalQ.", ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"))
        time = _time(t.get("timerel"), t.get("timeAt"), t.get("endTimeAt"), t.get("timeproperty"), "temporalQ.")
        n = t.get("lastN")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_LAST_N):
            raise BadRequest("temporalQ.lastN", f"a whole number from 1 to {_MAX_LAST_N}")
        last_n = n
    return TemporalQuery(selection, projection, _page(params), time, last_n, None, purpose=headers.purpose())


def subscription_request(body: bytes, headers: Headers, contexts: Mapping[str, str]) -> SubscriptionRequest:
    """``POST /ngsi-ld/v1/subscriptions``: what the gateway offers of an NGSI-LD subscription."""
    value = json_body(body)
    tenant, purpose = headers.tenant(), headers.purpose()
    request = subscription_from(value, tenant, purpose, contexts)
    _check_context(headers, contexts, request.selection.entity_type)
    return request


def subscription_from(value: Any, tenant: str, purpose: str | None, contexts: Mapping[str, str]
                      ) -> SubscriptionRequest:
    """A subscription body (decoded JSON) of ``tenant``'s data: parsed when it is made, and again,
    from what the gateway stored, at each notification, so that both are decided alike."""
    members = _Members(value, "", ("type", "entities", "watchedAttributes", "q", "geoQ", "notification",
                                   "expiresAt", "throttling", "description", "subscriptionName", "@context"))
    if members.get("type") != "Subscription":
        raise BadRequest("type", 'a subscription has "type": "Subscription"')
    entity_type, ids, pattern = _entities_member(members.get("entities"), "entities")
    _body_context(members, contexts, entity_type)
    notification = _Members(members.get("notification"), "notification.", ("attributes", "format", "endpoint"))
    endpoint = _Members(notification.get("endpoint"), "notification.endpoint.", ("uri", "accept"))
    uri = endpoint.string("uri", limit=2048)
    if uri is None:
        raise BadRequest("notification.endpoint.uri", "required: where the gateway forwards notifications")
    accept = endpoint.string("accept", limit=64) or "application/json"
    if accept not in ("application/json", "application/ld+json"):
        raise BadRequest("notification.endpoint.accept", "application/json or application/ld+json")
    formats = {"normalized": EntityFormat.NORMALIZED, "keyValues": EntityFormat.KEY_VALUES,
               "simplified": EntityFormat.KEY_VALUES, "concise": EntityFormat.CONCISE}
    format_name = notification.string("format", limit=32) or "normalized"
    if format_name not in formats:
        raise BadRequest("notification.format", f"one of {', '.join(sorted(formats))}")
    attributes = notification.get("attributes")
    watched = members.get("watchedAttributes")
    throttling = members.get("throttling")
    if throttling is not None and (not isinstance(throttling, int) or isinstance(throttling, bool)
                                   or not 0 <= throttling <= 86_400):
        raise BadRequest("throttling", "seconds, a whole number from 0 to 86400")
    expires = members.get("expiresAt")
    description = members.string("description", limit=512)
    members.string("subscriptionName", limit=256)
    if purpose is None and description is not None and _PURPOSE.match(description):
        purpose = description  # a subscription may declare its purpose in its description
    return SubscriptionRequest(
        Selection(tenant, entity_type, ids, pattern, _q(members.string("q", limit=4096)),
                  _geo_member(members.get("geoQ"), "geoQ.")),
        uri,
        watched=None if watched is None else _name_list(watched, "watchedAttributes"),
        attributes=None if attributes is None else _name_list(attributes, "notification.attributes"),
        format=formats[format_name], accept=accept, throttling=throttling,
        expires_at=None if expires is None else _datetime(expires, "expiresAt"),
        description=description, purpose=purpose,
    )


def no_parameters(query: MultiMapping[str]) -> None:
    """Refuse any query parameter (a route that takes none)."""
    _Params(query, ())


def access_log_request(query: MultiMapping[str], headers: Headers) -> AccessLogRequest:
    """``GET /gateway/access?tenant=T[&since=][&until=]`` (newest first, 1,000 at most: page back
    with ``until``)."""
    params = _Params(query, ("tenant", "since", "until"))
    since, until = params.get("since"), params.get("until")
    return AccessLogRequest(headers.known_tenant(params.get("tenant") or "", "tenant"),
                            None if since is None else _datetime(since, "since"),
                            None if until is None else _datetime(until, "until"))


def subscription_id(value: str) -> str:
    if not re.fullmatch(r"urn:ngsi-ld:Subscription:gateway:[0-9a-f]{24}", value):
        raise BadRequest("subscriptionId", "not a subscription id of this gateway")
    return value


# -- provenance, logs, SPARQL --------------------------------------------------------------------

def value_provenance_request(kind: str, tenant: str, query: MultiMapping[str], headers: Headers
                             ) -> ValueProvenanceRequest:
    """``GET /provenance/{tenant}/lineage|verify?entity=&attr=&observedAt=[&value=]``."""
    params = _Params(query, ("entity", "attr", "observedAt", "value") if kind == "verify"
                     else ("entity", "attr", "observedAt"))
    entity = params.get("entity")
    if entity is None:
        raise BadRequest("entity", "required: the entity id")
    entity_type = entity_type_of(_entity_id(entity, "entity"))
    if entity_type is None:
        raise BadRequest("entity", "an entity id naming its type (urn:ngsi-ld:<Type>:...)")
    attribute = params.get("attr")
    if attribute is None:
        raise BadRequest("attr", "required: the attribute's short name, as the agreements name it")
    value = params.get("value")
    if value is not None and len(value) > 1024:
        raise BadRequest("value", "at most 1024 characters")
    return ValueProvenanceRequest(headers.known_tenant(tenant, "tenant"), entity, entity_type, _name(attribute, "attr"),
                                  _datetime(params.get("observedAt"), "observedAt"), kind, value,
                                  purpose=headers.purpose())


def record_request(kind: str, tenant: str, match: Mapping[str, str], query: MultiMapping[str], headers: Headers
                   ) -> RecordRequest:
    """``/provenance/{tenant}/uplinks/{n}[/record]``, ``/devices/{devEui}[/records/{seq}]``."""
    _Params(query, ())
    n = seq = None
    dev_eui = None
    if "n" in match:
        n = _integer(match["n"], "n", default=0, low=0, high=2**53)
    if "dev_eui" in match:
        if not _EUI.match(match["dev_eui"]):
            raise BadRequest("devEui", "16 hexadecimal digits")
        dev_eui = match["dev_eui"].lower()
    if "seq" in match:
        seq = _integer(match["seq"], "seq", default=0, low=0, high=2**53)
    return RecordRequest(headers.known_tenant(tenant, "tenant"), kind, n, dev_eui, seq, purpose=headers.purpose())


def log_request(kind: str, tenant: str | None, rest: str | None, query: MultiMapping[str], headers: Headers
                ) -> LogRequest:
    """The public log resources: ``checkpoint``, ``key``, ``tile/...``, ``proof/inclusion``,
    ``proof/consistency`` of one collectivity, or ``jwks``."""
    known = None if tenant is None else headers.known_tenant(tenant, "tenant")
    if kind == "inclusion":
        params = _Params(query, ("index", "size"))
        return LogRequest(kind, known, index=_integer(params.get("index"), "index", default=-1, low=0, high=2**53),
                          size=_integer(params.get("size"), "size", default=-1, low=0, high=2**53))
    if kind == "consistency":
        params = _Params(query, ("old", "size"))
        return LogRequest(kind, known, old=_integer(params.get("old"), "old", default=-1, low=0, high=2**53),
                          size=_integer(params.get("size"), "size", default=-1, low=0, high=2**53))
    _Params(query, ())
    if kind == "tile":
        path = f"tile/{rest or ''}"
        try:
            parse_path(path)  # the canonical tlog-tiles form only
        except InvalidTilePath as exc:
            raise BadRequest("tile", str(exc)) from None
        return LogRequest(kind, known, tile=path)
    return LogRequest(kind, known)


def sparql_request(method: str, content_type: str, query: MultiMapping[str], body: bytes, headers: Headers
                   ) -> SparqlRequest:
    """A SPARQL 1.1 Protocol query (GET ``?query=``, a form, or ``application/sparql-query``)."""
    known = ("query", "default-graph-uri", "named-graph-uri")
    pairs: list[tuple[str, str]] = [(k, v) for k, v in query.items()]
    if method == "POST":
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest("body", f"larger than {MAX_BODY_BYTES} bytes")
        text = body.decode("utf-8", errors="strict") if body else ""
        if content_type == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl

            try:
                pairs += parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=64)
            except ValueError:
                raise BadRequest("body", "not a valid form") from None
        elif content_type == "application/sparql-query":
            pairs.append(("query", text))
        elif content_type == "application/sparql-update" or any(k == "update" for k, _ in pairs):
            raise BadRequest("update", "the SPARQL endpoint is read-only")
        else:
            raise BadRequest("Content-Type", "application/x-www-form-urlencoded or application/sparql-query")
    for key, _ in pairs:
        if key == "update":
            raise BadRequest("update", "the SPARQL endpoint is read-only")
        if key not in known:
            raise BadRequest(key, f"unknown parameter here (known: {', '.join(known)})")
    queries = [v for k, v in pairs if k == "query"]
    if len(queries) != 1 or not queries[0].strip():
        raise BadRequest("query", "one query")
    if len(queries[0]) > MAX_BODY_BYTES:
        raise BadRequest("query", f"longer than {MAX_BODY_BYTES} characters")
    graphs = tuple(v for k, v in pairs if k != "query")
    for graph in graphs:
        _entity_id(graph, "default-graph-uri")
    return SparqlRequest(queries[0], graphs, headers.sparql_accept(), purpose=headers.purpose())


def thaw_coordinates(coordinates: Sequence[object]) -> list[Any]:
    """A ``GeoQuery``'s coordinates as JSON arrays again."""
    return [_thaw(c) for c in coordinates]
