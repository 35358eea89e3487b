"""A fake broker over aiohttp that answers batch upserts in the shape of a real broker, or as a
test script says, and keeps the truth: which entities it really wrote.

Dialects follow each broker's source (see ``adapter.ngsild.outcomes``): ``orion`` (207
``entityId`` + ``error``, also when all failed; legacy 207 for a mixed batch), ``scorpio``
(207 ``id`` + ``ProblemDetails`` + ``type: "Upsert"``; 400, or 409 when every failure is a
conflict, with ``{"errors"}`` when nothing was written), ``stellio`` (the spec's
BatchOperationResult, Spring ProblemDetail with ``instance``).

An entity is refused when its id is in ``refuse`` or when it carries a GeoJSON position with
an altitude (three coordinates), as some brokers do. A script (``answers``) overrides the next
answers: each is a function of the batch that returns what to store and what to say. Scripted
answers must stay truthful (a test checks the writer against what was really stored): never
claim an entity written that was not stored, nor a success status when anything was refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["ALTITUDE_REFUSAL", "Answer", "Batch", "ShapedBroker", "dialect_answer", "problem"]

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
ALTITUDE_REFUSAL = "GeoJSON positions with an altitude are not supported"


@dataclass(frozen=True)
class Batch:
    """What one upsert request carried, and which entities the broker refuses on its own."""

    ids: tuple[str, ...]
    entities: tuple[dict[str, Any], ...]
    refused: dict[str, dict[str, Any]]  # id -> ProblemDetails
    new: frozenset[str]  # ids the broker did not hold yet


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None  # JSON, or a str sent as text/html
    stored: frozenset[str] = frozenset()


Script = Callable[[Batch], Answer]


def problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": ERRORS + kind, "title": title, "detail": detail, "status": status, **extra}


def dialect_answer(
    dialect: str,
    batch: Batch,
    *,
    listed_success: list[str] | None = None,
    listed_errors: list[str] | None = None,
    stored: frozenset[str] | None = None,
) -> Answer:
    """The broker's honest answer (every id listed), or one listing only some ids (``listed_*``)."""
    written = [i for i in batch.ids if i not in batch.refused]
    store = frozenset(written) if stored is None else stored
    success = written if listed_success is None else listed_success
    failed = [i for i in batch.ids if i in batch.refused] if listed_errors is None else listed_errors
    if not failed and listed_success is None:
        created = [i for i in written if i in batch.new]
        if dialect == "orion" and created and len(created) != len(written):
            return Answer(207, {"errors": [], "success": written}, store)  # Orion-LD legacy, mixed batch
        return Answer(201, created, store) if created else Answer(204, None, store)
    if dialect == "scorpio":
        entries = [{"id": i, "type": "Upsert", "ProblemDetails": batch.refused[i]} for i in failed]
        if not success:  # generateBatchResult: no success at all -> 400 (409 if all conflicts)
            status = 409 if entries and all(batch.refused[i]["status"] == 409 for i in failed) else 400
            return Answer(status, {"errors": entries}, store)
        return Answer(207, {"success": success, "errors": entries}, store)
    if dialect == "stellio":
        entries = [{"entityId": i, "error": {**batch.refused[i], "instance": None}} for i in failed]
        return Answer(207, {"success": success, "errors": entries}, store)
    entries = [{"entityId": i, "error": batch.refused[i]} for i in failed]
    return Answer(207, {"success": success, "errors": entries}, store)


def _altitude(entity: dict[str, Any]) -> bool:
    for value in entity.values():
        geo = value.get("value") if isinstance(value, dict) and value.get("type") == "GeoProperty" else None
        if isinstance(geo, dict) and geo.get("type") == "Point" and len(geo.get("coordinates", ())) > 2:
            return True
    return False


@dataclass
class ShapedBroker:
    dialect: str = "orion"
    refuse: set[str] = field(default_factory=set)
    answers: list[Script] = field(default_factory=list)  # consumed one per upsert, then the dialect
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> current entity
    writes: list[tuple[str, ...]] = field(default_factory=list)  # ids really written, per request
    requests: list[tuple[str, ...]] = field(default_factory=list)  # ids carried, per request

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/ngsi-ld/v1/entityOperations/upsert", self._upsert)
        return app

    async def _upsert(self, request: web.Request) -> web.StreamResponse:
        entities = json.loads(await request.read())
        ids = tuple(str(e.get("id")) for e in entities)
        self.requests.append(ids)
        refused = {}
        for entity in entities:
            entity_id = str(entity.get("id"))
            if entity_id in self.refuse:
                refused[entity_id] = problem(400, "BadRequestData", "Invalid entity", f"{entity_id} is refused")
            elif _altitude(entity):
                refused[entity_id] = problem(400, "BadRequestData", ALTITUDE_REFUSAL, f"{entity_id}: location")
        batch = Batch(ids, tuple(entities), refused, frozenset(i for i in ids if i not in self.stored))
        answer = self.answers.pop(0)(batch) if self.answers else dialect_answer(self.dialect, batch)
        assert not answer.stored & set(refused), "a script stored an entity the broker refuses"
        for entity in entities:
            if entity["id"] in answer.stored:
                self.stored[entity["id"]] = entity
        self.writes.append(tuple(i for i in ids if i in answer.stored))
        if isinstance(answer.body, str):
            return web.Response(status=answer.status, text=answer.body, content_type="text/html")
        if answer.body is None:
            return web.Response(status=answer.status)
        return web.json_response(answer.body, status=answer.status)
