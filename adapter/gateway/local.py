"""Routes served to this machine only: the data-bearing provenance paths until access control.

``/sparql`` and ``/provenance/...`` answer with the values themselves; until the sharing
gateway decides who may read what, they answer only requests from the loopback interface, even
when the adapter listens on every interface (webhooks, contexts and the published logs must be
reachable from the network). ``[provenance] open_to_network = true`` lifts this, for a
deployment that puts its own access control in front.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from adapter.gateway import problem

__all__ = ["local_only"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not _is_loopback(request):
            return problem(403, "Forbidden", "this path is served to the adapter's own machine only, until "
                                             "access control (the sharing gateway); [provenance] open_to_network = true opens it")
        return await handler(request)

    return guarded


def local_only(routes: Sequence[web.RouteDef]) -> list[web.RouteDef]:
    """``routes`` answering requests from the loopback interface only (403 otherwise)."""
    return [web.RouteDef(r.method, r.path, _guarded(r.handler), r.kwargs) for r in routes]  # type: ignore[arg-type]
