"""The bundled sample files: one network-server event each, with what travels beside it.

An event alone does not say everything the adapter needs: which network server's format it is,
which configured connection it arrived on (that decides the collectivity), and the MQTT topic or
the webhook's event type. A sample file keeps those beside the event, so that ``samples``,
``parse FILE`` and ``map FILE`` all read the same files as they are::

    {
      "lns": "chirpstack",                 required: "chirpstack" or "tts"
      "connection": "eau-chirpstack",      optional: the [[connection]] it arrives on
      "topic": "application/.../event/up", optional: the MQTT topic
      "event": "up",                       optional: the webhook's event type (?event=, TTS message type)
      "body": { ... }                      required: the event as the network server sends it
    }                                      (a JSON object; a string for bytes that are not JSON)

Only these keys are read. A JSON object with both ``lns`` and ``body`` is a sample (no
ChirpStack or TTS event has those top-level fields); anything else is a bare event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

from adapter.config import AdapterConfig
from adapter.exceptions import AdapterError, ConfigError
from adapter.sources import PARSERS
from adapter.uplink import Origin

__all__ = ["Sample", "SampleError", "connection_origin", "load_samples", "read_sample", "sample_origin"]

_KEYS = frozenset({"lns", "connection", "topic", "event", "body"})


class SampleError(AdapterError):
    """A sample file is not in the format above (an unknown key, a value of the wrong type)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample: the event's bytes as the network server sends them, and what comes with them."""

    lns: str
    body: bytes
    connection: str | None = None
    topic: str | None = None
    event: str | None = None


def _text(doc: dict[str, Any], key: str, name: str) -> str | None:
    value = doc.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise SampleError(f"{name}: {key!r} must be a non-empty string")
    return value


def _sample(doc: dict[str, Any], name: str) -> Sample:
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise SampleError(
            f"{name}: unknown key(s) {', '.join(unknown)} in a sample file (it holds {', '.join(sorted(_KEYS))})"
        )
    lns = doc["lns"]
    if lns not in PARSERS:
        raise SampleError(f"{name}: 'lns' must be one of {', '.join(sorted(PARSERS))}, not {lns!r}")
    body = doc["body"]
    if isinstance(body, dict):
        raw = json.dumps(body).encode("utf-8")
    elif isinstance(body, str):
        raw = body.encode("utf-8")
    else:
        raise SampleError(f"{name}: 'body' must be the event (a JSON object) or a string of its bytes")
    return Sample(lns, raw, _text(doc, "connection", name), _text(doc, "topic", name), _text(doc, "event", name))


def read_sample(raw: bytes, name: str = "input") -> Sample | None:
    """The sample in ``raw``, or None when ``raw`` is a bare event (or not JSON at all, which
    the parser will say). Raises ``SampleError`` for a sample file with a mistake in it."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or "lns" not in doc or "body" not in doc:
        return None
    return _sample(doc, name)


def load_samples(folder: Traversable) -> Iterable[tuple[str, Sample]]:
    """Every ``*.json`` sample of ``folder``, in name order; each must be a sample file."""
    for entry in sorted((e for e in folder.iterdir() if e.name.endswith(".json")), key=lambda e: e.name):
        sample = read_sample(entry.read_bytes(), entry.name)
        if sample is None:
            raise SampleError(f"{entry.name}: not a sample file (it needs 'lns' and 'body')")
        yield entry.name, sample


def connection_origin(config: AdapterConfig, name: str) -> Origin:
    """The origin of events arriving on the configured connection ``name``.

    Raises ``ConfigError`` naming the configuration's connections when there is none of that name:
    a wrong name must not quietly put a collectivity's data in another's tenant."""
    for connection in config.connections:
        if connection.name == name:
            return connection.origin
    known = ", ".join(c.name for c in config.connections) or "none"
    raise ConfigError(f"unknown connection {name!r} (the configuration's connections: {known})")


def sample_origin(config: AdapterConfig, sample: Sample, name: str) -> Origin:
    """The origin of a sample: its connection's, else the first connection of its network
    server's (``AdapterConfig.default_origin``). ``ConfigError`` when its connection is unknown."""
    if sample.connection is None:
        return config.default_origin(sample.lns)
    try:
        return connection_origin(config, sample.connection)
    except ConfigError as exc:
        raise ConfigError(f"sample {name}: {exc}") from None
