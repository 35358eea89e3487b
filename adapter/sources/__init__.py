"""Network-server sources: one ``EventParser`` plug-in per LNS, looked up by name.

Each plug-in lives in its own package (``chirpstack``, ``tts``); the configuration names it
with ``lns = "<name>"`` and the pipeline gets it with ``get_parser``.
"""

from __future__ import annotations

from adapter.exceptions import ConfigError
from adapter.sources._common import DEFAULT_LIMITS, ParseLimits
from adapter.sources.base import EventParser
from adapter.sources.chirpstack import ChirpStackParser
from adapter.sources.tts import TTSParser

__all__ = ["DEFAULT_LIMITS", "PARSERS", "EventParser", "ParseLimits", "get_parser"]

#: plug-in name -> parser
PARSERS: dict[str, EventParser] = {parser.name: parser for parser in (ChirpStackParser(), TTSParser())}


def get_parser(name: str) -> EventParser:
    try:
        return PARSERS[name]
    except KeyError:
        known = ", ".join(sorted(PARSERS))
        raise ConfigError(f"unknown network-server source {name!r} (known: {known})") from None
