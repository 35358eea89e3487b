"""What a broker's answer to a batch upsert says about each entity of the batch.

Every real broker answers a batch upsert in its own shape; this module reads all of them into
one typed ``BatchOutcome`` with one ``EntityOutcome`` per entity, so that the writer decides on
the model and never on a broker's JSON:

Orion-LD (``src/lib/orionld/serviceRoutines/orionldPostBatchUpsert.cpp``)
    201 with the created ids, 204, or 207 ``{"success": [ids], "errors": [{"entityId", "error":
    ProblemDetails}]}`` (also when every entity failed). An entity without ``id`` is named
    ``"No Entity::id"``.
Scorpio (``Commons/.../tools/HttpUtils.java`` ``generateBatchResult``, entries from
``NGSILDOperationResult.getJson`` and ``ResponseException``)
    201 with the created ids only, 204 when every entity existed, 207 ``{"success": [ids],
    "errors": [{"id", "type": "Upsert", "ProblemDetails": {"type", "title", "detail",
    "status", ...}}]}``; when no entity succeeded the ``success`` member is dropped and the
    status is 400 (409 when every failure is a conflict, 503 when one is a 503) with the same
    ``errors`` body. An entity without ``id`` has ``"id": null``.
Stellio (``search-service/.../entity/web/BatchAPIResponses.kt``, ``EntityOperationHandler.kt``)
    and the spec's BatchOperationResult (ETSI GS CIM 009, 5.2.16/5.2.17)
    201 with the new ids, 204, or 207 ``{"success": [ids], "errors": [{"entityId", "error":
    ProblemDetails, "registrationId"?}]}``.

An entity's fate is ``DELIVERED`` only when the answer says so: a 204, a 201 whose body is
a list of ids (the status says no entity failed; the list names only the new ones), or its id
in ``success`` of a 207 with no error entry for it. An error entry with a 5xx status is
``RETRY``; any other error entry naming it (a ProblemDetails with a 4xx status or none) is
``REFUSED``, even when ``success`` names it too (Scorpio lists an entity written in part in
both). Everything else is ``UNKNOWN``, with why: an entity a 207 names in neither list (every
known broker lists its successes, so silence is ambiguous), an error entry whose id is
missing or not in the batch (``strays``, so the caller can log them), an entry of an unknown
shape, a 4xx whose per-entity reasons do not cover it, a body that is not what the status
promises. An ``UNKNOWN`` entity must be confirmed (sent again alone) before it counts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BatchOutcome",
    "EntityError",
    "EntityOutcome",
    "Fate",
    "ProblemDetails",
    "TemporalOutcome",
    "read_refusal",
    "read_upsert_answer",
]

#: the statuses at which a broker refuses the entities of a batch (not the request itself)
REFUSAL_STATUSES = frozenset({400, 409, 413, 415, 422})


@dataclass(frozen=True, slots=True)
class ProblemDetails:
    """An error as the broker describes it (RFC 9457 / NGSI-LD ProblemDetails).

    Orion-LD sends ``type``, ``title`` and ``detail`` but no ``status`` at the top of a
    request-level error: ``status`` is then the HTTP status.
    """

    type: str
    title: str
    status: int | None = None
    detail: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any, *, status: int | None = None, fallback: str = "") -> ProblemDetails:
        if not isinstance(value, Mapping):
            return cls(type="about:blank", title=fallback, status=status, detail=None if value is None else str(value))
        known = {"type", "title", "status", "detail"}
        raw_status = value.get("status")
        return cls(
            type=str(value.get("type") or "about:blank"),
            title=str(value.get("title") or fallback),
            status=raw_status if type(raw_status) is int else status,
            detail=None if value.get("detail") is None else str(value["detail"]),
            extra={k: v for k, v in value.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "title": self.title}
        if self.status is not None:
            out["status"] = self.status
        if self.detail is not None:
            out["detail"] = self.detail
        return {**out, **self.extra}


@dataclass(frozen=True, slots=True)
class EntityError:
    """One error entry of an answer that names an entity of the batch, and why."""

    entity_id: str
    problem: ProblemDetails


class Fate(enum.Enum):
    """What became of one entity of a batch, as far as the answer says."""

    DELIVERED = "delivered"  # the broker wrote it
    REFUSED = "refused"  # the broker will not write it as it is (``problem`` says why)
    RETRY = "retry"  # the broker could not write it now (a 5xx for this entity)
    UNKNOWN = "unknown"  # the answer does not say: confirm before counting it


@dataclass(frozen=True, slots=True)
class EntityOutcome:
    entity_id: str
    fate: Fate
    problem: ProblemDetails | None = None  # REFUSED and RETRY; UNKNOWN when the batch was refused whole
    why: str | None = None  # UNKNOWN: what made the answer ambiguous


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """The broker's answer to a batch upsert, entity by entity (``outcomes``, in batch order).

    ``created`` lists the ids a 201 names, ``succeeded`` the ``success`` ids of a 207,
    ``errors`` the error entries naming entities of the batch, ``strays`` a description of
    each entry that names none (no id, an id not in the batch, an unknown shape).
    """

    status: int
    outcomes: tuple[EntityOutcome, ...]
    created: tuple[str, ...] = ()
    succeeded: tuple[str, ...] = ()
    errors: tuple[EntityError, ...] = ()
    strays: tuple[str, ...] = ()

    def outcome_of(self, entity_id: str) -> EntityOutcome | None:
        for outcome in self.outcomes:
            if outcome.entity_id == entity_id:
                return outcome
        return None

    def error_for(self, entity_id: str) -> ProblemDetails | None:
        for error in self.errors:
            if error.entity_id == entity_id:
                return error.problem
        return None

    def with_fate(self, fate: Fate) -> list[EntityOutcome]:
        return [o for o in self.outcomes if o.fate is fate]


def read_upsert_answer(status: int, payload: Any, ids: Sequence[str]) -> BatchOutcome:
    """Read a 201, 204 or 207 answer, or a 4xx refusal holding per-entity ``errors``.

    ``ids``: the batch's entity ids, in order. Never raises on the payload: whatever it holds,
    each entity gets an outcome.
    """
    ids = tuple(ids)
    if status == 204:
        return BatchOutcome(204, tuple(EntityOutcome(i, Fate.DELIVERED) for i in ids))
    if status == 201:
        if isinstance(payload, list) and all(isinstance(i, str) for i in payload):
            return BatchOutcome(201, tuple(EntityOutcome(i, Fate.DELIVERED) for i in ids), created=tuple(payload))
        return _all_unknown(status, ids, "a 201 whose body is not a list of ids")
    if status != 207 and status not in REFUSAL_STATUSES:
        return _all_unknown(status, ids, f"HTTP {status} is not an answer to a batch upsert")
    if (
        not isinstance(payload, Mapping)
        or not isinstance(payload.get("errors", []), list)
        or ("errors" not in payload and "success" not in payload)
    ):
        return _all_unknown(status, ids, f"a {status} whose body is not a batch operation result")
    in_batch = set(ids)
    strays: list[str] = []
    succeeded = _success_ids(payload.get("success"), in_batch, strays) if status == 207 else set()
    errors: list[EntityError] = []
    unreadable: set[str] = set()
    for entry in payload.get("errors") or ():
        entity_id, problem = _error_entry(entry, status)
        if entity_id is None or entity_id not in in_batch:
            strays.append(f"an error entry naming {'no entity' if entity_id is None else entity_id!r}: {entry!r}"[:300])
        elif problem is None:
            unreadable.add(entity_id)
        else:
            errors.append(EntityError(entity_id, problem))
    by_id: dict[str, list[ProblemDetails]] = {}
    for error in errors:
        by_id.setdefault(error.entity_id, []).append(error.problem)
    outcomes = []
    for entity_id in ids:
        problems = by_id.get(entity_id)
        if problems:
            final = [p for p in problems if p.status is None or p.status < 500]
            if final:
                outcomes.append(EntityOutcome(entity_id, Fate.REFUSED, final[0]))
            else:
                outcomes.append(EntityOutcome(entity_id, Fate.RETRY, problems[0]))
        elif entity_id in unreadable:
            outcomes.append(EntityOutcome(entity_id, Fate.UNKNOWN, why="an error entry without a problem details"))
        elif entity_id in succeeded:
            outcomes.append(EntityOutcome(entity_id, Fate.DELIVERED))
        else:
            where = "neither success nor errors" if status == 207 else "no per-entity reason"
            outcomes.append(EntityOutcome(entity_id, Fate.UNKNOWN, why=f"the {status} answer names it in {where}"))
    listed = payload.get("success")
    return BatchOutcome(
        status,
        tuple(outcomes),
        succeeded=tuple(i for i in listed if isinstance(i, str)) if isinstance(listed, list) and status == 207 else (),
        errors=tuple(errors),
        strays=tuple(strays),
    )


def read_refusal(status: int, payload: Any, ids: Sequence[str]) -> BatchOutcome | None:
    """A 4xx refusal (400, 409, 413, 415, 422) read entity by entity, or None when it holds no
    per-entity reasons (the batch was refused whole: a request-level ProblemDetails)."""
    if status not in REFUSAL_STATUSES:
        return None
    if not isinstance(payload, Mapping) or not isinstance(payload.get("errors"), list) or not payload["errors"]:
        return None
    return read_upsert_answer(status, payload, ids)


def _all_unknown(status: int, ids: tuple[str, ...], why: str) -> BatchOutcome:
    return BatchOutcome(status, tuple(EntityOutcome(i, Fate.UNKNOWN, why=why) for i in ids))


def _success_ids(value: Any, in_batch: set[str], strays: list[str]) -> set[str]:
    if not isinstance(value, list):
        return set()
    found = set()
    for item in value:
        # The spec lists URIs; a broker listing objects {"id": ...} is read too.
        entity_id = item.get("id") if isinstance(item, Mapping) else item
        if isinstance(entity_id, str) and entity_id in in_batch:
            found.add(entity_id)
        else:
            strays.append(f"a success entry naming no entity of the batch: {item!r}"[:300])
    return found


def _error_entry(entry: Any, status: int) -> tuple[str | None, ProblemDetails | None]:
    """(entity id, problem) of one error entry, in any known broker's shape."""
    if not isinstance(entry, Mapping):
        return None, None
    entity_id = entry.get("entityId", entry.get("id"))  # Orion-LD, Stellio, spec / Scorpio
    problem = entry.get("error", entry.get("ProblemDetails"))
    fallback = status if status != 207 else None  # a 4xx whole answer: its status is each entity's
    return (
        entity_id if isinstance(entity_id, str) else None,
        ProblemDetails.from_json(problem, status=fallback, fallback="entity refused")
        if isinstance(problem, Mapping)
        else None,
    )


@dataclass(frozen=True, slots=True)
class TemporalOutcome:
    """The answer to ``POST /temporal/entities/{id}/attrs`` (add instances to the history).

    ``fate`` is ``DELIVERED`` (in the history), ``REFUSED`` (the broker will not take these
    instances: a 4xx about the data, or a 207 with attributes not added) or ``UNKNOWN`` with
    ``supported`` false: the broker does not implement the operation (501, 405, or 404: Orion-LD
    answers 501, its history is written from entity writes only).
    """

    status: int
    fate: Fate
    problem: ProblemDetails | None = None
    supported: bool = True
