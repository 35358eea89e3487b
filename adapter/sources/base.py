"""The interface every network-server source implements.

A source plug-in lives in ``adapter/sources/<name>/`` and provides an ``EventParser``:
a pure function from one event body (plus the MQTT topic or HTTP event name) to one
normalised record. The MQTT and HTTP plumbing in ``adapter/sources/mqtt.py`` and
``adapter/sources/webhook.py`` is shared by all sources.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from adapter.sources._common import ParseLimits
from adapter.uplink import Event, Origin

__all__ = ["EventParser"]


class EventParser(Protocol):
    #: plug-in name, used in configuration (``lns = "chirpstack"``) and on the CLI
    name: str

    def parse(
        self,
        body: bytes,
        *,
        origin: Origin,
        topic: str | None = None,
        event: str | None = None,
        limits: ParseLimits = ...,
        now: datetime | None = None,
    ) -> Event:
        """Parse one event.

        ``topic`` is the MQTT topic it arrived on, ``event`` the event type given out of
        band (ChirpStack HTTP ``?event=up``; TTS webhook message type). When neither is
        given the parser recognises the event from its body. Raises ``EventError``.
        """
        ...

    def mqtt_subscriptions(self, application: str | None) -> list[str]:
        """MQTT topic filters that receive this LNS's events (all applications if None)."""
        ...
