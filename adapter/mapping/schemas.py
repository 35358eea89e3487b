"""Validation of entities against the official Smart Data Models JSON Schemas.

The schemas describe the key-values shape, so an NGSI-LD normalized entity is projected
to key-values first. ``$ref`` to the shared SDM schemas resolve from the local copies in
``models/sdm/_common`` (by their ``$id``, and by the raw.githubusercontent.com alias some
schemas use). ``format`` is checked: date-time, uri, ipv4/ipv6.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from adapter.exceptions import ConfigError

__all__ = ["SchemaRegistry", "default_schemas_dir", "to_key_values"]

_GITHUB_PAGES = "https://smart-data-models.github.io/"
_RAW = "https://raw.githubusercontent.com/smart-data-models/"


def default_schemas_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "models" / "sdm"


def to_key_values(entity: Mapping[str, Any]) -> dict[str, Any]:
    """Project a normalized NGSI-LD entity to the key-values shape the SDM schemas describe."""
    out: dict[str, Any] = {}
    for name, attr in entity.items():
        if name in ("id", "type"):
            out[name] = attr
        elif name == "@context":
            continue
        elif isinstance(attr, Mapping) and attr.get("type") == "Relationship":
            out[name] = attr.get("object")
        elif isinstance(attr, Mapping) and "value" in attr:
            value = attr["value"]
            if isinstance(value, Mapping) and "@value" in value:
                value = value["@value"]  # {"@type": "DateTime", "@value": ...}
            out[name] = value
        else:
            out[name] = attr
    return out


class SchemaRegistry:
    """The SDM schemas in a folder, compiled once per entity type."""

    def __init__(self, schemas_dir: Path | None = None) -> None:
        self.schemas_dir = schemas_dir or default_schemas_dir()
        self._validators: dict[str, jsonschema.protocols.Validator] = {}

    @cached_property
    def _registry(self) -> Registry:
        resources: list[tuple[str, Resource]] = []
        for path in sorted((self.schemas_dir / "_common").glob("*.json")):
            contents = json.loads(path.read_text(encoding="utf-8"))
            resource = Resource.from_contents(contents, default_specification=DRAFT202012)
            schema_id = contents["$id"]
            resources.append((schema_id, resource))
            if schema_id.startswith(_GITHUB_PAGES):
                repo_path = schema_id.removeprefix(_GITHUB_PAGES)
                repo, _, file = repo_path.partition("/")
                resources.append((f"{_RAW}{repo}/master/{file}", resource))
        return Registry().with_resources(resources)

    def known_types(self) -> list[str]:
        return sorted(p.parent.name for p in self.schemas_dir.glob("*/schema.json"))

    def validator(self, entity_type: str) -> jsonschema.protocols.Validator:
        found = self._validators.get(entity_type)
        if found is None:
            path = self.schemas_dir / entity_type / "schema.json"
            if not path.is_file():
                raise ConfigError(f"no Smart Data Models schema for type {entity_type!r} in {self.schemas_dir}")
            schema = json.loads(path.read_text(encoding="utf-8"))
            found = jsonschema.Draft202012Validator(
                schema, registry=self._registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
            self._validators[entity_type] = found
        return found

    def errors(self, entity: Mapping[str, Any], *, skip: frozenset[str] = frozenset()) -> list[str]:
        """Human-readable schema violations of a normalized entity (empty when valid).

        ``skip`` names attributes left out of the check (values already flagged as out of range).
        """
        key_values = {k: v for k, v in to_key_values(entity).items() if k not in skip}
        validator = self.validator(str(entity["type"]))
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(entity)'}: {error.message}"
            for error in sorted(validator.iter_errors(key_values), key=lambda e: list(map(str, e.absolute_path)))
        ]

