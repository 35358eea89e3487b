"""HTTP handlers of the queries: ``GET /entities`` and the temporal API.

Filters that SQL can apply (type, id) run in SQLite in creation order; the others (idPattern,
q, geo-query, the ``attrs`` filter) run in Python over those rows, which are read only as far
as the page needs unless the total is asked for (``count``) or the order is by distance.
Without Python-side filters, paging and counting also happen in SQL. Rows are decoded and
rendered through the broker's memos (``Store.select_entities(shared=True)``,
``render.Renderings``), keyed by the stored text, so an update shows in the next answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web

from adapter.ngsild.broker.errors import BadRequestData, ResourceNotFound
from adapter.ngsild.broker.geo import parse_geo_query
from adapter.ngsild.broker.jsonld import TermContext
from adapter.ngsild.broker.negotiation import wants_json_ld
from adapter.ngsild.broker.params import (
    check_params,
    comma_list,
    entity_format,
    parse_options,
    parse_page,
)
from adapter.ngsild.broker.payload import check_uri
from adapter.ngsild.broker.query import parse_query
from adapter.ngsild.broker.store import StoredEntity
from adapter.ngsild.broker.temporal import parse_temporal_query, temporal_entity
from adapter.ngsild.broker.views_common import answer, answer_list, broker_of, existing_tenant, link_context_of

__all__ = ["ROUTES"]

_QUERY_PARAMS = frozenset(
    {
        "id",
        "type",
        "idPattern",
        "attrs",
        "q",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
        "options",
        "limit",
        "offset",
        "count",
        "local",
        "format",
    }
)
_TEMPORAL_PARAMS = frozenset(
    {
        "id",
        "type",
        "idPattern",
        "attrs",
        "q",
        "timerel",
        "timeAt",
        "endTimeAt",
        "timeproperty",
        "lastN",
        "options",
        "limit",
        "offset",
        "count",
        "aggrMethods",
        "aggrPeriodDuration",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
    }
)
_TEMPORAL_ENTITY_PARAMS = frozenset(
    {
        "attrs",
        "timerel",
        "timeAt",
        "endTimeAt",
        "timeproperty",
        "lastN",
        "options",
        "aggrMethods",
        "aggrPeriodDuration",
    }
)


def _types(request: web.Request, context: TermContext) -> list[str] | None:
    names = comma_list(request.query.get("type"))
    return None if names is None else [context.expand(name) for name in names]


def _ids(request: web.Request) -> list[str] | None:
    ids = comma_list(request.query.get("id"))
    if ids is not None:
        for entity_id in ids:
            check_uri(entity_id, "id")
    return ids


def _id_pattern(request: web.Request) -> re.Pattern[str] | None:
    text = request.query.get("idPattern")
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise BadRequestData("Invalid value for URI parameter /idPattern/", text) from exc


def _attrs(request: web.Request, context: TermContext) -> frozenset[str] | None:
    names = comma_list(request.query.get("attrs"))
    return None if names is None else frozenset(context.expand(name) for name in names)


async def query_entities(request: web.Request) -> web.Response:
    check_params(request.query, _QUERY_PARAMS)
    json_ld = wants_json_ld(request)
    tenant = existing_tenant(request)
    context = await link_context_of(request)
    params = request.query
    options = parse_options(params)
    fmt = entity_format(params, options)
    page = parse_page(params, options)
    types, ids, pattern, attrs = _types(request, context), _ids(request), _id_pattern(request), _attrs(request, context)
    query = parse_query(params["q"], context) if "q" in params else None
    geo = parse_geo_query(
        params.get("georel"),
        params.get("geometry"),
        params.get("coordinates"),
        context.expand(params.get("geoproperty", "location")),
    )
    if not (types or ids or pattern or attrs or query or geo or params.get("local") == "true"):
        raise BadRequestData("Too broad query", "Need at least one of: type, id, idPattern, attrs, q, georel, local")
    broker = broker_of(request)
    store = broker.store
    checks: list[Callable[[StoredEntity], bool]] = []
    if pattern is not None:
        checks.append(lambda e: pattern.search(e.id) is not None)
    if attrs is not None:
        checks.append(lambda e: not attrs.isdisjoint(e.attrs))
    if query is not None:
        checks.append(lambda e: query.matches(e.attrs))
    if geo is not None:
        checks.append(lambda e: geo.geoproperty in e.attrs and geo.matches(e.attrs[geo.geoproperty].get("value")))
    total: int | None = None
    if checks:
        near = geo is not None and geo.relation == "near"
        # without a count or a distance order, the rows past the page need not be read
        enough = None if page.count or near else page.offset + page.limit
        matched: list[StoredEntity] = []
        rows = store.select_entities(tenant, types=types, ids=ids, shared=True)
        try:
            for entity in rows:
                if all(c(entity) for c in checks):
                    matched.append(entity)
                    if enough is not None and len(matched) >= enough:
                        break
        finally:
            rows.close()
        if geo is not None and near:
            matched.sort(key=lambda e: geo.distance(e.attrs[geo.geoproperty]["value"]))
        total = len(matched)
        selected = matched[page.offset : page.offset + page.limit]
    else:
        if page.count:
            total = store.count_entities(tenant, types=types, ids=ids)
        selected = []
        if page.limit:
            selected = list(
                store.select_entities(tenant, types=types, ids=ids, limit=page.limit, offset=page.offset, shared=True)
            )
    renderings = broker.renderings
    sys_attrs = "sysAttrs" in options
    items = [
        renderings.encoded(e, context, fmt=fmt, sys_attrs=sys_attrs, attrs=attrs, json_ld=json_ld) for e in selected
    ]
    headers = {"NGSILD-Results-Count": str(total)} if page.count else None
    return answer_list(items, context, json_ld=json_ld, headers=headers)


async def query_temporal(request: web.Request) -> web.Response:
    check_params(request.query, _TEMPORAL_PARAMS)
    json_ld = wants_json_ld(request)
    tenant = existing_tenant(request)
    context = await link_context_of(request)
    params = request.query
    options = parse_options(params)
    page = parse_page(params, options)
    tq = parse_temporal_query(params, options)
    types, ids, pattern, attrs = _types(request, context), _ids(request), _id_pattern(request), _attrs(request, context)
    query = parse_query(params["q"], context) if "q" in params else None
    geo = parse_geo_query(
        params.get("georel"),
        params.get("geometry"),
        params.get("coordinates"),
        context.expand(params.get("geoproperty", "location")),
    )
    store = broker_of(request).store
    placed: set[str] | None = None
    if geo is not None:  # on the entity's current GeoProperty, as Mintaka reads it from Orion-LD's entities
        rows = store.select_entities(tenant, types=types, ids=ids, shared=True)
        try:
            placed = {
                e.id for e in rows if geo.geoproperty in e.attrs and geo.matches(e.attrs[geo.geoproperty].get("value"))
            }
        finally:
            rows.close()
    found = []
    for tkey, entity_id, entity_type in store.history_entities(tenant, types=types, ids=ids):
        if pattern is not None and pattern.search(entity_id) is None:
            continue
        if placed is not None and entity_id not in placed:
            continue
        representation = temporal_entity(store, tkey, entity_id, entity_type, tq, context, attrs=attrs, query=query)
        if representation is not None and len(representation) > 2:
            found.append(representation)
    body = found[page.offset : page.offset + page.limit]
    headers = {"NGSILD-Results-Count": str(len(found))} if page.count else None
    return answer(body, context, json_ld=json_ld, headers=headers)


async def temporal_entity_by_id(request: web.Request) -> web.Response:
    check_params(request.query, _TEMPORAL_ENTITY_PARAMS)
    json_ld = wants_json_ld(request)
    entity_id = check_uri(request.match_info["id"], "entityId")
    tenant = existing_tenant(request)
    context = await link_context_of(request)
    options = parse_options(request.query)
    tq = parse_temporal_query(request.query, options)
    attrs = _attrs(request, context)
    store = broker_of(request).store
    history = store.history_entities(tenant, ids=[entity_id])
    if not history:
        raise ResourceNotFound("Entity Not Found", entity_id)
    tkey, _, entity_type = history[0]
    representation = temporal_entity(store, tkey, entity_id, entity_type, tq, context, attrs=attrs)
    if representation is None:
        raise ResourceNotFound("Entity Not Found", f"{entity_id} has none of the attributes asked for")
    return answer(representation, context, json_ld=json_ld)


ROUTES = [
    web.get("/ngsi-ld/v1/entities", query_entities, allow_head=False),
    web.get("/ngsi-ld/v1/temporal/entities", query_temporal, allow_head=False),
    web.get("/ngsi-ld/v1/temporal/entities/{id}", temporal_entity_by_id, allow_head=False),
]
