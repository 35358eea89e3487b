"""Helpers every table's reader shares: the environment prefix, typed reads, secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapter.exceptions import ConfigError

__all__ = ["ENV_PREFIX"]

#: every environment override starts with this
ENV_PREFIX = "NGSILD_ADAPTER_"
_ENV = ENV_PREFIX


def _table(doc: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: [{key}] must be a table")
    return value


def _entries(doc: Mapping[str, Any], key: str, path: Path) -> list[Mapping[str, Any]]:
    """An array of tables (``[[connection]]``): a list of tables, or ``ConfigError`` naming it."""
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
        raise ConfigError(f"{path}: {key} must be an array of tables ([[{key}]])")
    return value


def _number(value: Any, kind: type[int | float], what: str, path: Path) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"{path}: {what} must be a number")
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        expected = "an integer" if kind is int else "a number"
        raise ConfigError(f"{path}: {what} must be {expected}, not {value!r}") from exc


#: a bearer token's characters (RFC 6750 b64token); long enough not to be guessed
_SECRET = re.compile(r"[A-Za-z0-9._~+/-]{32,512}=*")


def _required_secret(name: str | None, value: str | None, what: str) -> str | None:
    """The secret of the variable ``name`` for the process that uses it (at its start: one
    file serves processes with different environments): None when no variable is named,
    ``ConfigError`` when it is unset or not a strong bearer token."""
    if not name:
        return None
    if not value:
        raise ConfigError(f"{what}: the variable {name} is not set")
    if not _SECRET.fullmatch(value):
        raise ConfigError(
            f"{what}: the variable {name} must hold at least 32 characters of "
            "A-Z a-z 0-9 . _ ~ + / - (a bearer token; e.g. `openssl rand -hex 32`)"
        )
    return value
