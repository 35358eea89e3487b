"""Entity write operations: what each NGSI-LD write does to the stored entities.

Each function runs inside the caller's transaction, writes through ``Store.write`` (so every
attribute written also lands in the history), and returns what changed, for the answer and
for the subscriptions. Behaviour follows Orion-LD's experimental mode (reference note,
sections 2 and 3): per-entity problems of a batch become error items, never a failed request.

System timestamps: an entity gets ``createdAt`` when created and ``modifiedAt`` on every
write. An attribute keeps its ``createdAt`` while it exists (a replace-upsert re-creates
the attributes). To keep the hot path's JSON small, an attribute stores ``modifiedAt`` only
when it differs from its entity's and ``createdAt`` only when it differs from its own
``modifiedAt`` (``render.py`` fills them in); ``_touch`` keeps that true on every write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.ngsild.broker.errors import (
    AlreadyExists,
    BadRequestData,
    BrokerError,
    ResourceNotFound,
)
from adapter.ngsild.broker.payload import EntityInput
from adapter.ngsild.broker.store import Store, StoredEntity

__all__ = [
    "AttributeFailure",
    "AttributeOutcome",
    "BatchOutcome",
    "Change",
    "append_attributes",
    "batch_create",
    "batch_delete",
    "batch_update",
    "batch_upsert",
    "create_entity",
    "delete_attribute",
    "delete_entity",
    "merge_attribute",
    "replace_attribute",
    "update_attributes",
]

Attrs = dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Change:
    """An entity's new state and the attributes this request wrote (all of them on creation)."""

    entity: StoredEntity
    attributes: frozenset[str]
    created: bool = False


