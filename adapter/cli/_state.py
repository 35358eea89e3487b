"""``--state-dir``: the commands that read state can be pointed at another run's state folder.

The state folder (``[adapter] state_dir``) holds the pipeline state and provenance logs
(``state.sqlite``), the dead letters and the RDF index. ``--state-dir DIR`` puts ``DIR`` in its
place, as ``samples --state-dir`` does; the rest of the configuration is unchanged.

A run that keeps its own signing keys with its state (the demo: ``DIR/keys``) is read with
those keys: its logs were signed with them, and reading them with ``[provenance] key_dir``'s
would make honest data look tampered (and sign further tree heads with a second key). Only a
folder named on the command line is read this way; the configured state folder always uses
``[provenance] key_dir``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from adapter.config import AdapterConfig

__all__ = ["KEYS_FOLDER", "state_dir_option", "with_state_dir"]

#: The folder of a state directory where a self-contained run (the demo) keeps its keys.
KEYS_FOLDER = "keys"

_HELP = (
    "Read this state folder instead of [adapter] state_dir (as samples --state-dir and the demo "
    f"leave it); its own signing keys, in DIR/{KEYS_FOLDER}, are used when it has them."
)


def state_dir_option(f: Any) -> Any:
    """The ``--state-dir DIR`` option (``state_dir``, a path or None)."""
    return click.option("--state-dir", "state_dir", type=click.Path(file_okay=False, path_type=Path), help=_HELP)(f)


def with_state_dir(config: AdapterConfig, state_dir: Path | None) -> AdapterConfig:
    """``config`` reading ``state_dir`` (and its keys, when it has a keys folder), or ``config``
    itself when no folder was given. A folder that does not exist is an error: reading it would
    create an empty state and report nothing, which looks like a run that lost everything."""
    if state_dir is None:
        return config
    folder = state_dir.resolve()
    if not folder.is_dir():
        raise click.ClickException(f"no state folder {state_dir} (give the folder a run left, e.g. the demo's)")
    keys = folder / KEYS_FOLDER
    provenance = dataclasses.replace(config.provenance, key_dir=keys) if keys.is_dir() else config.provenance
    return dataclasses.replace(config, state_dir=folder, provenance=provenance)
