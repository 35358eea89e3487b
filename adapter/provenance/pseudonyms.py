"""Keyed pseudonyms of devices and entities, for the collectivities' shared graphs.

Why: a research agreement removes ``refDevice`` and the device's names, and opens the shared
graph only; but a value linked to ``urn:ngsild-adapter:ville:device:70b3d57ed0001a01`` or to
the entity ``urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01`` still names its device
(the devEui is printed on it and listed at the network server). In the shared graph a device,
and every entity (whose ids are made of the devEui or of the device id), is therefore named by
a keyed pseudonym; the collectivity's personal graph holds the link back (``nga:pseudonymOf``),
so its own people, who read both graphs, still join on real identifiers.

A pseudonym is ``urn:ngsild-adapter:{tenant}:pseudonym:{key id}:{kind}:{mac}``: ``kind`` is
``device`` (from the devEui) or ``entity`` (from the entity id), ``mac`` the first 128 bits,
in hex, of HMAC-SHA256(key, ``kind`` NUL identifier), and ``key id`` the first 32 bits, in
hex, of HMAC-SHA256(key, ``"ngsild-adapter pseudonym key id"``): it names the key without
telling anything about it. A key belongs to one collectivity, so the same device never has the
same pseudonym in two collectivities' graphs. Without the key, a pseudonym cannot be computed
from a devEui (the devEui space is small enough to enumerate: a plain hash would not do).

Rotation: ``[provenance] pseudonym_rotations`` lists UTC dates; each starts a new key, which
applies to the records *received* (``uplink.receivedAt``) from that date on; the first key
applies before the first date. The key id is part of the IRI, so after a rotation new records
get new pseudonyms and old records keep theirs: what a researcher could link across the date
is cut (but see docs/provenance.md, "Pseudonymous shared graphs", for what still links).

Keys are secrets, kept beside the log signing keys (``[provenance] key_dir``), by the rules of
``adapter.provenance.integrity.keys`` (never in a Git work tree, mode 0600, refused when others
may read them)::

    <key_dir>/pseudonyms/<tenant>/initial.key        the key before the first rotation date
    <key_dir>/pseudonyms/<tenant>/2027-01-01.key     the key from 2027-01-01 (UTC) on

each holding 64 hex digits (256 random bits). The process that keeps the RDF index creates the
missing ones (``ensure``); any other process only reads them, and a missing key is said
(``MissingPseudonymKey``), never replaced by a new one.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from adapter.exceptions import AdapterError, ConfigError
from adapter.provenance.integrity.keys import read_secret, write_secret

__all__ = [
    "MissingPseudonymKey",
    "PseudonymError",
    "PseudonymKey",
    "PseudonymKeys",
    "UnknownCollectivity",
]

_TENANT = re.compile(r"[a-z0-9_-]{1,50}\Z")
_KEY_TEXT = re.compile(r"[0-9a-f]{64}\Z")
_KEY_ID_LABEL = b"ngsild-adapter pseudonym key id"
#: pseudonyms kept per key (one per device and entity seen): bounded for a long-running indexer
_CACHE_LIMIT = 200_000


class PseudonymError(AdapterError):
    """A pseudonym cannot be computed; the subclass says why."""


class MissingPseudonymKey(PseudonymError):
    """The key a record needs is not on this machine (a file deleted, or another key_dir).

    Not the record's fault: the indexer waits for the key, the verifier says it cannot check.
    """


class UnknownCollectivity(PseudonymError):
    """The record names a collectivity that has no pseudonym keys (not a configured one)."""


@dataclass(frozen=True, slots=True)
class PseudonymKey:
    """One key of one collectivity, from ``start`` (a UTC date ``YYYY-MM-DD``; None: the first key)."""

    tenant: str
    start: str | None
    key_id: str
    secret: bytes = field(repr=False)
    _devices: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _entities: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_secret(cls, tenant: str, start: str | None, secret: bytes) -> PseudonymKey:
        if _TENANT.match(tenant) is None:
            raise ConfigError(f"collectivity name {tenant!r} cannot have pseudonym keys")
        if len(secret) < 32:
            raise ConfigError(f"a pseudonym key of {tenant} has {len(secret)} bytes; 32 are needed")
        key_id = hmac.digest(secret, _KEY_ID_LABEL, "sha256")[:4].hex()
        return cls(tenant, start, key_id, secret)

    def _pseudonym(self, cache: dict[str, str], kind: str, identifier: str) -> str:
        found = cache.get(identifier)
        if found is None:
            message = kind.encode() + b"\x00" + identifier.encode("utf-8", "surrogatepass")
            mac = hmac.digest(self.secret, message, "sha256")[:16].hex()
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            found = cache[identifier] = f"urn:ngsild-adapter:{self.tenant}:pseudonym:{self.key_id}:{kind}:{mac}"
        return found

    def device(self, dev_eui: str) -> str:
        """The pseudonym IRI of the device with this devEui (as the record writes it)."""
        return self._pseudonym(self._devices, "device", dev_eui)

    def entity(self, entity_id: str) -> str:
        """The pseudonym IRI of the broker entity with this id (also a Relationship's target)."""
        return self._pseudonym(self._entities, "entity", entity_id)


def _start_text(value: date | str) -> str:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"pseudonym rotation {value!r} is not a date (YYYY-MM-DD)") from exc
    return value.isoformat()


