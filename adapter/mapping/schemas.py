"""Validation of entities against the official Smart Data Models JSON Schemas.

The schemas describe the key-values shape, so an NGSI-LD normalized entity is projected
to key-values first. A type's schema is ``<folder>/<Type>/schema.json``, searched in the
user's models folder (``<models>/sdm``) first, then in the official schemas the adapter ships
(``models/sdm`` of the repository, package data in the wheel); a type found nowhere is an
error naming every folder searched. ``$ref`` to the shared SDM schemas resolve from the local
copies in each folder's ``_common`` (by their ``$id``, and by the raw.githubusercontent.com
alias some schemas use); retrieval is disabled, so nothing is fetched. ``format`` is checked
(date-time, uri, ipv4/ipv6). The validator is jsonschema-rs: every entity is validated on
the hot path, and it is about fifty times faster than the pure-Python implementation
(which the test suite uses as an independent check).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema_rs

from adapter import resources
from adapter.exceptions import ConfigError

__all__ = ["SchemaRegistry", "default_schemas_dir", "schema_aliases", "schema_folders", "to_key_values"]

_GITHUB_PAGES = "https://smart-data-models.github.io/"
_RAW = "https://raw.githubusercontent.com/smart-data-models/"


def default_schemas_dir() -> Path:
    """The official schemas shipped with the adapter (searched after the user's own)."""
    return resources.shipped_schemas_dir()


def schema_folders(models_dir: Path | None) -> tuple[Path, ...]:
    """The folders searched for a type's schema, in order: the user's ``<models>/sdm``, then the
    shipped set (once, when the user's models folder is the shipped one)."""
    shipped = default_schemas_dir()
    if models_dir is None:
        return (shipped,)
    own = models_dir / "sdm"
    return (shipped,) if own.resolve() == shipped.resolve() else (own, shipped)


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
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"shared schema {path} cannot be read: {exc}") from exc
        schema_id = contents.get("$id") if isinstance(contents, dict) else None
        if not isinstance(schema_id, str):
            raise ConfigError(f'shared schema {path} has no "$id" (entity schemas $ref it by that URI)')
        found[schema_id] = contents
        if schema_id.startswith(_GITHUB_PAGES):
            repo, _, file = schema_id.removeprefix(_GITHUB_PAGES).partition("/")
            found[f"{_RAW}{repo}/master/{file}"] = contents
    return found


class SchemaRegistry:
    """The SDM schemas of one or more folders (the first holding a type wins), compiled once per type.

    ``SchemaRegistry()`` reads the shipped schemas only; ``SchemaRegistry.for_models(dir)`` the
    user's ``dir/sdm`` first, then the shipped ones.
    """

    def __init__(self, schemas_dir: Path | Sequence[Path] | None = None) -> None:
        if schemas_dir is None:
            self.folders: tuple[Path, ...] = (default_schemas_dir(),)
        elif isinstance(schemas_dir, Path):
            self.folders = (schemas_dir,)
        else:
            self.folders = tuple(schemas_dir)
        self._validators: dict[str, Any] = {}

    @classmethod
    def for_models(cls, models_dir: Path | None) -> SchemaRegistry:
        """The user's schemas (``<models_dir>/sdm``, when it exists) before the shipped ones."""
        return cls(schema_folders(models_dir))

    @property
    def schemas_dir(self) -> Path:
        """The first folder searched."""
        return self.folders[0]

    @cached_property
    def _registry(self) -> jsonschema_rs.Registry:
        found: dict[str, dict[str, Any]] = {}
        for folder in reversed(self.folders):  # the folders searched first win a shared $id
            found.update(schema_aliases(folder))
        return jsonschema_rs.Registry(list(found.items()))

    def known_types(self) -> list[str]:
        return sorted({p.parent.name for folder in self.folders for p in folder.glob("*/schema.json")})

    def schema(self, entity_type: str) -> dict[str, Any]:
        for folder in self.folders:
            path = folder / entity_type / "schema.json"
            if path.is_file():
                break
        else:
            searched = ", ".join(str(folder) for folder in self.folders)
            raise ConfigError(
                f"no Smart Data Models schema for type {entity_type!r}: searched {searched} "
                f"(add {entity_type}/schema.json to the first)"
            )
        try:
            schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"schema of {entity_type} at {path} cannot be read: {exc}") from exc
        if not isinstance(schema, dict):
            raise ConfigError(f"schema of {entity_type} at {path} is not a JSON object")
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
