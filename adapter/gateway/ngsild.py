"""The sharing gateway: the NGSI-LD API for partners, behind Keycloak tokens and agreements.

For each request: validate the bearer token (``adapter.access.tokens``), decide from the
sharing agreements (``adapter.access.policies``), narrow the request before it reaches the
broker and filter (or aggregate) the answer before it leaves (``adapter.gateway.enforce``),
and record the access (``adapter.access.log``). Every way of reaching the data goes
through ``_authorize``: retrieval by id, query by type, ``q``, ``idPattern`` or geo, temporal
retrieval, subscriptions. Deny by default.

Paths (``NGSILD-Tenant`` names whose data is asked for; one entity ``type`` per request):

``GET /ngsi-ld/v1/entities?type=T``                       read
``GET /ngsi-ld/v1/entities/{id}``                          read (the type is the id's)
``GET /ngsi-ld/v1/temporal/entities?type=T``              queryHistory (aggregated grants:
                                                             across sensors, ``enforce.aggregate_across``)
``GET /ngsi-ld/v1/temporal/entities/{id}``                 queryHistory, raw grants only
``POST|GET|DELETE /ngsi-ld/v1/subscriptions[/{id}]``       subscribe (``adapter.gateway.subscriptions``)
``GET /gateway/access?tenant=T``                           the accesses to T's data, as PROV-O, for
                                                             T's ``data-admin`` role
``GET /provenance/{t}/lineage|verify?entity&attr&observedAt``  read or queryHistory of that value, raw and
                                                             uncoarsened (``adapter.gateway.partner_provenance``)
``GET /provenance/{t}/uplinks/{n}[/record]``, ``/devices/...``  whole records: the personal graph must be open
``GET /logs/{t}/...``                                      the signed logs, keys and proofs: public
``GET|POST /sparql``                                       sparqlQuery: the adapter's read-only endpoint,
                                                             over the graphs the agreements open to the
                                                             principal only (set by the server as the
                                                             query's dataset: a FROM cannot widen it)
Anything else under ``/ngsi-ld/v1`` (writes, batch operations) is refused: partners read.

The client's ``Link`` context is not forwarded: the gateway reads the broker with the Smart
Data Models context of the type, so that an attribute name means what the agreement means by
it (a client context could map a granted name onto another attribute's IRI). A ``Link``
naming another context is refused.

Errors are NGSI-LD ProblemDetails: 401 (no or bad token: the reason code, never the token),
403 (the rule that denied), 503 (an issuer's keys cannot be fetched).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from aiohttp import web

from adapter.access.model import AccessRequest, Action, Decision, Grant, Principal, SparqlDataset
from adapter.access.policies import personal_graph_of
from adapter.gateway import problem
from adapter.access.log import NO_TENANT, AccessLog
from adapter.gateway.enforce import (
    NarrowingRefused,
    aggregate_across,
    allowed_attributes,
    area_params,
    check_q,
    clamp_window,
    filter_entity,
)
from adapter.gateway.partner_provenance import RECORD_REFUSAL, value_refusal, without_personal_fields
from adapter.gateway.subscriptions import SubscriptionStore, endpoint_allowed

__all__ = ["GatewayContext", "Policies", "create_gateway_app"]

log = logging.getLogger(__name__)

_API = "/ngsi-ld/v1"
_NGSI_PROBLEMS = "https://uri.etsi.org/ngsi-ld/errors/"
_LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
#: query parameters passed on to the broker as they are (the others are rebuilt or refused)
_PASSED = ("limit", "offset", "count", "options", "idPattern", "id", "lastN", "timeproperty",
           "aggrMethods", "aggrPeriodDuration")  # a raw grant may aggregate its own data at the broker


class Policies(Protocol):
    def decide(self, principal: Principal, request: AccessRequest, *, now: datetime) -> Decision: ...

    def sparql_dataset(self, principal: Principal, *, purpose: str | None = None) -> SparqlDataset: ...


@dataclass
class GatewayContext:
    """What the gateway works with.

    ``validate`` turns a bearer token into a ``Principal`` or raises ``InvalidToken`` (with a
    ``reason``); ``contexts`` maps each entity type to its Smart Data Models @context URL.
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
    allowed_endpoints: Sequence[str] = ()  # URL prefixes partners' notifications may go to
    adapter_url: str | None = None  # `ngsild-adapter serve`: /sparql, /provenance and /logs, which the gateway narrows


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


def _ngsi_problem(status: int, kind: str, title: str, detail: str) -> web.Response:
    return problem(status, title, detail, type=_NGSI_PROBLEMS + kind)


