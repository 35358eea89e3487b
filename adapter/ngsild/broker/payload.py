"""Checks incoming entities and attributes and turns them into the stored form.

The stored form is normalized NGSI-LD with expanded names: the entity type and every
attribute and sub-attribute name are full IRIs, shorthand (concise / keyValues) input is
rewritten as full attributes, ``observedAt`` is normalised to UTC milliseconds, and values
are kept exactly as sent. An attribute named by a term with ``"@container": "@list"`` is
a one-element JSON-LD list in the expanded form; its stored form carries ``LISTED`` so
that answers compact it as a processor would (``jsonld.TermContext.compact_attribute``).
The checks and their messages follow Orion-LD's payload checks
(reference note, section 6); every failure is ``BadRequestData``.

This runs for every attribute of every entity of a batch, so it avoids copies and
generic machinery: one pass over each attribute's members.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from adapter.ngsild.broker.datetimes import normalize_datetime
from adapter.ngsild.broker.errors import BadRequestData
from adapter.ngsild.broker.geo import GEOMETRY_TYPES, check_geometry, is_geometry
from adapter.ngsild.broker.jsonld import LIST, SET, TermContext

__all__ = [
    "ATTRIBUTE_MEMBERS",
    "GEO_ATTRIBUTES",
    "LISTED",
    "VALUE_MEMBER",
    "EntityInput",
    "check_attribute_name",
    "check_uri",
    "normalize_attribute",
    "normalize_attributes",
    "normalize_entity",
]

#: The member that carries the value, per attribute type.
VALUE_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
#: Members of an attribute that are not sub-attributes.
ATTRIBUTE_MEMBERS = frozenset(
    {
        "type",
        "value",
        "object",
        "objectType",
        "languageMap",
        "vocab",
        "json",
        "valueList",
        "objectList",
        "observedAt",
        "unitCode",
        "datasetId",
        "createdAt",
        "modifiedAt",
        "instanceId",
    }
)
#: Stored member marking an attribute that was expanded into a JSON-LD list (never a name:
#: stored names are expanded IRIs).
LISTED = "@list"
#: Core attributes that must be GeoProperties (expanded names).
GEO_ATTRIBUTES = frozenset(
    {
        "https://uri.etsi.org/ngsi-ld/location",
        "https://uri.etsi.org/ngsi-ld/observationSpace",
        "https://uri.etsi.org/ngsi-ld/operationSpace",
    }
)
_SHORTHAND_MEMBER = (
    ("value", "Property"),
    ("object", "Relationship"),
    ("languageMap", "LanguageProperty"),
    ("vocab", "VocabProperty"),
    ("json", "JsonProperty"),
    ("valueList", "ListProperty"),
    ("objectList", "ListRelationship"),
)
_VALUE_MEMBERS = frozenset(VALUE_MEMBER.values()) | {"objectType"}
_SYSTEM_MEMBERS = frozenset({"createdAt", "modifiedAt", "instanceId"})
_FORBIDDEN_NAMES = frozenset({"id", "type", "@id", "@type", "scope", "@context"})
_BAD_NAME_CHARS = re.compile(r"[=\[\]&?\"' \t\n]")
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z")


@dataclass(slots=True)
class EntityInput:
    """A checked entity: ``type`` is expanded (``None`` when not given), attributes stored form."""

    id: str
    type: str | None
    attrs: dict[str, dict[str, Any]]


def check_uri(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise BadRequestData("Not a JSON String", field)
    if ":" not in value:
        raise BadRequestData("Invalid URI - no colon found", field)
    if _URI_CHARS.match(value) is None:
        raise BadRequestData("Invalid URI - invalid character", field)
    return value


def check_attribute_name(name: str) -> None:
    if not name or name in _FORBIDDEN_NAMES or _BAD_NAME_CHARS.search(name):
        raise BadRequestData("Invalid attribute name", name)


def normalize_entity(
    body: Any, context: TermContext, *, require_id: bool = True, require_type: bool = True
) -> EntityInput:
    """Checks an entity body; ``require_type=False`` for upserts of existing entities."""
    if not isinstance(body, dict):
        raise BadRequestData("Invalid entity", "an entity must be a JSON object")
    entity_id = body.get("id", body.get("@id"))
    if entity_id is None:
        if require_id:
            raise BadRequestData("Entity id is missing", "id")
        entity_id = ""
    else:
        check_uri(entity_id, "id")
    raw_type = body.get("type", body.get("@type"))
    entity_type: str | None = None
    if raw_type is None:
        if require_type:
            raise BadRequestData("Entity type is missing", "type")
    elif not isinstance(raw_type, str) or not raw_type or " " in raw_type:
        raise BadRequestData("Invalid entity type", "type must be a string without spaces")
    else:
        entity_type = context.expand(raw_type)
    attrs: dict[str, dict[str, Any]] = {}
    for name, value in body.items():
        if name in ("id", "type", "@id", "@type", "@context", "createdAt", "modifiedAt"):
            continue
        check_attribute_name(name)
        iri = context.expand(name)
        attrs[iri] = _named_attribute(name, iri, value, context)
    return EntityInput(entity_id, entity_type, attrs)


def normalize_attributes(body: Any, context: TermContext) -> dict[str, dict[str, Any]]:
    """The attributes of a ``/entities/{id}/attrs`` body (``@context`` and system members ignored)."""
    if not isinstance(body, dict):
        raise BadRequestData("Invalid payload", "the attributes must be a JSON object")
    attrs: dict[str, dict[str, Any]] = {}
    for name, value in body.items():
        if name in ("@context", "createdAt", "modifiedAt"):
            continue
        if name in ("id", "type"):
            raise BadRequestData("Invalid attribute name", name)
        check_attribute_name(name)
        iri = context.expand(name)
        attrs[iri] = _named_attribute(name, iri, value, context)
    return attrs


def _named_attribute(name: str, iri: str, raw: Any, context: TermContext) -> dict[str, Any]:
    """``normalize_attribute`` with the container of the term ``name`` applied."""
    container = context.container(name)
    if container not in (LIST, SET):
        return normalize_attribute(iri, raw, context)
    # under a @list or @set term, [x] and x expand alike (an array is the container's form)
    if type(raw) is list and len(raw) == 1 and type(raw[0]) is dict:
        raw = raw[0]
    attribute = normalize_attribute(iri, raw, context)
    if container == LIST:
        attribute[LISTED] = True
    return attribute


def normalize_attribute(iri: str, raw: Any, context: TermContext) -> dict[str, Any]:
    """One attribute in stored form; ``iri`` is its expanded name (for messages and geo rules)."""
    if type(raw) is not dict:
        if raw is None:
            raise BadRequestData("The use of NULL value is not recommended for attributes", iri)
        if type(raw) is list and raw and all(type(item) is dict and "type" in item for item in raw):
            raise BadRequestData("Multi-attributes are not supported", f"{iri}: an array of attribute instances")
        kind: Any = "Property"
        attribute: dict[str, Any] = {"type": kind, "value": raw}
        if iri in GEO_ATTRIBUTES:
            raise BadRequestData("Invalid GeoJSON", f"{iri} must be a GeoProperty")
        return attribute
    kind = raw.get("type")
    if kind is None:
        kind = _shorthand_kind(raw)
        if kind is None:
            if iri in GEO_ATTRIBUTES:
                raise BadRequestData("Invalid GeoJSON", f"{iri} must be a GeoProperty")
            return {"type": "Property", "value": raw}
    elif kind in GEOMETRY_TYPES:
        check_geometry(raw)
        return {"type": "GeoProperty", "value": raw}
    member = VALUE_MEMBER.get(kind)
    if member is None:
        raise BadRequestData("Invalid type for attribute", f"{iri}: {kind!r}")
    if iri in GEO_ATTRIBUTES and kind != "GeoProperty":
        raise BadRequestData("Invalid GeoJSON", f"{iri} must be a GeoProperty")
    attribute = {"type": kind}
    for key, value in raw.items():
        if key == member:
            _check_value(kind, value, iri)
            attribute[key] = value
        elif key == "type" or key in _SYSTEM_MEMBERS:
            continue
        elif key == "observedAt":
            if not isinstance(value, str):
                raise BadRequestData("Invalid ISO8601 timestamp", f"{iri}: observedAt must be a string")
            attribute[key] = normalize_datetime(value)
        elif key == "unitCode":
            if not isinstance(value, str) or kind != "Property":
                raise BadRequestData("Invalid unitCode", f"{iri}: unitCode must be a string, on a Property")
            attribute[key] = value
        elif key == "datasetId":
            attribute[key] = check_uri(value, "datasetId")
        elif key == "objectType" and kind in ("Relationship", "ListRelationship"):
            attribute[key] = value
        elif key in _VALUE_MEMBERS:
            raise BadRequestData("Invalid member for attribute", f"{iri}: /{key}/ is not allowed in a {kind}")
        else:
            check_attribute_name(key)
            sub = context.expand(key)
            attribute[sub] = _named_attribute(key, sub, value, context)
    if member not in attribute:
        raise BadRequestData(f"{kind} without /{member}/", iri)
    return attribute


def _shorthand_kind(raw: dict[str, Any]) -> str | None:
    for member, kind in _SHORTHAND_MEMBER:
        if member in raw:
            if member == "value" and is_geometry(raw["value"]):
                return "GeoProperty"
            return kind
    return None


def _check_value(kind: str, value: Any, iri: str) -> None:
    if kind == "Property":
        if value is None:
            raise BadRequestData("The use of NULL value is not recommended for attributes", iri)
    elif kind == "GeoProperty":
        check_geometry(value)
    elif kind == "Relationship":
        if isinstance(value, list):
            if not value:
                raise BadRequestData("Invalid Relationship object", f"{iri}: empty array")
            for item in value:
                check_uri(item, iri)
        else:
            check_uri(value, iri)
    elif kind == "LanguageProperty":
        if not isinstance(value, dict) or not all(
            isinstance(text, str) or (isinstance(text, list) and all(isinstance(t, str) for t in text))
            for text in value.values()
        ):
            raise BadRequestData("Invalid languageMap", f"{iri}: language tags must map to strings")
    elif kind == "VocabProperty":
        strings = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        if not (isinstance(value, str) or strings):
            raise BadRequestData("Invalid vocab", f"{iri}: vocab must be a string or an array of strings")
    elif kind == "ListProperty":
        if not isinstance(value, list):
            raise BadRequestData("Invalid valueList", f"{iri}: valueList must be an array")
    elif kind == "ListRelationship":
        if not isinstance(value, list):
            raise BadRequestData("Invalid objectList", f"{iri}: objectList must be an array")
        for item in value:
            check_uri(item.get("object") if isinstance(item, dict) else item, iri)
    elif value is None:
        raise BadRequestData("The use of NULL value is not recommended for attributes", iri)
