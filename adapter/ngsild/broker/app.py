"""The aiohttp application of the embedded broker: routes, error translation, lifecycle.

Every ``BrokerError`` becomes an NGSI-LD ProblemDetails answer here and nowhere else;
aiohttp's own 404/405/413 and unexpected exceptions are translated the same way, so a client
only ever sees ``application/json`` errors with an ETSI error type. NGSI-LD paths the broker
does not implement answer 501 OperationNotSupported rather than a bare 404.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web

from adapter.httpserver import ServerLimits, serve_forever
from adapter.ngsild.broker import views_entities, views_query, views_subscriptions, views_temporal
from adapter.ngsild.broker.errors import (
    BrokerError,
    InternalError,
    MethodNotAllowed,
    OperationNotSupported,
    PayloadTooLarge,
    ResourceNotFound,
)
from adapter.ngsild.broker.jsonld import DocumentLoader
from adapter.ngsild.broker.negotiation import MAX_BODY, tenant_of
from adapter.ngsild.broker.state import Broker
from adapter.ngsild.broker.views_common import BROKER, json_answer

__all__ = ["create_broker_app", "run_broker"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _problem(error: BrokerError) -> web.Response:
    return json_answer(error.problem(), status=error.status)


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except BrokerError as error:
        response = _problem(error)
    except web.HTTPRequestEntityTooLarge:
        response = _problem(PayloadTooLarge("Payload too large", f"the limit is {MAX_BODY} bytes"))
    except web.HTTPMethodNotAllowed as exc:
        response = _problem(MethodNotAllowed("Method not allowed", f"{request.method} {request.path}"))
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    except web.HTTPNotFound:
        response = _problem(ResourceNotFound("Service Not Found", request.path))
    except web.HTTPException:
        raise
    except Exception:  # noqa: BLE001 - the boundary answers 500 instead of dropping the connection
        log.exception("internal error on %s %s", request.method, request.path)
        response = _problem(InternalError("Internal Error", "see the broker log"))
    try:
        tenant = tenant_of(request)
    except BrokerError:
        tenant = ""
    if tenant:
        response.headers["NGSILD-Tenant"] = tenant
    return response


async def _not_implemented(request: web.Request) -> web.Response:
    raise OperationNotSupported("Not implemented by the embedded broker", f"{request.method} {request.path}")


def create_broker_app(
    *,
    db_path: Path | None = None,
    context_loader: DocumentLoader | None = None,
    reachable_contexts: Sequence[str] | None = None,
) -> web.Application:
    """The embedded NGSI-LD broker as an aiohttp application (development and tests only).

    It answers like Orion-LD (with the temporal API of Mintaka) on the operations the
    project uses; it is not a production broker. ``db_path`` keeps the data in an SQLite
    file (WAL), ``None`` in memory. ``context_loader`` fetches @context documents by URL
    (default: the project's local copies, then HTTP with a 5 s timeout). ``reachable_contexts``
    (URL prefixes) makes the default loader offline, like an Orion-LD without internet: only
    contexts under those prefixes are downloaded, any other is 503 LdContextNotAvailable::

        app = create_broker_app(db_path=Path("var/broker.db"))
        web.run_app(app, host="127.0.0.1", port=1026)
    """
    app = web.Application(middlewares=[_problems], client_max_size=MAX_BODY)
    app[BROKER] = Broker(db_path, context_loader, reachable_contexts)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        broker = app[BROKER]
        await broker.start()
        yield
        await broker.stop()

    app.cleanup_ctx.append(lifecycle)
    routes = views_entities.ROUTES + views_query.ROUTES + views_temporal.ROUTES + views_subscriptions.ROUTES
    app.add_routes(routes)
    # Orion-LD also answers a path with a trailing slash, and clients send them (ngsildclient does).
    app.add_routes([web.route(r.method, r.path + "/", r.handler, **r.kwargs) for r in routes])
    app.router.add_route("*", "/ngsi-ld/v1/{tail:.*}", _not_implemented)
    return app


#: Collector thresholds of the broker's own process (``run_broker``); see there.
GC_THRESHOLDS = (50_000, 20, 100)


async def run_broker(host: str, port: int, db_path: Path | None, *, limits: ServerLimits | None = None) -> None:
    """Serves the embedded broker on ``host:port`` until cancelled (in its own process).

    ``limits``: the HTTP server's (``adapter.httpserver``; default: its defaults, with bodies up
    to ``MAX_BODY``, a batch's size).

    A 1,000-entity batch allocates some 200,000 objects that all live until the answer; at
    Python's default collector threshold (700) the collections over them took a fifth of
    the batch's time. This entry point owns its process, so it raises the thresholds;
    ``create_broker_app`` leaves the settings of an embedding process alone.
    """
    log.warning("embedded NGSI-LD broker: a development and test default, not a production broker")
    gc.set_threshold(*GC_THRESHOLDS)
    await serve_forever(
        create_broker_app(db_path=db_path),
        host=host,
        port=port,
        limits=limits or ServerLimits(max_body_bytes=MAX_BODY),
        started=lambda server: log.info(
            "embedded NGSI-LD broker listening on %s (data: %s)", server.url, db_path or "memory"
        ),
    )
