"""``verify`` and ``provenance status|sign|reindex``: the provenance of values and the signed logs."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from adapter.exceptions import AdapterError
from adapter.cli._common import _config_option, _load, _print
from adapter.cli._main import main
from adapter.cli._state import state_dir_option, with_state_dir


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
@state_dir_option
@click.option("--tenant", required=True, help="Collectivity (NGSI-LD tenant) whose log holds the value.")
@click.option("--entity", "entity_id", required=True, help="Entity id, as read from the broker.")
@click.option("--attr", "attribute", required=True, help="Attribute name, as read from the broker (e.g. no2).")
@click.option("--observed-at", "observed_at", required=True, help="The value's observedAt (ISO 8601).")
@click.option("--value", help="The value as read (JSON or text); without it the broker is asked.")
@click.option("--record", type=int, help="The record number, when known (else the entity's wasDerivedFrom link tells).")
@click.option(
    "--key",
    "vkey",
    help="Pin the collectivity's verifier key (note vkey, as /logs/TENANT/key serves it); "
    "default: the key in the key directory (or, with --from, the server's).",
)
@click.option(
    "--from",
    "source",
    metavar="URL",
    help="Verify from the adapter's published resources at URL (a partner's view), not its files.",
)
@click.option(
    "--broker",
    "broker_url",
    metavar="URL",
    help="The NGSI-LD broker to read the value from (default: the configuration's).",
)
@click.option(
    "--token",
    envvar="NGSILD_ADAPTER_TOKEN",
    show_envvar=True,
    help="With --from a sharing gateway: the bearer token to read records with "
    "(rather in the environment than on the command line).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(
    config_path: Path | None,
    state_dir: Path | None,
    tenant: str,
    entity_id: str,
    attribute: str,
    observed_at: str,
    value: str | None,
    record: int | None,
    vkey: str | None,
    source: str | None,
    broker_url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Check one value against its provenance: the record it came from, the log's leaf, the
    signed tree head and its key, the inclusion proof, the device's hash chain and the RDF index.

    With --from URL, everything is read from the adapter's HTTP resources and only the pinned
    key (--key) is trusted: what a partner runs. Exit status 0 only when everything holds;
    otherwise 1, and the failing checks are named."""
    import asyncio

    from adapter.app import standalone_provenance
    from adapter.provenance.integrity.note import KeyFormatError, NoteVerifier
    from adapter.provenance.verify import LocalEvidence, verification_lines, verify_value

    config = with_state_dir(_load(config_path), state_dir)
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
                runtime.ledger,
                (lambda t: pinned) if pinned else runtime.public_key,
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


def _run(coroutine: Any) -> Any:
    """Run a command's coroutine; the adapter's own errors (a key refused, a store that cannot
    be opened) become one line, not a traceback."""
    import asyncio

    try:
        return asyncio.run(coroutine)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def provenance() -> None:
    """Operate the provenance logs and their RDF index."""


@provenance.command(name="status")
@_config_option
@state_dir_option
def provenance_status(config_path: Path | None, state_dir: Path | None) -> None:
    """Records per collectivity, the last signed tree head, and the RDF index's position."""
    from adapter.app import standalone_provenance

    config = with_state_dir(_load(config_path), state_dir)

    async def run() -> Any:
        async with standalone_provenance(config, with_broker=False) as runtime:
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

    _print(_run(run()))


@provenance.command(name="sign")
@_config_option
@state_dir_option
def provenance_sign(config_path: Path | None, state_dir: Path | None) -> None:
    """Sign a tree head now for every log that grew, and print them."""
    from adapter.app import standalone_provenance

    config = with_state_dir(_load(config_path), state_dir)

    async def run() -> dict[str, str]:
        async with standalone_provenance(config, with_store=False, with_broker=False) as runtime:
            return {tenant: note.decode() for tenant, note in runtime.ledger.sign_checkpoints().items()}

    _print(_run(run()))


@provenance.command(name="reindex")
@_config_option
@state_dir_option
@click.option("--tenant", help="Rebuild this collectivity's graph from its first record.")
def provenance_reindex(config_path: Path | None, state_dir: Path | None, tenant: str | None) -> None:
    """Bring the RDF index up to date with the logs (or rebuild one collectivity's graph).
    The adapter does this by itself; run it while the adapter is stopped."""
    from adapter.app import standalone_provenance

    config = with_state_dir(_load(config_path), state_dir)

    async def run() -> int:
        async with standalone_provenance(config, with_broker=False) as runtime:
            if runtime.indexer is None:
                raise click.ClickException("the RDF store cannot be opened (is the adapter running?)")
            return await (runtime.indexer.rebuild(tenant) if tenant else runtime.indexer.catch_up())

    click.echo(f"{_run(run())} records and receipts indexed")
