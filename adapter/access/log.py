"""Every access through the gateway, recorded as provenance: who, for which organization, what
was read, when, under which agreement (or why it was refused).

Kept in the gateway's SQLite file, one row per request, written before the answer leaves: an
access whose record cannot be written is not answered. The data owner reads its own rows as
W3C PROV-O (``as_prov``): each access is a ``prov:Activity`` associated with the principal's
agent, using the entities it returned, qualified by the agreement (``nga:agreement``).

Only validated values are stored, because the rows go on to the access graphs and a bad one
would stop the indexer: the tenant comes from a closed set (the configured collectivities
given as ``tenants``; anything else is recorded as ``NO_TENANT``), and every other string is
stored as plain text of bounded length (``plain_text``: control and format characters and
lone surrogates replaced, long values cut with a marker). Escaping for RDF is the RDF side's
job (``adapter.access.graph``).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

from adapter.access.model import AccessRequest, Principal
from adapter.sqlite import open_database

__all__ = ["LIMITS", "MAX_ENTITIES", "NO_TENANT", "AccessLog", "AccessRecord", "plain_text"]

log = logging.getLogger(__name__)

#: the tenant of an access that named no configured collectivity's data (a SPARQL query no
#: graph was open to, or a tenant header naming no collectivity)
NO_TENANT = "-"

#: the longest value stored for each field (characters); longer ones are cut with ``_CUT``
LIMITS: dict[str, int] = {
    "action": 64,
    "entity_type": 256,
    "issuer": 512,
    "subject": 256,
    "username": 256,
    "organization": 128,
    "client_id": 256,
    "agreement": 4096,
    "outcome": 32,
    "reason": 1024,
    "path": 2048,
    "entity": 1024,
}
#: at most this many entity ids per access (a query answers 1,000 at most; notifications fewer)
MAX_ENTITIES = 10_000
_CUT = "…"
#: the grammar of a configured tenant (adapter.config), when the log is not given the set
_TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")


def _printable(ch: str) -> str:
    if ch.isprintable():
        return ch
    return " " if unicodedata.category(ch) == "Zs" else "\ufffd"  # a no-break or ideographic space: a space


def plain_text(value: object, limit: int) -> str:
    """``value`` as plain text of at most ``limit`` characters: control, format, private-use
    and unassigned characters, line and paragraph separators and lone surrogates become
    U+FFFD, and spaces other than U+0020 (no-break, ideographic...) a plain space (storable
    as UTF-8, one line, no terminal, bidi or look-alike tricks); a longer text is cut and
    ends with "…"."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: limit - len(_CUT)] + _CUT
    return text if text.isprintable() else "".join(map(_printable, text))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS access (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    tenant TEXT NOT NULL,          -- whose data was asked for
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    username TEXT,
    organization TEXT NOT NULL,
    client_id TEXT,
    agreement TEXT,                -- the agreement the answer was given under (NULL if refused)
    outcome TEXT NOT NULL,         -- permitted, refused
    reason TEXT NOT NULL,          -- the rule that refused, or what was narrowed
    path TEXT NOT NULL,
    entities TEXT NOT NULL         -- JSON list of the entity ids returned
);
CREATE INDEX IF NOT EXISTS access_tenant_at ON access (tenant, at);
"""

_NGA = "https://w3id.org/ngsild-adapter/ns#"


@dataclass(frozen=True, slots=True)
class AccessRecord:
    id: int
    at: datetime
    tenant: str
    action: str
    entity_type: str
    issuer: str
    subject: str
    username: str | None
    organization: str
    client_id: str | None
    agreement: str | None
    outcome: str
    reason: str
    path: str
    entities: tuple[str, ...]

    @property
    def agreements(self) -> tuple[str, ...]:
        """The agreements the answer was given under (a SPARQL query may run under several)."""
        return tuple(uid for uid in (self.agreement or "").split(", ") if uid)


_COLUMNS = (
    "id, at, tenant, action, entity_type, issuer, subject, username, organization, client_id, agreement, "
    "outcome, reason, path, entities"
)


def _record(r: Sequence[Any]) -> AccessRecord:
    return AccessRecord(
        id=r[0],
        at=datetime.fromtimestamp(r[1], UTC),
        tenant=r[2],
        action=r[3],
        entity_type=r[4],
        issuer=r[5],
        subject=r[6],
        username=r[7],
        organization=r[8],
        client_id=r[9],
        agreement=r[10],
        outcome=r[11],
        reason=r[12],
        path=r[13],
        entities=tuple(json.loads(r[14])),
    )


def agent_iri(issuer: str, subject: str) -> str:
    """A stable IRI for a principal: its issuer (hashed: issuers are URLs) and subject."""
    return f"urn:ngsild-adapter:agent:{sha256(issuer.encode()).hexdigest()[:16]}:{subject}"


class AccessLog:
    """The gateway's record of accesses (``":memory:"`` for tests)."""

    def __init__(
        self, path: Path | str, *, tenants: Iterable[str] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        """``tenants``: the configured collectivities, the only tenants recorded as such
        (pass ``config.collectivities``); None accepts any value of the tenant grammar, for
        readers and old callers. Anything else is recorded as ``NO_TENANT``."""
        self._db = open_database(path, _SCHEMA)
        self._clock = clock
        self._tenants = frozenset(tenants) if tenants is not None else None
        self._checkpoints: threading.Thread | None = None
        self._closing = threading.Event()
        if str(path) != ":memory:":
            # A WAL checkpoint syncs the file, which can take long on a busy disk: done by a thread
            # of its own, never by the request that happens to fill the WAL (the gateway's latency).
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpoints = threading.Thread(
                target=self._checkpoint_every, args=(str(path),), name="access-log-checkpoints", daemon=True
            )
            self._checkpoints.start()

    def _checkpoint_every(self, path: str, interval_s: float = 2.0) -> None:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            while not self._closing.wait(interval_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # the next round tries again
                    log.warning("access log checkpoint: %s", exc)
        finally:
            db.close()

    def tenant_of(self, value: object) -> str:
        """``value`` if it is one of the tenants, else ``NO_TENANT`` (exact match)."""
        if not isinstance(value, str):
            return NO_TENANT
        if self._tenants is not None:
            return value if value in self._tenants else NO_TENANT
        return value if _TENANT.fullmatch(value) else NO_TENANT

    def close(self) -> None:
        self._closing.set()
        if self._checkpoints is not None:
            self._checkpoints.join()
        self._db.close()

    def record(
        self,
        principal: Principal,
        request: AccessRequest,
        *,
        outcome: str,
        reason: str,
        path: str,
        agreement: str | None = None,
        entities: Sequence[str] = (),
    ) -> int:
        """Store one access (before its answer leaves); returns its id. Never refuses a value:
        an unknown tenant is recorded as ``NO_TENANT``, other strings as bounded plain text."""

        def text(field: str, value: object) -> str:
            return plain_text(value, LIMITS[field])

        def optional(field: str, value: object) -> str | None:
            return None if value is None else text(field, value)

        action = getattr(request.action, "value", request.action)
        ids = [text("entity", e) for e in list(entities)[:MAX_ENTITIES]]
        cursor = self._db.execute(
            "INSERT INTO access (at, tenant, action, entity_type, issuer, subject, username, organization, client_id, "
            "agreement, outcome, reason, path, entities) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._clock(),
                self.tenant_of(request.tenant),
                text("action", action),
                text("entity_type", request.entity_type),
                text("issuer", principal.issuer),
                text("subject", principal.subject),
                optional("username", principal.username),
                text("organization", principal.organization),
                optional("client_id", principal.client_id),
                optional("agreement", agreement),
                text("outcome", outcome),
                text("reason", reason),
                text("path", path),
                json.dumps(ids),
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def records(
        self, tenant: str, *, since: datetime | None = None, until: datetime | None = None, limit: int = 1000
    ) -> list[AccessRecord]:
        """Accesses to ``tenant``'s data in ``[since, until)``, newest first (``limit`` of them:
        a reader pages back with ``until``)."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM access WHERE tenant = ? AND at >= ? AND at < ? ORDER BY id DESC LIMIT ?",
            (tenant, since.timestamp() if since else 0.0, until.timestamp() if until else float("inf"), limit),
        ).fetchall()
        return [_record(r) for r in rows]

    def after(self, access_id: int, limit: int = 1000) -> list[AccessRecord]:
        """Accesses recorded after ``access_id``, oldest first (for the RDF index)."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM access WHERE id > ? ORDER BY id LIMIT ?", (access_id, limit)
        ).fetchall()
        return [_record(r) for r in rows]

    @staticmethod
    def as_prov(records: Sequence[AccessRecord]) -> dict[str, Any]:
        """The records as a W3C PROV-O JSON-LD document."""
        graph = []
        for record in records:
            activity: dict[str, Any] = {
                "@id": f"urn:ngsild-adapter:{record.tenant}:access:{record.id}",
                "@type": ["prov:Activity", "nga:Access"],
                "prov:startedAtTime": {"@value": record.at.isoformat(), "@type": "xsd:dateTime"},
                "prov:wasAssociatedWith": {"@id": agent_iri(record.issuer, record.subject)},
                "nga:action": record.action,
                "nga:entityType": record.entity_type,
                "nga:outcome": record.outcome,
                "nga:reason": record.reason,
                "nga:request": record.path,
                "prov:used": [{"@id": e} for e in record.entities],
            }
            if record.agreements:
                activity["nga:agreement"] = [{"@id": uid} for uid in record.agreements]
            agent = {
                "@id": agent_iri(record.issuer, record.subject),
                "@type": "prov:Agent",
                "nga:issuer": record.issuer,
                "nga:subject": record.subject,
                "prov:actedOnBehalfOf": {"@id": f"urn:ngsild-adapter:organization:{record.organization}"},
            }
            if record.username:
                agent["nga:username"] = record.username
            if record.client_id:
                agent["nga:client"] = record.client_id
            graph += [activity, agent]
        return {
            "@context": {"prov": "http://www.w3.org/ns/prov#", "nga": _NGA, "xsd": "http://www.w3.org/2001/XMLSchema#"},
            "@graph": graph,
        }
