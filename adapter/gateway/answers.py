"""What leaves the gateway: the broker's answer filtered again by the decision's rules, then
rendered in the format the partner asked for.

The broker was asked for the narrowed request only; the filter applies the same ``AnswerRules``
to what comes back all the same (a broker that ignores a parameter, or a notification, must not
widen an answer): only the allowed attributes by their short names (an attribute the type's
context does not name comes back as an IRI and is dropped, unless it is one of the adapter's own
terms), values and temporal instances observed outside the window dropped, coarsened attributes
rounded, entities located outside the area dropped. The gateway always reads normalized entities
and renders ``keyValues``, ``concise`` and ``temporalValues`` itself, so the filter always sees
every value's ``observedAt``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adapter.access.decide import AnswerRules
from adapter.access.requests import EntityFormat
from adapter.ngsild.geojson import is_geometry, point_in_polygon
from adapter.ngsild.instants import aware_instant

__all__ = ["ALWAYS_KEPT", "filter_entity", "partner_lineage", "partner_verification", "render"]

#: entity members every answer keeps
ALWAYS_KEPT = frozenset(("id", "type"))
_ATTRIBUTE_TYPES = frozenset(
    {
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "VocabProperty",
        "ListProperty",
        "ListRelationship",
        "JsonProperty",
    }
)


def _round(value: Any, decimals: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return round(float(value), decimals)
    if isinstance(value, list):
        return [_round(v, decimals) for v in value]
    if isinstance(value, dict):  # a GeoJSON geometry: its coordinates
        return {k: (_round(v, decimals) if k == "coordinates" else v) for k, v in value.items()}
    return value


def _instance(attribute: Any, rules: AnswerRules, decimals: int | None) -> Any:
    """One attribute instance as it may leave (None: it may not)."""
    if not isinstance(attribute, dict):
        return None  # the gateway reads normalized entities: anything else is not understood
    if rules.windowed:
        # Under a window, a value is shown only when it says it was observed inside: one with no
        # observation time (a date, a location set by hand...) could be from any time.
        moment = aware_instant(attribute.get("observedAt"))
        if moment is None or not rules.observed_inside(moment):
            return None
        if "values" in attribute or any(isinstance(attribute.get(k), list) for k in ("avg", "sum", "min", "max")):
            return None  # aggregated or simplified shapes: never asked of the broker under a window
    # instanceId: the broker's handle to modify an instance (partners read), and a counter
    # that could tell how much others write
    out = {k: v for k, v in attribute.items() if k != "instanceId"} if "instanceId" in attribute else attribute
    if decimals is None:
        return out
    out = dict(out)
    for key in ("value", "values", "avg", "sum", "min", "max"):
        if key in out:
            out[key] = _round(out[key], decimals)
    return out


def _attribute(value: Any, rules: AnswerRules, decimals: int | None) -> Any:
    """An attribute: one instance, or a list of them (multi-attribute, or temporal instances)."""
    if isinstance(value, list):
        kept = [i for i in (_instance(v, rules, decimals) for v in value) if i is not None]
        return kept or None
    return _instance(value, rules, decimals)


def _inside(entity: Mapping[str, Any], rules: AnswerRules) -> bool:
    """Under an area, whether the entity is known to lie inside: every location it has (all
    instances of a history) is a point inside the polygon; no location, not inside."""
    if rules.area is None:
        return True
    location = entity.get("location")
    instances = location if isinstance(location, list) else [location] if location is not None else []
    if not instances:
        return False
    for instance in instances:
        value: Any = instance.get("value") if isinstance(instance, dict) else None
        if not (
            is_geometry(value)
            and value["type"] == "Point"
            and point_in_polygon(value["coordinates"], [rules.area.polygon])
        ):
            return False
    return True


def filter_entity(entity: Any, rules: AnswerRules, short_names: Mapping[str, str]) -> dict[str, Any] | None:
    """The entity as the rules let it be seen (None when nothing allowed remains, or when it
    is not known to lie inside the area). ``short_names`` maps the adapter's own IRIs to their
    terms. Attributes the gateway asked only for its checks leave the answer here."""
    if not isinstance(entity, dict):
        return None
    if any(":" in k for k in entity):  # the adapter's own terms come back as IRIs (rarely asked)
        entity = {short_names.get(k, k): v for k, v in entity.items()}
    if not _inside(entity, rules):
        return None
    out: dict[str, Any] = {}
    kept = 0
    for name, value in entity.items():
        if name in ALWAYS_KEPT:
            if isinstance(value, str):
                out[name] = value
            continue
        if name not in rules.attributes:
            continue
        kept_value = _attribute(value, rules, rules.coarsened.get(name))
        if kept_value is not None:
            out[name] = kept_value
            kept += 1
    return out if kept and "id" in out else None


def _pick(value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: value[k] for k in keys if k in value} if isinstance(value, dict) else {}


def partner_lineage(lineage: dict[str, Any]) -> dict[str, Any]:
    """The lineage of a value as a partner without the personal graph gets it, by allowlist: the
    value, its record and the software that made it (codec, profile, steps), when it was
    received and delivered. Left out: the device (its EUI, its names at the network server), the
    radio gateways and their signal (they place the device), the frame counters and the
    payload's digest (they link a device's records), the network server's connection and the
    broker's address."""
    uplink = lineage.get("uplink")
    deliveries = lineage.get("deliveries")
    return {
        **_pick(lineage, ("graph", "tenant", "record", "value", "processing", "steps", "software")),
        "uplink": _pick(uplink, ("iri", "recordType", "receivedAt")),
        "deliveries": [
            _pick(d, ("iri", "id", "status", "startedAt", "endedAt", "software", "accepted"))
            for d in deliveries
            if isinstance(d, dict)
        ]
        if isinstance(deliveries, list)
        else [],
    }


