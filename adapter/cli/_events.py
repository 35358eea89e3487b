"""What ``parse`` and ``map`` are given: a bare network-server event or a sample file, and the
options that say which format, which connection, which topic or event type.

Decided once, here, so that both commands read the same inputs the same way:

* a sample file (``adapter.demo.samples``) brings its ``lns``, ``connection``, ``topic`` and
  ``event``; an option given on the command line wins over the sample's, except ``--lns``,
  which must agree with it (a ChirpStack event read as a TTS one is a mistake, not a choice);
* the network server's format is ``--lns``, else the sample's, else the connection's;
* the connection decides the collectivity (the NGSI-LD tenant): ``--connection``, else the
  sample's, else the first configured connection of that network server. A name the
  configuration does not have is an error that lists the ones it has.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from adapter.config import AdapterConfig
from adapter.demo.samples import SampleError, connection_origin, read_sample
from adapter.exceptions import ConfigError
from adapter.sources import PARSERS
from adapter.uplink import Origin

__all__ = ["EventInput", "event_input"]


@dataclass(frozen=True, slots=True)
class EventInput:
    """One event as the pipeline takes it: its bytes, format, origin, topic and event type, and
    the name of the connection it arrives on (None: no connection of its format is configured)."""

    body: bytes
    lns: str
    origin: Origin
    topic: str | None
    event: str | None
    connection: str | None


def event_input(
    config: AdapterConfig,
    raw: bytes,
    *,
    name: str,
    lns: str | None,
    connection: str | None,
    topic: str | None,
    event: str | None,
) -> EventInput:
    """The event in ``raw`` (``name`` for messages) with the command line's options applied.

    Raises ``click.ClickException`` for a sample file with a mistake, an unknown connection or
    options that contradict each other, and ``click.UsageError`` when the format is not known."""
    try:
        sample = read_sample(raw, name)
    except SampleError as exc:
        raise click.ClickException(str(exc)) from exc
    if sample is not None:
        if lns is not None and lns != sample.lns:
            raise click.ClickException(f"{name} is a {sample.lns} sample, not {lns} (leave out --lns)")
        raw, lns = sample.body, sample.lns
        connection = connection or sample.connection
        topic = topic if topic is not None else sample.topic
        event = event if event is not None else sample.event
    chosen = None
    if connection is not None:
        try:
            origin = connection_origin(config, connection)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        chosen = next(c for c in config.connections if c.name == connection)
        if lns is not None and lns != chosen.lns:
            raise click.ClickException(f"connection {connection} receives {chosen.lns} events, not {lns}")
        lns = chosen.lns
    if lns is None:
        raise click.UsageError(f"give --lns ({', '.join(sorted(PARSERS))}) or --connection NAME for a bare event")
    if chosen is None:
        chosen = next((c for c in config.connections if c.lns == lns), None)
        origin = chosen.origin if chosen is not None else config.default_origin(lns)
    return EventInput(raw, lns, origin, topic, event, chosen.name if chosen is not None else None)
