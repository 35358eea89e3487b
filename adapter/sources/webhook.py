"""HTTP ingest: ChirpStack's HTTP integration and The Things Stack's webhooks.

Routes
    ``POST /webhooks/{connection}`` where ``{connection}`` names a configured connection
    with ``transport = "webhook"``; its LNS and collectivity say how to parse the body and
    which tenant it belongs to, so one listener serves every collectivity.
    ``GET /healthz`` answers ``{"status": "ok"}``.

Where the event type comes from
    ChirpStack puts it in the query (``?event=up``, ``status``, ``join``...). A TTS webhook
    may be given ``?type=uplink_message`` (or a topic kind such as ``up``); without it
    the parser recognises the message from its body. Both parameters are accepted for both
    network servers. The body is passed as received: the ChirpStack parser tells JSON from
    binary protobuf (``application/octet-stream``) by itself, so the content type is
    not used to choose a decoder and no content type is refused.

Authentication
    Each webhook connection has its own bearer token (``token_env`` in the configuration:
    the name of the environment variable that holds it). ChirpStack's HTTP integration and
    TTS webhooks both send custom headers: configure ``Authorization: Bearer <token>``.
    A missing or wrong token is a 401 and nothing is processed. A connection configured
    with ``token_env`` whose variable is unset refuses every request (503), rather than
    falling open. ``allow_unauthenticated = true`` is an explicit opt-out for local demos.

What the answer means
    The answer is sent only after ``handle`` returned, so a 2xx means the event has been
    dealt with. ``200 {"status": ...}`` for every event the pipeline accepted or counted
    (``mapped``, ``device_status``, ``duplicate``, ``other``). A *rejected* event is also
    a 200, with ``reason``, ``detail`` and ``dead_letter_id``: the body is safe in the
    dead-letter store and will be replayed once the cause is fixed, while an error status
    would make the network server retry an input that will never get better (or count
    failures against the webhook until it is disabled). A 500 (problem details) is sent only
    when ``handle`` itself raised: nothing was stored, so the sender should retry. When the
    outbox towards the NGSI-LD broker is full (``OutboxFull``), the answer is a 503 with
    ``Retry-After``: nothing was stored, the sender should retry later.
    Bodies over 256 KiB (``ParseLimits.max_body_bytes``, the parsers' own limit) get 413 and
    nothing is processed: refused before a byte is read when ``Content-Length`` says so,
    reading stops at the limit for a chunked body. (A body within that size but nested deeper
    than ``ParseLimits.max_depth`` is a dead letter, ``body_too_deep``: a 200 as above.)
    Errors are RFC 9457 problem details (``{"type", "title", "status", "detail"}``).

Slow clients
    The listener runs with ``adapter.httpserver`` limits (``[http]`` in the configuration): a
    request head that does not arrive within ``header_timeout_s`` gets 408 and its connection
    is closed; so does a body that does not arrive within ``body_timeout_s`` (a problem
    details 408: nothing was processed, the sender may retry); an idle connection is closed
    after ``keepalive_timeout_s``; a header past the size limits is a 400.

``handle`` is synchronous and runs on the event loop, so events (from HTTP and MQTT alike)
enter the pipeline one at a time.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web

from adapter.config import AdapterConfig, Connection
from adapter.httpserver import ServerLimits, serve_forever
from adapter.outbox import OutboxFull
from adapter.pipeline import PipelineResult
from adapter.sources.mqtt import Handler

__all__ = [
    "FULL_RETRY_AFTER_S",
    "HEALTH_PATH",
    "WEBHOOK_PATH",
    "create_webhook_app",
    "serve_webhooks",
    "webhook_limits",
]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/{connection}"
HEALTH_PATH = "/healthz"
PROBLEM_JSON = "application/problem+json"
#: seconds a sender is asked to wait when the outbox is full
FULL_RETRY_AFTER_S = 30

_CONFIG: web.AppKey[AdapterConfig] = web.AppKey("config", AdapterConfig)
_HANDLE: web.AppKey[Handler] = web.AppKey("handle", Handler)


def create_webhook_app(
    config: AdapterConfig, handle: Handler, *, extra_routes: Sequence[web.RouteDef] = ()
) -> web.Application:
    """The aiohttp application serving the webhook connections of ``config``.

    ``extra_routes`` are the adapter's other HTTP resources (contexts, metrics), served by
    the same listener.
    """
    app = web.Application(client_max_size=config.limits.max_body_bytes, middlewares=[_problem_details])
    app[_CONFIG] = config
    app[_HANDLE] = handle
    app.router.add_post(WEBHOOK_PATH, _receive)
    app.router.add_get(HEALTH_PATH, _health)
    app.add_routes(extra_routes)
    return app


async def serve_webhooks(
    config: AdapterConfig, handle: Handler, *, host: str, port: int, extra_routes: Sequence[web.RouteDef] = ()
) -> None:
    """Serve ``create_webhook_app`` on ``host:port`` until cancelled, with ``webhook_limits(config)``."""
    names = [c.name for c in config.connections if c.transport == "webhook"]
    await serve_forever(
        create_webhook_app(config, handle, extra_routes=extra_routes),
        host=host,
        port=port,
        limits=webhook_limits(config),
        started=lambda server: log.info(
            "webhooks listening on %s for %s", server.url, ", ".join(names) or "no connection"
        ),
    )


def webhook_limits(config: AdapterConfig) -> ServerLimits:
    """The configured HTTP limits (``[http]``), with no larger a body than the parsers take."""
    return dataclasses.replace(
        config.http, max_body_bytes=min(config.http.max_body_bytes, config.limits.max_body_bytes)
    )


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _receive(request: web.Request) -> web.Response:
    connection = _webhook_connection(request.app[_CONFIG], request.match_info["connection"])
    _authenticate(request, connection)
    body = await request.read()  # over client_max_size: HTTPRequestEntityTooLarge (413)
    event = request.query.get("event") or request.query.get("type") or None
    try:
        result = request.app[_HANDLE](body, lns=connection.lns, origin=connection.origin, event=event)
    except OutboxFull as exc:
        log.warning("webhook %s: %s; answering 503", connection.name, exc)
        busy = _problem(503, HTTPStatus(503).phrase, "the adapter's outbox is full; nothing was stored, retry later")
        busy.headers["Retry-After"] = str(FULL_RETRY_AFTER_S)
        return busy
    except Exception:
        log.exception("webhook %s: the handler failed; answering 500 so that the sender retries", connection.name)
        return _problem(500, HTTPStatus(500).phrase, "the event could not be processed and was not stored; retry later")
    return web.json_response(_answer(result))


def _answer(result: PipelineResult) -> dict[str, Any]:
    if result.status == "rejected":
        return {
            "status": result.status,
            "reason": result.reason,
            "detail": result.detail,
            "dead_letter_id": result.dead_letter_id,
        }
    return {"status": result.status, "entities": [e["id"] for e in result.entities]}


def _webhook_connection(config: AdapterConfig, name: str) -> Connection:
    for connection in config.connections:
        if connection.name == name and connection.transport == "webhook":
            return connection
    raise web.HTTPNotFound(text=f"no webhook connection named {name!r} is configured")


def _authenticate(request: web.Request, connection: Connection) -> None:
    if connection.allow_unauthenticated:
        return
    if not connection.webhook_token:
        log.error("webhook %s: %s is not set; refusing the request", connection.name, connection.webhook_token_env)
        raise web.HTTPServiceUnavailable(text=f"webhook {connection.name} has no token configured on the adapter")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), connection.webhook_token.encode()):
        raise web.HTTPUnauthorized(
            text="a valid 'Authorization: Bearer <token>' header is required for this webhook",
            headers={"WWW-Authenticate": 'Bearer realm="ngsild-adapter webhooks"'},
        )


@web.middleware
async def _problem_details(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn aiohttp's HTTP errors (404, 405, 413...) into problem-details JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        problem = _problem(exc.status, HTTPStatus(exc.status).phrase, exc.text or exc.reason)
        if "WWW-Authenticate" in exc.headers:
            problem.headers["WWW-Authenticate"] = exc.headers["WWW-Authenticate"]
        return problem


def _problem(status: int, title: str, detail: str) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.json_response(body, status=status, content_type=PROBLEM_JSON)
