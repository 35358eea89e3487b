"""Reading the file: TOML, then each table's reader, then the whole (see the package docstring)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from adapter import resources
from adapter.exceptions import ConfigError
from adapter.sources._common import ParseLimits

from ._common import _ENV, _entries, _number, _table
from ._delivery import _broker, _http
from ._gateway import _gateway
from ._models import AdapterConfig
from ._network import _collectivity, _connection, _device
from ._provenance import _provenance
from ._registry import _registries
from ._schema import refuse_unknown, refuse_unknown_sections

__all__ = ["load_config"]


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> AdapterConfig:
    """Read the TOML file (or the embedded defaults when None) and apply the environment."""
    env = os.environ if env is None else env
    # The embedded demo configuration ships inside the package: its state goes to the working
    # directory (never into site-packages) and its profiles are the shipped ones.
    embedded = path is None
    if path is None:
        path = resources.demo_config()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:  # a folder, no permission: one line, never a traceback
        raise ConfigError(f"configuration file {path} cannot be read: {exc.strerror or exc}") from exc
    base = Path.cwd() if embedded else path.parent
    adapter = _table(doc, "adapter", path)
    refuse_unknown_sections(doc, path)
    refuse_unknown(adapter, "adapter", path)

    contexts_url = env.get(_ENV + "CONTEXTS_URL") or adapter.get("contexts_url")
    models = env.get(_ENV + "MODELS") or adapter.get("models", None if embedded else "models")
    state_dir = env.get(_ENV + "STATE_DIR") or adapter.get("state_dir", "var")
    for setting, given in (("models", models), ("state_dir", state_dir), ("contexts_url", contexts_url)):
        if given is not None and (not isinstance(given, str) or not given):
            raise ConfigError(f"{path}: adapter {setting} must be a non-empty string, not {given!r}")
    limits = ParseLimits(
        max_payload_bytes=_number(
            env.get(_ENV + "MAX_PAYLOAD_BYTES") or adapter.get("max_payload_bytes", 256),
            int,
            "adapter max_payload_bytes",
            path,
        ),
        max_future_skew=timedelta(
            seconds=_number(
                env.get(_ENV + "MAX_FUTURE_SKEW_S") or adapter.get("max_future_skew_s", 600),
                float,
                "adapter max_future_skew_s",
                path,
            )
        ),
    )
    collectivities = {c.tenant: c for c in (_collectivity(t, path) for t in _entries(doc, "collectivity", path))}
    if not collectivities:
        raise ConfigError(f"{path}: at least one [[collectivity]] is needed")
    connections = tuple(_connection(t, path, collectivities, env) for t in _entries(doc, "connection", path))
    names = [c.name for c in connections]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: connection names must be unique")
    devices = {d.dev_eui: d for d in (_device(t, path, collectivities) for t in _entries(doc, "device", path))}
    registries = _registries(doc.get("registry", []), base, path, connections, env)
    key_hex = env.get(_ENV + "PSEUDONYM_KEY")
    try:
        key = bytes.fromhex(key_hex) if key_hex else None
    except ValueError as exc:
        raise ConfigError(f"{_ENV}PSEUDONYM_KEY must be hex") from exc
    outbox = _table(doc, "outbox", path)
    refuse_unknown(outbox, "outbox", path)
    depth = env.get(_ENV + "OUTBOX_MAX_DEPTH") or outbox.get("max_depth", 100_000)
    max_depth = _number(depth, int, "outbox max_depth", path)
    if max_depth < 1:
        raise ConfigError(f"{path}: outbox max_depth must be at least 1")
    return AdapterConfig(
        path=path,
        models_dir=(base / models).resolve() if models else resources.shipped_models_dir(),
        state_dir=(base / state_dir).resolve(),
        limits=limits,
        collectivities=collectivities,
        connections=connections,
        devices=devices,
        pseudonym_key=key,
        broker=_broker(_table(doc, "broker", path), path, env),
        outbox_max_depth=max_depth,
        contexts_url=contexts_url,
        provenance=_provenance(_table(doc, "provenance", path), base, path, env),
        gateway=_gateway(_table(doc, "gateway", path), base, path, env, collectivities),
        http=_http(_table(doc, "http", path), path, env),
        registries=registries,
    )