class PseudonymKeys:
    """The pseudonym keys of every collectivity, and which one applies to a record.

    ``directory`` holds one folder per collectivity (see the module docstring); ``rotations``
    are the dates from which a new key applies. Keys are read on first use and kept;
    ``ensure()`` creates the missing files (the indexing process only).

    >>> keys = PseudonymKeys(Path("/var/lib/ngsild-adapter/keys/pseudonyms"), ["ville"], [date(2027, 1, 1)])
    >>> keys.ensure()
    >>> keys.key_for("ville", "2026-11-20").device("70b3d57ed0001a01")
    'urn:ngsild-adapter:ville:pseudonym:1f0c5a2e:device:...'
    """

    def __init__(self, directory: Path | None, tenants: Iterable[str], rotations: Sequence[date | str] = ()) -> None:
        self.directory = directory
        self.tenants = frozenset(tenants)
        for tenant in self.tenants:
            if _TENANT.match(tenant) is None:
                raise ConfigError(f"collectivity name {tenant!r} cannot have pseudonym keys")
        self._rotations = tuple(sorted({_start_text(d) for d in rotations}))
        #: when each key starts: None (the first key), then the rotation dates (YYYY-MM-DD)
        self.starts: tuple[str | None, ...] = (None, *self._rotations)
        self._keys: dict[tuple[str, str | None], PseudonymKey] = {}
        self._generate = False  # ephemeral(None): a fresh key for any collectivity on first use

    @classmethod
    def in_memory(cls, secrets_by_tenant: Mapping[str, Mapping[str | None, bytes]]) -> PseudonymKeys:
        """Keys given as bytes (tests, benchmarks, pipelines whose state is in memory):
        ``{"ville": {None: first_key, "2027-01-01": next_key}}``."""
        starts = {start for by_start in secrets_by_tenant.values() for start in by_start if start is not None}
        keys = cls(None, secrets_by_tenant, sorted(starts))
        for tenant, by_start in secrets_by_tenant.items():
            if set(by_start) != set(keys.starts):
                raise ConfigError(
                    f"pseudonym keys of {tenant}: one per start {keys.starts}, got {sorted(by_start, key=str)}"
                )
            for start, secret in by_start.items():
                keys._keys[(tenant, start)] = PseudonymKey.from_secret(tenant, start, secret)
        return keys

    @classmethod
    def ephemeral(cls, tenants: Iterable[str] | None = None, rotations: Sequence[date | str] = ()) -> PseudonymKeys:
        """Fresh random keys, never saved: pseudonyms that change at every start (for state
        kept in memory, and tests). ``tenants`` None: any collectivity gets keys on first use."""
        keys = cls(None, tenants or (), rotations)
        keys._generate = tenants is None
        for tenant in keys.tenants:
            keys._generate_for(tenant)
        return keys

    def _generate_for(self, tenant: str) -> None:
        for start in self.starts:
            self._keys[(tenant, start)] = PseudonymKey.from_secret(tenant, start, secrets.token_bytes(32))

    def path(self, tenant: str, start: str | None) -> Path | None:
        """The file of one key (None for keys held in memory)."""
        if self.directory is None:
            return None
        return self.directory / tenant / f"{start or 'initial'}.key"

    def ensure(self) -> None:
        """Create every missing key file (256 random bits each); existing keys are never replaced."""
        for tenant in sorted(self.tenants):
            for start in self.starts:
                path = self.path(tenant, start)
                if path is None or path.exists():
                    continue
                try:
                    write_secret(path, secrets.token_bytes(32).hex())
                except FileExistsError:
                    pass  # another process created it first: use theirs

    def key(self, tenant: str, start: str | None) -> PseudonymKey:
        """The key of ``tenant`` from ``start``; ``MissingPseudonymKey`` if its file is not there."""
        found = self._keys.get((tenant, start))
        if found is not None:
            return found
        if self._generate and isinstance(tenant, str) and _TENANT.match(tenant) is not None:
            self.tenants = self.tenants | {tenant}
            self._generate_for(tenant)
            return self._keys[(tenant, start)]
        if tenant not in self.tenants:
            raise UnknownCollectivity(f"collectivity {tenant!r} has no pseudonym keys (not a configured one)")
        path = self.path(tenant, start)
        if path is None:
            raise MissingPseudonymKey(f"no pseudonym key of {tenant} from {start or 'the first record'} in memory")
        try:
            text = read_secret(path)
        except FileNotFoundError:
            raise MissingPseudonymKey(
                f"the pseudonym key of {tenant} for records received {f'from {start}' if start else 'before the first rotation'}"
                f" is missing ({path})"
            ) from None
        if _KEY_TEXT.match(text) is None:
            raise ConfigError(f"{path}: a pseudonym key is 64 lowercase hex digits")
        found = self._keys[(tenant, start)] = PseudonymKey.from_secret(tenant, start, bytes.fromhex(text))
        return found

    def key_for(self, tenant: str, received_on: str) -> PseudonymKey:
        """The key of the records of ``tenant`` received on the UTC day ``received_on``
        (``YYYY-MM-DD``, or any text starting with it, such as a UTC ``xsd:dateTime``)."""
        day = received_on[:10]
        chosen: str | None = None
        for start in self._rotations:
            if start > day:
                break
            chosen = start
        return self.key(tenant, chosen)

    def configuration(self, tenant: str) -> list[list[str | None]]:
        """``[start, key id]`` of each key of ``tenant``, in order: what an index was built with
        (a changed key changes the pseudonyms). Raises ``MissingPseudonymKey``."""
        return [[start, self.key(tenant, start).key_id] for start in self.starts]
