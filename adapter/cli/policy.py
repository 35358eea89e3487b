"""``policy check``: sharing agreements checked before they are used."""

from __future__ import annotations

from pathlib import Path

import click

from adapter.exceptions import AdapterError
from adapter.cli._common import _config_option, _load
from adapter.cli._main import main


@main.group()
def policy() -> None:
    """Check sharing agreements (W3C ODRL 2.2, one JSON-LD file per agreement)."""


@policy.command(name="check")
@_config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def policy_check(config_path: Path | None, file: Path) -> None:
    """Validate one agreement against the configured collectivities and the entity types and
    attributes the device profiles make, and say what it grants, in plain words."""
    from adapter.access.odrl import Catalogue
    from adapter.access.policies import check_file
    from adapter.mapping.profile import load_profiles

    config = _load(config_path)
    catalogue = Catalogue.from_profiles(load_profiles(config.models_dir))
    try:
        lines = check_file(file, set(config.collectivities), catalogue)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("\n".join(lines))
