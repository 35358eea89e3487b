"""What the commands share: the ``--config`` option, JSON printing, loading the configuration."""

from __future__ import annotations

import errno
import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click

from adapter.config import AdapterConfig, load_config
from adapter.exceptions import AdapterError, ConfigError

_CONFIG_HELP = "Configuration file (TOML). Default: the embedded demo configuration."


def _config_option(f: Any) -> Any:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        envvar="NGSILD_ADAPTER_CONFIG",
        help=_CONFIG_HELP,
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
    except OSError as exc:  # a busy port, a missing or unreadable file or folder: one line, no traceback
        raise click.ClickException(_os_error(exc)) from exc
    except sqlite3.Error as exc:  # a state file that cannot be opened (a folder, a read-only disk)
        raise click.ClickException(f"a state database cannot be used: {exc}") from exc


def _os_error(exc: OSError) -> str:
    """One line saying what the system refused, and what to do about it."""
    if exc.errno == errno.EADDRINUSE:
        address = re.search(r"\(('[^']*'), (\d+)\)", str(exc))
        where = f"{address[1].strip(chr(39))}:{address[2]}" if address else "the address"
        return f"cannot listen on {where}: the port is already in use (stop the other process, or choose another port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen: {exc.strerror or exc} (the host is not an address of this machine)"
    if exc.filename is not None:
        hint = {
            errno.ENOENT: "it does not exist",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.EISDIR: "it is a folder, not a file",
            errno.EEXIST: "a file is in the way of a folder",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        return f"cannot use {exc.filename}: {hint}"
    return f"{exc.strerror or exc}"


def _read_input(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from exc
