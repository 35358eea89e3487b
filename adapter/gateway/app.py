"""The sharing gateway's HTTP application: parse, decide, build, filter, record.

Every route does the same five things, in this order, and nothing else:

1. **authenticate**: the bearer token becomes a ``Principal`` (``adapter.access.tokens``);
2. **parse** the whole request into the typed model (``adapter.gateway.parse``; 400 naming
   what is unknown or wrong);
3. **decide** (``adapter.access.decide``): a refusal naming the rule (403), or the request
   narrowed to one agreement's grant;
4. **build** the broker's or the adapter's request from the narrowed request
   (``adapter.gateway.upstream``) and send it;
5. **filter** the answer again with the decision's rules and render it
   (``adapter.gateway.answers``), after **recording** the access (``adapter.access.log``).

Paths (``NGSILD-Tenant`` names whose data is asked for; one entity type per request):

``GET /ngsi-ld/v1/entities?type=T``, ``/entities/{id}``, ``POST /entityOperations/query``   read
``GET /ngsi-ld/v1/temporal/entities?type=T``, ``/temporal/entities/{id}``,
``POST /temporal/entityOperations/query``                   queryHistory (aggregated grants: published cells)
``POST|GET|DELETE /ngsi-ld/v1/subscriptions[/{id}]``        subscribe
``GET /gateway/access?tenant=T``                            T's access log, for T's data-admin role
``GET /provenance/{t}/lineage|verify?entity&attr&observedAt``  the provenance of a value one may read
``GET /provenance/{t}/uplinks/{n}[/record]``, ``/devices/{devEui}[/records/{seq}]``  whole records
``GET /logs/{t}/checkpoint|key|tile/...|proof/...``, ``/.well-known/jwks.json``        public
``GET|POST /sparql``                                        sparqlQuery, over the graphs decided

Anything else under ``/ngsi-ld/v1`` (writes, batch operations) is refused: partners read.
A path with an encoded slash, backslash or dot, or a dot segment, is refused before any route
runs (``_path_guard``); upstream paths are built from validated segments, never relayed.

Errors are NGSI-LD ProblemDetails: 400 (names the parameter), 401 (no or bad token: the reason
code, never the token), 403 (the rule that denied), 404, 406, 502 (the broker or the adapter
failed), 503 (an issuer's keys cannot be fetched). No input, valid token or not, ends a
request with a traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from adapter.access.decide import (
    CellQuery,
    NarrowedEntityQuery,
    NarrowedTemporalQuery,
)
from adapter.access.model import Principal
from adapter.access.requests import PartnerRequest
from adapter.gateway import parse, upstream
from adapter.gateway.answers import filter_entity, render
from adapter.gateway.cells import CellsRefused, answer_cells
from adapter.gateway.parse import BadRequest, Headers, NotAcceptable
from adapter.gateway._provenance_routes import _ProvenanceRoutes
from adapter.gateway._steps import _API, _HOSTILE_PATH, _LINK, GatewayContext, _Answer, _json, _problem, _route, log
from adapter.gateway._subscription_routes import _SubscriptionRoutes

__all__ = ["GatewayContext", "create_gateway_app"]


@web.middleware
async def _path_guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse a raw path that could name another resource once decoded or normalised."""
    if _HOSTILE_PATH.search(request.raw_path.split("?", 1)[0]):
        return _problem(
            400,
            "BadRequestData",
            "Bad Request",
            "the path has an encoded slash, backslash or dot, or a dot or empty segment: refused",
        )
    return await handler(request)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Answer as answer:
        return answer.response
    except NotAcceptable as exc:
        return _problem(406, "NotAcceptable", "Not Acceptable", f"{exc.parameter}: {exc.reason}")
    except BadRequest as exc:
        return _problem(400, "BadRequestData", "Bad Request", f"{exc.parameter}: {exc.reason}")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = {404: "ResourceNotFound", 405: "OperationNotSupported", 413: "RequestEntityTooLarge"}
        return _problem(exc.status, kind.get(exc.status, "BadRequestData"), exc.reason, exc.reason)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("gateway %s %s: upstream failed: %s", request.method, request.path, exc)
        return _problem(502, "BadGateway", "Bad Gateway", "the broker or the adapter could not be reached")
    except Exception:
        log.exception("gateway %s %s failed", request.method, request.path)
        return _problem(500, "InternalError", "Internal Server Error", "the gateway failed on this request")


