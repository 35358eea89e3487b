"""Late observations: older than the entity's value delivered last, they go to its history only.

An upsert would move the current value back in time; ``POST /temporal/entities/{id}/attrs``
adds the instances to the history without touching it. What is sent, and the dead-letter
detail when the broker cannot take it (Orion-LD answers 501).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapter.ngsild.client import ProblemDetails
from adapter.outbox import OutboxItem

__all__ = ["history_fragment", "late_problem"]


def history_fragment(entity: dict[str, Any]) -> dict[str, Any]:
    """What a late observation adds to the history: its attributes that carry an ``observedAt``
    (all of them when none does), each as a one-instance array (the temporal representation,
    EntityTemporal), with the entity's ``@context``."""
    attributes = {k: v for k, v in entity.items() if k not in ("id", "type", "@context")}
    observed = {k: v for k, v in attributes.items() if isinstance(v, dict) and "observedAt" in v}
    fragment: dict[str, Any] = {k: [v] for k, v in (observed or attributes).items()}
    if "@context" in entity:
        fragment["@context"] = entity["@context"]
    return fragment


def late_problem(status: int, answer: ProblemDetails | None, item: OutboxItem, latest: dict[str, int]) -> ProblemDetails:
    newer = _EPOCH + timedelta(microseconds=latest[item.entity_id])
    return ProblemDetails(
        type="about:blank", status=status,
        title="the broker does not add instances to an entity's history, and an upsert would move "
        "its current value back in time",
        detail=f"{item.entity_id}: observed at {_iso(item.observed_at)}, the value delivered last was observed at "
        f"{_iso(newer)}", extra={"answer": answer.to_json()} if answer is not None else {},
    )


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
