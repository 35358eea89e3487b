"""What every gateway route shares: the context it works with, and the steps each request takes
(authenticate, decide, record, ask the broker or the adapter); the routes are in
``adapter.gateway.app`` and the modules it assembles."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from adapter.access.cells import CellStore
from adapter.access.decide import (
    Narrowed,
    Policies,
    Refusal,
    decide,
)
from adapter.access.log import NO_TENANT, AccessLog
from adapter.access.model import AccessRequest, Action, Principal
from adapter.access.requests import EntityQuery, PartnerRequest, SubscriptionRequest, TemporalQuery
from adapter.gateway import upstream
from adapter.gateway.parse import Headers
from adapter.gateway.endpoints import (
    EndpointPolicy,
    notification_session,
)
from adapter.gateway.subscriptions import SubscriptionStore
from adapter.gateway.upstream import UpstreamAnswer, Vocabulary


__all__ = ["GatewayContext"]


log = logging.getLogger(__name__)

_API = "/ngsi-ld/v1"
_NGSI_PROBLEMS = "https://uri.etsi.org/ngsi-ld/errors/"
_LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
# An encoded slash, backslash, dot or NUL, or a dot segment or an empty segment, in the raw path.
_HOSTILE_PATH = re.compile(r"%(?:2[fFeE]|5[cC]|00)|\\|(?:^|/)\.{1,2}(?:/|$)|//")


@dataclass
class GatewayContext:
    """What the gateway works with.

    ``endpoints`` is the notification endpoint policy (``adapter.gateway.endpoints``): the
    URL allowlist, and the addresses refused at every connection (``notifier``'s connector).
    ``validate`` turns a bearer token into a ``Principal`` or raises an error with a ``reason``;
    ``policies`` decide (``adapter.access.decide.Policies``); ``contexts`` maps each entity type
    to its Smart Data Models @context URL (what partners name), ``contexts_url`` where the
    broker fetches the adapter's served copies (what the broker is named, when set);
    ``adapter_terms`` the adapter's own terms to their
    IRIs (``linkMargin``...); ``adapter_url`` and ``adapter_token``: ``ngsild-adapter serve``
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
    contexts_url: str | None = None  # the adapter's served contexts, as the broker reaches them
    temporal_url: str | None = None  # what answers temporal reads, when not the broker (Mintaka)


class _Answer(Exception):
    """A finished answer, raised from deep in a route (a refusal, an error)."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


def _problem(status: int, kind: str, title: str, detail: str) -> web.Response:
    body = {"type": _NGSI_PROBLEMS + kind, "title": title, "status": status, "detail": detail}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _json(
    value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None, content_type: str = "application/json"
) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, headers=headers, content_type=content_type)


class _Steps:
    """The steps every route takes (the route classes build on it)."""

    def __init__(self, context: GatewayContext) -> None:
        self.c = context
        self.vocabulary = Vocabulary(
            context.contexts, dict(context.adapter_terms or _default_adapter_terms()), contexts_url=context.contexts_url
        )
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
            raise _Answer(
                _problem(
                    401,
                    "NoBearerToken",
                    "Unauthorized",
                    "an access token is required (Authorization: Bearer ...), once",
                )
            )
        try:
            return await self.c.validate(token.strip())
        except Exception as exc:  # InvalidToken: its reason code, never the token
            reason = getattr(exc, "reason", None)
            if not isinstance(reason, str):
                raise
            if reason == "issuer_unavailable":
                raise _Answer(
                    _problem(
                        503,
                        "IssuerUnavailable",
                        "Service Unavailable",
                        "the token's issuer cannot be reached to check its keys; retry later",
                    )
                ) from exc
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

    def _record(
        self,
        principal: Principal,
        access: AccessRequest,
        answer: UpstreamAnswer,
        *,
        reason: str = "",
        agreement: str | None = None,
        entities: Sequence[str] = (),
    ) -> None:
        """A permitted access, with what the gateway asked (built from the decision, never the client's path)."""
        self.c.access_log.record(
            principal,
            access,
            outcome="permitted",
            reason=reason,
            path=answer.target,
            agreement=agreement,
            entities=entities,
        )

    async def _broker(self, built: upstream.Upstream) -> UpstreamAnswer:
        return await upstream.send(self.c.session, self.c.broker_url, built, temporal_base=self.c.temporal_url)

    def _adapter(self) -> str:
        if self.c.adapter_url is None:
            raise _Answer(
                _problem(
                    501, "OperationNotSupported", "Not Implemented", "this gateway offers no provenance, logs or SPARQL"
                )
            )
        return self.c.adapter_url


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
