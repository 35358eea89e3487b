"""``decode``, ``parse``, ``map`` and ``check``: one step of the pipeline on one input, and the configuration's check."""

from __future__ import annotations

import base64
import binascii
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from adapter.app import build_pipeline
from adapter.codecs import CodecRegistry, load_codec_file
from adapter.codecs.base import CodecInput
from adapter.exceptions import AdapterError, RejectedInput
from adapter.mapping.profile import CodecSpec
from adapter.mapping.schemas import SchemaRegistry
from adapter.sources import PARSERS, get_parser
from adapter.cli._common import _config_option, _load, _print, _read_input
from adapter.cli._main import main


@main.command()
@click.option("--codec", "codec_name", required=True,
              help="A codec file (.js) or a built-in codec: builtin:cayenne_lpp.")
@click.option("--fport", type=click.IntRange(0, 255), required=True, help="LoRaWAN fPort of the uplink.")
@click.option("--hex", "hex_payload", help="Payload in hexadecimal.")
@click.option("--base64", "b64_payload", help="Payload in base64.")
def decode(codec_name: str, fport: int, hex_payload: str | None, b64_payload: str | None) -> None:
    """Run one codec on one payload; print {"data", "warnings", "errors"} as JSON."""
    if (hex_payload is None) == (b64_payload is None):
        raise click.UsageError("give exactly one of --hex and --base64")
    try:
        payload = bytes.fromhex(hex_payload) if hex_payload is not None else base64.b64decode(b64_payload or "", validate=True)
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
        raise click.ClickException(f"unknown built-in codec {codec_name!r} (builtin:cayenne_lpp, builtin:lns_decoded)") from exc
    except RejectedInput as exc:
        _print({"data": None, "warnings": [], "errors": [f"{exc.reason}: {exc.detail}"]})
        sys.exit(1)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(result.to_json())
    if result.errors:
        sys.exit(1)


def _lns_options(f: Any) -> Any:
    f = click.option("--event", help="Event type given out of band: ChirpStack HTTP ?event= value, TTS webhook message type.")(f)
    f = click.option("--topic", help="MQTT topic the event arrived on.")(f)
    f = click.option("--lns", type=click.Choice(sorted(PARSERS)), required=True, help="Network server format.")(f)
    return click.argument("file", default="-")(f)


@main.command()
@_lns_options
@_config_option
def parse(lns: str, topic: str | None, event: str | None, file: str, config_path: Path | None) -> None:
    """Parse one network-server event (FILE, or - for stdin) and print the normalised record."""
    config = _load(config_path)
    body = _read_input(file)
    try:
        record = get_parser(lns).parse(body, origin=config.default_origin(lns), topic=topic, event=event, limits=config.limits)
    except RejectedInput as exc:
        click.echo(f"Error: {exc.reason}: {exc.detail}", err=True)
        sys.exit(1)
    _print(record.to_json())


@main.command(name="map")
@_lns_options
@_config_option
def map_command(lns: str, topic: str | None, event: str | None, file: str, config_path: Path | None) -> None:
    """Run the whole ingest pipeline on one event and print the NGSI-LD entities it produces.

    Nothing is kept: state and dead letters go to a temporary folder."""
    config = _load(config_path)
    body = _read_input(file)
    with tempfile.TemporaryDirectory(prefix="ngsild-adapter-map-") as tmp:
        pipeline = build_pipeline(config, Path(tmp))
        try:
            result = pipeline.process(body, lns=lns, origin=config.default_origin(lns), topic=topic, event=event)
        finally:
            pipeline.close()
    if result.status == "rejected":
        click.echo(f"Error: {result.reason}: {result.detail}", err=True)
        sys.exit(1)
    _print(result.to_json())


@main.command()
@_config_option
def check(config_path: Path | None) -> None:
    """Load the configuration, every device profile and codec; report what is wrong."""
    config = _load(config_path)
    try:
        pipeline = build_pipeline(config, None)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        schemas = SchemaRegistry()
        for profile in pipeline.profiles:
            pipeline.codecs.get(profile.codec)  # loads JavaScript codecs: syntax errors show here
            for entity in profile.entities:
                schemas.validator(entity.type)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        pipeline.close()
    _print({
        "config": str(config.path),
        "collectivities": sorted(config.collectivities),
        "connections": [f"{c.name} ({c.lns} over {c.transport}, {c.collectivity})" for c in config.connections],
        "profiles": {p.name: str(p.path.name) for p in pipeline.profiles},
        "devices_in_registry": len(config.devices),
        "status": "ok",
    })