def create_gateway_app(context: GatewayContext) -> web.Application:
    """The gateway's aiohttp application."""
    gateway = _Gateway(context)
    app = web.Application(middlewares=[_path_guard, _errors], client_max_size=parse.MAX_BODY_BYTES)
    app.on_startup.append(gateway.start)
    app.on_cleanup.append(gateway.stop)
    app.add_routes(
        [
            web.get(f"{_API}/entities", gateway.query_entities),
            web.get(f"{_API}/entities/{{entity_id}}", gateway.retrieve_entity),
            web.post(f"{_API}/entityOperations/query", gateway.post_query),
            web.get(f"{_API}/temporal/entities", gateway.query_temporal),
            web.get(f"{_API}/temporal/entities/{{entity_id}}", gateway.retrieve_temporal),
            web.post(f"{_API}/temporal/entityOperations/query", gateway.post_temporal_query),
            web.post(f"{_API}/subscriptions", gateway.subscribe),
            web.get(f"{_API}/subscriptions", gateway.list_subscriptions),
            web.get(f"{_API}/subscriptions/{{subscription_id}}", gateway.get_subscription),
            web.delete(f"{_API}/subscriptions/{{subscription_id}}", gateway.unsubscribe),
            web.post("/gateway/notifications/{subscription_id}/{secret}", gateway.notified),
            web.get("/gateway/access", gateway.access),
            web.get("/sparql", gateway.sparql),
            web.post("/sparql", gateway.sparql),
            web.get("/provenance/{tenant}/lineage", gateway.lineage),
            web.get("/provenance/{tenant}/verify", gateway.verify),
            web.get("/provenance/{tenant}/uplinks/{n}", gateway.uplink_record),
            web.get("/provenance/{tenant}/uplinks/{n}/record", gateway.uplink_canonical_record),
            web.get("/provenance/{tenant}/devices/{dev_eui}", gateway.device_chain),
            web.get("/provenance/{tenant}/devices/{dev_eui}/records/{seq}", gateway.device_record),
            web.get("/logs/{tenant}/checkpoint", gateway.log_checkpoint),
            web.get("/logs/{tenant}/key", gateway.log_key),
            web.get("/logs/{tenant}/tile/{rest:.+}", gateway.log_tile),
            web.get("/logs/{tenant}/proof/inclusion", gateway.log_inclusion),
            web.get("/logs/{tenant}/proof/consistency", gateway.log_consistency),
            web.get("/.well-known/jwks.json", gateway.jwks),
            web.route("*", f"{_API}/{{rest:.*}}", gateway.refuse_write),
        ]
    )
    return app