def partner_verification(report: dict[str, Any]) -> dict[str, Any]:
    """A verification report without the checks' details (they name the device and its chain):
    which checks held, and whether the value holds."""
    checks = report.get("checks")
    return {
        **_pick(report, ("holds", "tenant", "entity", "attribute", "observedAt", "record")),
        "checks": [_pick(c, ("check", "status")) for c in checks if isinstance(c, dict)]
        if isinstance(checks, list)
        else [],
    }


# -- rendering ---------------------------------------------------------------------------------


def _simple(instance: Mapping[str, Any]) -> Any:
    kind = instance.get("type")
    if kind in ("Relationship", "ListRelationship"):
        return instance.get("object", instance.get("objectList"))
    if kind == "LanguageProperty":
        return instance.get("languageMap")
    if kind == "VocabProperty":
        return instance.get("vocab")
    if kind == "JsonProperty":
        return instance.get("json")
    if kind == "ListProperty":
        return instance.get("valueList")
    return instance.get("value")


def _concise(instance: Mapping[str, Any]) -> Any:
    out = {k: v for k, v in instance.items() if k != "type"}
    if set(out) == {"value"} and not isinstance(out["value"], dict):
        return out["value"]
    if instance.get("type") == "GeoProperty" and set(out) == {"value"}:
        return out["value"]
    return out


def _temporal_values(instances: Iterable[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    member = "objects" if kind == "Relationship" else "values"
    pairs = [[_simple(i), i.get("observedAt")] for i in instances]
    return {"type": kind, member: pairs}


def render(entity: dict[str, Any], entity_format: EntityFormat) -> dict[str, Any]:
    """A filtered normalized entity in the partner's format."""
    if entity_format is EntityFormat.NORMALIZED:
        return entity
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if name in ("id", "type"):
            out[name] = value
            continue
        instances = value if isinstance(value, list) else [value]
        instances = [i for i in instances if isinstance(i, dict)]
        if not instances:
            continue
        if entity_format is EntityFormat.TEMPORAL_VALUES:
            kind = str(instances[0].get("type", "Property"))
            out[name] = _temporal_values(instances, kind if kind in _ATTRIBUTE_TYPES else "Property")
        elif entity_format is EntityFormat.KEY_VALUES:
            out[name] = _simple(instances[0]) if len(instances) == 1 else [_simple(i) for i in instances]
        else:
            out[name] = _concise(instances[0]) if len(instances) == 1 else [_concise(i) for i in instances]
    return out
