"""``registry import|list``: device registries imported from the network servers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from adapter.cli._common import _config_option, _load, _print, _serve_until_interrupted
from adapter.cli._main import main


@main.group()
def registry() -> None:
    """Import device names, tags and locations from the network servers' device registries
    ([[registry]] entries: ChirpStack v4 over gRPC, The Things Stack v3 over HTTP)."""


@registry.command(name="import")
@_config_option
@click.option(
    "--once", is_flag=True, help="Import every registry once, print the report and exit (1 if an application failed)."
)
def registry_import(config_path: Path | None, once: bool) -> None:
    """Import the configured registries into <state_dir>/registry.sqlite, once or every
    interval_s until Ctrl-C; a running `listen` picks the result up at its next refresh. A
    network server that fails keeps its last good import."""
    import asyncio

    import aiohttp

    from adapter.registry import RegistryImporter, RegistryStore, open_clients, store_path

    config = _load(config_path)
    if not config.registries:
        raise click.ClickException("no [[registry]] in the configuration: nothing to import")

    def changed(devices: Any) -> None:
        click.echo(json.dumps({"devices_in_registry": len(devices)}))

    async def run() -> Any:
        async with aiohttp.ClientSession() as session:
            store = RegistryStore(store_path(config.state_dir))
            importer = RegistryImporter(
                config.registries,
                config.devices,
                store,
                open_clients(config.registries, session),
                on_change=None if once else changed,
            )
            try:
                if not once:
                    await importer.run()
                    return None
                reports = await importer.refresh()
                return {"applications": [r.to_json() for r in reports], "devices_in_registry": len(importer.devices())}
            finally:
                await importer.close()
                store.close()

    if not once:
        _serve_until_interrupted(run())
        return
    summary = asyncio.run(run())
    _print(summary)
    if any(a["status"] == "failed" for a in summary["applications"]):
        sys.exit(1)


@registry.command(name="list")
@_config_option
def registry_list(config_path: Path | None) -> None:
    """Print the imported devices (with where each came from), the last import of each
    application, and the conflicts with [[device]] entries or between registries."""
    from adapter.registry import RegistryStore, merge, store_path

    config = _load(config_path)
    path = store_path(config.state_dir)
    if not path.exists():
        _print({"devices": [], "imports": [], "conflicts": []})
        return
    store = RegistryStore(path)
    try:
        stored = store.devices()
        statuses = store.statuses()
    finally:
        store.close()
    _, conflicts = merge(config.devices, stored, config.registries)
    _print(
        {
            "devices": [s.device.to_json() | {"first_imported_at": s.first_imported_at.isoformat()} for s in stored],
            "imports": [s.to_json() for s in statuses],
            "conflicts": [c.message() for c in conflicts],
        }
    )
