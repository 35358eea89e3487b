"""URI parameters: which are known, which each endpoint takes, and how shared ones are read.

Orion-LD rejects an unknown parameter ("Unknown URI parameter") and a known one the endpoint
does not take ("Unsupported URI parameter"), both 400; ``options`` values outside its list
are 400 too, and so are incoherent formats (keyValues with concise, keyValues with sysAttrs).
``format=`` overrides the format given in ``options``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from multidict import MultiMapping

from adapter.ngsild.broker.errors import BadRequestData

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "OPTIONS",
    "Page",
    "check_params",
    "comma_list",
    "entity_format",
    "parse_options",
    "parse_page",
]

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
KNOWN = frozenset(
    {
        "id",
        "type",
        "idPattern",
        "attrs",
        "pick",
        "omit",
        "q",
        "csf",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
        "geometryProperty",
        "lang",
        "scopeQ",
        "options",
        "limit",
        "offset",
        "count",
        "local",
        "format",
        "details",
        "prettyPrint",
        "spaces",
        "timerel",
        "timeAt",
        "endTimeAt",
        "timeproperty",
        "lastN",
        "aggrMethods",
        "aggrPeriodDuration",
        "datasetId",
        "deleteAll",
        "entityMap",
        "join",
        "joinLevel",
        "containedBy",
        "expandValues",
        "observedAt",
        "onlyIds",
        "reload",
        "url",
        "kind",
        "subscriptionId",
        "location",
    }
)
OPTIONS = frozenset(
    {
        "update",
        "replace",
        "noOverwrite",
        "keyValues",
        "simplified",
        "concise",
        "normalized",
        "sysAttrs",
        "count",
        "temporalValues",
        "aggregatedValues",
    }
)
_FORMATS = {"normalized": "normalized", "keyValues": "keyValues", "simplified": "keyValues", "concise": "concise"}
#: Accepted everywhere and ignored (output layout only).
_ALWAYS = frozenset({"prettyPrint", "spaces"})


def check_params(query: MultiMapping[str], allowed: frozenset[str]) -> None:
    for name in query:
        if name in allowed or name in _ALWAYS:
            continue
        if name in KNOWN:
            raise BadRequestData("Unsupported URI parameter", name)
        raise BadRequestData("Unknown URI parameter", name)


def comma_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise BadRequestData("Empty value for URI parameter", value)
    return items


def parse_options(query: Mapping[str, str]) -> set[str]:
    options = set(comma_list(query.get("options")) or [])
    for option in options:
        if option not in OPTIONS:
            raise BadRequestData("Invalid value for URI parameter /options/", option)
    return options


def entity_format(query: Mapping[str, str], options: set[str]) -> str:
    """``normalized``, ``keyValues`` or ``concise``, from ``format`` or else ``options``."""
    if "format" in query:
        fmt = _FORMATS.get(query["format"])
        if fmt is None:
            raise BadRequestData("Invalid value for URI parameter /format/", query["format"])
    else:
        chosen = {_FORMATS[o] for o in options if o in _FORMATS}
        if len(chosen) > 1:
            raise BadRequestData("Incoherent value for /options/ URI param", ",".join(sorted(options)))
        fmt = chosen.pop() if chosen else "normalized"
    if fmt == "keyValues" and "sysAttrs" in options:
        raise BadRequestData("Incoherent value for /options/ URI param", "keyValues and sysAttrs")
    return fmt


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int
    count: bool


def parse_page(query: Mapping[str, str], options: set[str]) -> Page:
    count_param = query.get("count", "false")
    if count_param not in ("true", "false"):
        raise BadRequestData("Invalid value for URI parameter /count/", count_param)
    count = count_param == "true" or "count" in options
    limit = _integer(query, "limit", DEFAULT_LIMIT)
    offset = _integer(query, "offset", 0)
    if limit > MAX_LIMIT:
        raise BadRequestData("Invalid value for URI parameter /limit/", f"{limit} is above the maximum of {MAX_LIMIT}")
    if limit == 0 and not count:
        raise BadRequestData("Invalid value for URI parameter /limit/", "0 is only allowed with count=true")
    return Page(limit, offset, count)


def _integer(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise BadRequestData(f"Invalid value for URI parameter /{name}/", text)
    return value
