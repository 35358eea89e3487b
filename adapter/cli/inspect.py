"""``decode``, ``parse``, ``map`` and ``check``: one step of the pipeline on one input, and the configuration's check."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from adapter.app import build_pipeline
from adapter.codecs import CodecRegistry, load_codec_file
from adapter.codecs.base import CodecInput
from adapter.config import PROCESSES, start_problems
from adapter.config._start import Process
from adapter.exceptions import AdapterError, RejectedInput
from adapter.mapping.checks import check_profiles, unchecked_codecs
from adapter.mapping.profile import CodecSpec
from adapter.mapping.schemas import SchemaRegistry
from adapter.sources import PARSERS, get_parser
from adapter.cli._common import _config_option, _load, _print, _read_input
from adapter.cli._events import EventInput, event_input
from adapter.cli._main import main


@main.command()
@click.option(
    "--codec", "codec_name", required=True, help="A codec file (.js) or a built-in codec: builtin:cayenne_lpp."
)
@click.option("--fport", type=click.IntRange(0, 255), required=True, help="LoRaWAN fPort of the uplink.")
@click.option("--hex", "hex_payload", help="Payload in hexadecimal.")
@click.option("--base64", "b64_payload", help="Payload in base64.")
def decode(codec_name: str, fport: int, hex_payload: str | None, b64_payload: str | None) -> None:
    """Run one codec on one payload; print {"data", "warnings", "errors"} as JSON."""
    if (hex_payload is None) == (b64_payload is None):
        raise click.UsageError("give exactly one of --hex and --base64")
    try:
        payload = (
            bytes.fromhex(hex_payload)
            if hex_payload is not None
            else base64.b64decode(b64_payload or "", validate=True)
        )
    except (ValueError, binascii.Error) as exc:
        raise click.UsageError(f"payload is not valid {'hex' if hex_payload is not None else 'base64'}: {exc}") from exc
    registry = CodecRegistry()
    try:
        if codec_name.startswith("builtin:"):
            codec = registry.get(CodecSpec(codec_name.removeprefix("builtin:")))
        else:
            codec = load_codec_file(Path(codec_name))
        result = codec.decode(CodecInput(payload=payload, f_port=fport, received_at=datetime.now(UTC)))
    except KeyError as exc:
        raise click.ClickException(
            f"unknown built-in codec {codec_name!r} (builtin:cayenne_lpp, builtin:lns_decoded)"
        ) from exc
    except RejectedInput as exc:
        _print({"data": None, "warnings": [], "errors": [f"{exc.reason}: {exc.detail}"]})
        sys.exit(1)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(result.to_json())
    if result.errors:
        sys.exit(1)


def _lns_options(f: Any) -> Any:
    f = click.option(
        "--event",
        help="Event type given out of band: ChirpStack HTTP ?event= value, TTS webhook "
        "message type (default: the sample's).",
    )(f)
    f = click.option("--topic", help="MQTT topic the event arrived on (default: the sample's).")(f)
    f = click.option(
        "--connection",
        "connection",
        metavar="NAME",
        help="The [[connection]] the event arrives on: it decides the collectivity (tenant). "
        "Default: the sample's, else the first connection of that network server.",
    )(f)
    f = click.option(
        "--lns",
        type=click.Choice(sorted(PARSERS)),
        help="Network server format (default: the sample's, else the connection's).",
    )(f)
    return click.argument("file", default="-")(f)


def _event(
    config: Any, file: str, lns: str | None, connection: str | None, topic: str | None, event: str | None
) -> EventInput:
    return event_input(
        config,
        _read_input(file),
        name="stdin" if file == "-" else file,
        lns=lns,
        connection=connection,
        topic=topic,
        event=event,
    )


@main.command()
@_lns_options
@_config_option
def parse(
    lns: str | None, connection: str | None, topic: str | None, event: str | None, file: str, config_path: Path | None
) -> None:
    """Parse one network-server event (FILE, or - for stdin) and print the normalised record.

    FILE is the event as the network server sends it, or a bundled sample file
    (adapter/demo/events/), which brings its format, connection and topic."""
    config = _load(config_path)
    given = _event(config, file, lns, connection, topic, event)
    try:
        record = get_parser(given.lns).parse(
            given.body, origin=given.origin, topic=given.topic, event=given.event, limits=config.limits
        )
    except RejectedInput as exc:
        click.echo(f"Error: {exc.reason}: {exc.detail}", err=True)
        sys.exit(1)
    _print(record.to_json())


@main.command(name="map")
@_lns_options
@_config_option
def map_command(
    lns: str | None, connection: str | None, topic: str | None, event: str | None, file: str, config_path: Path | None
) -> None:
    """Run the whole ingest pipeline on one event and print the NGSI-LD entities it produces.

    FILE is the event as the network server sends it, or a bundled sample file
    (adapter/demo/events/), which brings its format, connection and topic. Nothing is kept:
    state and dead letters go to a temporary folder."""
    config = _load(config_path)
    given = _event(config, file, lns, connection, topic, event)
    with tempfile.TemporaryDirectory(prefix="ngsild-adapter-map-") as tmp:
        # A trial's log is thrown away: signed, if at all, with a throw-away key, never the collectivity's.
        trial = dataclasses.replace(
            config, provenance=dataclasses.replace(config.provenance, key_dir=Path(tmp) / "keys")
        )
        pipeline = build_pipeline(trial, Path(tmp))
        try:
            result = pipeline.process(
                given.body, lns=given.lns, origin=given.origin, topic=given.topic, event=given.event
            )
        finally:
            pipeline.close()
    if result.status == "rejected":
        click.echo(f"Error: {result.reason}: {result.detail}", err=True)
        sys.exit(1)
    # where the entities would be delivered: the collectivity of the connection chosen
    _print({"status": result.status, "tenant": given.origin.tenant, "connection": given.connection, **result.to_json()})


@main.command()
@_config_option
@click.option(
    "--for",
    "processes",
    type=click.Choice(PROCESSES),
    multiple=True,
    help="Check what this process needs at its start (repeatable). Default: listen.",
)
def check(config_path: Path | None, processes: tuple[Process, ...]) -> None:
    """Load the configuration, every device profile and codec; report what is wrong.

    Runs the start checks of the process (the same function ``listen``, ``serve`` and
    ``gateway`` run at start: every variable an *_env key names, the TLS and CA files), then
    the profile checks (contexts, entity ids, overlapping matches, schemas, codec fields).
    Prints a JSON report; exits 1 when there is an error (warnings alone exit 0)."""
    config = _load(config_path)
    errors = [
        {"level": "error", "process": p, "message": m}
        for p in (processes or ("listen",))
        for m in start_problems(config, p)
    ]
    try:
        pipeline = build_pipeline(config, None)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        schemas = pipeline.schemas or SchemaRegistry.for_models(config.models_dir)
        for profile in pipeline.profiles:
            pipeline.codecs.get(profile.codec)  # loads JavaScript codecs: syntax errors show here
            for entity in profile.entities:
                schemas.validator(entity.type)
        findings = check_profiles(pipeline.profiles, schemas)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        pipeline.close()
    errors += [f.to_json() for f in findings if f.level == "error"]
    _print(
        {
            "config": str(config.path),
            "collectivities": sorted(config.collectivities),
            "connections": [f"{c.name} ({c.lns} over {c.transport}, {c.collectivity})" for c in config.connections],
            "profiles": {p.name: str(p.path.name) for p in pipeline.profiles},
            "devices_in_registry": len(config.devices),
            "errors": errors,
            "warnings": [f.to_json() for f in findings if f.level == "warning"],
            # their codecs declare no outputs: their field paths are checked by the first uplinks only
            "fields_not_checked": unchecked_codecs(pipeline.profiles),
            "status": "failed" if errors else "ok",
        }
    )
    if errors:
        for error in errors:
            click.echo(
                f"Error: {error.get('file', error.get('process'))}: "
                + (f"{error['key']}: {error['message']}; fix: {error['fix']}" if "key" in error else error["message"]),
                err=True,
            )
        sys.exit(1)
