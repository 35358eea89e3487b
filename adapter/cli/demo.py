"""``demo`` and ``samples``: the embedded demonstration and the bundled sample events."""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from adapter.app import run_samples
from adapter.exceptions import AdapterError
from adapter.cli._common import _config_option, _load
from adapter.cli._main import main


def _default_workdir() -> Path:
    """``$XDG_STATE_HOME/ngsild-adapter/demo``: outside any checkout, since the demo keeps its
    signing keys with its state and keys are refused inside a repository."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ngsild-adapter" / "demo"


@main.command()
@_config_option
@click.option(
    "--rounds", type=click.IntRange(1, 100), default=5, show_default=True, help="Uplinks per simulated device."
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where Mosquitto, the broker and the adapter keep their files and keys (emptied first; "
    "outside any repository). Default: $XDG_STATE_HOME/ngsild-adapter/demo.",
)
@click.option("--no-sharing", is_flag=True, help="Leave out the sharing part (Keycloak and the gateway).")
def demo(config_path: Path | None, rounds: int, workdir: Path | None, no_sharing: bool) -> None:
    """Run the whole chain on this machine: Mosquitto, the embedded NGSI-LD broker, the
    adapter, and a simulated fleet of about a hundred devices of three collectivities
    (ChirpStack and The Things Stack uplinks, a few bad inputs); then print what the
    broker holds, and the commands that inspect what the run left."""
    import asyncio

    from adapter.demo.run import run_demo

    config = _load(config_path)
    workdir = (workdir or _default_workdir()).resolve()
    try:
        report = asyncio.run(
            run_demo(
                config,
                workdir,
                rounds=rounds,
                sharing=not no_sharing,
                progress=lambda line: click.echo(f"  {line}", err=True),
            )
        )
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    _print_demo_report(report)
    _print_inspect_commands(report, config_path)  # none given: the embedded configuration, as here


def _program() -> str:
    """How to call this program again from any folder: the script beside this Python (the
    virtualenv's), else the name on the PATH."""
    script = Path(sys.executable).parent / "ngsild-adapter"
    return str(script) if script.is_file() else "ngsild-adapter"


def inspect_commands(report: Any, config_path: Path | None) -> list[list[str]]:
    """The commands (argument lists, program first) that read what a demo run left: its dead
    letters, its logs, and the value it verified, from its state folder and with its keys."""
    if report.state_dir is None:
        return []
    common = [
        *(["--config", str(config_path)] if config_path is not None else []),
        "--state-dir",
        str(report.state_dir),
    ]
    program = _program()
    commands = [[program, "deadletter", "list", *common], [program, "provenance", "status", *common]]
    value = report.verified
    if value is not None:  # the broker is stopped by then: the value and its record are given
        commands.append(
            [
                program,
                "verify",
                *common,
                "--tenant",
                value.tenant,
                "--entity",
                value.entity_id,
                "--attr",
                value.attribute,
                "--observed-at",
                value.observed_at,
                "--value",
                json.dumps(value.value),
                "--record",
                str(value.record),
            ]
        )
    return commands


def _print_inspect_commands(report: Any, config_path: Path | None) -> None:
    commands = inspect_commands(report, config_path)
    if not commands:
        return
    click.echo(f"\nInspect what the demo left (its state and signing keys are in {report.state_dir}):")
    for command in commands:
        click.echo(f"  {shlex.join(command)}")


def _print_demo_report(report: Any) -> None:
    click.echo("")
    click.echo(f"Demo finished in {report.seconds:.1f} s.")
    click.echo(
        f"Uplinks and events received: {report.published}  "
        f"({', '.join(f'{n} {s}' for s, n in sorted(report.outcomes.items()))})"
    )
    click.echo("Entities in the broker, per collectivity (NGSI-LD tenant) and type:")
    for tenant, counts in report.entities.items():
        click.echo(f"  {tenant}: " + ", ".join(f"{n} {t}" for t, n in sorted(counts.items())))
    click.echo(
        "Dead letters by reason: " + (", ".join(f"{n} {r}" for r, n in sorted(report.dead_letters.items())) or "none")
    )
    if report.sample is not None:
        click.echo(
            f"\nOne entity as stored in the broker ({report.sample_history} observations of no2 in its history):"
        )
        click.echo(json.dumps(report.sample, indent=2, ensure_ascii=False))
    if report.logs:
        click.echo("\nProvenance: one record per uplink, chained per device, in each collectivity's signed Merkle log:")
        for tenant, head in sorted(report.logs.items()):
            click.echo(f"  {tenant}: {head}")
    if report.verification:
        click.echo("\nThat entity's no2, verified against its provenance (ngsild-adapter verify):")
        click.echo("\n".join(f"  {line}" for line in report.verification))
    if report.uplinks_per_gateway:
        click.echo("\nSPARQL over the provenance index (named graph per collectivity):")
        for graph, gateways, count in report.uplinks_per_gateway:
            click.echo(f"  {graph}: {count} uplinks heard by {gateways} gateways")
    sharing = report.sharing
    if sharing is not None:
        click.echo("\nSharing: the region's air quality, for the city's school ventilation (Keycloak + gateway):")
        if sharing.skipped:
            click.echo(f"  not shown: {sharing.skipped}")
        if sharing.notification:
            click.echo(
                f"  Keycloak started in {sharing.keycloak_seconds:.0f} s; client ecole-ventilation (realm ville) "
                "subscribed through the gateway, purpose ventilation-control"
            )
            click.echo("  notification received by the ventilation service, filtered to the agreement:")
            click.echo(
                "\n".join(
                    f"    {line}"
                    for line in json.dumps(sharing.notification["data"], indent=2, ensure_ascii=False).splitlines()
                )
            )
        if sharing.refused:
            click.echo(f"  the same client asking for the water authority's meters: {sharing.refused}")
        click.echo(f"  accesses recorded as provenance: {sharing.accesses} (GET /gateway/access?tenant=region)")
    click.echo("\nExplore it yourself: start the broker on the demo's data, then query it:")
    click.echo(f"  {shlex.join([_program(), 'broker', '--db', str(report.broker_db)])} &")
    click.echo(
        f"  curl -s -H 'NGSILD-Tenant: ville' -H 'Link: <{report.context}>; "
        'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"\' \\'
    )
    click.echo("    'http://127.0.0.1:1026/ngsi-ld/v1/entities?type=AirQualityObserved&limit=2'")


@main.command()
@_config_option
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep state and dead letters here (default: a fresh temporary folder).",
)
def samples(config_path: Path | None, state_dir: Path | None) -> None:
    """Process the bundled sample events (both network servers, every device profile, a few
    bad inputs) through the pipeline alone.

    Prints JSON Lines on stdout, one result per sample ({"sample": FILE, "status": ...}); then
    one JSON summary line on stderr: {"printed": lines printed, "samples", "outcomes",
    "counters", "dead_letters"}."""
    config = _load(config_path)
    printed = 0

    def line(result: Any) -> None:
        nonlocal printed
        click.echo(json.dumps(result, ensure_ascii=False))
        printed += 1

    try:
        with tempfile.TemporaryDirectory(prefix="ngsild-adapter-samples-") as tmp:
            summary = run_samples(config, state_dir or Path(tmp), echo=line)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"printed": printed, **summary}, ensure_ascii=False), err=True)
