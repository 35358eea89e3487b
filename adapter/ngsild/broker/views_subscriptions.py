"""HTTP handlers of subscriptions, and of the contexts the broker serves for them.

A notification names its context in a ``Link`` header, which holds one URL. A subscription
created with an inline context (or a list of several) therefore gets that context stored
and served at ``/ngsi-ld/v1/jsonldContexts/<hash>``, as Orion-LD's context server does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from adapter.ngsild.broker.datetimes import now
from adapter.ngsild.broker.errors import AlreadyExists, BadRequestData, ResourceNotFound
from adapter.ngsild.broker.jsonld import CORE_URL, TermContext
from adapter.ngsild.broker.negotiation import (
    body_context_source,
    read_json,
    request_content_type,
    tenant_of,
    wants_json_ld,
)
from adapter.ngsild.broker.params import check_params, parse_options, parse_page
from adapter.ngsild.broker.payload import check_uri
from adapter.ngsild.broker.store import dumps
from adapter.ngsild.broker.subscriptions import (
    Subscription,
    check_subscription,
    compile_subscription,
    new_status,
    new_subscription_id,
)
from adapter.ngsild.broker.views_common import (
    answer,
    broker_of,
    existing_tenant,
    json_answer,
    link_context_of,
    no_content,
)

__all__ = ["ROUTES"]


async def _context_and_link(request: web.Request, content_type: str, body: Any) -> tuple[TermContext | None, str]:
    """The request's own context (``None`` when it names none) and the URL notifications link to."""
    from_body, value = body_context_source(request, content_type, body)
    broker = broker_of(request)
    if value is None:
        return None, CORE_URL
    context = await broker.contexts.resolve(value)
    if isinstance(value, str):
        return context, value
    context_id = hashlib.sha256(dumps(value).encode()).hexdigest()[:32]
    broker.store.save_context(context_id, value)
    return context, f"{request.url.origin()}/ngsi-ld/v1/jsonldContexts/{context_id}"


def _subscription(request: web.Request, tenant: str) -> Subscription:
    sub_id = check_uri(request.match_info["id"], "subscriptionId")
    sub = broker_of(request).subscriptions.get(tenant, sub_id)
    if sub is None:
        raise ResourceNotFound("Subscription Not Found", sub_id)
    return sub


async def create_subscription(request: web.Request) -> web.Response:
    check_params(request.query, frozenset())
    wants_json_ld(request)
    content_type = request_content_type(request)
    tenant = tenant_of(request)
    body = await read_json(request)
    broker = broker_of(request)
    context, link = await _context_and_link(request, content_type, body)
    fields = check_subscription(body)
    fields.setdefault("id", new_subscription_id())
    if broker.subscriptions.get(tenant, fields["id"]) is not None:
        raise AlreadyExists("Subscription already exists", fields["id"])
    moment = now()
    sub = compile_subscription(tenant, fields, context or broker.contexts.core, link, moment, moment, new_status())
    with broker.store.transaction():
        broker.store.add_tenant(tenant)
        broker.store.save_subscription(tenant, sub.id, sub.stored(), sub.status)
    broker.subscriptions.add(sub)
    return web.Response(status=201, headers={"Location": f"/ngsi-ld/v1/subscriptions/{sub.id}"})


async def list_subscriptions(request: web.Request) -> web.Response:
    check_params(request.query, frozenset({"limit", "offset", "count", "options"}))
    json_ld = wants_json_ld(request)
    tenant = existing_tenant(request)
    context = await link_context_of(request)
    options = parse_options(request.query)
    page = parse_page(request.query, options)
    subs = broker_of(request).subscriptions.list(tenant)
    body = [
        sub.render(context, sys_attrs="sysAttrs" in options) for sub in subs[page.offset : page.offset + page.limit]
    ]
    headers = {"NGSILD-Results-Count": str(len(subs))} if page.count else None
    return answer(body, context, json_ld=json_ld, headers=headers)


async def get_subscription(request: web.Request) -> web.Response:
    check_params(request.query, frozenset({"options"}))
    json_ld = wants_json_ld(request)
    tenant = existing_tenant(request)
    context = await link_context_of(request)
    options = parse_options(request.query)
    sub = _subscription(request, tenant)
    return answer(sub.render(context, sys_attrs="sysAttrs" in options), context, json_ld=json_ld)


async def update_subscription(request: web.Request) -> web.Response:
    check_params(request.query, frozenset())
    wants_json_ld(request)
    content_type = request_content_type(request)
    tenant = existing_tenant(request)
    sub = _subscription(request, tenant)
    body = await read_json(request)
    broker = broker_of(request)
    context, link = await _context_and_link(request, content_type, body)
    patch = check_subscription(body, partial=True)
    if patch.get("id", sub.id) != sub.id:
        raise BadRequestData("The subscription id cannot be changed", str(patch["id"]))
    fields = {**sub.fields, **patch}
    if "notification" in patch:
        fields["notification"] = {**sub.fields["notification"], **patch["notification"]}
    fields = check_subscription(fields)
    if context is None:
        context, link = sub.context, sub.link
    updated = compile_subscription(tenant, fields, context, link, sub.created_at, now(), sub.status)
    with broker.store.transaction():
        broker.store.save_subscription(tenant, updated.id, updated.stored(), updated.status)
    broker.subscriptions.add(updated)
    return no_content()


async def delete_subscription(request: web.Request) -> web.Response:
    check_params(request.query, frozenset())
    wants_json_ld(request)
    tenant = existing_tenant(request)
    sub = _subscription(request, tenant)
    broker = broker_of(request)
    with broker.store.transaction():
        broker.store.delete_subscription(tenant, sub.id)
    broker.subscriptions.remove(tenant, sub.id)
    return no_content()


async def get_jsonld_context(request: web.Request) -> web.Response:
    check_params(request.query, frozenset())
    value = broker_of(request).store.get_context(request.match_info["id"])
    if value is None:
        raise ResourceNotFound("Context Not Found", request.match_info["id"])
    return json_answer({"@context": value})


ROUTES = [
    web.post("/ngsi-ld/v1/subscriptions", create_subscription),
    web.get("/ngsi-ld/v1/subscriptions", list_subscriptions, allow_head=False),
    web.get("/ngsi-ld/v1/subscriptions/{id}", get_subscription, allow_head=False),
    web.patch("/ngsi-ld/v1/subscriptions/{id}", update_subscription),
    web.delete("/ngsi-ld/v1/subscriptions/{id}", delete_subscription),
    web.get("/ngsi-ld/v1/jsonldContexts/{id}", get_jsonld_context, allow_head=False),
]
