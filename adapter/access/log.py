"""Every access through the gateway, recorded as provenance: who, for which organization, what
was read, when, under which agreement (or why it was refused).

Kept in the gateway's SQLite file, one row per request, written before the answer leaves: an
access whose record cannot be written is not answered. The data owner reads its own rows as
W3C PROV-O (``as_prov``): each access is a ``prov:Activity`` associated with the principal's
agent, using the entities it returned, qualified by the agreement (``nga:agreement``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

from adapter.access.model import AccessRequest, Principal
from adapter.sqlite import open_database

__all__ = ["NO_TENANT", "AccessLog", "AccessRecord"]

#: the tenant of an access that named no collectivity's data (a SPARQL query no graph was open to)
NO_TENANT = "-"

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


_COLUMNS = ("id, at, tenant, action, entity_type, issuer, subject, username, organization, client_id, agreement, "
            "outcome, reason, path, entities")


def _record(r: Sequence[Any]) -> AccessRecord:
    return AccessRecord(
        id=r[0], at=datetime.fromtimestamp(r[1], UTC), tenant=r[2], action=r[3], entity_type=r[4], issuer=r[5],
        subject=r[6], username=r[7], organization=r[8], client_id=r[9], agreement=r[10], outcome=r[11],
        reason=r[12], path=r[13], entities=tuple(json.loads(r[14])),
    )


def agent_iri(issuer: str, subject: str) -> str:
    """A stable IRI for a principal: its issuer (hashed: issuers are URLs) and subject."""
    return f"urn:ngsild-adapter:agent:{sha256(issuer.encode()).hexdigest()[:16]}:{subject}"


class AccessLog:
    """The gateway's record of accesses (``":memory:"`` for tests)."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = open_database(path, _SCHEMA)
        self._clock = clock

    def close(self) -> None:
        self._db.close()

    def record(
        self, principal: Principal, request: AccessRequest, *, outcome: str, reason: str, path: str,
        agreement: str | None = None, entities: Sequence[str] = (),
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO access (at, tenant, action, entity_type, issuer, subject, username, organization, client_id, "
            "agreement, outcome, reason, path, entities) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self._clock(), request.tenant, request.action.value, request.entity_type, principal.issuer,
             principal.subject, principal.username, principal.organization, principal.client_id, agreement,
             outcome, reason, path, json.dumps(list(entities))),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def records(self, tenant: str, *, since: datetime | None = None, limit: int = 1000) -> list[AccessRecord]:
        """Accesses to ``tenant``'s data, newest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM access WHERE tenant = ? AND at >= ? ORDER BY id DESC LIMIT ?",
            (tenant, since.timestamp() if since else 0.0, limit),
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
