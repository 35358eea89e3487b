"""What the commands share: the ``--config`` option, JSON printing, loading the configuration."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from adapter.config import AdapterConfig, load_config
from adapter.exceptions import AdapterError, ConfigError

_CONFIG_HELP = "Configuration file (TOML). Default: the embedded demo configuration."


def _config_option(f: Any) -> Any:
    return click.option(
        "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
        envvar="NGSILD_ADAPTER_CONFIG", help=_CONFIG_HELP,
    )(f)


def _print(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _load(config_path: Path | None) -> AdapterConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _serve_until_interrupted(coroutine: Any) -> None:
    """Run a server until Ctrl-C; the adapter's own errors become a plain message."""
    import asyncio

    try:
        asyncio.run(coroutine)
    except KeyboardInterrupt:
        pass
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc


def _read_input(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from exc
