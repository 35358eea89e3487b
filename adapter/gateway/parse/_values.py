"""The parsing of single values: names, ids, instants, patterns, ``q``, geo-queries; the request's
headers and query parameters, each at most once; and the errors (``adapter.gateway.parse``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from multidict import MultiMapping

from adapter.access.requests import (
    GeoQuery,
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

__all__ = [
    "BadRequest",
    "Headers",
    "MAX_BODY_BYTES",
    "NotAcceptable",
    "SPARQL_MEDIA_TYPES",
    "entity_type_of",
    "patterns_of",
    "safe_pattern",
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
_DURATION = re.compile(
    r"P(?!\Z)(?:\d{1,4}Y)?(?:\d{1,4}M)?(?:\d{1,4}W)?(?:\d{1,4}D)?(?:T(?=\d)(?:\d{1,4}H)?(?:\d{1,4}M)?"
    r"(?:\d{1,6}(?:\.\d{1,3})?S)?)?\Z"
)
_DISTANCE = re.compile(r"(maxDistance|minDistance)==(\d{1,9}(?:\.\d{1,6})?)\Z")
_GEORELS = frozenset({"near", "within", "contains", "intersects", "equals", "disjoint", "overlaps"})
_TIMERELS = frozenset({"before", "after", "between"})
_TIMEPROPERTIES = frozenset({"observedAt", "createdAt", "modifiedAt", "deletedAt"})
_AGGREGATION_METHODS = frozenset({"totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq"})
_LINK_REL = "http://www.w3.org/ns/json-ld#context"
_CORE_CONTEXTS = ("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context",)

#: the result formats of the adapter's SPARQL endpoint, in order of preference for */*
SPARQL_MEDIA_TYPES = (
    "application/sparql-results+json",
    "application/sparql-results+xml",
    "text/csv",
    "text/tab-separated-values",
    "text/turtle",
    "application/n-triples",
    "application/ld+json",
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
            raise BadRequest("Link", 'one JSON-LD context link is expected: <url>; rel="' + _LINK_REL + '"')
        url, attributes = match.group(1), dict(re.findall(r';\s*([A-Za-z]+)\s*=\s*"([^"]*)"', match.group(2)))
        if attributes.get("rel") != _LINK_REL:
            raise BadRequest("Link", f'the link must have rel="{_LINK_REL}"')
        if url != context and not url.startswith(_CORE_CONTEXTS):
            raise BadRequest(
                "Link",
                f"the gateway reads this type with its Smart Data Models context {context}; send that one, or none",
            )

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
            return (
                f"{body[position]!r} at position {position} is outside the patterns offered (literal characters, "
                "[classes], '.', '.*', '.+', '.?', '^' and '$'; no groups, alternation or counts)"
            )
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
    return GeoQuery(
        relation,
        geometry,
        frozen,
        _name(prop, f"{where}geoproperty"),
        distances.get("maxDistance"),
        distances.get("minDistance"),
    )
