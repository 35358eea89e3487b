"""The Things Stack (v3) source plug-in: application messages over MQTT or webhooks.

See ``parser`` for the topics, message types and body format.
"""

from __future__ import annotations

from adapter.sources.tts.parser import EVENT_KINDS, MESSAGE_EVENTS, TTSParser

__all__ = ["EVENT_KINDS", "MESSAGE_EVENTS", "TTSParser"]
