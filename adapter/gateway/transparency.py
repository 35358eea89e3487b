"""The collectivities' logs and keys over HTTP, in the formats existing tools audit.

``GET /logs/{tenant}/checkpoint``
    The latest signed tree head: a C2SP tlog-checkpoint signed note (text/plain).
``GET /logs/{tenant}/tile/...``
    C2SP tlog-tiles: hash tiles and entry bundles (the entries are the record digests) of the
    tree under that checkpoint; immutable, so cacheable for ever (partial tiles for a minute).
``GET /logs/{tenant}/proof/inclusion?index=I&size=N`` and ``/proof/consistency?old=M&size=N``
    RFC 9162 proofs as JSON (hashes in base64), for clients that do not read tiles.
``GET /logs/{tenant}/key``
    The log's verifier key in the note format Go's ``sumdb/note`` reads (``<name>+<id>+<key>``).
``GET /.well-known/jwks.json``
    Every collectivity's log key as an Ed25519 JWK (RFC 8037, ``kty: OKP``), ``kid`` the key's
    note id in hex, with the log's name. Partners should pin the key they fetched once, rather
    than trust whatever this server serves later: a checkpoint signed by another key fails.

Only what a signed checkpoint covers is served: a tile or proof beyond it is a 404.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from adapter.gateway import problem
from adapter.provenance.integrity.tiles import InvalidTilePath, TileNotFound
from adapter.provenance.ledger import ProvenanceLedger, UnknownTenant

__all__ = ["transparency_routes"]

_NOTE = "text/plain; charset=utf-8"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _published_size(ledger: ProvenanceLedger, tenant: str) -> int:
    size = ledger.latest_checkpoint_size(tenant)
    if size is None:
        raise web.HTTPNotFound(text=f"no signed tree head of {tenant} yet\n")
    return size


def _int(request: web.Request, name: str) -> int:
    try:
        value = int(request.query[name])
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text=f"parameter {name} must be a non-negative integer\n") from None
    if value < 0:
        raise web.HTTPBadRequest(text=f"parameter {name} must be a non-negative integer\n")
    return value


def jwks(ledger: ProvenanceLedger) -> dict[str, Any]:
    """The JWK Set of every collectivity's log key."""
    keys = []
    for tenant in ledger.tenants():
        verifier = ledger.log(tenant).verifier
        keys.append(
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "use": "sig",
                "alg": "EdDSA",
                "kid": verifier.key_id.hex(),
                "x": base64.urlsafe_b64encode(verifier.public_key).rstrip(b"=").decode("ascii"),
                "ngsild-adapter:log": verifier.name,
                "ngsild-adapter:tenant": tenant,
            }
        )
    return {"keys": keys}


def transparency_routes(ledger: ProvenanceLedger) -> list[web.RouteDef]:
    """The routes above, reading ``ledger``."""

    def tenant_of(request: web.Request) -> str:
        tenant = request.match_info["tenant"]
        try:
            ledger.log(tenant)
        except UnknownTenant:
            raise web.HTTPNotFound(text=f"no log for collectivity {tenant}\n") from None
        return tenant

    async def checkpoint(request: web.Request) -> web.Response:
        tenant = tenant_of(request)
        note = ledger.latest_checkpoint(tenant)
        if note is None:
            return problem(404, "No signed tree head yet", f"the log of {tenant} has not been signed yet")
        return web.Response(body=note, headers={"Content-Type": _NOTE, "Cache-Control": "no-cache"})

    async def tile(request: web.Request) -> web.Response:
        tenant = tenant_of(request)
        path = "tile/" + request.match_info["path"]
        try:
            body = ledger.log(tenant).read_resource(path, _published_size(ledger, tenant))
        except InvalidTilePath as exc:
            return problem(400, "Not a tlog-tiles path", str(exc))
        except TileNotFound as exc:
            return problem(404, "Not in the published tree", str(exc))
        immutable = ".p/" not in path
        cache = "public, max-age=31536000, immutable" if immutable else "public, max-age=60"
        return web.Response(body=body, headers={"Content-Type": "application/octet-stream", "Cache-Control": cache})

    async def inclusion(request: web.Request) -> web.Response:
        tenant = tenant_of(request)
        index, size = _int(request, "index"), _int(request, "size")
        if size > _published_size(ledger, tenant) or index >= size:
            return problem(404, "Not in a published tree", f"leaf {index} in a signed tree of size {size}")
        proof = ledger.log(tenant).inclusion_proof(index, size)
        return web.json_response({"index": index, "size": size, "proof": [_b64(h) for h in proof]})

    async def consistency(request: web.Request) -> web.Response:
        tenant = tenant_of(request)
        old, size = _int(request, "old"), _int(request, "size")
        if size > _published_size(ledger, tenant) or old > size:
            return problem(404, "Not a published tree", f"trees of size {old} and {size}")
        proof = ledger.log(tenant).consistency_proof(old, size)
        return web.json_response({"old": old, "size": size, "proof": [_b64(h) for h in proof]})

    async def key(request: web.Request) -> web.Response:
        tenant = tenant_of(request)
        return web.Response(text=ledger.log(tenant).verifier.vkey + "\n", content_type="text/plain")

    async def keys(request: web.Request) -> web.Response:
        return web.json_response(jwks(ledger), content_type="application/jwk-set+json")

    return [
        web.get("/logs/{tenant}/checkpoint", checkpoint),
        web.get("/logs/{tenant}/tile/{path:.+}", tile),
        web.get("/logs/{tenant}/proof/inclusion", inclusion),
        web.get("/logs/{tenant}/proof/consistency", consistency),
        web.get("/logs/{tenant}/key", key),
        web.get("/.well-known/jwks.json", keys),
    ]
