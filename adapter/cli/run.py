"""``listen``, ``broker``, ``serve`` and ``gateway``: the long-running processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from adapter.cli._common import _config_option, _load, _serve_until_interrupted
from adapter.cli._main import main


@main.command()
@_config_option
@click.option(
    "--http-port",
    "--webhook-port",
    "http_port",
    type=int,
    default=None,
    help="Serve webhooks, the JSON-LD contexts (/contexts/), /healthz and /metrics on this port.",
)
@click.option(
    "--http-host", default="127.0.0.1", show_default=True, help="Address of the HTTP listener (0.0.0.0 in a container)."
)
@click.option("--max-events", type=int, default=None, help="Stop after this many events (for tests and trials).")
@click.option("--quiet", is_flag=True, help="Do not print each result (for production and benchmarks).")
def listen(
    config_path: Path | None, http_port: int | None, http_host: str, max_events: int | None, quiet: bool
) -> None:
    """Ingest from every configured connection (MQTT QoS 1, persistent sessions; webhooks),
    deliver the entities to the configured NGSI-LD broker through the durable outbox, and
    print each result as one JSON line. Stop with Ctrl-C."""

    from adapter.app import listen as run_listen

    config = _load(config_path)

    def emit(result: Any) -> None:
        if not quiet:
            click.echo(json.dumps(result.to_json(), ensure_ascii=False))

    _serve_until_interrupted(
        run_listen(config, http_port=http_port, http_host=http_host, max_events=max_events, emit=emit)
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=1026, show_default=True, help="Port (Orion-LD's usual one).")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to keep entities, history and subscriptions in (in memory otherwise).",
)
def broker(host: str, port: int, db_path: Path | None) -> None:
    """Run the embedded NGSI-LD broker alone, for development and tests.

    It behaves like Orion-LD on the operations this project uses (see
    adapter/ngsild/broker/README.md for what differs). It is a development default, not a
    production broker: use Orion-LD (compose/) for real data."""

    from adapter.ngsild.broker import run_broker

    _serve_until_interrupted(run_broker(host, port, db_path))


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


@main.command()
@_config_option
def gateway(config_path: Path | None) -> None:
    """Run the sharing gateway: the NGSI-LD API and SPARQL for partners, behind Keycloak tokens
    and the sharing agreements of [gateway] policies (host, port, broker, trusted issuers from
    the configuration). Every access is recorded; GET /gateway/access?tenant=T lists them."""

    from adapter.gateway.service import serve_gateway

    _serve_until_interrupted(serve_gateway(_load(config_path)))
