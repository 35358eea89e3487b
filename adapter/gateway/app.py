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

import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from adapter.access.cells import CellStore
from adapter.access.decide import (
    AccessLogDecision,
    CellQuery,
    Narrowed,
    NarrowedEntityQuery,
    NarrowedSubscription,
    NarrowedTemporalQuery,
    Policies,
    RecordDecision,
    Refusal,
    SparqlDecision,
    ValueProvenanceDecision,
    decide,
)
from adapter.access.log import NO_TENANT, AccessLog
from adapter.access.model import AccessRequest, Action, Principal
from adapter.access.requests import EntityQuery, PartnerRequest, SubscriptionRequest, TemporalQuery
from adapter.gateway import parse, upstream
from adapter.gateway.answers import filter_entity, partner_lineage, partner_verification, render
from adapter.gateway.cells import CellsRefused, answer_cells
from adapter.gateway.parse import BadRequest, Headers, NotAcceptable
from adapter.gateway.endpoints import (
    EndpointPolicy,
    EndpointRefused,
    GuardedConnector,
    deliver,
    notification_session,
)
from adapter.gateway.subscriptions import MAX_PER_PRINCIPAL, GatewaySubscription, SubscriptionStore
from adapter.gateway.upstream import UpstreamAnswer, Vocabulary

__all__ = ["GatewayContext", "create_gateway_app"]

log = logging.getLogger(__name__)

_API = "/ngsi-ld/v1"
_NGSI_PROBLEMS = "https://uri.etsi.org/ngsi-ld/errors/"
_LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
# An encoded slash, backslash, dot or NUL, or a dot segment or an empty segment, in the raw path.
_HOSTILE_PATH = re.compile(r"%(?:2[fFeE]|5[cC]|00)|\\|(?:^|/)\.{1,2}(?:/|$)|//")
#: headers of the adapter's answers that are passed on (record digests, cache rules)
_RECORD_HEADERS = ("Content-Type", "Repr-Digest", "Record-Index")
_LOG_HEADERS = ("Content-Type", "Cache-Control")


@dataclass
class GatewayContext:
    """What the gateway works with.

    ``endpoints`` is the notification endpoint policy (``adapter.gateway.endpoints``): the
    URL allowlist, and the addresses refused at every connection (``notifier``'s connector).
    ``validate`` turns a bearer token into a ``Principal`` or raises an error with a ``reason``;
    ``policies`` decide (``adapter.access.decide.Policies``); ``contexts`` maps each entity type
    to its Smart Data Models @context URL; ``adapter_terms`` the adapter's own terms to their
    IRIs (``wasDerivedFrom``...); ``adapter_url`` and ``adapter_token``: ``ngsild-adapter serve``
    (SPARQL, provenance, logs) and the secret it requires.
    """

    validate: Callable[[str], Awaitable[Principal]]
    policies: Policies
    broker_url: str
    session: aiohttp.ClientSession
    contexts: Mapping[str, str]
    access_log: AccessLog
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    subscriptions: SubscriptionStore | None = None
    public_url: str | None = None  # how the broker reaches the gateway (for notifications)
    endpoints: EndpointPolicy = EndpointPolicy(())  # where partners' notifications may go (deny by default)
    notifier: aiohttp.ClientSession | None = None  # a notification_session of ``endpoints`` (made if None)
    adapter_url: str | None = None
    adapter_token: str | None = None
    adapter_terms: Mapping[str, str] | None = None
    cells: CellStore | None = None  # the published cells of aggregated grants (adapter.access.cells)
    cell_publication_delay: timedelta = timedelta(hours=1)


