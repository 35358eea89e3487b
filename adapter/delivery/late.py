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

__all__ = ["history_fragment", "late_problem", "newer_delivered"]


def newer_delivered(item: OutboxItem, latest: dict[str, int]) -> int | None:
    """The latest delivered time of the item's attributes that is newer than the item (None: the
    item is not late). ``latest``: attribute -> time, of the item's entity (``Outbox.latest_delivered``).

    Only an attribute the item carries counts: a status event's battery level delivered later
    does not make an earlier uplink's readings late."""
    if not latest or item.observed_us >= max(latest.values()):
        return None  # the common case, decided without reading the entity
    newer = [
        latest[name]
        for name, value in item.entity.items()
        if name in latest and isinstance(value, dict) and "observedAt" in value and latest[name] > item.observed_us
    ]
    return max(newer) if newer else None


def history_fragment(entity: dict[str, Any]) -> dict[str, Any]:
    """What a late observation adds to the history: its attributes that carry an ``observedAt``
    (all of them when none does), each as a one-instance array (the temporal representation,
    EntityTemporal), with the entity's ``@context``. The item's attributes that are newer than
    the delivered ones go to the history too, not to the current value (rare: the same
    attribute written by two kinds of event with interleaved times)."""
    attributes = {k: v for k, v in entity.items() if k not in ("id", "type", "@context")}
    observed = {k: v for k, v in attributes.items() if isinstance(v, dict) and "observedAt" in v}
    fragment: dict[str, Any] = {k: [v] for k, v in (observed or attributes).items()}
    if "@context" in entity:
        fragment["@context"] = entity["@context"]
    return fragment


def late_problem(status: int, answer: ProblemDetails | None, item: OutboxItem, newer_us: int) -> ProblemDetails:
    newer = _EPOCH + timedelta(microseconds=newer_us)
    return ProblemDetails(
        type="about:blank",
        status=status,
        title="the broker does not add instances to an entity's history, and an upsert would move "
        "its current value back in time",
        detail=f"{item.entity_id}: observed at {_iso(item.observed_at)}, the value delivered last was observed at "
        f"{_iso(newer)}",
        extra={"answer": answer.to_json()} if answer is not None else {},
    )


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
