"""ChirpStack v4 source plug-in: integration events over MQTT or the HTTP integration.

Both marshalers are accepted (JSON and protobuf); see ``parser`` for the format details.
"""

from __future__ import annotations

from adapter.sources.chirpstack.parser import EVENT_KINDS, EVENT_MESSAGES, ChirpStackParser

__all__ = ["EVENT_KINDS", "EVENT_MESSAGES", "ChirpStackParser"]