@dataclass(slots=True)
class BatchOutcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[tuple[str, BrokerError]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AttributeFailure:
    name: str
    status: int
    title: str
    detail: str = ""


@dataclass(slots=True)
class AttributeOutcome:
    updated: list[str] = field(default_factory=list)
    failures: list[AttributeFailure] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


#: A batch item: a checked entity, or the error found while checking it (with its id).
BatchItem = EntityInput | tuple[str, BrokerError]


def _touch(entity: StoredEntity, written: Attrs, now: str) -> None:
    """Applies ``written`` to ``entity`` at time ``now``, keeping the timestamp rules above."""
    previous = entity.modified_at
    for name, attribute in entity.attrs.items():
        if name not in written and "modifiedAt" not in attribute:
            attribute["modifiedAt"] = previous
    for name, attribute in written.items():
        old = entity.attrs.get(name)
        if old is not None:
            created = old.get("createdAt", old.get("modifiedAt", previous))
            if created != now:
                attribute["createdAt"] = created
    entity.attrs.update(written)
    entity.modified_at = now


def _check_kind(name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    before, after = old.get("type"), new.get("type")
    if before != after and "Relationship" in (before, after):
        raise BadRequestData(f"Attempt to transform a {before} into a {after}", name)


def _new_entity(item: EntityInput, now: str) -> StoredEntity:
    assert item.type is not None
    return StoredEntity(item.id, item.type, now, now, item.attrs)


def create_entity(store: Store, tenant: str, item: EntityInput, now: str) -> Change:
    if store.get_entities(tenant, [item.id], with_attrs=False):
        raise AlreadyExists("Entity already exists", item.id)
    entity = _new_entity(item, now)
    store.write(tenant, [(entity, entity.attrs)], now)
    return Change(entity, frozenset(entity.attrs), created=True)


def batch_create(store: Store, tenant: str, items: Sequence[BatchItem], now: str) -> BatchOutcome:
    outcome = BatchOutcome()
    valid = [item for item in items if isinstance(item, EntityInput)]
    existing = store.get_entities(tenant, [item.id for item in valid], with_attrs=False)
    seen: set[str] = set()
    writes = []
    for item in items:
        if not isinstance(item, EntityInput):
            outcome.errors.append(item)
            continue
        if item.id in existing or item.id in seen:
            outcome.errors.append((item.id, AlreadyExists("Entity already exists", item.id)))
            continue
        seen.add(item.id)
        entity = _new_entity(item, now)
        writes.append((entity, entity.attrs))
        outcome.created.append(item.id)
        outcome.changes.append(Change(entity, frozenset(entity.attrs), created=True))
    store.write(tenant, writes, now)
    return outcome


def batch_upsert(store: Store, tenant: str, items: Sequence[BatchItem], now: str, *, update: bool) -> BatchOutcome:
    """Creates new entities; replaces existing ones, or (``update``) adds/overwrites attributes.

    The same id twice: replace keeps the last copy, update merges the copies in order. Every
    copy's attributes go to the history, so consecutive observations in one batch all count.
    """
    outcome = BatchOutcome()
    valid = [item for item in items if isinstance(item, EntityInput)]
    states = store.get_entities(tenant, [item.id for item in valid], with_attrs=update)
    created: dict[str, None] = {}
    updated: dict[str, None] = {}
    changes: dict[str, Change] = {}
    writes = []
    for item in items:
        if not isinstance(item, EntityInput):
            outcome.errors.append(item)
            continue
        current = states.get(item.id)
        if current is None:
            if item.type is None:
                outcome.errors.append((item.id, BadRequestData("Entity type is missing", item.id)))
                continue
            entity = _new_entity(item, now)
            states[item.id] = entity
            created[item.id] = None
            writes.append((entity, entity.attrs))
            changes[item.id] = Change(entity, frozenset(entity.attrs), created=True)
            continue
        if item.type is not None and item.type != current.type:
            outcome.errors.append((item.id, BadRequestData("non-matching entity type", item.id)))
            continue
        if update:
            try:
                for name, attribute in item.attrs.items():
                    old = current.attrs.get(name)
                    if old is not None:
                        _check_kind(name, old, attribute)
            except BrokerError as exc:
                outcome.errors.append((item.id, exc))
                continue
            _touch(current, item.attrs, now)
            entity = current
        else:
            entity = StoredEntity(item.id, current.type, current.created_at, now, item.attrs, current.seq, current.tkey)
            states[item.id] = entity
        writes.append((entity, item.attrs))
        if item.id not in created:
            updated[item.id] = None
        previous = changes.get(item.id)
        written = frozenset(item.attrs) | (previous.attributes if previous else frozenset())
        changes[item.id] = Change(entity, written, created=previous.created if previous else False)
    store.write(tenant, writes, now)
    outcome.created = list(created)
    outcome.updated = list(updated)
    outcome.changes = list(changes.values())
    return outcome


def batch_update(
    store: Store, tenant: str, items: Sequence[BatchItem], now: str, *, no_overwrite: bool
) -> BatchOutcome:
    """Appends attributes to existing entities (``no_overwrite`` keeps existing ones)."""
    outcome = BatchOutcome()
    valid = [item for item in items if isinstance(item, EntityInput)]
    states = store.get_entities(tenant, [item.id for item in valid])
    changes: dict[str, Change] = {}
    writes = []
    for item in items:
        if not isinstance(item, EntityInput):
            outcome.errors.append(item)
            continue
        current = states.get(item.id)
        if current is None:
            outcome.errors.append((item.id, ResourceNotFound("Entity not found", item.id)))
            continue
        if item.type is not None and item.type != current.type:
            outcome.errors.append((item.id, BadRequestData("non-matching entity type", item.id)))
            continue
        written = {name: a for name, a in item.attrs.items() if not (no_overwrite and name in current.attrs)}
        try:
            for name, attribute in written.items():
                if name in current.attrs:
                    _check_kind(name, current.attrs[name], attribute)
        except BrokerError as exc:
            outcome.errors.append((item.id, exc))
            continue
        _touch(current, written, now)
        writes.append((current, written))
        if item.id not in outcome.updated:
            outcome.updated.append(item.id)
        previous = changes.get(item.id)
        changes[item.id] = Change(current, frozenset(written) | (previous.attributes if previous else frozenset()))
    store.write(tenant, writes, now)
    outcome.changes = [c for c in changes.values() if c.attributes]
    return outcome


def batch_delete(store: Store, tenant: str, ids: Sequence[str]) -> BatchOutcome:
    outcome = BatchOutcome()
    unique = list(dict.fromkeys(ids))
    existing = store.get_entities(tenant, unique, with_attrs=False)
    for entity_id in unique:
        if entity_id in existing:
            outcome.updated.append(entity_id)
        else:
            outcome.errors.append((entity_id, ResourceNotFound("Entity not found", entity_id)))
    store.delete_entities(tenant, outcome.updated)
    return outcome


def _existing(store: Store, tenant: str, entity_id: str) -> StoredEntity:
    entity = store.get_entity(tenant, entity_id)
    if entity is None:
        raise ResourceNotFound("Entity not found", entity_id)
    return entity


def append_attributes(
    store: Store, tenant: str, entity_id: str, attrs: Attrs, now: str, *, no_overwrite: bool
) -> AttributeOutcome:
    """``POST /entities/{id}/attrs``: adds attributes, overwrites existing ones unless ``no_overwrite``."""
    entity = _existing(store, tenant, entity_id)
    outcome = AttributeOutcome()
    written: Attrs = {}
    for name, attribute in attrs.items():
        old = entity.attrs.get(name)
        if old is not None and no_overwrite:
            outcome.failures.append(AttributeFailure(name, 400, "attribute already exists", "overwrite is not allowed"))
            continue
        if old is not None:
            _check_kind(name, old, attribute)
        written[name] = attribute
        outcome.updated.append(name)
    _write_attributes(store, tenant, entity, written, now, outcome)
    return outcome


def update_attributes(store: Store, tenant: str, entity_id: str, attrs: Attrs, now: str) -> AttributeOutcome:
    """``PATCH /entities/{id}/attrs``: replaces existing attributes; missing ones are not created."""
    entity = _existing(store, tenant, entity_id)
    outcome = AttributeOutcome()
    written: Attrs = {}
    for name, attribute in attrs.items():
        old = entity.attrs.get(name)
        if old is None:
            outcome.failures.append(AttributeFailure(name, 404, "Attribute Not Found", name))
            continue
        _check_kind(name, old, attribute)
        written[name] = attribute
        outcome.updated.append(name)
    _write_attributes(store, tenant, entity, written, now, outcome)
    return outcome


def merge_attribute(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A partial attribute update: members sent replace the old ones, the others stay."""
    merged = {key: value for key, value in old.items() if key not in ("createdAt", "modifiedAt")}
    if new.get("type") != old.get("type"):
        for member in ("value", "object", "languageMap", "vocab", "json", "valueList", "objectList"):
            merged.pop(member, None)
    merged.update(new)
    return merged


def replace_attribute(
    store: Store, tenant: str, entity_id: str, name: str, attribute: dict[str, Any], now: str, *, partial: bool
) -> Change:
    """``PUT`` (replace) or ``PATCH`` (``partial``: merge) ``/entities/{id}/attrs/{attr}``."""
    entity = _existing(store, tenant, entity_id)
    old = entity.attrs.get(name)
    if old is None:
        raise ResourceNotFound("Attribute Not Found", name)
    _check_kind(name, old, attribute)
    written = {name: merge_attribute(old, attribute) if partial else attribute}
    outcome = AttributeOutcome()
    _write_attributes(store, tenant, entity, written, now, outcome)
    return outcome.changes[0]


def _write_attributes(
    store: Store, tenant: str, entity: StoredEntity, written: Attrs, now: str, outcome: AttributeOutcome
) -> None:
    if not written:
        return
    _touch(entity, written, now)
    store.write(tenant, [(entity, written)], now)
    outcome.changes.append(Change(entity, frozenset(written)))


def delete_attribute(store: Store, tenant: str, entity_id: str, name: str, now: str) -> None:
    entity = _existing(store, tenant, entity_id)
    if name not in entity.attrs:
        raise ResourceNotFound("Attribute Not Found", name)
    _touch(entity, {}, now)
    del entity.attrs[name]
    store.write(tenant, [(entity, {})], now)


def delete_entity(store: Store, tenant: str, entity_id: str) -> None:
    _existing(store, tenant, entity_id)
    store.delete_entities(tenant, [entity_id])
