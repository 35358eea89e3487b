"""Pieces every HTTP handler uses: the broker key, tenants, contexts, answers.

Answer rules (reference note, section 1): JSON answers to GETs carry a ``Link`` header with
the request's context; JSON-LD answers put ``@context`` in each entity instead; 201, 204 and
batch answers carry no ``Link``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from adapter.ngsild.broker.errors import NonExistingTenant
from adapter.ngsild.broker.jsonld import CORE_URL, TermContext, link_header
from adapter.ngsild.broker.negotiation import JSON, JSON_LD, link_context, tenant_of
from adapter.ngsild.broker.notifier import FORWARDED_HEADERS
from adapter.ngsild.broker.state import Broker
from adapter.ngsild.broker.store import dumps

__all__ = [
    "BROKER",
    "answer",
    "answer_list",
    "broker_of",
    "existing_tenant",
    "forwarded_headers",
    "json_answer",
    "link_context_of",
    "no_content",
]

BROKER = web.AppKey("broker", Broker)


def broker_of(request: web.Request) -> Broker:
    return request.app[BROKER]


def existing_tenant(request: web.Request) -> str:
    """The request's tenant, which must exist already (only some writes create tenants)."""
    tenant = tenant_of(request)
    if not broker_of(request).store.has_tenant(tenant):
        raise NonExistingTenant("No such tenant", tenant)
    return tenant


async def link_context_of(request: web.Request) -> TermContext:
    """The context of a request without body: its ``Link`` header, else the core context."""
    url = link_context(request)
    contexts = broker_of(request).contexts
    return contexts.core if url is None else await contexts.resolve(url)


def forwarded_headers(request: web.Request) -> dict[str, str]:
    """Headers a notification copies from the request that triggered it."""
    return {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}


def json_answer(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=dumps(body).encode(), content_type=JSON, headers=headers)


def answer(
    body: Any, context: TermContext, *, json_ld: bool, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An entity (or list) answer: ``@context`` in each object for JSON-LD, else a ``Link``."""
    if json_ld:
        context_value = context.body_context()
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, dict):
                item["@context"] = context_value
    return _encoded_answer(dumps(body), context, json_ld=json_ld, status=status, headers=headers)


def answer_list(
    items: list[str], context: TermContext, *, json_ld: bool, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A list answer from its elements already encoded (``Renderings.encoded``: with their
    ``@context`` member for JSON-LD); the same bytes as ``answer`` on the decoded list."""
    return _encoded_answer("[" + ",".join(items) + "]", context, json_ld=json_ld, headers=headers)


def _encoded_answer(
    text: str, context: TermContext, *, json_ld: bool, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    extra = dict(headers or {})
    if json_ld:
        return web.Response(status=status, body=text.encode(), content_type=JSON_LD, headers=extra)
    # an inline context has no URL to link to; the core context is the honest fallback
    extra["Link"] = link_header(context.link or CORE_URL)
    return web.Response(status=status, body=text.encode(), content_type=JSON, headers=extra)


def no_content() -> web.Response:
    return web.Response(status=204)
