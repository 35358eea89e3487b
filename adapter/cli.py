"""The ``ngsild-adapter`` command line: thin commands that call the domain modules and print JSON."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from adapter import __version__
from adapter.app import build_pipeline, run_samples
from adapter.codecs import CodecRegistry, load_codec_file
from adapter.codecs.base import CodecInput
from adapter.config import AdapterConfig, load_config
from adapter.deadletter import DeadLetterStore
from adapter.exceptions import REASONS, AdapterError, ConfigError, RejectedInput
from adapter.mapping.profile import CodecSpec
from adapter.mapping.schemas import SchemaRegistry
from adapter.sources import PARSERS, get_parser

__all__ = ["main"]

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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ngsild-adapter")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning",
              show_default=True, envvar="NGSILD_ADAPTER_LOG_LEVEL", help="Log messages on stderr from this level.")
def main(log_level: str) -> None:
    """LoRaWAN to NGSI-LD adapter for public bodies sharing territorial IoT data.

    Takes uplinks from ChirpStack v4 or The Things Stack v3, decodes them, and turns them
    into FIWARE Smart Data Models entities for an NGSI-LD broker.

    \b
    Start here:
      ngsild-adapter demo                       the whole chain with a simulated fleet
      ngsild-adapter samples                    the bundled sample events through the pipeline
      ngsild-adapter decode --codec F --fport 1 --hex 0167...   try a codec on a payload
      ngsild-adapter parse --lns chirpstack EVENT.json          see the normalised uplink
      ngsild-adapter map --lns tts EVENT.json                   see the entities it makes
      ngsild-adapter check                      validate configuration and device profiles
      ngsild-adapter listen                     ingest from MQTT/webhooks, deliver to the broker
      ngsild-adapter broker                     run the embedded NGSI-LD broker (development)
      ngsild-adapter verify --tenant T --entity ID --attr no2 --observed-at TIME
                                                check one value against its signed provenance
      ngsild-adapter serve                      serve /sparql, provenance, logs and keys
      ngsild-adapter deadletter list            inspect (and replay) rejected inputs
      ngsild-adapter registry import --once     import device names, tags and locations
                                                from ChirpStack / The Things Stack

    Every command takes --config FILE (or NGSILD_ADAPTER_CONFIG); without it the embedded
    demo configuration is used.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@_config_option
@click.option("--rounds", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Uplinks per simulated device.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("var/demo"),
              show_default=True, help="Where Mosquitto, the broker and the adapter keep their files (emptied first).")
@click.option("--no-sharing", is_flag=True, help="Leave out the sharing part (Keycloak and the gateway).")
def demo(config_path: Path | None, rounds: int, workdir: Path, no_sharing: bool) -> None:
    """Run the whole chain on this machine: Mosquitto, the embedded NGSI-LD broker, the
    adapter, and a simulated fleet of about a hundred devices of three collectivities
    (ChirpStack and The Things Stack uplinks, a few bad inputs); then print what the
    broker holds."""
    import asyncio

    from adapter.demo.run import run_demo

    config = _load(config_path)
    try:
        report = asyncio.run(run_demo(config, workdir.resolve(), rounds=rounds, sharing=not no_sharing,
                                      progress=lambda line: click.echo(f"  {line}", err=True)))
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    _print_demo_report(report)


def _print_demo_report(report: Any) -> None:
    click.echo("")
    click.echo(f"Demo finished in {report.seconds:.1f} s.")
    click.echo(f"Uplinks and events received: {report.published}  "
               f"({', '.join(f'{n} {s}' for s, n in sorted(report.outcomes.items()))})")
    click.echo("Entities in the broker, per collectivity (NGSI-LD tenant) and type:")
    for tenant, counts in report.entities.items():
        click.echo(f"  {tenant}: " + ", ".join(f"{n} {t}" for t, n in sorted(counts.items())))
    click.echo("Dead letters by reason: " + (", ".join(f"{n} {r}" for r, n in sorted(report.dead_letters.items()))
                                            or "none"))
    if report.sample is not None:
        click.echo(f"\nOne entity as stored in the broker ({report.sample_history} observations of no2 in its history):")
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
            click.echo(f"  Keycloak started in {sharing.keycloak_seconds:.0f} s; client ecole-ventilation (realm ville) "
                       "subscribed through the gateway, purpose ventilation-control")
            click.echo("  notification received by the ventilation service, filtered to the agreement:")
            click.echo("\n".join(f"    {line}" for line in json.dumps(sharing.notification["data"], indent=2,
                                                                     ensure_ascii=False).splitlines()))
        if sharing.refused:
            click.echo(f"  the same client asking for the water authority's meters: {sharing.refused}")
        click.echo(f"  accesses recorded as provenance: {sharing.accesses} (GET /gateway/access?tenant=region)")
    click.echo("\nExplore it yourself: start the broker on the demo's data, then query it:")
    click.echo(f"  .venv/bin/ngsild-adapter broker --db {report.broker_db} &")
    click.echo(f"  curl -s -H 'NGSILD-Tenant: ville' -H 'Link: <{report.context}>; "
               'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"\' \\')
    click.echo("    'http://127.0.0.1:1026/ngsi-ld/v1/entities?type=AirQualityObserved&limit=2'")


