"""The imported device entry, and the one place where the network server's strings are cleaned.

Everything a network server's device registry says (names, descriptions, tags, locations) is
typed by whoever administers that network server, or by whoever got hold of its API: it is
outside input. ``imported_device`` turns one answer's fields into an ``ImportedDevice`` whose
``record`` is the pipeline's ``DeviceRecord``:

- the DevEUI must be a 64-bit EUI in hex (``DeviceRefused`` otherwise);
- names, descriptions and tag values keep only letters, marks, digits, punctuation, symbols
  and spaces (Unicode categories L, M, N, P, S; other separators become a space): control
  and format characters (bidirectional overrides, zero-width characters), surrogates,
  private-use and unassigned code points never pass; runs of spaces collapse; each string is
  bounded (``NAME_MAX``, ``DESCRIPTION_MAX``, ``TAG_VALUE_MAX``) and an empty result is none;
- tag keys become attribute names only if they are ``[A-Za-z][A-Za-z0-9_]{0,63}``, at most
  ``TAGS_MAX`` of them; a ``ref...`` tag becomes an NGSI-LD Relationship in the entities
  (``adapter.mapping.entities``), so its value must be an absolute IRI without spaces;
- a location needs finite coordinates in range (altitude within +-20 km, else dropped);
- the collectivity (``tenant``) is never read from the answer: it is the one of the
  connection the registry belongs to, given by the caller.

The strings stay plain text (``<`` and ``&`` are kept): whoever renders them as HTML escapes
them, as for every other value.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapter.exceptions import EventError
from adapter.mapping.entities import DeviceRecord
from adapter.registry.exceptions import DeviceRefused
from adapter.sources._common import normalise_eui
from adapter.uplink import Location

__all__ = [
    "DESCRIPTION_MAX",
    "NAME_MAX",
    "TAGS_MAX",
    "TAG_VALUE_MAX",
    "ImportSource",
    "ImportedDevice",
    "clean_tags",
    "clean_text",
    "imported_device",
    "registry_location",
]

NAME_MAX = 100
DESCRIPTION_MAX = 500
TAG_VALUE_MAX = 256
TAGS_MAX = 64
#: a tag key that may become an attribute name (NGSI-LD short names; no ``@``, ``:`` or spaces)
TAG_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
#: an absolute IRI of RFC 3987's ASCII subset: scheme, colon, then no space nor ``<>"{}|\^```
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_KEPT_CATEGORIES = frozenset("LMNPS")
_MAX_ALTITUDE_M = 20_000.0
#: where a registry location comes from (``Location.source``)
LOCATION_SOURCE = "registry"


@dataclass(frozen=True, slots=True)
class ImportSource:
    """Where an imported entry came from: which network server, which application, when."""

    lns: str  # "chirpstack" or "tts"
    connection: str  # the [[connection]] whose [[registry]] imported it
    application: str  # the network server's application id
    imported_at: datetime  # UTC, the import that last confirmed the entry

    def to_json(self) -> dict[str, str]:
        return {
            "lns": self.lns,
            "connection": self.connection,
            "application": self.application,
            "imported_at": self.imported_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ImportedDevice:
    """One device as a network server's registry describes it, cleaned and typed.

    ``record`` is what the pipeline uses (its ``tenant`` is the connection's collectivity);
    ``source`` says where it came from; ``device_id`` is the network server's own id of the
    device (TTS ``device_id``; ChirpStack names devices by EUI: None).
    """

    record: DeviceRecord
    source: ImportSource
    device_id: str | None = None
    description: str | None = None

    @property
    def dev_eui(self) -> str:
        return self.record.dev_eui

    def to_json(self) -> dict[str, Any]:
        location = self.record.location
        return {
            "dev_eui": self.record.dev_eui,
            "collectivity": self.record.tenant,
            "name": self.record.name,
            "device_id": self.device_id,
            "description": self.description,
            "attributes": dict(self.record.attributes),
            "location": None
            if location is None
            else {
                "latitude": location.latitude,
                "longitude": location.longitude,
                "altitude": location.altitude,
            },
            "source": self.source.to_json(),
        }


def clean_text(value: Any, limit: int) -> str | None:
    """``value`` as plain text of at most ``limit`` characters (see the module docstring), or
    None when it is not a string or nothing is left of it."""
    if not isinstance(value, str):
        return None
    kept = []
    for char in unicodedata.normalize("NFC", value):
        category = unicodedata.category(char)
        if category[0] in _KEPT_CATEGORIES:
            kept.append(char)
        elif category[0] == "Z" or char in "\t\n\r\x0b\x0c":
            kept.append(" ")  # any separator or line break is a plain space
        # anything else (Cc, Cf, Cs, Co, Cn) is dropped
    text = " ".join("".join(kept).split())[:limit].rstrip()
    return text or None


def clean_tags(tags: Any) -> tuple[dict[str, str], tuple[str, ...]]:
    """The usable tags (key -> cleaned value) and the keys dropped, each said in a few words.

    Keys are taken in sorted order, so which ``TAGS_MAX`` are kept does not depend on the
    order the network server answered in."""
    if not isinstance(tags, Mapping):
        return {}, ()
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for key in sorted(k for k in tags if isinstance(k, str)):
        shown = clean_text(key, 64) or "?"
        if not TAG_KEY.fullmatch(key):
            dropped.append(f"{shown!r} (not an attribute name)")
            continue
        value = clean_text(tags[key], TAG_VALUE_MAX)
        if value is None:
            dropped.append(f"{key} (empty or not text)")
        elif key.startswith("ref") and not _IRI.fullmatch(value):
            dropped.append(f"{key} (a ref... tag must be an absolute IRI)")
        elif len(kept) >= TAGS_MAX:
            dropped.append(f"{key} (more than {TAGS_MAX} tags)")
        else:
            kept[key] = value
    return kept, tuple(dropped)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def registry_location(latitude: Any, longitude: Any, altitude: Any = None) -> Location | None:
    """A location from numbers (or decimal strings, as ChirpStack tags hold them), or None
    when either coordinate is missing, not finite or out of range; an altitude that is not
    finite or beyond +-20 km is left out."""
    lat, lon = _number(latitude), _number(longitude)
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    alt = _number(altitude)
    if alt is not None and abs(alt) > _MAX_ALTITUDE_M:
        alt = None
    return Location(latitude=lat, longitude=lon, altitude=alt, source=LOCATION_SOURCE)


def imported_device(
    *,
    dev_eui: Any,
    tenant: str,
    source: ImportSource,
    name: Any = None,
    description: Any = None,
    tags: Any = None,
    location: Location | None = None,
    device_id: Any = None,
) -> tuple[ImportedDevice, tuple[str, ...]]:
    """One answer's fields as an ``ImportedDevice`` of ``tenant`` (the connection's
    collectivity, never the answer's), and the tags dropped; raises ``DeviceRefused`` when the
    DevEUI is not a 64-bit EUI in hex."""
    if not isinstance(dev_eui, str):
        named = clean_text(device_id, 64)
        raise DeviceRefused(f"device {named or '?'} of application {source.application!r} has no DevEUI")
    try:
        eui = normalise_eui(dev_eui)
    except EventError as exc:
        raise DeviceRefused(
            f"device {clean_text(dev_eui, 40)!r} of application {source.application!r}: not a 64-bit EUI in hex"
        ) from exc
    attributes, dropped = clean_tags(tags)
    text = clean_text(description, DESCRIPTION_MAX)
    if text is not None:
        attributes["description"] = text  # the registry's own description wins over a tag of that name
    record = DeviceRecord(
        dev_eui=eui,
        name=clean_text(name, NAME_MAX),
        location=location,
        attributes=attributes,
        tenant=tenant,
    )
    return ImportedDevice(record, source, device_id=clean_text(device_id, 64), description=text), dropped
