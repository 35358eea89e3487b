"""The [[registry]] tables: network-server device registries to import (adapter.registry)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapter.exceptions import ConfigError

from ._common import _number
from ._models import Connection, RegistrySettings
from ._schema import refuse_unknown

__all__: list[str] = []


#: application ids: ChirpStack v4 names them by UUID; TTS ids are 3-36 of a-z, 0-9 and inner dashes
_APPLICATION_ID = {
    "chirpstack": re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    "tts": re.compile(r"[a-z0-9](?:-?[a-z0-9]){2,35}"),
}


def _registries(
    entries: Any, base: Path, path: Path, connections: tuple[Connection, ...], env: Mapping[str, str]
) -> tuple[RegistrySettings, ...]:
    """The ``[[registry]]`` entries: one per connection at most, each bound to its connection's
    network server kind and collectivity."""
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: registry must be an array of tables ([[registry]])")
    by_name = {c.name: c for c in connections}
    found: list[RegistrySettings] = []
    for t in entries:
        if not isinstance(t, Mapping):
            raise ConfigError(f"{path}: every [[registry]] must be a table")
        name = t.get("connection")
        if name not in by_name:
            raise ConfigError(f"{path}: [[registry]] connection {name!r} is not a declared [[connection]]")
        where = f"{path}: registry of connection {name}"
        refuse_unknown(t, "registry", path, f"registry of connection {name}")
        if any(r.connection == name for r in found):
            raise ConfigError(f"{where}: one [[registry]] per connection")
        connection = by_name[name]
        url = t.get("url")
        if not isinstance(url, str) or not re.fullmatch(r"https?://[^/\s?#]+/?", url):
            raise ConfigError(f"{where}: url must be http(s)://host[:port], not {url!r}")
        applications = t.get("applications", [connection.application] if connection.application else None)
        pattern = _APPLICATION_ID[connection.lns]
        if (
            not isinstance(applications, list)
            or not applications
            or not all(isinstance(a, str) and pattern.fullmatch(a) for a in applications)
        ):
            kind = "UUIDs" if connection.lns == "chirpstack" else "ids (3-36 of a-z, 0-9, -)"
            raise ConfigError(f"{where}: applications must be a non-empty list of {connection.lns} application {kind}")
        if len(set(applications)) != len(applications):
            raise ConfigError(f"{where}: applications are listed twice")
        token_env = t.get("token_env")
        if not isinstance(token_env, str) or not token_env:
            raise ConfigError(f"{where}: token_env must name the variable holding the API token (or key)")
        ca_file = t.get("ca_file")
        if ca_file is not None and (not isinstance(ca_file, str) or not ca_file):
            raise ConfigError(f"{where}: ca_file must be a file name")
        settings = RegistrySettings(
            connection=name,
            lns=connection.lns,
            collectivity=connection.collectivity,
            url=url.rstrip("/"),
            applications=tuple(applications),
            token_env=token_env,
            token=env.get(token_env) or None,
            ca_file=(base / ca_file).resolve() if ca_file else None,
            interval_s=_number(t.get("interval_s", 3600), float, "registry interval_s", path),
            timeout_s=_number(t.get("timeout_s", 30), float, "registry timeout_s", path),
            max_devices=_number(t.get("max_devices", 10_000), int, "registry max_devices", path),
        )
        if not (settings.interval_s >= 10 and 0 < settings.timeout_s <= 600 and 1 <= settings.max_devices <= 1_000_000):
            raise ConfigError(f"{where}: needs interval_s >= 10, 0 < timeout_s <= 600, 1 <= max_devices <= 1000000")
        found.append(settings)
    return tuple(found)