def _entity_type_of(entity_id: str) -> str | None:
    """``urn:ngsi-ld:<Type>:...`` -> ``Type`` (the convention of the Smart Data Models ids)."""
    parts = entity_id.split(":")
    return parts[2] if len(parts) >= 4 and parts[0] == "urn" and parts[1] == "ngsi-ld" and parts[2] else None


def create_gateway_app(context: GatewayContext) -> web.Application:
    """The gateway's aiohttp application."""
    gateway = _Gateway(context)
    app = web.Application()
    app.add_routes([
        web.get(f"{_API}/entities", gateway.query_entities),
        web.get(f"{_API}/entities/{{entity_id}}", gateway.retrieve_entity),
        web.get(f"{_API}/temporal/entities", gateway.query_temporal),
        web.get(f"{_API}/temporal/entities/{{entity_id}}", gateway.retrieve_temporal),
        web.get("/gateway/access", gateway.access),
        web.post(f"{_API}/subscriptions", gateway.subscribe),
        web.get(f"{_API}/subscriptions", gateway.list_subscriptions),
        web.get(f"{_API}/subscriptions/{{subscription_id}}", gateway.get_subscription),
        web.delete(f"{_API}/subscriptions/{{subscription_id}}", gateway.unsubscribe),
        web.post("/gateway/notifications/{subscription_id}/{secret}", gateway.notified),
        web.get("/sparql", gateway.sparql),
        web.post("/sparql", gateway.sparql),
        web.get("/provenance/{tenant}/lineage", gateway.provenance_of_value),
        web.get("/provenance/{tenant}/verify", gateway.provenance_of_value),
        web.get("/provenance/{tenant}/uplinks/{n}", gateway.provenance_record),
        web.get("/provenance/{tenant}/uplinks/{n}/record", gateway.provenance_record),
        web.get("/provenance/{tenant}/devices/{dev_eui}", gateway.provenance_record),
        web.get("/provenance/{tenant}/devices/{dev_eui}/records/{seq}", gateway.provenance_record),
        web.get("/logs/{rest:.+}", gateway.transparency_log),
        web.route("*", f"{_API}/{{rest:.*}}", gateway.refuse_write),
    ])
    return app


