"""The [broker], [http] tables: how entities reach the broker, and the HTTP servers' limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapter.exceptions import ConfigError
from adapter.httpserver import ServerLimits

from ._common import _ENV, _number
from ._schema import refuse_unknown
from ._models import MAX_BATCH_BYTES, MAX_BATCH_ENTITIES, BrokerSettings

__all__: list[str] = []


def _http(t: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> ServerLimits:
    """The ``[http]`` table: ``ServerLimits`` of the adapter's HTTP servers."""
    kinds: dict[str, type[int | float]] = {
        "header_timeout_s": float,
        "body_timeout_s": float,
        "keepalive_timeout_s": float,
        "max_line_bytes": int,
        "max_field_bytes": int,
        "max_headers": int,
        "max_body_bytes": int,
    }
    refuse_unknown(t, "http", path)
    found = {k: env.get(f"{_ENV}HTTP_{k.upper()}") or t.get(k) for k in kinds}
    numbers = {k: _number(v, kinds[k], f"http {k}", path) for k, v in found.items() if v is not None}
    try:
        return ServerLimits(**numbers)
    except ValueError as exc:
        raise ConfigError(f"{path}: [http]: {exc}") from exc


def _broker(t: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> BrokerSettings:
    kinds: dict[str, type[int | float]] = {
        "batch_max_entities": int,
        "batch_max_bytes": int,
        "batch_delay_s": float,
        "max_in_flight": int,
        "retry_initial_s": float,
        "retry_max_s": float,
        "request_timeout_s": float,
    }
    refuse_unknown(t, "broker", path)

    def value(key: str) -> Any:
        return env.get(f"{_ENV}BROKER_{key.upper()}") or t.get(key)

    numbers = {k: _number(value(k), kind, f"broker {k}", path) for k, kind in kinds.items() if value(k) is not None}
    url, temporal_url = value("url"), value("temporal_url")
    for key, given in (("url", url), ("temporal_url", temporal_url)):
        if given is not None and (not isinstance(given, str) or not re.match(r"^https?://[^/\s]+", given)):
            raise ConfigError(f"{path}: broker {key} must be an http:// or https:// URL, not {given!r}")
    token_env = value("token_env")
    if token_env is not None and (not isinstance(token_env, str) or not token_env):
        raise ConfigError(f"{path}: broker token_env must be the name of an environment variable")
    settings = BrokerSettings(
        url=url,
        temporal_url=temporal_url,
        token_env=token_env,
        token=env.get(token_env) if token_env else None,
        **numbers,
    )
    if not 1 <= settings.batch_max_entities <= MAX_BATCH_ENTITIES:
        raise ConfigError(f"{path}: broker batch_max_entities must be 1 to {MAX_BATCH_ENTITIES}")
    if not 1024 <= settings.batch_max_bytes <= MAX_BATCH_BYTES:
        raise ConfigError(f"{path}: broker batch_max_bytes must be 1024 to {MAX_BATCH_BYTES}")
    if settings.max_in_flight < 1:
        raise ConfigError(f"{path}: broker max_in_flight must be at least 1")
    if settings.batch_delay_s < 0 or settings.request_timeout_s <= 0:
        raise ConfigError(f"{path}: broker batch_delay_s must be 0 or more and request_timeout_s more than 0")
    if not 0 < settings.retry_initial_s <= settings.retry_max_s:
        raise ConfigError(f"{path}: broker retry delays need 0 < retry_initial_s <= retry_max_s")
    return settings
