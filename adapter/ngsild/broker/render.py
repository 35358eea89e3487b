"""Stored entities → NGSI-LD output: normalized, keyValues (simplified) or concise, compacted.

Names are compacted with the context of the request (or of the subscription, for
notifications); values go out as stored. System attributes (``createdAt``, ``modifiedAt``)
appear only with ``sysAttrs``; an attribute's missing ``modifiedAt`` is its entity's and its
missing ``createdAt`` is its own ``modifiedAt`` (the storage rule of ``entities.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from adapter.ngsild.broker.jsonld import TermContext
from adapter.ngsild.broker.payload import ATTRIBUTE_MEMBERS, VALUE_MEMBER
from adapter.ngsild.broker.store import StoredEntity

__all__ = ["render_attribute", "render_entity"]

_SYSTEM = ("createdAt", "modifiedAt")


def render_entity(entity: StoredEntity, context: TermContext, *, fmt: str = "normalized",
                  sys_attrs: bool = False, attrs: Collection[str] | None = None) -> dict[str, Any]:
    """The entity as an answer; ``attrs`` (expanded names) limits the attributes shown."""
    out: dict[str, Any] = {"id": entity.id, "type": context.compact(entity.type)}
    if sys_attrs:
        out["createdAt"] = entity.created_at
        out["modifiedAt"] = entity.modified_at
    compact = context.compact
    for name, attribute in entity.attrs.items():
        if attrs is not None and name not in attrs:
            continue
        out[compact(name)] = render_attribute(attribute, context, fmt=fmt,
                                              modified_at=entity.modified_at if sys_attrs else None)
    return out


def render_attribute(attribute: dict[str, Any], context: TermContext, *, fmt: str = "normalized",
                     modified_at: str | None = None) -> Any:
    """One attribute; ``modified_at`` (its entity's) asks for the system attributes."""
    kind = attribute.get("type", "Property")
    if fmt == "keyValues":
        return attribute.get(VALUE_MEMBER.get(kind, "value"))
    out: dict[str, Any] = {}
    for key, value in attribute.items():
        if key in _SYSTEM:
            continue
        if key in ATTRIBUTE_MEMBERS:
            out[key] = value
        else:
            out[context.compact(key)] = render_attribute(value, context, fmt=fmt)
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