class _Answer(Exception):
    """A finished answer, raised from deep in a route (a refusal, an error)."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


def _problem(status: int, kind: str, title: str, detail: str) -> web.Response:
    body = {"type": _NGSI_PROBLEMS + kind, "title": title, "status": status, "detail": detail}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _json(value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None,
          content_type: str = "application/json") -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, headers=headers, content_type=content_type)


@web.middleware
async def _path_guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    """Refuse a raw path that could name another resource once decoded or normalised."""
    if _HOSTILE_PATH.search(request.raw_path.split("?", 1)[0]):
        return _problem(400, "BadRequestData", "Bad Request",
                        "the path has an encoded slash, backslash or dot, or a dot or empty segment: refused")
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
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
    app.add_routes([
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
    ])
    return app


class _Gateway:
    def __init__(self, context: GatewayContext) -> None:
        self.c = context
        self.vocabulary = Vocabulary(context.contexts, dict(context.adapter_terms or _default_adapter_terms()))
        self.short_names = self.vocabulary.short_names()
        self._own_notifier = context.notifier is None
        self.notifier = context.notifier

    async def start(self, app: web.Application) -> None:
        if self.notifier is None:
            self.notifier = notification_session(self.c.endpoints)

    async def stop(self, app: web.Application) -> None:
        if self._own_notifier and self.notifier is not None:
            await self.notifier.close()

    # -- the steps every route takes ----------------------------------------------------------

    def _headers(self, request: web.Request) -> Headers:
        return Headers(request.headers, self.c.policies.tenants)

    async def _principal(self, request: web.Request) -> Principal:
        values = request.headers.getall("Authorization", [])
        scheme, _, token = (values[0] if len(values) == 1 else "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Answer(_problem(401, "NoBearerToken", "Unauthorized",
                                   "an access token is required (Authorization: Bearer ...), once"))
        try:
            return await self.c.validate(token.strip())
        except Exception as exc:  # InvalidToken: its reason code, never the token
            reason = getattr(exc, "reason", None)
            if not isinstance(reason, str):
                raise
            if reason == "issuer_unavailable":
                raise _Answer(_problem(503, "IssuerUnavailable", "Service Unavailable",
                                       "the token's issuer cannot be reached to check its keys; retry later")) from exc
            response = _problem(401, "InvalidToken", "Unauthorized", f"the access token is refused: {reason}")
            response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{reason}"'
            raise _Answer(response) from exc

    def _decide(self, principal: Principal, typed: PartnerRequest, route: str) -> Narrowed:
        outcome = decide(principal, typed, self.c.policies, now=self.c.clock())
        if isinstance(outcome, Refusal):
            access = outcome.access or AccessRequest(_action_of(typed), NO_TENANT, "-", getattr(typed, "purpose", None))
            self.c.access_log.record(principal, access, outcome="refused", reason=outcome.reason, path=route)
            raise _Answer(_problem(403, "Forbidden", "Forbidden", outcome.reason))
        return outcome

    def _record(self, principal: Principal, access: AccessRequest, answer: UpstreamAnswer, *, reason: str = "",
                agreement: str | None = None, entities: Sequence[str] = ()) -> None:
        """A permitted access, with what the gateway asked (built from the decision, never the client's path)."""
        self.c.access_log.record(principal, access, outcome="permitted", reason=reason, path=answer.target,
                                 agreement=agreement, entities=entities)

    async def _broker(self, built: upstream.Upstream) -> UpstreamAnswer:
        return await upstream.send(self.c.session, self.c.broker_url, built)

    def _adapter(self) -> str:
        if self.c.adapter_url is None:
            raise _Answer(_problem(501, "OperationNotSupported", "Not Implemented",
                                   "this gateway offers no provenance, logs or SPARQL"))
        return self.c.adapter_url

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

    async def _entities(self, principal: Principal, typed: PartnerRequest, headers: Headers,
                        request: web.Request) -> web.Response:
        accept = headers.json_accept()
        narrowed = self._decide(principal, typed, _route(request))
        if isinstance(narrowed, CellQuery):
            return await self._cells(principal, narrowed, accept)
        assert isinstance(narrowed, NarrowedEntityQuery | NarrowedTemporalQuery)
        built = (upstream.entity_query(narrowed, self.vocabulary) if isinstance(narrowed, NarrowedEntityQuery)
                 else upstream.temporal_query(narrowed, self.vocabulary))
        answer = await self._broker(built)
        request_model = narrowed.request
        if answer.status != 200 or not isinstance(answer.json(), list):
            self._record(principal, narrowed.access, answer, reason=f"broker answered {answer.status}",
                         agreement=narrowed.grant.agreement)
            return _problem(502, "BadGateway", "Bad Gateway", f"the broker answered {answer.status}")
        found = answer.json()
        if isinstance(narrowed, NarrowedTemporalQuery) and narrowed.rules.area is not None:
            found = await self._with_location_history(narrowed, found)
        kept = [e for e in (filter_entity(x, narrowed.rules, self.short_names) for x in found) if e]
        self._record(principal, narrowed.access, answer, agreement=narrowed.grant.agreement,
                     entities=[str(e["id"]) for e in kept])
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
        return [{**e, "location": located.get(e["id"])} for e in found if isinstance(e, dict) and e.get("id") in located]

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
            raise _Answer(_problem(501, "OperationNotSupported", "Not Implemented",
                                   "this gateway keeps no published cells for aggregated agreements"))
        try:
            entities, reads = await answer_cells(query, self.c.cells, self.c.session, self.c.broker_url,
                                                 self.vocabulary, principal=principal, now=self.c.clock(),
                                                 publication_delay=self.c.cell_publication_delay)
        except CellsRefused as refused:
            if refused.status == 403:
                self.c.access_log.record(principal, query.access, outcome="refused", reason=refused.reason,
                                         path=f"cells {query.entity_type}")
            return _problem(refused.status, {400: "BadRequestData", 403: "Forbidden"}.get(refused.status, "BadGateway"),
                            {400: "Bad Request", 403: "Forbidden"}.get(refused.status, "Bad Gateway"), refused.reason)
        aggregation = query.aggregation
        self.c.access_log.record(
            principal, query.access, outcome="permitted",
            reason=f"published cells ({aggregation.method} per {aggregation.period}, groups of "
                   f"{aggregation.min_group_size}+ sensors); {reads} broker reads",
            path=f"cells {query.entity_type} {', '.join(sorted(query.attributes))}", agreement=query.grant.agreement,
            entities=[str(e["id"]) for e in entities])
        return self._respond([self._with_context(e, query.entity_type, accept) for e in entities], query.entity_type,
                             accept, {})

    # -- subscriptions ----------------------------------------------------------------------------

    def _store(self) -> SubscriptionStore:
        if self.c.subscriptions is None or not self.c.public_url:
            raise _Answer(_problem(501, "OperationNotSupported", "Not Implemented",
                                   "this gateway takes no subscriptions"))
        return self.c.subscriptions

    async def subscribe(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        store = self._store()
        headers = self._headers(request)
        body = parse.json_body(await request.read())
        typed = parse.subscription_request(orjson.dumps(body), headers, self.c.contexts)
        narrowed = self._decide(principal, typed, _route(request))
        assert isinstance(narrowed, NarrowedSubscription)
        try:
            endpoint = self.c.endpoints.check(typed.endpoint)
            assert self.notifier is not None and isinstance(self.notifier.connector, GuardedConnector)
            await self.notifier.connector.check_resolved(endpoint)
        except EndpointRefused as exc:
            why = f"the notification endpoint is not one this gateway may call ({exc.reason}); ask for it to be allowed"
            self.c.access_log.record(principal, narrowed.access, outcome="refused", path=_route(request), reason=why)
            return _problem(403, "Forbidden", "Forbidden", why)
        if store.count_owned(principal) >= MAX_PER_PRINCIPAL:
            why = f"at most {MAX_PER_PRINCIPAL} subscriptions per principal: delete one first"
            self.c.access_log.record(principal, narrowed.access, outcome="refused", path=_route(request), reason=why)
            return _problem(403, "Forbidden", "Forbidden", why)
        expires = narrowed.request.expires_at
        assert expires is not None  # the decision caps every subscription's lifetime
        body["expiresAt"] = upstream.iso(expires)  # kept, so that each notification is decided with it
        subscription = store.add(
            tenant=narrowed.access.tenant, entity_type=narrowed.access.entity_type, purpose=narrowed.access.purpose,
            principal=principal, endpoint=str(endpoint), accept=typed.accept,
            attributes=sorted(narrowed.request.attributes or ()), request=body,
        )
        answer = await self._subscribe_at_broker(subscription, narrowed)
        if answer is None:
            store.remove(subscription.id)
            return _problem(502, "BadGateway", "Bad Gateway", "the broker refused the subscription")
        self._record(principal, narrowed.access, answer, reason="subscribed", agreement=narrowed.grant.agreement)
        return web.Response(status=201, headers={"Location": f"{_API}/subscriptions/{subscription.id}"})

    def _broker_subscription(self, subscription: GatewaySubscription, narrowed: NarrowedSubscription
                             ) -> upstream.Upstream:
        assert self.c.public_url is not None
        notify = f"{self.c.public_url.rstrip('/')}/gateway/notifications/{subscription.id}/{subscription.secret}"
        return upstream.broker_subscription(narrowed, notify, self.vocabulary)

    async def _subscribe_at_broker(self, subscription: GatewaySubscription, narrowed: NarrowedSubscription
                                   ) -> UpstreamAnswer | None:
        """The broker subscription built from ``narrowed``; the store keeps its id and digest."""
        built = self._broker_subscription(subscription, narrowed)
        answer = await self._broker(built)
        if answer.status != 201:
            log.warning("subscription %s: the broker answered %d", subscription.id, answer.status)
            return None
        assert self.c.subscriptions is not None and built.body is not None
        self.c.subscriptions.set_broker_id(subscription.id, answer.headers.get("Location", "").rsplit("/", 1)[-1],
                                           hashlib.sha256(built.body).hexdigest())
        return answer

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        parse.no_parameters(request.query)
        store = self.c.subscriptions
        return _json([s.to_ngsi() for s in store.owned_by(principal)] if store else [])

    async def _own(self, request: web.Request) -> tuple[Principal, GatewaySubscription]:
        principal = await self._principal(request)
        subscription_id = parse.subscription_id(request.match_info["subscription_id"])
        store = self.c.subscriptions
        found = store.get(subscription_id) if store else None
        if found is None or not found.owned_by(principal):  # someone else's is "not found": no leak
            raise _Answer(_problem(404, "ResourceNotFound", "Not Found", "no such subscription of yours"))
        return principal, found

    async def get_subscription(self, request: web.Request) -> web.Response:
        _, found = await self._own(request)
        return _json(found.to_ngsi())

    async def unsubscribe(self, request: web.Request) -> web.Response:
        _, found = await self._own(request)
        await self._drop(found)
        return web.Response(status=204)

    async def _drop(self, subscription: GatewaySubscription) -> None:
        if subscription.broker_id:
            try:
                await self._broker(upstream.delete_broker_subscription(subscription.tenant, subscription.broker_id))
            except ValueError:
                log.warning("subscription %s: broker id %r not deletable", subscription.id, subscription.broker_id)
        assert self.c.subscriptions is not None
        self.c.subscriptions.remove(subscription.id)

    async def notified(self, request: web.Request) -> web.Response:
        """A notification from the broker: the subscription decided again, the data filtered with
        the same rules as a read, then forwarded to the partner."""
        store = self.c.subscriptions
        subscription = store.get(request.match_info["subscription_id"]) if store else None
        if subscription is None or not subscription.secret_matches(request.match_info["secret"]):
            return web.Response(status=404)
        try:
            notification = parse.json_body(await request.read())
        except BadRequest:
            return web.Response(status=400)
        typed = parse.subscription_from(subscription.request, subscription.tenant, subscription.purpose,
                                        self.c.contexts)
        outcome = decide(subscription.principal, typed, self.c.policies, now=self.c.clock())
        if isinstance(outcome, Refusal):
            access = outcome.access or AccessRequest(Action.SUBSCRIBE, subscription.tenant, subscription.entity_type)
            self.c.access_log.record(subscription.principal, access, outcome="refused",
                                     reason=f"agreement no longer grants it: {outcome.reason}; subscription removed",
                                     path=f"/gateway/notifications/{subscription.id}")
            await self._drop(subscription)
            return web.Response(status=204)
        assert isinstance(outcome, NarrowedSubscription)
        assert store is not None
        rebuilt = self._broker_subscription(subscription, outcome).body
        assert rebuilt is not None
        if hashlib.sha256(rebuilt).hexdigest() != store.built(subscription.id):
            # The agreements narrow it differently now (an area, fewer attributes...): the broker's
            # subscription is made again from the new decision, and what it sent under the old one
            # is not forwarded.
            old_broker_id = subscription.broker_id
            if await self._subscribe_at_broker(subscription, outcome) is None:
                await self._drop(subscription)
            elif old_broker_id:
                await self._broker(upstream.delete_broker_subscription(subscription.tenant, old_broker_id))
            return web.Response(status=204)
        data = notification.get("data", []) if isinstance(notification, dict) else []
        kept = [e for e in (filter_entity(x, outcome.rules, self.short_names) for x in data if isinstance(x, dict)
                            and x.get("type") == subscription.entity_type) if e]
        if kept:
            notified_at = notification.get("notifiedAt") if isinstance(notification, dict) else None
            forwarded = {
                "id": f"urn:ngsi-ld:Notification:{secrets.token_hex(8)}", "type": "Notification",
                "subscriptionId": subscription.id,
                "notifiedAt": notified_at if isinstance(notified_at, str) and len(notified_at) < 40 else None,
                "data": [render(e, typed.format) for e in kept],
            }
            # Recorded before the data leaves (and without the URL's secret).
            self.c.access_log.record(subscription.principal, outcome.access, outcome="permitted",
                                     reason=f"notification to {subscription.endpoint}",
                                     path=f"/gateway/notifications/{subscription.id}",
                                     agreement=outcome.grant.agreement, entities=[str(e["id"]) for e in kept])
            await self._deliver(subscription, forwarded)
        return web.Response(status=204)

    async def _deliver(self, subscription: GatewaySubscription, notification: dict[str, Any]) -> None:
        try:
            endpoint = self.c.endpoints.check(subscription.endpoint)  # the policy may have changed since
        except EndpointRefused as exc:
            log.warning("notification %s: endpoint no longer allowed (%s); not sent", subscription.id, exc.reason)
            return
        assert self.notifier is not None
        await deliver(self.notifier, endpoint, orjson.dumps(notification), timeout_s=10.0)

    # -- the access log ---------------------------------------------------------------------------

    async def access(self, request: web.Request) -> web.Response:
        """The accesses to a collectivity's data, for its data administrators."""
        principal = await self._principal(request)
        typed = parse.access_log_request(request.query, self._headers(request))
        decided = self._decide(principal, typed, _route(request))
        assert isinstance(decided, AccessLogDecision)
        asked = decided.request
        records = self.c.access_log.records(asked.tenant, since=asked.since, until=asked.until)
        return _json(AccessLog.as_prov(records), content_type="application/ld+json")

    # -- SPARQL, provenance, logs (the adapter's, narrowed) ------------------------------------------

    async def sparql(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        base = self._adapter()
        typed = parse.sparql_request(request.method, request.content_type, request.query, await request.read(),
                                     self._headers(request))
        decided = self._decide(principal, typed, _route(request))
        assert isinstance(decided, SparqlDecision)
        built = upstream.sparql(decided, self.c.adapter_token)
        answer = await upstream.send(self.c.session, base, built)
        content_type = answer.headers.get("Content-Type", "").split(";")[0].strip()
        for tenant in decided.tenants:  # one record per collectivity: each owner sees who queried its graphs
            self.c.access_log.record(
                principal, AccessRequest(Action.SPARQL_QUERY, tenant, "graph", purpose=typed.purpose),
                outcome="permitted" if answer.status == 200 else "refused",
                reason=f"graphs {', '.join(decided.graphs)}; endpoint answered {answer.status}",
                path=answer.target, agreement=", ".join(decided.agreements) or None,
            )
        if answer.status == 200 and content_type not in parse.SPARQL_MEDIA_TYPES:
            return _problem(502, "BadGateway", "Bad Gateway", "the SPARQL endpoint answered an unexpected format")
        if answer.status not in (200, 400, 408, 413, 503):
            return _problem(502, "BadGateway", "Bad Gateway", f"the SPARQL endpoint answered {answer.status}")
        return web.Response(body=answer.body, status=answer.status,
                            headers={"Content-Type": answer.headers.get("Content-Type", "application/problem+json")})

    async def lineage(self, request: web.Request) -> web.Response:
        return await self._value_provenance(request, "lineage")

    async def verify(self, request: web.Request) -> web.Response:
        return await self._value_provenance(request, "verify")

    async def _value_provenance(self, request: web.Request, kind: str) -> web.Response:
        principal = await self._principal(request)
        typed = parse.value_provenance_request(kind, request.match_info["tenant"], request.query,
                                               self._headers(request))
        decided = self._decide(principal, typed, _route(request))
        assert isinstance(decided, ValueProvenanceDecision)
        base = self._adapter()
        if decided.area_check is not None:  # outside the area is "not found", as for the entity itself
            check = upstream.entity_query(decided.area_check, self.vocabulary)
            found = await self._broker(check)
            body = found.json()
            if found.status != 200 or not isinstance(body, list) or not [
                    e for e in (filter_entity(x, decided.area_check.rules, self.short_names) for x in body) if e]:
                return _problem(404, "ResourceNotFound", "Not Found", "no such entity, or nothing of it is granted")
        built = upstream.value_provenance(decided, self.c.adapter_token)
        answer = await upstream.send(self.c.session, base, built)
        value = answer.json()
        if answer.status == 200 and isinstance(value, dict) and not decided.personal:  # by allowlist
            value = partner_lineage(value) if kind == "lineage" else partner_verification(value)
        self._record(principal, decided.access, answer, reason=f"provenance: adapter answered {answer.status}",
                     agreement=decided.grant.agreement, entities=[typed.entity_id])
        if value is None:
            return _problem(502, "BadGateway", "Bad Gateway", f"the adapter answered {answer.status}")
        return _json(value, status=answer.status if answer.status in (200, 404) else 502)

    async def uplink_record(self, request: web.Request) -> web.Response:
        return await self._record_route(request, "uplink")

    async def uplink_canonical_record(self, request: web.Request) -> web.Response:
        return await self._record_route(request, "uplink-record")

    async def device_chain(self, request: web.Request) -> web.Response:
        return await self._record_route(request, "device")

    async def device_record(self, request: web.Request) -> web.Response:
        return await self._record_route(request, "device-record")

    async def _record_route(self, request: web.Request, kind: str) -> web.Response:
        """A whole record, or a device's chain: for principals who may read the personal graph."""
        principal = await self._principal(request)
        headers = self._headers(request)
        typed = parse.record_request(kind, request.match_info["tenant"], request.match_info, request.query, headers)
        decided = self._decide(principal, typed, _route(request))
        assert isinstance(decided, RecordDecision)
        accept = headers.one("Accept") or "*/*"
        if len(accept) > 256 or not accept.isprintable():
            raise BadRequest("Accept", "a short media type list")
        built = upstream.record(decided, accept, self.c.adapter_token)
        answer = await upstream.send(self.c.session, self._adapter(), built)
        self._record(principal, decided.access, answer, reason=f"provenance: adapter answered {answer.status}",
                     agreement=", ".join(decided.agreements))
        return _relayed(answer, _RECORD_HEADERS)

    async def log_checkpoint(self, request: web.Request) -> web.Response:
        return await self._log(request, "checkpoint")

    async def log_key(self, request: web.Request) -> web.Response:
        return await self._log(request, "key")

    async def log_tile(self, request: web.Request) -> web.Response:
        return await self._log(request, "tile")

    async def log_inclusion(self, request: web.Request) -> web.Response:
        return await self._log(request, "inclusion")

    async def log_consistency(self, request: web.Request) -> web.Response:
        return await self._log(request, "consistency")

    async def jwks(self, request: web.Request) -> web.Response:
        return await self._log(request, "jwks")

    async def _log(self, request: web.Request, kind: str) -> web.Response:
        """The collectivities' signed logs, keys and proofs: public, so that anyone can check."""
        typed = parse.log_request(kind, request.match_info.get("tenant"), request.match_info.get("rest"),
                                  request.query, self._headers(request))
        answer = await upstream.send(self.c.session, self._adapter(), upstream.log_resource(typed))
        return _relayed(answer, _LOG_HEADERS)

    async def refuse_write(self, request: web.Request) -> web.Response:
        await self._principal(request)
        return _problem(405 if request.method not in ("GET", "POST") else 403, "OperationNotSupported",
                        "Forbidden", f"{request.method} of this path is not offered: partners read through the gateway")


def _relayed(answer: UpstreamAnswer, kept: Sequence[str]) -> web.Response:
    return web.Response(body=answer.body, status=answer.status if answer.status < 500 else 502,
                        headers={k: v for k, v in answer.headers.items() if k in kept})


def _route(request: web.Request) -> str:
    """The route's template (the gateway's own text, never the client's path)."""
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource is not None else '?'}"


def _action_of(typed: PartnerRequest) -> Action:
    if isinstance(typed, TemporalQuery):
        return Action.QUERY_HISTORY
    if isinstance(typed, SubscriptionRequest):
        return Action.SUBSCRIBE
    if isinstance(typed, EntityQuery):
        return Action.READ
    return Action.SPARQL_QUERY


def _default_adapter_terms() -> dict[str, str]:
    from adapter.ngsild.contexts import ADAPTER_CONTEXT, load_context

    return upstream.adapter_terms(load_context(ADAPTER_CONTEXT)["@context"])

