"""A fake NGSI-LD broker answering batch upserts as Orion-LD does, with switchable faults.

Answers follow shared/reference/orion-ld-behaviour.md (legacy mode): 201 with the created ids
when every entity is new, 204 when every entity existed, 207 ``{"success", "errors"}`` when some
failed or when new and existing entities are mixed; request-level errors are ProblemDetails
without ``status``. Upserts with ``options=update`` merge attributes; each accepted entity is
also appended to a per-entity history, standing for the broker's temporal store.

It records what a real broker would not let a test see: every request (tenant, ids, body size,
start and end times), the most requests handled at once, and every limit a client broke
(more than 1,000 entities, 1 MiB or more, the same id twice in one batch).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["ERRORS", "FakeBroker", "Refusal", "SeenBatch"]

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
MAX_BODY = 1024 * 1024
MAX_ENTITIES = 1000


@dataclass(frozen=True)
class SeenBatch:
    tenant: str | None
    ids: tuple[str, ...]
    size: int
    started: float
    ended: float
    headers: dict[str, str]
    query: dict[str, str]


@dataclass
class Refusal:
    """How to refuse one entity in a 207 (``times`` answers, then accept it)."""

    status: int = 400
    type: str = ERRORS + "BadRequestData"
    title: str = "the Entity Type cannot be altered"
    times: int = 1_000_000


@dataclass
class FakeBroker:
    # faults, switchable at any time
    fail_with: int | None = None  # answer every request with this status (503, 401...)
    reject_batch_with: int | None = None  # answer upserts with this request-level 4xx
    drop_next: int = 0  # close this many connections without answering
    delay_s: float = 0.0  # time taken by each upsert
    stall_next: int = 0  # this many next upserts take stall_s instead
    stall_s: float = 5.0
    refuse: dict[str, Refusal] = field(default_factory=dict)
    # what happened
    entities: dict[tuple[str | None, str], dict[str, Any]] = field(default_factory=dict)
    history: dict[tuple[str | None, str], list[dict[str, Any]]] = field(default_factory=dict)
    batches: list[SeenBatch] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.time() of every upsert request
    max_concurrency: int = 0
    active: int = 0  # upserts being handled now
    temporal_writes: int = 0  # POST /temporal/entities/{id}/attrs, answered 501 as Orion-LD does

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * MAX_BODY)
        app.router.add_post("/ngsi-ld/v1/entityOperations/upsert", self._upsert)
        app.router.add_get("/ngsi-ld/v1/entities", self._query)
        app.router.add_get("/ngsi-ld/v1/entities/{id}", self._get)
        app.router.add_get("/ngsi-ld/v1/temporal/entities/{id}", self._temporal)
        app.router.add_post("/ngsi-ld/v1/temporal/entities/{id}/attrs", self._temporal_write)
        return app

    def observations(self, entity_id: str, attribute: str, tenant: str | None = None) -> list[Any]:
        """The values of ``attribute`` in the order the broker recorded them."""
        return [e[attribute]["value"] for e in self.history.get((tenant, entity_id), []) if attribute in e]

    @property
    def requests(self) -> int:
        return len(self.arrivals)

    def sends(self, entity_id: str) -> int:
        return sum(entity_id in b.ids for b in self.batches)

    async def _upsert(self, request: web.Request) -> web.StreamResponse:
        started = time.time()
        self.arrivals.append(started)
        self.active += 1
        self.max_concurrency = max(self.max_concurrency, self.active)
        try:
            body = await request.read()
            if self.stall_next > 0:
                self.stall_next -= 1
                await asyncio.sleep(self.stall_s)
            elif self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.drop_next > 0:
                self.drop_next -= 1
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=204)
            if self.fail_with is not None:
                kind = "InternalError" if self.fail_with >= 500 else "BadRequestData"
                return _problem(self.fail_with, kind, "failing")
            return self._apply(request, body, started)
        finally:
            self.active -= 1

    def _apply(self, request: web.Request, body: bytes, started: float) -> web.Response:
        if request.content_type not in ("application/json", "application/ld+json"):
            return _problem(415, "InvalidRequest", "Unsupported Media Type")
        if len(body) >= MAX_BODY:
            self.violations.append(f"body of {len(body)} bytes")
            return _problem(413, "BadRequestData", "Payload Too Large")
        try:
            entities = json.loads(body)
        except ValueError:
            return _problem(400, "InvalidRequest", "JSON Parse Error")
        if not isinstance(entities, list) or not entities:
            return _problem(400, "BadRequestData", "Empty Array" if entities == [] else "Not a JSON Array")
        tenant = request.headers.get("NGSILD-Tenant", "").lower() or None
        ids = tuple(str(e.get("id")) for e in entities)
        self.batches.append(
            SeenBatch(tenant, ids, len(body), started, time.time(), dict(request.headers), dict(request.query))
        )
        if len(ids) > MAX_ENTITIES:
            self.violations.append(f"{len(ids)} entities in one batch")
        if len(set(ids)) != len(ids):
            self.violations.append(f"the same id twice in one batch: {ids}")
        if request.query.get("options") != "update":
            self.violations.append(f"options={request.query.get('options')}")
        if self.reject_batch_with is not None:
            return _problem(self.reject_batch_with, "BadRequestData", "refused whole")
        created, success, errors = [], [], []
        for entity in entities:
            entity_id = str(entity.get("id"))
            refusal = self.refuse.get(entity_id)
            if refusal is not None and refusal.times > 0:
                refusal.times -= 1
                errors.append(_entity_error(entity_id, refusal.status, refusal.type, refusal.title))
                continue
            if "@context" not in entity:
                errors.append(_entity_error(entity_id, 400, ERRORS + "BadRequestData", "@context missing"))
                continue
            key = (tenant, entity_id)
            stored = self.entities.get(key)
            attributes = {k: v for k, v in entity.items() if k != "@context"}
            if stored is None:
                created.append(entity_id)
                self.entities[key] = dict(attributes)
            else:
                stored.update(attributes)  # options=update: the attributes not sent are kept
            success.append(entity_id)
            self.history.setdefault(key, []).append(attributes)
        if errors:
            return web.json_response({"success": success, "errors": errors}, status=207)
        if len(created) == len(entities):
            return web.json_response(created, status=201)
        if not created:
            return web.Response(status=204)
        return web.json_response({"errors": [], "success": success}, status=207)

    async def _get(self, request: web.Request) -> web.Response:
        if self.fail_with is not None:
            return _problem(self.fail_with, "InternalError", "failing")
        entity = self.entities.get((_tenant(request), request.match_info["id"]))
        if entity is None:
            return _problem(404, "ResourceNotFound", "Entity Not Found")
        return web.json_response(entity)

    async def _query(self, request: web.Request) -> web.Response:
        if "type" not in request.query and "id" not in request.query:
            return _problem(400, "BadRequestData", "Too broad query")
        tenant = _tenant(request)
        found = [
            e
            for (t, _), e in self.entities.items()
            if t == tenant and e.get("type") == request.query.get("type", e.get("type"))
        ]
        return web.json_response(found[: int(request.query.get("limit", 20))])

    async def _temporal_write(self, request: web.Request) -> web.Response:
        # Orion-LD: src/lib/orionld/serviceRoutines/orionldPostTemporalAttributes.cpp
        self.temporal_writes += 1
        return _problem(501, "OperationNotSupported", "Not Implemented")

    async def _temporal(self, request: web.Request) -> web.Response:
        instances = self.history.get((_tenant(request), request.match_info["id"]))
        if not instances:
            return _problem(404, "ResourceNotFound", "Entity Not Found")
        out: dict[str, Any] = {"id": instances[0]["id"], "type": instances[0]["type"]}
        for instance in instances:
            for name, value in instance.items():
                if name not in ("id", "type"):
                    out.setdefault(name, []).append(value)
        return web.json_response(out)


def _tenant(request: web.Request) -> str | None:
    return request.headers.get("NGSILD-Tenant", "").lower() or None


def _problem(status: int, kind: str, title: str) -> web.Response:
    # Orion-LD: application/json, no top-level "status"
    return web.json_response({"type": ERRORS + kind, "title": title, "detail": "fake broker"}, status=status)


def _entity_error(entity_id: str, status: int, kind: str, title: str) -> dict[str, Any]:
    return {"entityId": entity_id, "error": {"type": kind, "title": title, "detail": entity_id, "status": status}}
