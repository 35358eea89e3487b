"""The [provenance] table: integrity logs, the RDF index, the data paths' secret."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from adapter.exceptions import ConfigError

from ._common import _ENV, _number
from ._models import DEFAULT_PERSONAL_ATTRIBUTES, ProvenanceSettings
from ._schema import refuse_unknown

__all__: list[str] = []


def _pseudonym_rotations(from_env: str | None, listed: Any, path: Path) -> tuple[date, ...]:
    """``pseudonym_rotations``: TOML dates or ``YYYY-MM-DD`` strings (the variable: comma-separated)."""
    items: Any = [part.strip() for part in from_env.split(",") if part.strip()] if from_env is not None else listed
    if not isinstance(items, list):
        raise ConfigError(f"{path}: provenance pseudonym_rotations must be a list of dates (YYYY-MM-DD)")
    found = set()
    for item in items:
        if isinstance(item, str):
            try:
                item = date.fromisoformat(item)
            except ValueError:
                pass
        if not isinstance(item, date) or isinstance(item, datetime):
            raise ConfigError(f"{path}: provenance pseudonym_rotations: {item!r} is not a date (YYYY-MM-DD)")
        found.add(item)
    return tuple(sorted(found))


def _provenance(t: Mapping[str, Any], base: Path, path: Path, env: Mapping[str, str]) -> ProvenanceSettings:
    kinds: dict[str, type[int | float]] = {
        "payload_retention_days": float,
        "checkpoint_interval_s": float,
        "index_batch": int,
        "query_timeout_s": float,
        "query_max_results": int,
    }
    texts = (
        "key_dir",
        "log_origin",
        "store",
        "sparql_query_url",
        "sparql_update_url",
        "sparql_store_url",
        "index_in",
        "access_log",
        "service_token_env",
    )
    refuse_unknown(t, "provenance", path)
    open_to_network = t.get("open_to_network", False)
    from_env = env.get(f"{_ENV}PROVENANCE_OPEN_TO_NETWORK")
    if from_env is not None:
        open_to_network = {"true": True, "false": False}.get(from_env.strip().lower(), from_env)
    if not isinstance(open_to_network, bool):
        raise ConfigError(f"{path}: provenance open_to_network must be true or false")
    personal = t.get("personal_attributes", sorted(DEFAULT_PERSONAL_ATTRIBUTES))
    if not isinstance(personal, list) or not all(
        isinstance(n, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in personal
    ):
        raise ConfigError(f"{path}: provenance personal_attributes must be a list of attribute names")
    rotations = _pseudonym_rotations(
        env.get(f"{_ENV}PROVENANCE_PSEUDONYM_ROTATIONS"), t.get("pseudonym_rotations", []), path
    )

    def value(key: str) -> Any:
        return env.get(f"{_ENV}PROVENANCE_{key.upper()}") or t.get(key)

    numbers = {k: _number(value(k), kind, f"provenance {k}", path) for k, kind in kinds.items() if value(k) is not None}
    strings = {k: value(k) for k in texts if value(k) is not None}
    for key, text in strings.items():
        if not isinstance(text, str) or not text:
            raise ConfigError(f"{path}: provenance {key} must be a non-empty string")
    key_dir = strings.pop("key_dir", None)
    access_log = strings.pop("access_log", None)
    if access_log is not None:
        strings["access_log"] = (base / access_log).resolve()
    token_env = strings.get("service_token_env")
    token = env.get(token_env) if token_env else None
    if open_to_network and not token_env:
        raise ConfigError(
            f"{path}: provenance open_to_network = true needs service_token_env (the secret every "
            "caller of /sparql, /provenance and /metrics must send)"
        )
    settings = ProvenanceSettings(
        **numbers,
        **strings,
        open_to_network=open_to_network,
        personal_attributes=frozenset(personal),
        service_token=token or None,
        pseudonym_rotations=rotations,
    )
    if key_dir is not None:
        settings = replace(settings, key_dir=(base / key_dir).resolve())
    if settings.index_in not in ("listen", "serve"):
        raise ConfigError(f"{path}: provenance index_in must be 'listen' or 'serve', not {settings.index_in!r}")
    if settings.store not in ("embedded", "sparql"):
        raise ConfigError(f"{path}: provenance store must be 'embedded' or 'sparql', not {settings.store!r}")
    if settings.store == "sparql" and not (settings.sparql_query_url and settings.sparql_update_url):
        raise ConfigError(f"{path}: provenance store 'sparql' needs sparql_query_url and sparql_update_url")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.:/_-]*", settings.log_origin):
        raise ConfigError(f"{path}: provenance log_origin {settings.log_origin!r} must be a host name and path")
    if settings.payload_retention_days < 0 or settings.checkpoint_interval_s <= 0 or settings.index_batch < 1:
        raise ConfigError(
            f"{path}: provenance payload_retention_days must be >= 0, checkpoint_interval_s > 0, index_batch >= 1"
        )
    if settings.query_timeout_s <= 0 or settings.query_max_results < 1:
        raise ConfigError(f"{path}: provenance query_timeout_s must be > 0 and query_max_results >= 1")
    return settings
