"""The RDF indexer on real files: a ledger of the provenance fixtures' records (SQLite), an
embedded Oxigraph store and pseudonym keys in a folder, and the gateway's access log beside.

Tests open a ``Setup``, write into its SQLite files directly (as anyone holding them could),
and run indexing rounds; ``reopen`` gives the same files to new objects (a restart)."""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.access.log import AccessLog
from adapter.mapping.entities import iso
from adapter.provenance.indexer import RdfIndexer
from adapter.provenance.integrity.keys import key_directory
from adapter.provenance.ledger import ProvenanceLedger
from adapter.provenance.pseudonyms import PseudonymKeys
from adapter.provenance.runtime import ProvenanceRuntime
from adapter.provenance.store import OxigraphStore
from tests.provenance_rdf.support import log

__all__ = ["TENANTS", "Setup"]

TENANTS = ("metropole", "ville")
_ACCESS_COLUMNS = (
    "at",
    "tenant",
    "action",
    "entity_type",
    "issuer",
    "subject",
    "username",
    "organization",
    "client_id",
    "agreement",
    "outcome",
    "reason",
    "path",
    "entities",
)


def _as_the_pipeline_writes(record: dict[str, Any]) -> dict[str, Any]:
    record = copy.deepcopy(record)
    record["observedAt"] = iso(datetime.fromisoformat(record["observedAt"]).astimezone(UTC))
    for entity in record["entities"]:
        for attribute in entity["attributes"].values():
            if "observedAt" in attribute:
                attribute["observedAt"] = iso(datetime.fromisoformat(attribute["observedAt"]).astimezone(UTC))
    return record


@dataclass
class Setup:
    folder: Path
    db: sqlite3.Connection
    ledger: ProvenanceLedger
    store: OxigraphStore

    @classmethod
    def open(cls, folder: Path) -> Setup:
        folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(folder / "state.sqlite"), isolation_level=None)
        ledger = ProvenanceLedger(db, key_directory(folder / "keys", "test.example/logs"), tenants=TENANTS)
        return cls(folder, db, ledger, OxigraphStore(folder / "rdf"))

    async def reopen(self) -> Setup:
        """The same files, opened again by new objects: the process restarted."""
        await self.close()
        return Setup.open(self.folder)

    async def close(self) -> None:
        await self.store.close()
        self.db.close()

    @property
    def access_log(self) -> Path:
        return self.folder / "gateway" / "access.sqlite"

    def keys(self, rotations: Sequence[str] = ()) -> PseudonymKeys:
        return PseudonymKeys(self.folder / "keys" / "pseudonyms", TENANTS, rotations)

    def indexer(self, rotations: Sequence[str] = (), **options: Any) -> RdfIndexer:
        return RdfIndexer(
            self.ledger,
            self.db,
            self.store,
            tenants=TENANTS,
            pseudonyms=self.keys(rotations),
            access_log=self.access_log,
            **options,
        )

    def runtime(self, indexer: RdfIndexer) -> ProvenanceRuntime:
        return ProvenanceRuntime(self.ledger, store=self.store, indexer=indexer, contexts={})

    def record_fixtures(self, tenant: str, times: int = 1) -> list[int]:
        """Log the fixture records of ``tenant`` (``times`` over), their observation times
        written as the pipeline writes them (what the verifier compares); their numbers."""
        return [
            self.ledger.record(_as_the_pipeline_writes(record)).index for _ in range(times) for record in log(tenant)
        ]

    def set_record_text(self, tenant: str, index: int, text: str) -> None:
        self.db.execute("UPDATE prov_record SET record = ? WHERE tenant = ? AND idx = ?", (text, tenant, index))

    def set_record_bytes(self, tenant: str, index: int, data: bytes) -> None:
        """Store bytes that are not UTF-8 as the record's *text* (SQLite does not check)."""
        self.db.execute(
            "UPDATE prov_record SET record = CAST(? AS TEXT) WHERE tenant = ? AND idx = ?", (data, tenant, index)
        )

    def access_row(self, **values: Any) -> int:
        """Insert one row into the gateway's access table as it is (defaults: a valid access)."""
        AccessLog(self.access_log).close()  # the gateway's schema
        row = {
            "at": 1_795_000_000.0,
            "tenant": "ville",
            "action": "read",
            "entity_type": "AirQualityObserved",
            "issuer": "https://sso.example.org/realms/ville",
            "subject": "u-1",
            "username": "alice",
            "organization": "ville",
            "client_id": "portail",
            "agreement": "urn:ngsild-adapter:agreement:schools",
            "outcome": "permitted",
            "reason": "",
            "path": "/ngsi-ld/v1/entities",
            "entities": '["urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01"]',
            **values,
        }
        db = sqlite3.connect(str(self.access_log), isolation_level=None)
        try:
            cursor = db.execute(
                f"INSERT INTO access ({', '.join(_ACCESS_COLUMNS)}) VALUES ({', '.join('?' for _ in _ACCESS_COLUMNS)})",
                [row[c] for c in _ACCESS_COLUMNS],
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid
        finally:
            db.close()
