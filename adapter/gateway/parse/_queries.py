"""NGSI-LD queries and subscriptions as typed requests: GET parameters and POST bodies
(``adapter.gateway.parse``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from multidict import MultiMapping

from adapter.access.requests import (
    BrokerAggregation,
    EntityFormat,
    EntityQuery,
    GeoQuery,
    Page,
    Projection,
    Selection,
    SubscriptionRequest,
    TemporalQuery,
    TimeQuery,
)
from adapter.gateway.parse._values import (
    BadRequest,
    Headers,
    MAX_BODY_BYTES,
    _AGGREGATION_METHODS,
    _CORE_CONTEXTS,
    _DURATION,
    _MAX_DEPTH,
    _MAX_IDS,
    _MAX_LAST_N,
    _MAX_LIMIT,
    _MAX_OFFSET,
    _PAGE,
    _PROJECTION,
    _PURPOSE,
    _Params,
    _SELECTION,
    _TIME,
    _TIMEPROPERTIES,
    _TIMERELS,
    _boolean,
    _datetime,
    _entity_id,
    _entity_type,
    _geo,
    _id_pattern,
    _ids,
    _integer,
    _name_list,
    _names,
    _q,
    entity_type_of,
)

__all__ = [
    "entity_query",
    "entity_query_body",
    "entity_retrieval",
    "json_body",
    "subscription_from",
    "subscription_id",
    "subscription_request",
    "temporal_query",
    "temporal_retrieval",
]


def _format(params: _Params, *, temporal: bool) -> tuple[EntityFormat, bool]:
    """The format asked (``options`` and ``format``) and whether system attributes are."""
    formats = {
        "normalized": EntityFormat.NORMALIZED,
        "keyValues": EntityFormat.KEY_VALUES,
        "simplified": EntityFormat.KEY_VALUES,
        "concise": EntityFormat.CONCISE,
    }
    if temporal:
        formats.update(
            temporalValues=EntityFormat.TEMPORAL_VALUES,
            simplified=EntityFormat.TEMPORAL_VALUES,
            keyValues=EntityFormat.TEMPORAL_VALUES,
        )
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
            raise BadRequest(
                "options",
                f"{option[:40]!r} is not an option offered here (offered: {', '.join(sorted({*formats, 'sysAttrs'}))})",
            )
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
    named = _names(attrs if attrs is not None else pick, "attrs" if attrs is not None else "pick", drop=("id", "type"))
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
        tenant,
        entity_type,
        ids=ids if ids is not None else _ids(params.get("id")),
        id_pattern=_id_pattern(params.get("idPattern")),
        q=_q(params.get("q")),
        geo=_geo(
            params.get("georel"), params.get("geometry"), params.get("coordinates"), params.get("geoproperty"), ""
        ),
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
    return (
        time,
        None if last_n is None else _integer(last_n, "lastN", default=1, low=1, high=_MAX_LAST_N),
        _broker_aggregation(params),
    )


def entity_query(query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str]) -> EntityQuery:
    """``GET /ngsi-ld/v1/entities``."""
    params = _Params(query, (*_SELECTION, *_PROJECTION, *_PAGE))
    entity_type = _entity_type(params.get("type"))
    _check_context(headers, contexts, entity_type)
    return EntityQuery(
        _selection(params, headers.tenant(), entity_type),
        _projection(params, temporal=False),
        _page(params),
        purpose=headers.purpose(),
    )


def entity_retrieval(
    entity_id: str, query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str]
) -> EntityQuery:
    """``GET /ngsi-ld/v1/entities/{id}``: the query of that one id (the same decision as by type)."""
    params = _Params(query, ("type", *_PROJECTION))
    entity_type = _retrieved_type(entity_id, params)
    _check_context(headers, contexts, entity_type)
    return EntityQuery(
        Selection(headers.tenant(), entity_type, ids=(entity_id,)),
        _projection(params, temporal=False),
        single=True,
        purpose=headers.purpose(),
    )


def temporal_query(query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str]) -> TemporalQuery:
    """``GET /ngsi-ld/v1/temporal/entities``."""
    params = _Params(query, (*_SELECTION, *_PROJECTION, *_PAGE, *_TIME))
    entity_type = _entity_type(params.get("type"))
    _check_context(headers, contexts, entity_type)
    time, last_n, aggregation = _temporal_extras(params)
    return TemporalQuery(
        _selection(params, headers.tenant(), entity_type),
        _projection(params, temporal=True),
        _page(params),
        time,
        last_n,
        aggregation,
        purpose=headers.purpose(),
    )


def temporal_retrieval(
    entity_id: str, query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str]
) -> TemporalQuery:
    """``GET /ngsi-ld/v1/temporal/entities/{id}``."""
    params = _Params(query, ("type", *_PROJECTION, *_TIME))
    entity_type = _retrieved_type(entity_id, params)
    _check_context(headers, contexts, entity_type)
    time, last_n, aggregation = _temporal_extras(params)
    return TemporalQuery(
        Selection(headers.tenant(), entity_type, ids=(entity_id,)),
        _projection(params, temporal=True),
        Page(),
        time,
        last_n,
        aggregation,
        single=True,
        purpose=headers.purpose(),
    )


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
                raise BadRequest(
                    f"{where}{key}", f"not a member the gateway offers here (offered: {', '.join(sorted(allowed))})"
                )
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
        raise BadRequest(
            f"{members.where}@context", f"only the type's Smart Data Models context {known} (or the core context)"
        )


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


def entity_query_body(
    body: bytes, query: MultiMapping[str], headers: Headers, contexts: Mapping[str, str], *, temporal: bool
) -> EntityQuery | TemporalQuery:
    """``POST /ngsi-ld/v1/[temporal/]entityOperations/query``: the same query, in a body."""
    params = _Params(query, ("options", "format", *_PAGE))
    members = _Members(
        json_body(body), "", ("type", "entities", "attrs", "pick", "omit", "q", "geoQ", "temporalQ", "@context")
    )
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
    selection = Selection(
        headers.tenant(),
        entity_type,
        ids,
        pattern,
        _q(members.string("q", limit=4096)),
        _geo_member(members.get("geoQ"), "geoQ."),
    )
    projection = Projection(attrs, omit, sys_attrs, entity_format)
    if not temporal:
        if members.get("temporalQ") is not None:
            raise BadRequest("temporalQ", "goes to /temporal/entityOperations/query")
        return EntityQuery(selection, projection, _page(params), purpose=headers.purpose())
    time = last_n = None
    if members.get("temporalQ") is not None:
        t = _Members(
            members.get("temporalQ"), "temporalQ.", ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN")
        )
        time = _time(t.get("timerel"), t.get("timeAt"), t.get("endTimeAt"), t.get("timeproperty"), "temporalQ.")
        n = t.get("lastN")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_LAST_N):
            raise BadRequest("temporalQ.lastN", f"a whole number from 1 to {_MAX_LAST_N}")
        last_n = n
    return TemporalQuery(selection, projection, _page(params), time, last_n, None, purpose=headers.purpose())


def subscription_request(value: Any, headers: Headers, contexts: Mapping[str, str]) -> SubscriptionRequest:
    """``POST /ngsi-ld/v1/subscriptions``: what the gateway offers of an NGSI-LD subscription
    (``value``: the body as ``json_body`` decoded it; the gateway stores it too)."""
    tenant, purpose = headers.tenant(), headers.purpose()
    request = subscription_from(value, tenant, purpose, contexts)
    _check_context(headers, contexts, request.selection.entity_type)
    return request


def subscription_from(value: Any, tenant: str, purpose: str | None, contexts: Mapping[str, str]) -> SubscriptionRequest:
    """A subscription body (decoded JSON) of ``tenant``'s data: parsed when it is made, and again,
    from what the gateway stored, at each notification, so that both are decided alike."""
    members = _Members(
        value,
        "",
        (
            "type",
            "entities",
            "watchedAttributes",
            "q",
            "geoQ",
            "notification",
            "expiresAt",
            "throttling",
            "description",
            "subscriptionName",
            "@context",
        ),
    )
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
    formats = {
        "normalized": EntityFormat.NORMALIZED,
        "keyValues": EntityFormat.KEY_VALUES,
        "simplified": EntityFormat.KEY_VALUES,
        "concise": EntityFormat.CONCISE,
    }
    format_name = notification.string("format", limit=32) or "normalized"
    if format_name not in formats:
        raise BadRequest("notification.format", f"one of {', '.join(sorted(formats))}")
    attributes = notification.get("attributes")
    watched = members.get("watchedAttributes")
    throttling = members.get("throttling")
    if throttling is not None and (
        not isinstance(throttling, int) or isinstance(throttling, bool) or not 0 <= throttling <= 86_400
    ):
        raise BadRequest("throttling", "seconds, a whole number from 0 to 86400")
    expires = members.get("expiresAt")
    description = members.string("description", limit=512)
    members.string("subscriptionName", limit=256)
    if purpose is None and description is not None and _PURPOSE.match(description):
        purpose = description  # a subscription may declare its purpose in its description
    return SubscriptionRequest(
        Selection(
            tenant,
            entity_type,
            ids,
            pattern,
            _q(members.string("q", limit=4096)),
            _geo_member(members.get("geoQ"), "geoQ."),
        ),
        uri,
        watched=None if watched is None else _name_list(watched, "watchedAttributes"),
        attributes=None if attributes is None else _name_list(attributes, "notification.attributes"),
        format=formats[format_name],
        accept=accept,
        throttling=throttling,
        expires_at=None if expires is None else _datetime(expires, "expiresAt"),
        description=description,
        purpose=purpose,
    )


def subscription_id(value: str) -> str:
    if not re.fullmatch(r"urn:ngsi-ld:Subscription:gateway:[0-9a-f]{24}", value):
        raise BadRequest("subscriptionId", "not a subscription id of this gateway")
    return value
