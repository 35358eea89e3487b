"""What a process checks before it opens anything: the variables its ``*_env`` settings name,
and the files it will read.

The file is shared by processes with different environments (the gateway has no MQTT
password, ``verify`` no broker token), so loading it never requires a secret; each process
calls ``validate_for_start`` for its own needs at its start, and ``ngsild-adapter check``
calls the same function, so a check that passes means the start passes. Every problem is
listed at once, not the first one only: an operator fixes the environment in one go.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from adapter.exceptions import ConfigError

from ._common import _required_secret
from ._models import AdapterConfig

__all__ = ["PROCESSES", "StartRefused", "start_problems", "validate_for_start"]

Process = Literal["listen", "serve", "gateway"]
#: the long-running processes that read the configuration at start
PROCESSES: tuple[Process, ...] = ("listen", "serve", "gateway")


class StartRefused(ConfigError):
    """A process cannot start: ``problems`` lists every reason, each naming the key and the fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        if len(problems) == 1:
            super().__init__(problems[0])
        else:
            super().__init__(f"{len(problems)} problems stop the start: " + "; ".join(problems))


def _unset(table: str, key: str, variable: str) -> str:
    return f"{table} {key} names {variable}, which is not set (export it, or remove {key})"


def _secret(name: str | None, value: str | None, what: str) -> Iterator[str]:
    try:
        _required_secret(name, value, what)
    except ConfigError as exc:
        yield str(exc)


def _listen(config: AdapterConfig, http: bool) -> Iterator[str]:
    # imported here: adapter.sources imports this package (its settings' types)
    from adapter.sources.mqtt_tls import tls_context

    broker = config.broker
    if broker.token_env and not broker.token:
        yield _unset("[broker]", "token_env", broker.token_env)
    if http:  # the internal routes' secret (``ServiceGuard``) and the webhooks' tokens
        yield from _secret(
            config.provenance.service_token_env, config.provenance.service_token, "[provenance] service_token_env"
        )
    for connection in config.connections:
        where = f"connection {connection.name}"
        if connection.transport == "mqtt":
            try:
                connection.required_password()
            except ConfigError as exc:
                yield str(exc)
            try:
                tls_context(connection)  # reads the files now: missing, unreadable, expired
            except ConfigError as exc:
                yield str(exc)
        elif http and connection.webhook_token_env and not connection.webhook_token:
            # without it every request of the network server would be answered 503
            yield _unset(where, "token_env", connection.webhook_token_env)
    for registry in config.registries:
        if not registry.token:
            yield _unset(f"registry of connection {registry.connection}", "token_env", registry.token_env)
        if registry.ca_file is not None and not _readable(registry.ca_file):
            yield f"registry of connection {registry.connection}: ca_file {registry.ca_file} cannot be read"


def _folder(path: Path, what: str) -> Iterator[str]:
    """A folder the process creates or writes in: refused now rather than by a traceback later."""
    if path.exists():
        if not path.is_dir():
            yield f"{what} {path} is a file, not a folder (give a folder)"
        elif not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            yield f"{what} {path} cannot be read and written by this user (fix its permissions or owner)"
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        yield f"{what} {path} cannot be created: {parent} is a file, not a folder"
    elif not os.access(parent, os.W_OK | os.X_OK):
        yield f"{what} {path} cannot be created: {parent} is not writable by this user"


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return True
    except OSError:
        return False


def start_problems(config: AdapterConfig, process: Process, *, http: bool = True) -> list[str]:
    """Every reason ``process`` could not start with ``config`` in this environment (empty: it
    can). ``http``: ``listen`` serves its HTTP port (webhooks, contexts, provenance)."""
    found: list[str] = []
    if process in ("listen", "serve"):  # both open the state and sign with the keys
        found += _folder(config.state_dir, "[adapter] state_dir")
        found += _folder(config.provenance.key_dir, "[provenance] key_dir")
    if process == "listen":
        found += _listen(config, http)
    elif process == "serve":
        found += _secret(
            config.provenance.service_token_env, config.provenance.service_token, "[provenance] service_token_env"
        )
    elif process == "gateway":
        settings = config.gateway
        if settings.policies_dir is None:
            found.append("[gateway] policies is not set (the folder of the sharing agreements)")
        found += _secret(settings.adapter_token_env, settings.adapter_token, "[gateway] adapter_token_env")
    else:
        raise ValueError(f"no process {process!r}")
    return found


def validate_for_start(config: AdapterConfig, process: Process = "listen", *, http: bool = True) -> None:
    """Raise ``StartRefused`` listing every problem ``start_problems`` finds; called by each
    process before it opens anything, and by ``ngsild-adapter check``."""
    problems = start_problems(config, process, http=http)
    if problems:
        raise StartRefused(problems)
