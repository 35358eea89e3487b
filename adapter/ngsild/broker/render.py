"""Stored entities → NGSI-LD output: normalized, keyValues (simplified) or concise, compacted.

Names are compacted with the context of the request (or of the subscription, for
notifications); values go out as stored. In the normalized format an attribute under a
``@set`` term is a one-element array, a listed one (``payload.LISTED``) is one under a
``@list`` term and ``{"@list": [...]}`` under any other name, as a JSON-LD processor
compacts them; concise and keyValues answers keep the chosen name and drop the wrapping. System attributes (``createdAt``, ``modifiedAt``)
appear only with ``sysAttrs``; an attribute's missing ``modifiedAt`` is its entity's and its
missing ``createdAt`` is its own ``modifiedAt`` (the storage rule of ``entities.py``).

Queries answer the same stored entities again and again; decoding, compacting and encoding
them was most of a query's time. ``Renderings`` keeps each entity's encoded rendering, keyed
by the stored attributes' JSON text itself and everything else the rendering depends on
(never by an id or a version alone): an update stores a new text, so the next query misses
and renders the new state; nothing needs invalidating. The request's ``TermContext`` object
is part of the key (each distinct @context resolves to one object), so a rendering made for
one context is never served for another.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from adapter.ngsild.broker.jsonld import LIST, SET, TermContext
from adapter.ngsild.broker.payload import ATTRIBUTE_MEMBERS, LISTED, VALUE_MEMBER
from adapter.ngsild.broker.store import MEMO_SIZE, StoredEntity, dumps, forget_oldest

__all__ = ["Renderings", "render_attribute", "render_entity"]

_SYSTEM = ("createdAt", "modifiedAt")


def render_entity(
    entity: StoredEntity,
    context: TermContext,
    *,
    fmt: str = "normalized",
    sys_attrs: bool = False,
    attrs: Collection[str] | None = None,
) -> dict[str, Any]:
    """The entity as an answer; ``attrs`` (expanded names) limits the attributes shown."""
    out: dict[str, Any] = {"id": entity.id, "type": context.compact(entity.type)}
    if sys_attrs:
        out["createdAt"] = entity.created_at
        out["modifiedAt"] = entity.modified_at
    for name, attribute in entity.attrs.items():
        if attrs is not None and name not in attrs:
            continue
        rendered = render_attribute(attribute, context, fmt=fmt, modified_at=entity.modified_at if sys_attrs else None)
        key, wrapped = _member(name, attribute, rendered, context, fmt)
        out[key] = wrapped
    return out


def _member(iri: str, attribute: dict[str, Any], rendered: Any, context: TermContext, fmt: str) -> tuple[str, Any]:
    """The key of an (sub-)attribute and its rendering wrapped as its term's container says."""
    listed = attribute.get(LISTED) is True
    key, container = context.compact_attribute(iri, listed=listed)
    if fmt != "normalized":
        return key, rendered
    if listed:
        return key, [rendered] if container == LIST else {"@list": [rendered]}
    return key, [rendered] if container == SET else rendered


def render_attribute(
    attribute: dict[str, Any], context: TermContext, *, fmt: str = "normalized", modified_at: str | None = None
) -> Any:
    """One attribute; ``modified_at`` (its entity's) asks for the system attributes."""
    kind = attribute.get("type", "Property")
    if fmt == "keyValues":
        return attribute.get(VALUE_MEMBER.get(kind, "value"))
    out: dict[str, Any] = {}
    for key, value in attribute.items():
        if key in _SYSTEM or key == LISTED:
            continue
        if key in ATTRIBUTE_MEMBERS:
            out[key] = value
        else:
            name, wrapped = _member(key, value, render_attribute(value, context, fmt=fmt), context, fmt)
            out[name] = wrapped
    if modified_at is not None:
        modified = attribute.get("modifiedAt", modified_at)
        out["createdAt"] = attribute.get("createdAt", modified)
        out["modifiedAt"] = modified
    if fmt != "concise":
        return out
    del out["type"]
    member = VALUE_MEMBER.get(kind, "value")
    if len(out) == 1 and member in out:
        value = out[member]
        if kind == "GeoProperty" or (kind == "Property" and not isinstance(value, dict)):
            return value
    return out


class Renderings:
    """Encoded renderings of stored entities (one element of a query answer each).

    The key is: the stored attributes' text (``StoredEntity.source``), the entity's id and
    type (and system times when shown), the request's ``TermContext``, the format,
    ``sysAttrs``, the ``attrs`` selection, and whether the answer is JSON-LD (an ``@context``
    member in each entity). Entities without ``source`` are rendered every time.
    """

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._size = size
        self._memo: dict[tuple[Any, ...], str] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._memo)

    def encoded(
        self,
        entity: StoredEntity,
        context: TermContext,
        *,
        fmt: str = "normalized",
        sys_attrs: bool = False,
        attrs: Collection[str] | None = None,
        json_ld: bool = False,
    ) -> str:
        """The JSON text of ``render_entity(...)`` (plus ``@context`` for a JSON-LD answer)."""
        key: tuple[Any, ...] | None = None
        if entity.source:
            times = (entity.created_at, entity.modified_at) if sys_attrs else None
            key = (
                entity.source,
                entity.id,
                entity.type,
                times,
                context,
                fmt,
                sys_attrs,
                None if attrs is None else frozenset(attrs),
                json_ld,
            )
            found = self._memo.get(key)
            if found is not None:
                self.hits += 1
                return found
        self.misses += 1
        rendered = render_entity(entity, context, fmt=fmt, sys_attrs=sys_attrs, attrs=attrs)
        if json_ld:
            rendered["@context"] = context.body_context()
        text = dumps(rendered)
        if key is not None:
            forget_oldest(self._memo, self._size)
            self._memo[key] = text
        return text
