"""Reading the temporal answers of any NGSI-LD broker into one typed model.

Brokers answer the temporal API (ETSI GS CIM 009 clauses 4.5.7-4.5.9) in shapes that differ
where the spec leaves room, and every reader of a history (the provenance verifier, the
gateway's cells) reads them through ``parse_temporal_entity`` so that none of them depends on
one broker's choice:

- **order**: instances come oldest first (the embedded broker without ``lastN``), newest first
  (Mintaka and the embedded broker with ``lastN``: ``ORDER BY ... DESC``), or in no stated
  order (Scorpio aggregates its rows without an ``ORDER BY``). Here they are always sorted
  oldest first by ``observedAt`` (instances without one keep their place after the timed ones);
- **one instance**: an attribute holding a single instance is an array of one (the embedded
  broker, Scorpio's query endpoint, which forces lists) or the instance object itself (Mintaka
  and Scorpio's retrieval compact their JSON-LD with ``compactArrays``, so ``lastN=1`` or a one
  instance window comes back as an object); a current entity read by ``GET /entities/{id}``
  has that shape too, so the same parser reads it;
- **simplified** (``options=temporalValues``): ``{"type", "values": [[value, time], ...]}``
  (``objects`` for a Relationship, ``languageMaps`` for a LanguageProperty); a broker that
  does not implement the option (Scorpio) answers normalized instead, which is read as well.

Aggregated attributes (``avg``, ``sum``...) are not instances and give none. A member that is
none of these shapes gives no instances rather than a guess; only an answer that is not an
entity at all raises ``TemporalAnswerError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapter.ngsild.instants import aware_instant

__all__ = [
    "TemporalAnswerError",
    "TemporalAttribute",
    "TemporalEntity",
    "TemporalInstance",
    "parse_attribute",
    "parse_temporal_entities",
    "parse_temporal_entity",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ENTITY_MEMBERS = frozenset(("id", "type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"))
#: the simplified temporal representation's member per attribute type, and the member of a
#: normalized instance it stands for
_SERIES: dict[str, tuple[str, str]] = {
    "values": ("Property", "value"),
    "objects": ("Relationship", "object"),
    "languageMaps": ("LanguageProperty", "languageMap"),
}


class TemporalAnswerError(ValueError):
    """The broker's answer is not a temporal entity (not an object, or without an ``id``)."""


@dataclass(frozen=True, slots=True)
class TemporalInstance:
    """One instance of an attribute: its normalized members (``type``, ``value`` or ``object``,
    ``observedAt``, ``unitCode``...; a simplified pair becomes ``{type, value, observedAt}``)
    and its observation time (None when it has none that is a zoned ISO 8601 instant)."""

    members: Mapping[str, Any]
    observed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TemporalAttribute:
    """An attribute's instances, oldest first."""

    instances: tuple[TemporalInstance, ...]

    def at(self, moment: datetime) -> TemporalInstance | None:
        """The instance observed at ``moment`` (the same instant, whatever its notation)."""
        return next((i for i in self.instances if i.observed_at == moment), None)

    def latest(self) -> TemporalInstance | None:
        """The instance observed last (None when no instance has an observation time)."""
        timed = [i for i in self.instances if i.observed_at is not None]
        return timed[-1] if timed else None


@dataclass(frozen=True, slots=True)
class TemporalEntity:
    """A temporal (or current) entity: its id, type and attributes by the names the broker used."""

    id: str
    type: str | None
    attributes: Mapping[str, TemporalAttribute] = field(default_factory=dict)

    def attribute(self, *names: str) -> TemporalAttribute | None:
        """The first of ``names`` the entity has (a short name, then its IRI: a broker compacts
        with the context it was sent, and a term it cannot shorten comes back expanded)."""
        return next((self.attributes[n] for n in names if n in self.attributes), None)


def _sorted(instances: Iterable[TemporalInstance]) -> tuple[TemporalInstance, ...]:
    listed = list(instances)
    timed = sorted((i for i in listed if i.observed_at is not None), key=lambda i: i.observed_at or _EPOCH)
    return (*timed, *(i for i in listed if i.observed_at is None))


def _instance(members: Mapping[str, Any]) -> TemporalInstance:
    return TemporalInstance(members, aware_instant(members.get("observedAt")))


def _pairs(series: list[Any]) -> list[list[Any]]:
    """The [value, time] pairs of a simplified series; a lone pair compacted out of its array
    (``[value, time]``) is read as one pair when its second member is an instant."""
    if any(isinstance(p, list) for p in series):
        return [p for p in series if isinstance(p, list) and len(p) >= 2]
    if len(series) == 2 and aware_instant(series[1]) is not None:
        return [series]
    return []


def parse_attribute(value: Any) -> TemporalAttribute | None:
    """One attribute member of a temporal or current entity (None: not an attribute at all, such
    as a plain string; an attribute whose shape holds no instances has none)."""
    if isinstance(value, list):
        return TemporalAttribute(_sorted(_instance(v) for v in value if isinstance(v, Mapping)))
    if not isinstance(value, Mapping):
        return None
    for member, (kind, normalized) in _SERIES.items():
        series = value.get(member)
        if isinstance(series, list) and not any(k in value for k in ("value", "object", "languageMap")):
            kind = str(value.get("type") or kind)
            return TemporalAttribute(
                _sorted(
                    _instance({"type": kind, normalized: pair[0], "observedAt": pair[1]}) for pair in _pairs(series)
                )
            )
    if any(k in value for k in ("value", "object", "languageMap", "objectList", "valueList", "vocab", "json")):
        return TemporalAttribute((_instance(value),))
    return TemporalAttribute(())  # aggregated values, or a shape that says nothing per instance


def parse_temporal_entity(body: Any) -> TemporalEntity:
    """``body`` (one entity of a temporal or current answer) as a ``TemporalEntity``."""
    if not isinstance(body, Mapping):
        raise TemporalAnswerError(f"a temporal entity is a JSON object, not {type(body).__name__}")
    identifier = body.get("id")
    if not isinstance(identifier, str) or not identifier:
        raise TemporalAnswerError("a temporal entity has an id")
    kind = body.get("type")
    attributes: dict[str, TemporalAttribute] = {}
    for name, value in body.items():
        if name in _ENTITY_MEMBERS or not isinstance(name, str):
            continue
        parsed = parse_attribute(value)
        if parsed is not None:
            attributes[name] = parsed
    return TemporalEntity(identifier, kind if isinstance(kind, str) else None, attributes)


def parse_temporal_entities(body: Any) -> list[TemporalEntity]:
    """Every entity of a query answer (a list; a broker answering one object is read as a list
    of one). Entries that are not entities are left out: one bad entry costs that entry only."""
    entries = body if isinstance(body, list) else [body]
    out = []
    for entry in entries:
        try:
            out.append(parse_temporal_entity(entry))
        except TemporalAnswerError:
            continue
    return out
