"""The ``ngsild-adapter`` command line: thin commands that call the domain modules and print JSON.

One module per family of commands; each adds its commands to the group in ``_main``."""

from adapter.cli import admin, deadletter, demo, init, inspect, policy, provenance, registry, run  # noqa: F401  (they register their commands)
from adapter.cli._main import main

__all__ = ["main"]
