"""HTTP handlers of the entity writes and reads by id, and of the batch operations.

Each handler checks the request (parameters, Accept, Content-Type, tenant, body, @context),
runs one operation of ``entities.py`` in one transaction, hands the changes to the
subscriptions, and shapes the answer the way Orion-LD's experimental mode does (reference
note, sections 2 and 3).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapter.ngsild.broker import entities as ops
from adapter.ngsild.broker.datetimes import now
from adapter.ngsild.broker.entities import AttributeOutcome, BatchOutcome
from adapter.ngsild.broker.errors import BadRequestData, BrokerError, LdContextNotAvailable, ResourceNotFound
from adapter.ngsild.broker.jsonld import TermContext
from adapter.ngsild.broker.negotiation import (
    JSON_LD,
    body_context_source,
    read_json,
    request_content_type,
    tenant_of,
    wants_json_ld,
)
from adapter.ngsild.broker.params import check_params, comma_list, entity_format, parse_options
from adapter.ngsild.broker.payload import (
    VALUE_MEMBER,
    check_attribute_name,
    check_uri,
    normalize_attribute,
    normalize_attributes,
    normalize_entity,
)
from adapter.ngsild.broker.render import render_entity
from adapter.ngsild.broker.views_common import (
    answer,
    broker_of,
    existing_tenant,
    forwarded_headers,
    json_answer,
    link_context_of,
    no_content,
)

__all__ = ["ROUTES"]

_NO_ID = "No Entity::id"


async def _body_context(request: web.Request, content_type: str, body: Any) -> TermContext:
    from_body, value = body_context_source(request, content_type, body)
    contexts = broker_of(request).contexts
    if value is None and not from_body:
        return contexts.core
    return await contexts.resolve(value)


def _path_id(request: web.Request) -> str:
    return check_uri(request.match_info["id"], "entityId")


async def create_entity(request: web.Request) -> web.Response:
    check_params(request.query, frozenset())
    wants_json_ld(request)
    content_type = request_content_type(request)
    tenant = tenant_of(request)
    body = await read_json(request)
    context = await _body_context(request, content_type, body)
    item = normalize_entity(body, context)
    broker = broker_of(request)
    with broker.store.transaction():
        broker.store.add_tenant(tenant)
        change = ops.create_entity(broker.store, tenant, item, now())
    broker.publish(tenant, [change], forwarded_headers(request))
    return web.Response(status=201, headers={"Location": f"/ngsi-ld/v1/entities/{item.id}"})


async def get_entity(request: web.Request) -> web.Response:
    check_params(request.query, frozenset({"attrs", "options", "format"}))
    json_ld = wants_json_ld(request)
    entity_id = _path_id(request)
    tenant = existing_tenant(request)
    context = await link_context_of(request)
    options = parse_options(request.query)
    fmt = entity_format(request.query, options)
    names = comma_list(request.query.get("attrs"))
    attrs = None if names is None else {context.expand(name) for name in names}
    entity = broker_of(request).store.get_entity(tenant, entity_id)
    if entity is None or (attrs is not None and attrs.isdisjoint(entity.attrs)):
        raise ResourceNotFound("Entity Not Found", entity_id)
    body = render_entity(entity, context, fmt=fmt, sys_attrs="sysAttrs" in options, attrs=attrs)
    return answer(body, context, json_ld=json_ld)


async def delete_entity(request: web.Request) -> web.Response:
    check_params(request.query, frozenset())
    wants_json_ld(request)
    entity_id = _path_id(request)
    tenant = existing_tenant(request)
    broker = broker_of(request)
    with broker.store.transaction():
        ops.delete_entity(broker.store, tenant, entity_id)
    return no_content()


def _attributes_answer(outcome: AttributeOutcome, context: TermContext, *, keep_names: bool) -> web.Response:
    """204 on full success; one failure and no success → that failure alone; else 207."""
    if not outcome.failures:
        return no_content()
    compact = context.compact
    if not outcome.updated and len(outcome.failures) == 1:
        failure = outcome.failures[0]
        single: dict[str, Any] = {"attributes": [compact(failure.name)]} if keep_names else {}
        single.update(title=failure.title, detail=failure.detail)
        return answer(single, context, json_ld=False, status=failure.status)
    body = {
        "updated": sorted(compact(name) for name in outcome.updated),
        "notUpdated": [
            {"attributes": [compact(f.name)], "statusCode": f.status, "title": f.title, "detail": f.detail}
            for f in outcome.failures
        ],
    }
    return answer(body, context, json_ld=False, status=207)


async def append_attributes(request: web.Request) -> web.Response:
    check_params(request.query, frozenset({"options"}))
    options = parse_options(request.query)
    wants_json_ld(request)
    entity_id = _path_id(request)
    content_type = request_content_type(request)
    tenant = existing_tenant(request)
    body = await read_json(request)
    context = await _body_context(request, content_type, body)
    attrs = normalize_attributes(body, context)
    broker = broker_of(request)
    with broker.store.transaction():
        outcome = ops.append_attributes(
            broker.store, tenant, entity_id, attrs, now(), no_overwrite="noOverwrite" in options
        )
    broker.publish(tenant, outcome.changes, forwarded_headers(request))
    return _attributes_answer(outcome, context, keep_names=True)


async def update_attributes(request: web.Request) -> web.Response:
    check_params(request.query, frozenset({"options"}))
    parse_options(request.query)
    wants_json_ld(request)
    entity_id = _path_id(request)
    content_type = request_content_type(request)
    tenant = existing_tenant(request)
    body = await read_json(request)
    context = await _body_context(request, content_type, body)
    attrs = normalize_attributes(body, context)
    broker = broker_of(request)
    with broker.store.transaction():
        outcome = ops.update_attributes(broker.store, tenant, entity_id, attrs, now())
    broker.publish(tenant, outcome.changes, forwarded_headers(request))
    return _attributes_answer(outcome, context, keep_names=False)


async def write_attribute(request: web.Request) -> web.Response:
    """``PUT`` replaces one attribute; ``PATCH`` updates the members sent and keeps the others."""
    check_params(request.query, frozenset())
    wants_json_ld(request)
    entity_id = _path_id(request)
    content_type = request_content_type(request)
    tenant = existing_tenant(request)
    body = await read_json(request)
    context = await _body_context(request, content_type, body)
    name = request.match_info["attr"]
    check_attribute_name(name)
    iri = context.expand(name)
    if not isinstance(body, dict):
        raise BadRequestData("Invalid payload", "an attribute must be a JSON object")
    fragment = {key: value for key, value in body.items() if key != "@context"}
    broker = broker_of(request)
    partial = request.method == "PATCH"
    if partial:
        entity = broker.store.get_entity(tenant, entity_id)
        old = None if entity is None else entity.attrs.get(iri)
        if old is not None:
            # members not sent come from the stored attribute, so the fragment checks as a whole
            fragment.setdefault("type", old["type"])
            member = VALUE_MEMBER.get(fragment["type"], "value")
            if member not in fragment and member in old:
                fragment[member] = old[member]
    attribute = normalize_attribute(iri, fragment, context)
    with broker.store.transaction():
        change = ops.replace_attribute(broker.store, tenant, entity_id, iri, attribute, now(), partial=partial)
    broker.publish(tenant, [change], forwarded_headers(request))
    return no_content()


async def delete_attribute(request: web.Request) -> web.Response:
    check_params(request.query, frozenset())
    wants_json_ld(request)
    entity_id = _path_id(request)
    tenant = existing_tenant(request)
    context = await link_context_of(request)
    broker = broker_of(request)
    with broker.store.transaction():
        ops.delete_attribute(broker.store, tenant, entity_id, context.expand(request.match_info["attr"]), now())
    return no_content()


# --- batch operations -------------------------------------------------------------------


def _item_id(raw: Any) -> str:
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else _NO_ID


async def _batch_items(
    request: web.Request, body: list[Any], content_type: str, *, require_type: bool
) -> list[ops.BatchItem]:
    """Each array item checked: an ``EntityInput``, or ``(id, error)`` for a 207 item."""
    contexts = broker_of(request).contexts
    _, link = body_context_source(request, content_type, body)
    shared = None if content_type == JSON_LD else (contexts.core if link is None else await contexts.resolve(link))
    items: list[ops.BatchItem] = []
    for raw in body:
        try:
            if shared is not None:
                if isinstance(raw, dict) and "@context" in raw:
                    raise BadRequestData(
                        "Mismatch between /Content-Type/ and contents of the request payload body",
                        "an @context in the body needs Content-Type application/ld+json",
                    )
                context = shared
            else:
                if not isinstance(raw, dict) or "@context" not in raw:
                    raise BadRequestData("@context missing in JSON payload", "Content-Type is application/ld+json")
                context = contexts.cached(raw["@context"]) or await contexts.resolve(raw["@context"])
            items.append(normalize_entity(raw, context, require_type=require_type))
        except LdContextNotAvailable:
            raise
        except BrokerError as exc:
            items.append((_item_id(raw), exc))
    return items


def _errors(outcome: BatchOutcome) -> list[dict[str, Any]]:
    return [{"entityId": entity_id, "error": error.problem(with_status=True)} for entity_id, error in outcome.errors]


async def _batch_body(request: web.Request) -> tuple[str, list[Any]]:
    content_type = request_content_type(request)
    body = await read_json(request)
    if not isinstance(body, list):
        raise BadRequestData("Invalid payload", "the payload of a batch operation must be a JSON array")
    if not body:
        raise BadRequestData("Empty Array", "the payload of a batch operation must not be empty")
    return content_type, body


async def batch_create(request: web.Request) -> web.Response:
    check_params(request.query, frozenset())
    wants_json_ld(request)
    tenant = tenant_of(request)
    content_type, body = await _batch_body(request)
    items = await _batch_items(request, body, content_type, require_type=True)
    broker = broker_of(request)
    with broker.store.transaction():
        broker.store.add_tenant(tenant)
        outcome = ops.batch_create(broker.store, tenant, items, now())
    broker.publish(tenant, outcome.changes, forwarded_headers(request))
    if outcome.errors:
        return json_answer({"success": outcome.created, "errors": _errors(outcome)}, status=207)
    return json_answer(outcome.created, status=201)


async def batch_upsert(request: web.Request) -> web.Response:
    check_params(request.query, frozenset({"options"}))
    options = parse_options(request.query)
    if "update" in options and "replace" in options:
        raise BadRequestData("Incoherent value for /options/ URI param", "update and replace")
    wants_json_ld(request)
    tenant = tenant_of(request)
    content_type, body = await _batch_body(request)
    items = await _batch_items(request, body, content_type, require_type=False)
    broker = broker_of(request)
    with broker.store.transaction():
        broker.store.add_tenant(tenant)
        outcome = ops.batch_upsert(broker.store, tenant, items, now(), update="update" in options)
    broker.publish(tenant, outcome.changes, forwarded_headers(request))
    if outcome.errors:
        return json_answer({"success": outcome.created + outcome.updated, "errors": _errors(outcome)}, status=207)
    if outcome.created:
        return json_answer(outcome.created, status=201)
    return no_content()


async def batch_update(request: web.Request) -> web.Response:
    check_params(request.query, frozenset({"options"}))
    options = parse_options(request.query)
    wants_json_ld(request)
    tenant = existing_tenant(request)
    content_type, body = await _batch_body(request)
    items = await _batch_items(request, body, content_type, require_type=False)
    broker = broker_of(request)
    with broker.store.transaction():
        outcome = ops.batch_update(broker.store, tenant, items, now(), no_overwrite="noOverwrite" in options)
    broker.publish(tenant, outcome.changes, forwarded_headers(request))
    if outcome.errors:
        return json_answer({"success": outcome.updated, "errors": _errors(outcome)}, status=207)
    return no_content()


async def batch_delete(request: web.Request) -> web.Response:
    check_params(request.query, frozenset())
    wants_json_ld(request)
    tenant = existing_tenant(request)
    _, body = await _batch_body(request)
    for item in body:
        check_uri(item, "entityId")
    broker = broker_of(request)
    with broker.store.transaction():
        outcome = ops.batch_delete(broker.store, tenant, body)
    if outcome.errors:
        return json_answer({"success": outcome.updated, "errors": _errors(outcome)}, status=207)
    return no_content()


ROUTES = [
    web.post("/ngsi-ld/v1/entities", create_entity),
    web.get("/ngsi-ld/v1/entities/{id}", get_entity, allow_head=False),
    web.delete("/ngsi-ld/v1/entities/{id}", delete_entity),
    web.post("/ngsi-ld/v1/entities/{id}/attrs", append_attributes),
    web.patch("/ngsi-ld/v1/entities/{id}/attrs", update_attributes),
    web.put("/ngsi-ld/v1/entities/{id}/attrs/{attr}", write_attribute),
    web.patch("/ngsi-ld/v1/entities/{id}/attrs/{attr}", write_attribute),
    web.delete("/ngsi-ld/v1/entities/{id}/attrs/{attr}", delete_attribute),
    web.post("/ngsi-ld/v1/entityOperations/create", batch_create),
    web.post("/ngsi-ld/v1/entityOperations/upsert", batch_upsert),
    web.post("/ngsi-ld/v1/entityOperations/update", batch_update),
    web.post("/ngsi-ld/v1/entityOperations/delete", batch_delete),
]