@main.command()
@_config_option
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep state and dead letters here (default: a fresh temporary folder).")
def samples(config_path: Path | None, state_dir: Path | None) -> None:
    """Process the bundled sample events (both network servers, every device profile, a few
    bad inputs) through the pipeline alone, and print the NGSI-LD entities and a summary."""
    config = _load(config_path)
    with tempfile.TemporaryDirectory(prefix="ngsild-adapter-samples-") as tmp:
        summary = run_samples(config, state_dir or Path(tmp), echo=_print)
    click.echo("")
    _print(summary)


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


@main.command()
@_config_option
@click.option("--http-port", "--webhook-port", "http_port", type=int, default=None,
              help="Serve webhooks, the JSON-LD contexts (/contexts/), /healthz and /metrics on this port.")
@click.option("--http-host", default="127.0.0.1", show_default=True,
              help="Address of the HTTP listener (0.0.0.0 in a container).")
@click.option("--max-events", type=int, default=None, help="Stop after this many events (for tests and trials).")
@click.option("--quiet", is_flag=True, help="Do not print each result (for production and benchmarks).")
def listen(config_path: Path | None, http_port: int | None, http_host: str, max_events: int | None,
           quiet: bool) -> None:
    """Ingest from every configured connection (MQTT QoS 1, persistent sessions; webhooks),
    deliver the entities to the configured NGSI-LD broker through the durable outbox, and
    print each result as one JSON line. Stop with Ctrl-C."""

    from adapter.app import listen as run_listen

    config = _load(config_path)

    def emit(result: Any) -> None:
        if not quiet:
            click.echo(json.dumps(result.to_json(), ensure_ascii=False))

    _serve_until_interrupted(run_listen(config, http_port=http_port, http_host=http_host, max_events=max_events, emit=emit))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=1026, show_default=True, help="Port (Orion-LD's usual one).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite file to keep entities, history and subscriptions in (in memory otherwise).")
def broker(host: str, port: int, db_path: Path | None) -> None:
    """Run the embedded NGSI-LD broker alone, for development and tests.

    It behaves like Orion-LD on the operations this project uses (see
    adapter/ngsild/broker/README.md for what differs). It is a development default, not a
    production broker: use Orion-LD (compose/) for real data."""

    from adapter.ngsild.broker import run_broker

    _serve_until_interrupted(run_broker(host, port, db_path))


@main.group()
def deadletter() -> None:
    """Inspect and replay rejected inputs (kept whole, with their reason)."""


def _store(config: AdapterConfig) -> DeadLetterStore:
    return DeadLetterStore(config.state_dir / "deadletters.sqlite")


@deadletter.command(name="list")
@_config_option
@click.option("--reason", type=click.Choice(sorted(REASONS)), help="Only this reason.")
@click.option("--all", "show_all", is_flag=True, help="Include the ones already replayed.")
@click.option("--limit", type=int, default=100, show_default=True)
def deadletter_list(config_path: Path | None, reason: str | None, show_all: bool, limit: int) -> None:
    """List dead letters and the count per reason."""
    store = _store(_load(config_path))
    _print({
        "counts": store.counts(status=None if show_all else "open"),
        "dead_letters": [d.to_json() for d in store.list(status=None if show_all else "open", reason=reason, limit=limit)],
    })


@deadletter.command(name="show")
@_config_option
@click.argument("letter_id", type=int)
def deadletter_show(config_path: Path | None, letter_id: int) -> None:
    """Show one dead letter with its original body."""
    letter = _store(_load(config_path)).get(letter_id)
    if letter is None:
        raise click.ClickException(f"no dead letter {letter_id}")
    _print(letter.to_json(with_body=True))