class _Gateway:
    def __init__(self, context: GatewayContext) -> None:
        self.c = context

    # -- authorization: the one path every request takes -----------------------------------

    async def _principal(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused(_ngsi_problem(401, "NoBearerToken", "Unauthorized",
                                         "an access token is required (Authorization: Bearer ...)"))
        try:
            return await self.c.validate(token.strip())
        except Exception as exc:  # InvalidToken: its reason code, never the token
            reason = getattr(exc, "reason", None)
            if reason is None:
                raise
            if reason == "issuer_unavailable":
                raise _Refused(_ngsi_problem(503, "IssuerUnavailable", "Service Unavailable",
                                             "the token's issuer cannot be reached to check its keys; retry later")) from exc
            response = _ngsi_problem(401, "InvalidToken", "Unauthorized", f"the access token is refused: {reason}")
            response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{reason}"'
            raise _Refused(response) from exc

    def _tenant(self, request: web.Request) -> str:
        tenant = request.headers.get("NGSILD-Tenant")
        if not tenant:
            raise _Refused(_ngsi_problem(400, "BadRequestData", "Bad Request",
                                         "NGSILD-Tenant is required: it names the collectivity whose data is asked for"))
        return tenant

    def _context(self, request: web.Request, entity_type: str) -> str:
        known = self.c.contexts.get(entity_type)
        if known is None:
            raise _Refused(_ngsi_problem(403, "Forbidden", "Forbidden", f"no agreement can cover entity type {entity_type}"))
        link = request.headers.get("Link")
        if link and known not in link:
            raise _Refused(_ngsi_problem(400, "BadRequestData", "Bad Request",
                                         f"the gateway reads {entity_type} with its Smart Data Models context {known}; "
                                         "send that one in Link, or none"))
        return known

    async def _authorize(
        self, request: web.Request, action: Action, entity_type: str | None, *,
        tenant: str | None = None, or_else: Sequence[Action] = (),
    ) -> tuple[Principal, AccessRequest, Grant]:
        """The principal, its request and the grant it is answered under; refused (and recorded)
        when no agreement grants ``action`` (nor one of ``or_else``, tried in order)."""
        principal = await self._principal(request)
        tenant = tenant or self._tenant(request)
        if not entity_type or "," in entity_type:
            raise _Refused(_ngsi_problem(400, "BadRequestData", "Bad Request",
                                         "one entity type per request: it is what the agreements are about"))
        refused: tuple[AccessRequest, Decision] | None = None
        for each in (action, *or_else):
            access = AccessRequest(each, tenant, entity_type, purpose=request.headers.get("NGSILD-Purpose"))
            decision = self.c.policies.decide(principal, access, now=self.c.clock())
            if decision.permitted and decision.grants:
                return principal, access, decision.grants[0]
            refused = refused or (access, decision)
        assert refused is not None
        raise self._refuse(principal, refused[0], request, refused[1].reason or "no agreement grants this")

    def _refuse(self, principal: Principal, access: AccessRequest, request: web.Request, why: str) -> _Refused:
        self.c.access_log.record(principal, access, outcome="refused", reason=why, path=request.path_qs)
        return _Refused(_ngsi_problem(403, "Forbidden", "Forbidden", why))

    async def _broker(self, path: str, tenant: str, context: str, params: Mapping[str, str]) -> tuple[int, Any]:
        headers = {"NGSILD-Tenant": tenant, "Link": _LINK.format(context), "Accept": "application/json"}
        return await self._json(self.c.broker_url.rstrip("/") + _API + path, params, headers)

    async def _json(self, url: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None,
                    ) -> tuple[int, Any]:
        """The status and the decoded JSON body (None when empty or not JSON) of a GET."""
        async with self.c.session.get(url, params=params, headers=headers) as answer:
            body = await answer.read()
            try:
                return answer.status, json.loads(body) if body else None
            except ValueError:
                return answer.status, None

    # -- the routes -------------------------------------------------------------------------

    async def query_entities(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(self._query_entities, request)

    async def retrieve_entity(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(self._retrieve_entity, request)

    async def query_temporal(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(self._query_temporal, request)

    async def retrieve_temporal(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(self._retrieve_temporal, request)

    async def refuse_write(self, request: web.Request) -> web.StreamResponse:
        try:
            await self._principal(request)
        except _Refused as refused:
            return refused.response
        return _ngsi_problem(403, "Forbidden", "Forbidden",
                             f"{request.method} {request.path} is not offered: partners read through the gateway")

    async def _guarded(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                       request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Refused as refused:
            return refused.response

    def _narrow(self, request: web.Request, principal: Principal, access: AccessRequest, grant: Grant,
                ) -> tuple[dict[str, str], frozenset[str] | None]:
        """The broker parameters for this grant, and the attributes the answer may hold."""
        query = request.query
        try:
            if (grant.not_before or grant.not_after) and {"keyValues", "concise", "simplified"} & set(
                    query.get("options", "").split(",")):
                raise NarrowingRefused(f"agreement {grant.agreement} limits the data to a time window: ask for "
                                       "normalized entities (their observedAt tells what is in it)")
            # attrs and NGSI-LD 1.8's pick name what to return, omit what not to: narrowing only
            named = query.get("attrs") or query.get("pick")
            requested = [a for a in named.split(",") if a not in ("id", "type")] if named else None
            omitted = _omitted(request)
            if requested is None and grant.attributes is not None and omitted:
                requested = sorted(grant.attributes)
            if requested is not None:
                requested = [a for a in requested if a not in omitted]
            readable = allowed_attributes(grant, requested)
            check_q(grant, query.get("q"), grant.attributes if readable is None else readable)
            params = {k: query[k] for k in _PASSED if k in query}
            params.update(area_params(grant, query))
        except NarrowingRefused as exc:
            raise self._refuse(principal, access, request, str(exc)) from exc
        if "q" in query:
            params["q"] = query["q"]
        if readable is not None:
            params["attrs"] = ",".join(sorted(readable))
        return params, readable

    def _answer(self, principal: Principal, access: AccessRequest, request: web.Request, grant: Grant,
                status: int, body: Any, readable: frozenset[str] | None) -> web.Response:
        if status != 200:
            self.c.access_log.record(principal, access, outcome="permitted", reason=f"broker answered {status}",
                                     path=request.path_qs, agreement=grant.agreement)
            return web.json_response(body, status=status)
        many = isinstance(body, list)
        entities = [e for e in (filter_entity(x, grant, readable) for x in (body if many else [body])) if e]
        omitted = _omitted(request)
        if omitted:  # every attribute was asked for: the omitted ones leave here
            entities = [{k: v for k, v in e.items() if k not in omitted} for e in entities]
        self.c.access_log.record(principal, access, outcome="permitted", reason="", path=request.path_qs,
                                 agreement=grant.agreement, entities=[str(e.get("id")) for e in entities])
        if not many and not entities:
            return _ngsi_problem(404, "ResourceNotFound", "Not Found", "no such entity, or nothing of it is granted")
        return web.json_response(entities if many else entities[0])

    async def _query_entities(self, request: web.Request) -> web.Response:
        entity_type = request.query.get("type")
        principal, access, grant = await self._authorize(request, Action.READ, entity_type)
        assert entity_type is not None
        if grant.aggregation is not None:
            raise self._refuse(principal, access, request, f"agreement {grant.agreement} grants aggregated indicators "
                               "only: GET /ngsi-ld/v1/temporal/entities?type=...")
        context = self._context(request, entity_type)
        params, readable = self._narrow(request, principal, access, grant)
        params["type"] = entity_type
        status, body = await self._broker("/entities", access.tenant, context, params)
        return self._answer(principal, access, request, grant, status, body, readable)

    async def _retrieve_entity(self, request: web.Request) -> web.Response:
        entity_id = request.match_info["entity_id"]
        principal, access, grant = await self._authorize(request, Action.READ, _entity_type_of(entity_id))
        if grant.aggregation is not None:
            raise self._refuse(principal, access, request, f"agreement {grant.agreement} grants aggregated indicators only")
        context = self._context(request, access.entity_type)
        params, readable = self._narrow(request, principal, access, grant)
        if grant.area is not None:  # one entity: ask by id within the area, so that outside it is not found
            params.update({"id": entity_id, "type": access.entity_type})
            status, body = await self._broker("/entities", access.tenant, context, params)
            if status == 200:
                body = body[0] if body else None
                status = 200 if body else 404
        else:
            status, body = await self._broker(f"/entities/{quote(entity_id, safe='')}", access.tenant, context, params)
        if status == 404:
            self.c.access_log.record(principal, access, outcome="permitted", reason="not found", path=request.path_qs,
                                     agreement=grant.agreement)
            return _ngsi_problem(404, "ResourceNotFound", "Not Found", "no such entity, or nothing of it is granted")
        return self._answer(principal, access, request, grant, status, body, readable)

    def _window(self, request: web.Request, principal: Principal, access: AccessRequest, grant: Grant,
                params: dict[str, str]) -> None:
        """The temporal query's time parameters: the client's, clamped to the grant's window."""
        def parse(name: str) -> datetime | None:
            text = request.query.get(name)
            return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None

        try:
            start, end = parse("timeAt"), parse("endTimeAt")
            if request.query.get("timerel") == "before":
                start, end = None, start
            start, end = clamp_window(grant, start, end)
        except (NarrowingRefused, ValueError) as exc:
            raise self._refuse(principal, access, request, str(exc)) from exc

        def text(moment: datetime) -> str:
            return moment.isoformat().replace("+00:00", "Z")

        if start is not None and end is not None:
            params.update(timerel="between", timeAt=text(start), endTimeAt=text(end))
        elif start is not None:
            params.update(timerel="after", timeAt=text(start))
        elif end is not None:
            params.update(timerel="before", timeAt=text(end))

    async def _query_temporal(self, request: web.Request) -> web.Response:
        entity_type = request.query.get("type")
        principal, access, grant = await self._authorize(request, Action.QUERY_HISTORY, entity_type)
        assert entity_type is not None
        context = self._context(request, entity_type)
        params, readable = self._narrow(request, principal, access, grant)
        params["type"] = entity_type
        self._window(request, principal, access, grant, params)
        if grant.aggregation is None:
            status, body = await self._broker("/temporal/entities", access.tenant, context, params)
            return self._answer(principal, access, request, grant, status, body, readable)
        # Aggregated only: every sensor's history is read here, and only indicators over
        # enough sensors leave. The client's own paging does not apply to the sensors.
        for key in ("limit", "offset", "lastN", "id", "idPattern", "options", "count", "aggrMethods",
                    "aggrPeriodDuration"):
            params.pop(key, None)
        params.update({"options": "temporalValues", "limit": "1000"})
        status, body = await self._broker("/temporal/entities", access.tenant, context, params)
        if status != 200 or not isinstance(body, list):
            return self._answer(principal, access, request, grant, status, body, readable)
        attributes = readable if readable is not None else {
            name for entity in body for name in entity if name not in ("id", "type", "@context") and ":" not in name
        } - grant.removed
        indicator = aggregate_across(body, attributes, grant.aggregation, tenant=access.tenant, entity_type=entity_type)
        self.c.access_log.record(principal, access, outcome="permitted",
                                 reason=f"aggregated ({grant.aggregation.method} over {grant.aggregation.period}, "
                                        f"groups of {grant.aggregation.min_group_size}+ sensors)",
                                 path=request.path_qs, agreement=grant.agreement,
                                 entities=[str(e.get("id")) for e in body])
        return web.json_response([indicator])

    async def _retrieve_temporal(self, request: web.Request) -> web.Response:
        entity_id = request.match_info["entity_id"]
        principal, access, grant = await self._authorize(request, Action.QUERY_HISTORY, _entity_type_of(entity_id))
        if grant.aggregation is not None:
            raise self._refuse(principal, access, request, f"agreement {grant.agreement} grants aggregated indicators "
                               "only, never one sensor's history: GET /ngsi-ld/v1/temporal/entities?type=...")
        if grant.area is not None:
            raise self._refuse(principal, access, request, f"agreement {grant.agreement} restricts the data to an area: "
                               "query the history by type, the area applies")
        context = self._context(request, access.entity_type)
        params, readable = self._narrow(request, principal, access, grant)
        self._window(request, principal, access, grant, params)
        status, body = await self._broker(f"/temporal/entities/{quote(entity_id, safe='')}", access.tenant, context, params)
        return self._answer(principal, access, request, grant, status, body, readable)

    async def access(self, request: web.Request) -> web.Response:
        """The accesses to a collectivity's data, for its data administrators."""
        try:
            principal = await self._principal(request)
        except _Refused as refused:
            return refused.response
        tenant = request.query.get("tenant", "")
        if principal.organization != tenant or "data-admin" not in principal.roles:
            return _ngsi_problem(403, "Forbidden", "Forbidden",
                                 "the access log of a collectivity is for its own data-admin role")
        return web.json_response(AccessLog.as_prov(self.c.access_log.records(tenant)),
                                 content_type="application/ld+json")


    # -- subscriptions (see adapter.gateway.subscriptions) ----------------------------------

    async def subscribe(self, request: web.Request) -> web.Response:
        try:
            return await self._subscribe(request)
        except _Refused as refused:
            return refused.response

    async def _subscribe(self, request: web.Request) -> web.Response:
        store = self.c.subscriptions
        if store is None or not self.c.public_url:
            return _ngsi_problem(501, "OperationNotSupported", "Not Implemented", "this gateway takes no subscriptions")
        try:
            body = await request.json()
        except ValueError:
            return _ngsi_problem(400, "InvalidRequest", "Bad Request", "the subscription is not JSON")
        if not isinstance(body, dict):
            return _ngsi_problem(400, "BadRequestData", "Bad Request", "a subscription is a JSON object")
        types = {e.get("type") for e in body.get("entities", []) if isinstance(e, dict)}
        entity_type = types.pop() if len(types) == 1 else None
        principal, access, grant = await self._authorize(request, Action.SUBSCRIBE, entity_type)
        assert entity_type is not None
        if grant.aggregation is not None:
            raise self._refuse(principal, access, request, f"agreement {grant.agreement} grants aggregated indicators "
                               "only: no notifications of single sensors")
        notification: dict[str, Any] = body["notification"] if isinstance(body.get("notification"), dict) else {}
        endpoint: dict[str, Any] = notification["endpoint"] if isinstance(notification.get("endpoint"), dict) else {}
        uri = endpoint.get("uri")
        if not isinstance(uri, str) or not endpoint_allowed(uri, self.c.allowed_endpoints):
            raise self._refuse(principal, access, request,
                               "the notification endpoint is not one this gateway may call (ask for it to be allowed)")
        context = self._context(request, entity_type)
        try:
            requested = notification.get("attributes")
            readable = allowed_attributes(grant, requested if isinstance(requested, list) else None)
            check_q(grant, body.get("q"), grant.attributes if readable is None else readable)
            geo = area_params(grant, {})
            if body.get("geoQ") and grant.area is not None:
                raise NarrowingRefused(f"agreement {grant.agreement} restricts the data to an area; "
                                       "a geoQ of your own cannot be combined with it")
        except NarrowingRefused as exc:
            raise self._refuse(principal, access, request, str(exc)) from exc
        subscription = store.add(
            tenant=access.tenant, entity_type=entity_type, purpose=access.purpose, principal=principal, endpoint=uri,
            accept=str(endpoint.get("accept", "application/json")),
            attributes=sorted(readable) if readable is not None else None, request=body,
        )
        at_broker: dict[str, Any] = {
            "type": "Subscription",
            "entities": [{"type": entity_type}],
            "notification": {
                "format": "normalized",
                "endpoint": {"uri": f"{self.c.public_url.rstrip('/')}/gateway/notifications/"
                                    f"{quote(subscription.id, safe='')}/{subscription.secret}",
                             "accept": "application/json"},
            },
            "@context": context,
        }
        if readable is not None:
            at_broker["notification"]["attributes"] = sorted(readable)
        watched = body.get("watchedAttributes")
        if isinstance(watched, list):
            watched_granted = [a for a in watched if readable is None or a in readable]
            if watched_granted:
                at_broker["watchedAttributes"] = watched_granted
        if body.get("q"):
            at_broker["q"] = body["q"]
        if geo:
            at_broker["geoQ"] = {"georel": geo["georel"], "geometry": geo["geometry"],
                                 "coordinates": json.loads(geo["coordinates"])}
        elif isinstance(body.get("geoQ"), dict):
            at_broker["geoQ"] = body["geoQ"]
        async with self.c.session.post(
            self.c.broker_url.rstrip("/") + _API + "/subscriptions", data=json.dumps(at_broker),
            headers={"NGSILD-Tenant": access.tenant, "Content-Type": "application/ld+json"},
        ) as answer:
            if answer.status != 201:
                store.remove(subscription.id)
                detail = (await answer.text())[:300]
                return _ngsi_problem(502, "BadGateway", "Bad Gateway", f"the broker refused the subscription: {detail}")
            broker_id = answer.headers.get("Location", "").rsplit("/", 1)[-1]
        store.set_broker_id(subscription.id, broker_id)
        self.c.access_log.record(principal, access, outcome="permitted", reason="subscribed", path=request.path_qs,
                                 agreement=grant.agreement)
        return web.Response(status=201, headers={"Location": f"{_API}/subscriptions/{subscription.id}"})

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        try:
            principal = await self._principal(request)
        except _Refused as refused:
            return refused.response
        store = self.c.subscriptions
        return web.json_response([s.to_ngsi() for s in store.owned_by(principal)] if store else [])

    async def _own(self, request: web.Request) -> tuple[Principal, Any]:
        principal = await self._principal(request)
        store = self.c.subscriptions
        found = store.get(request.match_info["subscription_id"]) if store else None
        if found is None or not found.owned_by(principal):  # someone else's is "not found": no leak
            raise _Refused(_ngsi_problem(404, "ResourceNotFound", "Not Found", "no such subscription of yours"))
        return principal, found

    async def get_subscription(self, request: web.Request) -> web.Response:
        try:
            _, found = await self._own(request)
        except _Refused as refused:
            return refused.response
        return web.json_response(found.to_ngsi())

    async def unsubscribe(self, request: web.Request) -> web.Response:
        try:
            _, found = await self._own(request)
        except _Refused as refused:
            return refused.response
        await self._drop(found)
        return web.Response(status=204)

    async def _drop(self, subscription: Any) -> None:
        if subscription.broker_id:
            async with self.c.session.delete(
                f"{self.c.broker_url.rstrip('/')}{_API}/subscriptions/{quote(subscription.broker_id, safe='')}",
                headers={"NGSILD-Tenant": subscription.tenant},
            ) as answer:
                await answer.read()
        assert self.c.subscriptions is not None
        self.c.subscriptions.remove(subscription.id)

    async def notified(self, request: web.Request) -> web.Response:
        """A notification from the broker: decided again, filtered, forwarded to the partner."""
        store = self.c.subscriptions
        subscription = store.get(request.match_info["subscription_id"]) if store else None
        if subscription is None or not subscription.secret_matches(request.match_info["secret"]):
            return web.Response(status=404)
        try:
            notification = await request.json()
        except ValueError:
            return web.Response(status=400)
        access = AccessRequest(Action.SUBSCRIBE, subscription.tenant, subscription.entity_type, subscription.purpose)
        decision = self.c.policies.decide(subscription.principal, access, now=self.c.clock())
        if not decision.permitted or not decision.grants or decision.grants[0].aggregation is not None:
            self.c.access_log.record(subscription.principal, access, outcome="refused",
                                     reason=f"agreement no longer grants it: {decision.reason}; subscription removed",
                                     path=f"/gateway/notifications/{subscription.id}")
            await self._drop(subscription)
            return web.Response(status=204)
        grant = decision.grants[0]
        readable = frozenset(subscription.attributes) if subscription.attributes is not None else None
        data = notification.get("data", []) if isinstance(notification, dict) else []
        entities = [e for e in (filter_entity(x, grant, readable) for x in data if isinstance(x, dict)) if e]
        if entities:
            forwarded = {
                "id": f"urn:ngsi-ld:Notification:{secrets.token_hex(8)}", "type": "Notification",
                "subscriptionId": subscription.id, "notifiedAt": notification.get("notifiedAt"), "data": entities,
            }
            # Recorded before the data leaves (and without the URL's secret).
            self.c.access_log.record(subscription.principal, access, outcome="permitted",
                                     reason=f"notification to {subscription.endpoint}",
                                     path=f"/gateway/notifications/{subscription.id}", agreement=grant.agreement,
                                     entities=[str(e.get("id")) for e in entities])
            try:
                async with self.c.session.post(subscription.endpoint, json=forwarded,
                                               headers={"Content-Type": "application/json"}) as answer:
                    await answer.read()
                    if answer.status >= 300:
                        log.warning("notification %s: %s answered %d", subscription.id, subscription.endpoint,
                                    answer.status)
            except aiohttp.ClientError as exc:
                log.warning("notification %s to %s failed: %s", subscription.id, subscription.endpoint, exc)
        return web.Response(status=204)


    # -- SPARQL -----------------------------------------------------------------------------

    async def sparql(self, request: web.Request) -> web.StreamResponse:
        """The query goes to the adapter's endpoint with the principal's graphs as its dataset."""
        try:
            principal = await self._principal(request)
        except _Refused as refused:
            return refused.response
        if self.c.adapter_url is None:
            return _ngsi_problem(501, "OperationNotSupported", "Not Implemented", "this gateway offers no SPARQL")
        purpose = request.headers.get("NGSILD-Purpose")
        dataset = self.c.policies.sparql_dataset(principal, purpose=purpose)
        query, asked = await _sparql_request(request)
        graphs = [g for g in dataset.graphs if g in asked] if asked else list(dataset.graphs)  # narrowing only
        tenants = SparqlDataset(tuple(graphs)).tenants
        if not graphs:
            why = "; ".join(dataset.refusals) or "no agreement opens a graph to SPARQL queries for you"
            if dataset.graphs:
                why = "none of the graphs the request names (default-graph-uri, named-graph-uri) is open to you"
            access = AccessRequest(Action.SPARQL_QUERY, NO_TENANT, "graph", purpose=purpose)
            self.c.access_log.record(principal, access, outcome="refused", path=request.path, reason=why)
            return _ngsi_problem(403, "Forbidden", "Forbidden", why)
        if query is None:
            return _ngsi_problem(400, "BadRequestData", "Bad Request",
                                 "send one query (GET ?query=, a form, or application/sparql-query); updates are refused")
        # Only the query text goes on: every dataset parameter comes from the gateway.
        params = [("default-graph-uri", g) for g in graphs] + [("named-graph-uri", g) for g in graphs]
        headers = {"Content-Type": "application/sparql-query", "Accept": request.headers.get("Accept", "*/*")}
        async with self.c.session.post(self.c.adapter_url.rstrip("/") + "/sparql", params=params, data=query.encode("utf-8"),
                                       headers=headers) as answer:
            payload = await answer.read()
            content_type = answer.headers.get("Content-Type", "application/octet-stream")
        for tenant in tenants:  # one record per collectivity: each owner sees who queried its graphs
            self.c.access_log.record(
                principal, AccessRequest(Action.SPARQL_QUERY, tenant, "graph", purpose=purpose),
                outcome="permitted" if answer.status == 200 else "refused",
                reason=f"graphs {', '.join(graphs)}; endpoint answered {answer.status}",
                path=request.path, agreement=", ".join(dataset.agreements) or None,
            )
        return web.Response(body=payload, status=answer.status, headers={"Content-Type": content_type})


    # -- provenance (see adapter.gateway.partner_provenance) -----------------------------------

    async def provenance_of_value(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(self._provenance_of_value, request)

    async def _provenance_of_value(self, request: web.Request) -> web.Response:
        """The lineage or the verification of one value, for whoever may read that value."""
        tenant = request.match_info["tenant"]
        entity, attribute = request.query.get("entity", ""), request.query.get("attr", "")
        try:
            observed_at = datetime.fromisoformat(request.query.get("observedAt", "").replace("Z", "+00:00"))
        except ValueError:
            observed_at = None
        if not entity or not attribute or ":" in attribute or observed_at is None or observed_at.tzinfo is None:
            await self._principal(request)
            return _ngsi_problem(400, "BadRequestData", "Bad Request",
                                 "parameters entity, attr (the attribute's short name, as the agreements name it) "
                                 "and observedAt (ISO 8601 with a time zone) are required")
        principal, access, grant = await self._authorize(
            request, Action.READ, _entity_type_of(entity), tenant=tenant, or_else=(Action.QUERY_HISTORY,))
        why = value_refusal(grant, attribute, observed_at)
        if why is not None:
            raise self._refuse(principal, access, request, why)
        if self.c.adapter_url is None:
            return _ngsi_problem(501, "OperationNotSupported", "Not Implemented", "this gateway offers no provenance")
        if grant.area is not None:  # outside the area is "not found", as for the entity itself
            params = {**area_params(grant, {}), "id": entity, "type": access.entity_type}
            status, body = await self._broker("/entities", tenant, self._context(request, access.entity_type), params)
            if status != 200 or not body:
                return _ngsi_problem(404, "ResourceNotFound", "Not Found", "no such entity, or nothing of it is granted")
        # not ``record``: a record number would name another observation than the one decided on
        kept = ("entity", "attr", "observedAt", "value")
        assert self.c.adapter_url is not None
        status, answer = await self._json(self.c.adapter_url.rstrip("/") + request.path,
                                          {k: v for k, v in request.query.items() if k in kept})
        if status == 200 and request.path.endswith("/lineage") and isinstance(answer, dict):
            if personal_graph_of(tenant) not in self.c.policies.sparql_dataset(principal, purpose=access.purpose).graphs:
                answer = without_personal_fields(answer)
        self.c.access_log.record(principal, access, outcome="permitted", reason=f"provenance: adapter answered {status}",
                                 path=request.path_qs, agreement=grant.agreement, entities=[entity])
        return web.json_response(answer, status=status)

    async def provenance_record(self, request: web.Request) -> web.StreamResponse:
        """A whole record, or a device's chain: for principals who may read the personal graph."""
        try:
            principal = await self._principal(request)
        except _Refused as refused:
            return refused.response
        tenant = request.match_info["tenant"]
        purpose = request.headers.get("NGSILD-Purpose")
        access = AccessRequest(Action.SPARQL_QUERY, tenant, "provenance-record", purpose=purpose)
        dataset = self.c.policies.sparql_dataset(principal, purpose=purpose)
        if personal_graph_of(tenant) not in dataset.graphs:
            return self._refuse(principal, access, request, RECORD_REFUSAL).response
        if self.c.adapter_url is None:
            return _ngsi_problem(501, "OperationNotSupported", "Not Implemented", "this gateway offers no provenance")
        relayed = await self._relay(request.path, {}, {"Accept": request.headers.get("Accept", "*/*")},
                                    ("Content-Type", "Repr-Digest", "Record-Index"))
        self.c.access_log.record(principal, access, outcome="permitted", reason=f"provenance: adapter answered "
                                 f"{relayed.status}", path=request.path, agreement=", ".join(dataset.agreements))
        return relayed

    async def transparency_log(self, request: web.Request) -> web.Response:
        """The collectivities' signed logs, keys and proofs: public, so that anyone can check."""
        if self.c.adapter_url is None:
            return _ngsi_problem(501, "OperationNotSupported", "Not Implemented", "this gateway offers no logs")
        return await self._relay(request.path, request.query, {}, ("Content-Type", "Cache-Control"))

    async def _relay(self, path: str, params: Mapping[str, str], headers: Mapping[str, str],
                     kept: Sequence[str]) -> web.Response:
        """The adapter's answer to a GET of ``path``, with the ``kept`` headers only."""
        assert self.c.adapter_url is not None
        async with self.c.session.get(self.c.adapter_url.rstrip("/") + path, params=params,
                                      headers=headers) as answer:
            body = await answer.read()
            return web.Response(body=body, status=answer.status,
                                headers={k: v for k, v in answer.headers.items() if k in kept})


def _omitted(request: web.Request) -> set[str]:
    """The attributes NGSI-LD 1.8's ``omit`` leaves out of the answer (``id`` and ``type`` stay)."""
    return set(request.query.get("omit", "").split(",")) - {"", "id", "type"}


async def _sparql_request(request: web.Request) -> tuple[str | None, list[str]]:
    """The query of a SPARQL Protocol request (None for none, several, or an update), and the
    graphs its dataset parameters name (in the URL or the form)."""
    params: list[tuple[str, str]] = list(request.query.items())
    body: str | None = None
    if request.method == "POST":
        if request.content_type == "application/x-www-form-urlencoded":
            params += [(k, str(v)) for k, v in (await request.post()).items()]
        elif request.content_type == "application/sparql-query":
            body = (await request.read()).decode("utf-8", errors="replace")
        else:
            return None, []
    asked = [v for k, v in params if k in ("default-graph-uri", "named-graph-uri")]
    if any(k == "update" for k, _ in params):
        return None, asked
    queries = [v for k, v in params if k == "query"] + ([body] if body is not None else [])
    return (queries[0] if len(queries) == 1 and queries[0].strip() else None), asked
