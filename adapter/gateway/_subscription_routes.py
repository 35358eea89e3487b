"""The gateway's subscription routes: subscriptions registered at the broker by the gateway, and
each notification decided again and filtered before it is forwarded (``adapter.gateway.app``)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import orjson
from aiohttp import web

from adapter.access.decide import (
    NarrowedSubscription,
    Refusal,
    decide,
)
from adapter.access.model import AccessRequest, Action, Principal
from adapter.gateway import parse, upstream
from adapter.gateway.answers import filter_entity, render
from adapter.gateway.parse import BadRequest
from adapter.gateway.endpoints import (
    EndpointRefused,
    GuardedConnector,
    deliver,
)
from adapter.gateway.subscriptions import MAX_PER_PRINCIPAL, GatewaySubscription, SubscriptionStore
from adapter.gateway.upstream import UpstreamAnswer

from adapter.gateway._steps import _API, _Answer, _json, _problem, _route, _Steps, log

__all__: list[str] = []


class _SubscriptionRoutes(_Steps):
    # -- subscriptions ----------------------------------------------------------------------------

    def _store(self) -> SubscriptionStore:
        if self.c.subscriptions is None or not self.c.public_url:
            raise _Answer(
                _problem(501, "OperationNotSupported", "Not Implemented", "this gateway takes no subscriptions")
            )
        return self.c.subscriptions

    async def subscribe(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        store = self._store()
        headers = self._headers(request)
        body = parse.json_body(await request.read())
        typed = parse.subscription_request(body, headers, self.c.contexts)
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
            tenant=narrowed.access.tenant,
            entity_type=narrowed.access.entity_type,
            purpose=narrowed.access.purpose,
            principal=principal,
            endpoint=str(endpoint),
            accept=typed.accept,
            attributes=sorted(narrowed.request.attributes or ()),
            request=body,
        )
        answer = await self._subscribe_at_broker(subscription, narrowed)
        if answer is None:
            store.remove(subscription.id)
            return _problem(502, "BadGateway", "Bad Gateway", "the broker refused the subscription")
        self._record(principal, narrowed.access, answer, reason="subscribed", agreement=narrowed.grant.agreement)
        return web.Response(status=201, headers={"Location": f"{_API}/subscriptions/{subscription.id}"})

    def _broker_subscription(
        self, subscription: GatewaySubscription, narrowed: NarrowedSubscription
    ) -> upstream.Upstream:
        assert self.c.public_url is not None
        notify = f"{self.c.public_url.rstrip('/')}/gateway/notifications/{subscription.id}/{subscription.secret}"
        return upstream.broker_subscription(narrowed, notify, self.vocabulary)

    async def _subscribe_at_broker(
        self, subscription: GatewaySubscription, narrowed: NarrowedSubscription
    ) -> UpstreamAnswer | None:
        """The broker subscription built from ``narrowed``; the store keeps its id and digest."""
        built = self._broker_subscription(subscription, narrowed)
        answer = await self._broker(built)
        if answer.status != 201:
            log.warning("subscription %s: the broker answered %d", subscription.id, answer.status)
            return None
        assert self.c.subscriptions is not None and built.body is not None
        self.c.subscriptions.set_broker_id(
            subscription.id,
            answer.headers.get("Location", "").rsplit("/", 1)[-1],
            hashlib.sha256(built.body).hexdigest(),
        )
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
        typed = parse.subscription_from(
            subscription.request, subscription.tenant, subscription.purpose, self.c.contexts
        )
        outcome = decide(subscription.principal, typed, self.c.policies, now=self.c.clock())
        if isinstance(outcome, Refusal):
            access = outcome.access or AccessRequest(Action.SUBSCRIBE, subscription.tenant, subscription.entity_type)
            self.c.access_log.record(
                subscription.principal,
                access,
                outcome="refused",
                reason=f"agreement no longer grants it: {outcome.reason}; subscription removed",
                path=f"/gateway/notifications/{subscription.id}",
            )
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
        kept = [
            e
            for e in (
                filter_entity(x, outcome.rules, self.short_names)
                for x in data
                if isinstance(x, dict) and x.get("type") == subscription.entity_type
            )
            if e
        ]
        if kept:
            notified_at = notification.get("notifiedAt") if isinstance(notification, dict) else None
            forwarded = {
                "id": f"urn:ngsi-ld:Notification:{secrets.token_hex(8)}",
                "type": "Notification",
                "subscriptionId": subscription.id,
                "notifiedAt": notified_at if isinstance(notified_at, str) and len(notified_at) < 40 else None,
                "data": [render(e, typed.format) for e in kept],
            }
            # Recorded before the data leaves (and without the URL's secret).
            self.c.access_log.record(
                subscription.principal,
                outcome.access,
                outcome="permitted",
                reason=f"notification to {subscription.endpoint}",
                path=f"/gateway/notifications/{subscription.id}",
                agreement=outcome.grant.agreement,
                entities=[str(e["id"]) for e in kept],
            )
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