@deadletter.command(name="replay")
@_config_option
@click.option("--id", "letter_ids", type=int, multiple=True, help="Replay this dead letter (repeatable).")
@click.option("--reason", type=click.Choice(sorted(REASONS)), help="Replay every open dead letter with this reason.")
def deadletter_replay(config_path: Path | None, letter_ids: tuple[int, ...], reason: str | None) -> None:
    """Run dead letters through the pipeline again, once their cause is fixed."""
    from adapter.app import replay_dead_letters

    if not letter_ids and not reason:
        raise click.UsageError("give --id N or --reason REASON")
    config = _load(config_path)
    outcome = replay_dead_letters(config, ids=letter_ids, reason=reason, emit=lambda r: _print(r.to_json()))
    _print(dict(Counter(outcome)))


@main.group()
def registry() -> None:
    """Import device names, tags and locations from the network servers' device registries
    ([[registry]] entries: ChirpStack v4 over gRPC, The Things Stack v3 over HTTP)."""


@registry.command(name="import")
@_config_option
@click.option("--once", is_flag=True,
              help="Import every registry once, print the report and exit (1 if an application failed).")
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
            importer = RegistryImporter(config.registries, config.devices, store,
                                        open_clients(config.registries, session), on_change=None if once else changed)
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
    _print({
        "devices": [s.device.to_json() | {"first_imported_at": s.first_imported_at.isoformat()} for s in stored],
        "imports": [s.to_json() for s in statuses],
        "conflicts": [c.message() for c in conflicts],
    })


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone (e.g. 2026-11-20T08:15:30.123Z)")
    return moment


@main.command()
@_config_option
@click.option("--tenant", required=True, help="Collectivity (NGSI-LD tenant) whose log holds the value.")
@click.option("--entity", "entity_id", required=True, help="Entity id, as read from the broker.")
@click.option("--attr", "attribute", required=True, help="Attribute name, as read from the broker (e.g. no2).")
@click.option("--observed-at", "observed_at", required=True, help="The value's observedAt (ISO 8601).")
@click.option("--value", help="The value as read (JSON or text); without it the broker is asked.")
@click.option("--record", type=int, help="The record number, when known (else the entity's wasDerivedFrom link tells).")
@click.option("--key", "vkey", help="Pin the collectivity's verifier key (note vkey, as /logs/TENANT/key serves it); "
                                    "default: the key in the key directory (or, with --from, the server's).")
@click.option("--from", "source", metavar="URL",
              help="Verify from the adapter's published resources at URL (a partner's view), not its files.")
@click.option("--broker", "broker_url", metavar="URL", help="The NGSI-LD broker to read the value from "
                                                             "(default: the configuration's).")
@click.option("--token", envvar="NGSILD_ADAPTER_TOKEN", show_envvar=True,
              help="With --from a sharing gateway: the bearer token to read records with "
                   "(rather in the environment than on the command line).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(config_path: Path | None, tenant: str, entity_id: str, attribute: str, observed_at: str,
           value: str | None, record: int | None, vkey: str | None, source: str | None, broker_url: str | None,
           token: str | None, as_json: bool) -> None:
    """Check one value against its provenance: the record it came from, the log's leaf, the
    signed tree head and its key, the inclusion proof, the device's hash chain and the RDF index.

    With --from URL, everything is read from the adapter's HTTP resources and only the pinned
    key (--key) is trusted: what a partner runs. Exit status 0 only when everything holds;
    otherwise 1, and the failing checks are named."""
    import asyncio

    from adapter.app import standalone_provenance
    from adapter.provenance.integrity.note import KeyFormatError, NoteVerifier
    from adapter.provenance.verify import LocalEvidence, verification_lines, verify_value

    config = _load(config_path)
    moment = _moment(observed_at)
    try:
        pinned = NoteVerifier.from_vkey(vkey.strip()) if vkey else None
    except KeyFormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--key") from exc

    async def remote() -> Any:
        import aiohttp

        from adapter.mapping.profile import load_profiles
        from adapter.ngsild.client import NgsiLdClient
        from adapter.ngsild.context_server import broker_contexts
        from adapter.provenance.remote import HttpEvidence
        from adapter.provenance.runtime import entity_contexts, read_broker

        assert source is not None
        async with aiohttp.ClientSession() as session:
            url = broker_url or config.broker.url
            reader = None
            if url:
                client = NgsiLdClient.from_settings(config.broker, session, url=url)
                contexts = broker_contexts(entity_contexts(load_profiles(config.models_dir)), config.contexts_url)

                async def reader(t: str, e: str, a: str, at: datetime) -> Any:
                    return await read_broker(client, contexts, t, e, a, at)

            evidence = HttpEvidence(session, source, pinned_key=pinned, broker=reader, token=token)
            return await verify_value(evidence, tenant, entity_id, attribute, moment, value=value, record=record)

    async def run() -> Any:
        if source is not None:
            return await remote()
        async with standalone_provenance(config) as runtime:
            evidence = LocalEvidence(
                runtime.ledger, (lambda t: pinned) if pinned else runtime.public_key,
                broker=runtime.read_broker if runtime.broker is not None else None,
                index=runtime.check_index if runtime.store is not None else None,
            )
            return await verify_value(evidence, tenant, entity_id, attribute, moment, value=value, record=record)

    try:
        result = asyncio.run(run())
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _print(result.to_json())
    else:
        click.echo("\n".join(verification_lines(result)))
        if source is not None and pinned is None:
            click.echo("  note: no --key given, the server's own key was trusted; pin the collectivity's key")
    sys.exit(0 if result.holds else 1)


