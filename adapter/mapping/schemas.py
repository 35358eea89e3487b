"""Validation of entities against the official Smart Data Models JSON Schemas.

The schemas describe the key-values shape, so an NGSI-LD normalized entity is projected
to key-values first. ``$ref`` to the shared SDM schemas resolve from the local copies in
``models/sdm/_common`` (by their ``$id``, and by the raw.githubusercontent.com alias some
schemas use); retrieval is disabled, so nothing is fetched. ``format`` is checked
(date-time, uri, ipv4/ipv6). The validator is jsonschema-rs: every entity is validated on
the hot path, and it is about fifty times faster than the pure-Python implementation
(which the test suite uses as an independent check).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema_rs

from adapter.exceptions import ConfigError

__all__ = ["SchemaRegistry", "default_schemas_dir", "schema_aliases", "to_key_values"]

_GITHUB_PAGES = "https://smart-data-models.github.io/"
_RAW = "https://raw.githubusercontent.com/smart-data-models/"


def default_schemas_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "models" / "sdm"


def to_key_values(entity: Mapping[str, Any]) -> dict[str, Any]:
    """Project a normalized NGSI-LD entity to the key-values shape the SDM schemas describe."""
    out: dict[str, Any] = {}
    for name, attr in entity.items():
        if name == "id" or name == "type":
            out[name] = attr
        elif name == "@context":
            continue
        elif type(attr) is dict or isinstance(attr, Mapping):  # dict first: cheaper than the ABC
            if attr.get("type") == "Relationship":
                out[name] = attr.get("object")
            elif "value" in attr:
                value = attr["value"]
                if (type(value) is dict or isinstance(value, Mapping)) and "@value" in value:
                    value = value["@value"]  # {"@type": "DateTime", "@value": ...}
                out[name] = value
            else:
                out[name] = attr
        else:
            out[name] = attr
    return out


def schema_aliases(schemas_dir: Path) -> dict[str, dict[str, Any]]:
    """The shared schemas by every URI the entity schemas use to ``$ref`` them."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((schemas_dir / "_common").glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        schema_id = contents["$id"]
        found[schema_id] = contents
        if schema_id.startswith(_GITHUB_PAGES):
            repo, _, file = schema_id.removeprefix(_GITHUB_PAGES).partition("/")
            found[f"{_RAW}{repo}/master/{file}"] = contents
    return found


class SchemaRegistry:
    """The SDM schemas in a folder, compiled once per entity type."""

    def __init__(self, schemas_dir: Path | None = None) -> None:
        self.schemas_dir = schemas_dir or default_schemas_dir()
        self._validators: dict[str, Any] = {}

    @cached_property
    def _registry(self) -> jsonschema_rs.Registry:
        return jsonschema_rs.Registry(list(schema_aliases(self.schemas_dir).items()))

    def known_types(self) -> list[str]:
        return sorted(p.parent.name for p in self.schemas_dir.glob("*/schema.json"))

    def schema(self, entity_type: str) -> dict[str, Any]:
        path = self.schemas_dir / entity_type / "schema.json"
        if not path.is_file():
            raise ConfigError(f"no Smart Data Models schema for type {entity_type!r} in {self.schemas_dir}")
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return schema

    def validator(self, entity_type: str) -> Any:
        found = self._validators.get(entity_type)
        if found is None:
            try:
                found = jsonschema_rs.Draft202012Validator(
                    self.schema(entity_type), registry=self._registry, validate_formats=True, offline=True
                )
            except jsonschema_rs.ValidationError as exc:
                raise ConfigError(f"schema of {entity_type} cannot be compiled: {exc}") from exc
            self._validators[entity_type] = found
        return found

    def errors(self, entity: Mapping[str, Any], *, skip: frozenset[str] = frozenset()) -> list[str]:
        """Human-readable schema violations of a normalized entity (empty when valid).

        ``skip`` names attributes left out of the check (values already flagged as out of range).
        """
        key_values = to_key_values(entity)
        if skip:
            key_values = {k: v for k, v in key_values.items() if k not in skip}
        validator = self._validators.get(entity["type"]) or self.validator(str(entity["type"]))
        if validator.is_valid(key_values):  # the usual case, and cheaper than collecting no errors
            return []
        return sorted(
            f"{'/'.join(str(p) for p in error.instance_path) or '(entity)'}: {error.message}"
            for error in validator.iter_errors(key_values)
        )
