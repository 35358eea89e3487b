"""Serving the local JSON-LD contexts over HTTP, so that a broker can fetch them.

Orion-LD downloads every ``@context`` URL an entity names (and answers 503 when it
cannot). In production the Smart Data Models contexts are on GitHub and the project's own
context has no public home, so the adapter serves every file of ``contexts/`` at
``<base URL>/<file name>`` and, when ``contexts_url`` is configured, rewrites the context
URLs of the entities it sends to those served copies: the broker then depends on nothing
outside the deployment (the core context keeps its official URL: brokers know it).
Only files listed in ``contexts/index.json`` are served.

``broker_context`` is the one decision of what a request to a broker names: every component
that talks to a broker (the pipeline's writes, the gateway's reads, temporal reads and
subscriptions, the provenance verifier, the demo, the CLI) goes through it, or through
``broker_contexts`` for its type -> context table. Partners still see the official URLs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from aiohttp import web

from adapter.ngsild.contexts import CORE_CONTEXT, context_files, default_contexts_dir

__all__ = ["CONTEXTS_PATH", "broker_context", "broker_contexts", "context_routes", "served_context_urls"]

CONTEXTS_PATH = "/contexts/{name}"
_LD_JSON = "application/ld+json"


def context_routes(contexts_dir: Path | None = None) -> list[web.RouteDef]:
    """Routes that serve ``GET /contexts/{file name}`` from the local copies."""
    files = {path.name: path for path in context_files(contexts_dir or default_contexts_dir()).values()}

    async def serve(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound(text=f"no context named {request.match_info['name']!r}")
        return web.Response(
            body=path.read_bytes(),
            content_type=_LD_JSON,
            headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
        )

    async def index(request: web.Request) -> web.Response:
        return web.json_response(sorted(files))

    return [web.get(CONTEXTS_PATH, serve), web.get("/contexts/", index)]


def served_context_urls(
    context: str | Sequence[Any], base_url: str, contexts_dir: Path | None = None
) -> str | list[Any]:
    """The ``@context`` value with every locally held URL replaced by its served copy."""
    files: Mapping[str, Path] = context_files(contexts_dir or default_contexts_dir())
    base = base_url.rstrip("/")

    def one(item: Any) -> Any:
        # Brokers know the core context by its official URL and never download it.
        path = files.get(item) if isinstance(item, str) and item != CORE_CONTEXT else None
        return f"{base}/{path.name}" if path is not None else item

    if isinstance(context, str):
        return str(one(context))
    return [one(item) for item in context]


@overload
def broker_context(context: str, contexts_url: str | None) -> str: ...
@overload
def broker_context(context: Sequence[Any], contexts_url: str | None) -> list[Any]: ...


def broker_context(context: str | Sequence[Any], contexts_url: str | None) -> str | list[Any]:
    """The ``@context`` (Link URL or body member) a request to a broker carries.

    A broker downloads every context it is named, and one inside a public body's network
    reaches neither GitHub nor w3id: with ``contexts_url`` (the adapter's ``/contexts`` as
    the broker reaches it) each locally held context is named by its served copy; without
    it, by its official URL.
    """
    if contexts_url is None:
        return context if isinstance(context, str) else list(context)
    return served_context_urls(context, contexts_url)


def broker_contexts(contexts: Mapping[str, str], contexts_url: str | None) -> dict[str, str]:
    """A type -> context table (``provenance.runtime.entity_contexts``) as sent to a broker."""
    return {name: broker_context(url, contexts_url) for name, url in contexts.items()}