@main.command()
@_config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port.")
def serve(config_path: Path | None, host: str, port: int) -> None:
    """Serve provenance alone: /sparql, /provenance/..., /logs/... (C2SP tlog-tiles and signed
    tree heads), /.well-known/jwks.json and /contexts/, indexing the log and signing tree heads
    meanwhile. (``listen --http-port`` serves the same paths beside the adapter; with the
    embedded RDF store, run one or the other.)"""

    from adapter.app import serve as run_serve

    _serve_until_interrupted(run_serve(_load(config_path), host=host, port=port))


@main.group()
def provenance() -> None:
    """Operate the provenance logs and their RDF index."""


@provenance.command(name="status")
@_config_option
def provenance_status(config_path: Path | None) -> None:
    """Records per collectivity, the last signed tree head, and the RDF index's position."""
    import asyncio

    from adapter.app import standalone_provenance

    async def run() -> Any:
        async with standalone_provenance(_load(config_path), with_broker=False) as runtime:
            ledger, indexer = runtime.ledger, runtime.indexer
            return {
                tenant: {
                    "log": ledger.log(tenant).origin,
                    "records": ledger.size(tenant),
                    "signed_size": ledger.latest_checkpoint_size(tenant),
                    "indexed": indexer.position(tenant) if indexer is not None else None,
                    "key": ledger.log(tenant).verifier.vkey,
                }
                for tenant in ledger.tenants()
            }

    _print(asyncio.run(run()))


@provenance.command(name="sign")
@_config_option
def provenance_sign(config_path: Path | None) -> None:
    """Sign a tree head now for every log that grew, and print them."""
    import asyncio

    from adapter.app import standalone_provenance

    async def run() -> dict[str, str]:
        async with standalone_provenance(_load(config_path), with_store=False, with_broker=False) as runtime:
            return {tenant: note.decode() for tenant, note in runtime.ledger.sign_checkpoints().items()}

    _print(asyncio.run(run()))


@provenance.command(name="reindex")
@_config_option
@click.option("--tenant", help="Rebuild this collectivity's graph from its first record.")
def provenance_reindex(config_path: Path | None, tenant: str | None) -> None:
    """Bring the RDF index up to date with the logs (or rebuild one collectivity's graph).
    The adapter does this by itself; run it while the adapter is stopped."""
    import asyncio

    from adapter.app import standalone_provenance

    async def run() -> int:
        async with standalone_provenance(_load(config_path), with_broker=False) as runtime:
            if runtime.indexer is None:
                raise click.ClickException("the RDF store cannot be opened (is the adapter running?)")
            return await (runtime.indexer.rebuild(tenant) if tenant else runtime.indexer.catch_up())

    click.echo(f"{asyncio.run(run())} records and receipts indexed")


@main.command()
@_config_option
def gateway(config_path: Path | None) -> None:
    """Run the sharing gateway: the NGSI-LD API and SPARQL for partners, behind Keycloak tokens
    and the sharing agreements of [gateway] policies (host, port, broker, trusted issuers from
    the configuration). Every access is recorded; GET /gateway/access?tenant=T lists them."""

    from adapter.gateway.service import serve_gateway

    _serve_until_interrupted(serve_gateway(_load(config_path)))


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


def _admin_options(f: Any) -> Any:
    f = click.option("--keycloak", "server_url", required=True, envvar="NGSILD_ADAPTER_KEYCLOAK_URL",
                     help="Keycloak's URL (NGSILD_ADAPTER_KEYCLOAK_URL).")(f)
    f = click.option("--admin-user", default="admin", show_default=True, envvar="NGSILD_ADAPTER_KEYCLOAK_ADMIN",
                     help="Keycloak administrator (master realm).")(f)
    return f


