"""HTTP handler of the temporal write the adapter uses: ``POST /temporal/entities/{id}/attrs``.

Orion-LD answers 501 here (its history is written by TRoE from entity writes only); Scorpio
and Stellio implement it. The embedded broker implements it so that a late observation (older
than the entity's current value) can reach the history without moving the current value back.
"""

from __future__ import annotations

from aiohttp import web

from adapter.ngsild.broker.datetimes import now
from adapter.ngsild.broker.negotiation import body_context_source, read_json, request_content_type
from adapter.ngsild.broker.params import check_params
from adapter.ngsild.broker.payload import check_uri
from adapter.ngsild.broker.temporal import add_temporal_attributes
from adapter.ngsild.broker.views_common import broker_of, existing_tenant, no_content

__all__ = ["ROUTES"]


async def add_temporal_attributes_view(request: web.Request) -> web.Response:
    """Appends instances to the history (204); the entity's current state does not change."""
    check_params(request.query, frozenset())
    entity_id = check_uri(request.match_info["id"], "entityId")
    content_type = request_content_type(request)
    tenant = existing_tenant(request)
    body = await read_json(request)
    contexts = broker_of(request).contexts
    from_body, value = body_context_source(request, content_type, body)
    context = contexts.core if value is None and not from_body else await contexts.resolve(value)
    store = broker_of(request).store
    with store.transaction():
        add_temporal_attributes(store, tenant, entity_id, body, context, now())
    return no_content()


ROUTES = [web.post("/ngsi-ld/v1/temporal/entities/{id}/attrs", add_temporal_attributes_view)]