class _Gateway(_SubscriptionRoutes, _ProvenanceRoutes):
    """The routes of NGSI-LD entities and their history (and, from the bases, subscriptions and
    the adapter's surfaces)."""

    # -- current and temporal entities ----------------------------------------------------------

    async def query_entities(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        headers = self._headers(request)
        typed = parse.entity_query(request.query, headers, self.c.contexts)
        return await self._entities(principal, typed, headers, request)

    async def retrieve_entity(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        headers = self._headers(request)
        typed = parse.entity_retrieval(request.match_info["entity_id"], request.query, headers, self.c.contexts)
        return await self._entities(principal, typed, headers, request)

    async def post_query(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        headers = self._headers(request)
        typed = parse.entity_query_body(await request.read(), request.query, headers, self.c.contexts, temporal=False)
        return await self._entities(principal, typed, headers, request)

    async def query_temporal(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        headers = self._headers(request)
        typed = parse.temporal_query(request.query, headers, self.c.contexts)
        return await self._entities(principal, typed, headers, request)

    async def retrieve_temporal(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        headers = self._headers(request)
        typed = parse.temporal_retrieval(request.match_info["entity_id"], request.query, headers, self.c.contexts)
        return await self._entities(principal, typed, headers, request)

    async def post_temporal_query(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        headers = self._headers(request)
        typed = parse.entity_query_body(await request.read(), request.query, headers, self.c.contexts, temporal=True)
        return await self._entities(principal, typed, headers, request)

    async def _entities(
        self, principal: Principal, typed: PartnerRequest, headers: Headers, request: web.Request
    ) -> web.Response:
        accept = headers.json_accept()
        narrowed = self._decide(principal, typed, _route(request))
        if isinstance(narrowed, CellQuery):
            return await self._cells(principal, narrowed, accept)
        assert isinstance(narrowed, NarrowedEntityQuery | NarrowedTemporalQuery)
        built = (
            upstream.entity_query(narrowed, self.vocabulary)
            if isinstance(narrowed, NarrowedEntityQuery)
            else upstream.temporal_query(narrowed, self.vocabulary)
        )
        answer = await self._broker(built)
        request_model = narrowed.request
        if answer.status != 200 or not isinstance(answer.json(), list):
            self._record(
                principal,
                narrowed.access,
                answer,
                reason=f"broker answered {answer.status}",
                agreement=narrowed.grant.agreement,
            )
            return _problem(502, "BadGateway", "Bad Gateway", f"the broker answered {answer.status}")
        found = answer.json()
        if isinstance(narrowed, NarrowedTemporalQuery) and narrowed.rules.area is not None:
            found = await self._with_location_history(narrowed, found)
        kept = [e for e in (filter_entity(x, narrowed.rules, self.short_names) for x in found) if e]
        self._record(
            principal,
            narrowed.access,
            answer,
            agreement=narrowed.grant.agreement,
            entities=[str(e["id"]) for e in kept],
        )
        entity_type = request_model.selection.entity_type
        rendered = [self._with_context(render(e, request_model.projection.format), entity_type, accept) for e in kept]
        extra = {}
        if request_model.page.count and "NGSILD-Results-Count" in answer.headers:
            extra["NGSILD-Results-Count"] = str(int(answer.headers["NGSILD-Results-Count"]))
        if request_model.single:
            if not rendered:
                return _problem(404, "ResourceNotFound", "Not Found", "no such entity, or nothing of it is granted")
            return self._respond(rendered[0], entity_type, accept, extra)
        return self._respond(rendered, entity_type, accept, extra)

    async def _with_location_history(self, narrowed: NarrowedTemporalQuery, found: list[Any]) -> list[Any]:
        """The entities with every location they have had (the filter keeps none that was ever
        outside the area); an entity whose history cannot be read is left out."""
        ids = [e["id"] for e in found if isinstance(e, dict) and isinstance(e.get("id"), str)]
        if not ids:
            return []
        answer = await self._broker(upstream.location_history(narrowed, ids, self.vocabulary))
        histories = answer.json() if answer.status == 200 else None
        located = {h.get("id"): h.get("location") for h in histories or () if isinstance(h, dict)}
        return [
            {**e, "location": located.get(e["id"])} for e in found if isinstance(e, dict) and e.get("id") in located
        ]

    def _with_context(self, entity: dict[str, Any], entity_type: str, accept: str) -> dict[str, Any]:
        if accept == "application/ld+json":
            return {**entity, "@context": self.vocabulary.context(entity_type)}
        return entity

    def _respond(self, body: Any, entity_type: str, accept: str, extra: Mapping[str, str]) -> web.Response:
        headers = dict(extra)
        if accept == "application/json":
            headers["Link"] = _LINK.format(self.vocabulary.context(entity_type))
        return _json(body, headers=headers, content_type=accept)

    async def _cells(self, principal: Principal, query: CellQuery, accept: str) -> web.Response:
        if self.c.cells is None:
            raise _Answer(
                _problem(
                    501,
                    "OperationNotSupported",
                    "Not Implemented",
                    "this gateway keeps no published cells for aggregated agreements",
                )
            )
        try:
            entities, reads = await answer_cells(
                query,
                self.c.cells,
                self.c.session,
                self.c.broker_url,
                self.c.temporal_url,
                self.vocabulary,
                principal=principal,
                now=self.c.clock(),
                publication_delay=self.c.cell_publication_delay,
            )
        except CellsRefused as refused:
            if refused.status == 403:
                self.c.access_log.record(
                    principal, query.access, outcome="refused", reason=refused.reason, path=f"cells {query.entity_type}"
                )
            return _problem(
                refused.status,
                {400: "BadRequestData", 403: "Forbidden"}.get(refused.status, "BadGateway"),
                {400: "Bad Request", 403: "Forbidden"}.get(refused.status, "Bad Gateway"),
                refused.reason,
            )
        aggregation = query.aggregation
        self.c.access_log.record(
            principal,
            query.access,
            outcome="permitted",
            reason=f"published cells ({aggregation.method} per {aggregation.period}, groups of "
            f"{aggregation.min_group_size}+ sensors); {reads} broker reads",
            path=f"cells {query.entity_type} {', '.join(sorted(query.attributes))}",
            agreement=query.grant.agreement,
            entities=[str(e["id"]) for e in entities],
        )
        return self._respond(
            [self._with_context(e, query.entity_type, accept) for e in entities], query.entity_type, accept, {}
        )

    async def refuse_write(self, request: web.Request) -> web.Response:
        await self._principal(request)
        return _problem(
            405 if request.method not in ("GET", "POST") else 403,
            "OperationNotSupported",
            "Forbidden",
            f"{request.method} of this path is not offered: partners read through the gateway",
        )