def _admin(server_url: str, admin_user: str) -> Any:
    """The identity-admin client; the password comes from NGSILD_ADAPTER_KEYCLOAK_ADMIN_PASSWORD or a prompt."""
    import os

    from adapter.access.admin import IdentityAdmin

    password = os.environ.get("NGSILD_ADAPTER_KEYCLOAK_ADMIN_PASSWORD") or click.prompt(
        f"Keycloak password of {admin_user}", hide_input=True)
    return IdentityAdmin(server_url, admin_user, password)


def _admin_run(server_url: str, admin_user: str, operation: Any) -> None:
    try:
        with _admin(server_url, admin_user) as admin:
            result = operation(admin)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.message)
    if result.secret:
        click.echo(f"client secret (shown once; give it to the partner over a safe channel): {result.secret}")


@main.group()
def admin() -> None:
    """Identity administration in Keycloak (idempotent: running a command again changes nothing).

    \b
    ngsild-adapter admin provision metropole --name "Métropole"   a collectivity's realm
    ngsild-adapter admin partner ville ecole-ventilation          a partner platform's client
    ngsild-adapter admin user ville m.durand --role elected-official
    ngsild-adapter admin grant compose/policies/AGREEMENT.jsonld  an agreement into [gateway] policies
    ngsild-adapter admin revoke UID-OR-FILE                       and out of it
    """


@admin.command(name="provision")
@_admin_options
@click.argument("tenant")
@click.option("--name", required=True, help="The collectivity's name.")
def admin_provision(server_url: str, admin_user: str, tenant: str, name: str) -> None:
    """Create (or complete) the realm of collectivity TENANT: roles, groups, token mappers."""
    _admin_run(server_url, admin_user, lambda a: a.provision_collectivity(tenant, name))


@admin.command(name="partner")
@_admin_options
@click.argument("tenant")
@click.argument("client_id")
@click.option("--role", "roles", multiple=True, default=("partner-platform",), show_default=True)
@click.option("--description", default="")
def admin_partner(server_url: str, admin_user: str, tenant: str, client_id: str, roles: tuple[str, ...],
                  description: str) -> None:
    """Register a partner platform: a confidential client (client credentials) of TENANT's realm."""
    _admin_run(server_url, admin_user,
               lambda a: a.register_partner(tenant, client_id, roles=roles, description=description))


@admin.command(name="user")
@_admin_options
@click.argument("tenant")
@click.argument("username")
@click.option("--role", required=True, help="building-manager, elected-official, researcher, data-admin...")
@click.option("--email")
@click.option("--temporary-password", help="To be changed at first login.")
def admin_user(server_url: str, admin_user: str, tenant: str, username: str, role: str, email: str | None,
               temporary_password: str | None) -> None:
    """Add a user to TENANT's realm with a role."""
    _admin_run(server_url, admin_user, lambda a: a.add_user(
        tenant, username, role=role, email=email, temporary_password=temporary_password))


@admin.command(name="grant")
@_admin_options
@_config_option
@click.argument("agreement", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def admin_grant(server_url: str, admin_user: str, config_path: Path | None, agreement: Path) -> None:
    """Check AGREEMENT and its assignee in Keycloak, then put it in the gateway's agreements
    folder ([gateway] policies); a running gateway applies it within seconds."""
    from adapter.access.odrl import Catalogue
    from adapter.mapping.profile import load_profiles

    config = _load(config_path)
    if config.gateway.policies_dir is None:
        raise click.ClickException("no agreements folder: set [gateway] policies")
    catalogue = Catalogue.from_profiles(load_profiles(config.models_dir))
    _admin_run(server_url, admin_user, lambda a: a.grant_agreement(
        agreement, config.gateway.policies_dir, tenants=set(config.collectivities), catalogue=catalogue))


@admin.command(name="revoke")
@_config_option
@click.argument("agreement")
def admin_revoke(config_path: Path | None, agreement: str) -> None:
    """Take an agreement (its uid or file name) out of the gateway's agreements folder.
    A running gateway applies it within seconds."""
    from adapter.access.admin import revoke_agreement_file

    config = _load(config_path)
    if config.gateway.policies_dir is None:
        raise click.ClickException("no agreements folder: set [gateway] policies")
    try:
        result = revoke_agreement_file(agreement, config.gateway.policies_dir)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.message)
