"""The gateway's access records as RDF quads, for the collectivities' access graphs.

Each collectivity's accesses go to ``urn:ngsild-adapter:graph:{tenant}:access``, in the shape
``AccessLog.as_prov`` gives them as JSON-LD (a ``prov:Activity`` per access, its agent, the
entities used, the agreement): ``access_nquads`` writes those quads directly, because pyld's
``to_rdf`` costs about 0.8 ms per access, as much as answering it. The tests check that both
give the same quads. The RDF indexer (``adapter.provenance.indexer``) keeps the graphs.

Why the reading side checks everything again: the rows are read back from an SQLite file that
another process writes (and that anyone with the file can change), and one bad row used to end
the indexer at every start. So ``AccessRows`` reads each row on its own into an
``AccessRecord`` (a row that does not parse is reported with its reason, never raised), and
``access_quads`` builds every term from a checked value: the tenant must be one of the
configured collectivities (the graph and activity IRIs are made of it), entity ids and
agreement uids must be absolute IRIs (``adapter.provenance.rdf.iri_term``), the subject and
organization are percent-encoded into the agent and organization IRIs, and every other string
is an escaped literal. A row that fails is refused with ``AccessRowError`` naming why; the
indexer quarantines it and goes on.

The agent IRI is ``agent_iri``'s (``adapter.access.log``) with the subject percent-encoded:
the same IRI for every subject made of letters, digits and ``-._~`` (Keycloak's UUIDs).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import quote

from adapter.access.log import NO_TENANT, AccessRecord
from adapter.access.policies import access_graph_of
from adapter.exceptions import AdapterError
from adapter.provenance.rdf import ProvenanceRecordError, graph_iri, iri_term, string_term

__all__ = ["AccessRowError", "AccessRows", "access_graph_of", "access_nquads", "access_quads"]

_RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
_PROV = "http://www.w3.org/ns/prov#"
_NGA = "https://w3id.org/ngsild-adapter/ns#"
_XSD_DATETIME = "^^<http://www.w3.org/2001/XMLSchema#dateTime>"
_COLUMNS = (
    "id, at, tenant, action, entity_type, issuer, subject, username, organization, client_id, agreement, "
    "outcome, reason, path, entities"
)


class AccessRowError(AdapterError):
    """A stored access row that cannot become quads; the message says which field and why."""


def _iri(text: str) -> str:
    return f"<{text}>"


def _agent_iri(issuer: str, subject: str) -> str:
    digest = sha256(issuer.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"<urn:ngsild-adapter:agent:{digest}:{quote(subject, safe='')}>"


def access_quads(record: AccessRecord, tenants: Collection[str]) -> str:
    """The quads of one access, in its collectivity's access graph (N-Quads text); "" for an
    access that named no collectivity's data (it has no owner to read it).

    ``tenants``: the configured collectivities. Raises ``AccessRowError`` when the tenant is
    not one of them or a value cannot be written as its term.
    """
    if record.tenant == NO_TENANT:
        return ""
    if record.tenant not in tenants:
        raise AccessRowError(f"access {record.id}: tenant {record.tenant!r} is not a configured collectivity")
    try:
        return _quads(record)
    except ProvenanceRecordError as exc:
        raise AccessRowError(f"access {record.id}: {exc}") from exc
    except (TypeError, AttributeError, UnicodeEncodeError) as exc:
        raise AccessRowError(f"access {record.id} does not have the access log's format: {exc!r}") from exc


def _quads(record: AccessRecord) -> str:
    graph_iri(record.tenant)  # the tenant grammar, whatever set it came from: it goes into IRIs
    graph = f" <{access_graph_of(record.tenant)}> .\n"
    activity = _iri(f"urn:ngsild-adapter:{record.tenant}:access:{int(record.id)}")
    agent = _agent_iri(record.issuer, record.subject)
    organization = _iri(f"urn:ngsild-adapter:organization:{quote(record.organization, safe='')}")
    triples = [
        (activity, _RDF_TYPE, _iri(_PROV + "Activity")),
        (activity, _RDF_TYPE, _iri(_NGA + "Access")),
        (activity, _iri(_PROV + "startedAtTime"), string_term(record.at.isoformat()) + _XSD_DATETIME),
        (activity, _iri(_PROV + "wasAssociatedWith"), agent),
        (activity, _iri(_NGA + "action"), string_term(record.action)),
        (activity, _iri(_NGA + "entityType"), string_term(record.entity_type)),
        (activity, _iri(_NGA + "outcome"), string_term(record.outcome)),
        (activity, _iri(_NGA + "reason"), string_term(record.reason)),
        (activity, _iri(_NGA + "request"), string_term(record.path)),
        *((activity, _iri(_PROV + "used"), iri_term(entity)) for entity in record.entities),
        *((activity, _iri(_NGA + "agreement"), iri_term(uid)) for uid in record.agreements),
        (agent, _RDF_TYPE, _iri(_PROV + "Agent")),
        (agent, _iri(_NGA + "issuer"), string_term(record.issuer)),
        (agent, _iri(_NGA + "subject"), string_term(record.subject)),
        (agent, _iri(_PROV + "actedOnBehalfOf"), organization),
    ]
    if record.username:
        triples.append((agent, _iri(_NGA + "username"), string_term(record.username)))
    if record.client_id:
        triples.append((agent, _iri(_NGA + "client"), string_term(record.client_id)))
    return "".join(" ".join(triple) + graph for triple in triples)


def access_nquads(records: Iterable[AccessRecord], *, tenants: Collection[str] | None = None) -> str:
    """The quads of ``records``, each in its collectivity's access graph (N-Quads text).

    ``tenants``: the configured collectivities (None: the tenants of ``records`` themselves,
    for readers that trust them). Raises ``AccessRowError`` at the first record that cannot be
    written; the indexer calls ``access_quads`` per record instead, to set that one aside.
    """
    records = list(records)
    allowed = tenants if tenants is not None else {r.tenant for r in records}
    return "".join(access_quads(record, allowed) for record in records)


def _text(row: tuple[Any, ...], position: int, name: str, *, optional: bool = False) -> str | None:
    value = row[position]
    if value is None and optional:
        return None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AccessRowError(f"{name} is not UTF-8 text: {exc}") from None
    raise AccessRowError(f"{name} is {type(value).__name__}, not text")


def _required(row: tuple[Any, ...], position: int, name: str) -> str:
    text = _text(row, position, name)
    assert text is not None
    return text


def _record(row: tuple[Any, ...]) -> AccessRecord:
    at = row[1]
    if type(at) not in (int, float) or not math.isfinite(at):
        raise AccessRowError(f"at is {at!r}, not a time")
    try:
        moment = datetime.fromtimestamp(at, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise AccessRowError(f"at {at!r} is not a time: {exc}") from None
    try:
        entities = json.loads(_required(row, 14, "entities"))
    except (ValueError, RecursionError) as exc:
        raise AccessRowError(f"entities is not JSON: {exc}") from None
    if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
        raise AccessRowError("entities is not a JSON list of entity ids")
    return AccessRecord(
        id=row[0],
        at=moment,
        tenant=_required(row, 2, "tenant"),
        action=_required(row, 3, "action"),
        entity_type=_required(row, 4, "entity_type"),
        issuer=_required(row, 5, "issuer"),
        subject=_required(row, 6, "subject"),
        username=_text(row, 7, "username", optional=True),
        organization=_required(row, 8, "organization"),
        client_id=_text(row, 9, "client_id", optional=True),
        agreement=_text(row, 10, "agreement", optional=True),
        outcome=_required(row, 11, "outcome"),
        reason=_required(row, 12, "reason"),
        path=_required(row, 13, "path"),
        entities=tuple(entities),
    )


class AccessRows:
    """The gateway's access log (``adapter.access.log``), read for the index one row at a time.

    A connection of its own, where SQLite hands text over as bytes: a value that is not UTF-8
    is then one row's error rather than an exception out of the whole batch.
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.text_factory = bytes
        self._db.execute("PRAGMA busy_timeout = 5000")

    def after(self, access_id: int, limit: int) -> list[tuple[int, AccessRecord | AccessRowError]]:
        """``(id, record or why it does not parse)`` of the rows after ``access_id``, oldest
        first; nothing while the gateway has not created its table."""
        try:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM access WHERE id > ? ORDER BY id LIMIT ?", (access_id, limit)
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        found: list[tuple[int, AccessRecord | AccessRowError]] = []
        for row in rows:
            try:
                found.append((row[0], _record(row)))
            except AccessRowError as exc:
                found.append((row[0], AccessRowError(f"access {row[0]}: {exc}")))
        return found

    def close(self) -> None:
        self._db.close()
