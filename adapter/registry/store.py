"""The imported registry, kept in ``<state_dir>/registry.sqlite`` so that a restart keeps it.

One row per (registry, device): what the network server last said of it, the application it
was listed in, when it was first and last imported. An application's rows are replaced in
one transaction, and only by a complete listing (``replace``): an import that fails leaves
the last good one in place, so an unreachable network server never empties the registry.
``first_imported_at`` survives re-imports: it orders the claims of two registries on the
same DevEUI (the earlier keeps the device, ``adapter.registry.merge``).

A file of its own (WAL, ``adapter.sqlite``): ``ngsild-adapter registry import`` can write it
while ``listen`` runs, which reads it again at its next refresh.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adapter.mapping.entities import DeviceRecord
from adapter.registry.model import LOCATION_SOURCE, ImportedDevice, ImportSource
from adapter.sqlite import open_database
from adapter.uplink import Location

__all__ = ["ImportStatus", "RegistryStore", "StoredDevice"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS imported_device (
    registry TEXT NOT NULL, dev_eui TEXT NOT NULL, tenant TEXT NOT NULL, lns TEXT NOT NULL,
    application TEXT NOT NULL, device_id TEXT, name TEXT, description TEXT, attributes TEXT NOT NULL,
    latitude REAL, longitude REAL, altitude REAL,
    first_imported_at TEXT NOT NULL, imported_at TEXT NOT NULL,
    PRIMARY KEY (registry, dev_eui)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS registry_import (
    registry TEXT NOT NULL, application TEXT NOT NULL, attempted_at TEXT NOT NULL,
    succeeded_at TEXT, devices INTEGER NOT NULL DEFAULT 0, error TEXT,
    PRIMARY KEY (registry, application)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class StoredDevice:
    """An imported device as stored, with the moment it was first imported by its registry."""

    device: ImportedDevice
    first_imported_at: datetime


@dataclass(frozen=True, slots=True)
class ImportStatus:
    """The last import attempt of one application of one registry."""

    registry: str
    application: str
    attempted_at: datetime
    succeeded_at: datetime | None
    devices: int
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "application": self.application,
            "attempted_at": self.attempted_at.isoformat(),
            "succeeded_at": self.succeeded_at.isoformat() if self.succeeded_at else None,
            "devices": self.devices,
            "error": self.error,
        }


class RegistryStore:
    """The imported devices of every registry, in one SQLite file (``":memory:"`` for tests)."""

    def __init__(self, path: Path | str) -> None:
        self._db = open_database(path, _SCHEMA)

    def replace(self, registry: str, application: str, devices: Sequence[ImportedDevice], at: datetime) -> None:
        """Make ``devices`` the whole of what ``registry`` knows of ``application``: rows of
        devices no longer listed go, the others are written (their first import kept)."""
        db, stamp = self._db, at.isoformat()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS listed (dev_eui TEXT PRIMARY KEY)")
            db.execute("DELETE FROM temp.listed")
            db.executemany("INSERT OR IGNORE INTO temp.listed VALUES (?)", [(d.dev_eui,) for d in devices])
            db.execute(
                "DELETE FROM imported_device WHERE registry = ? AND application = ? "
                "AND dev_eui NOT IN (SELECT dev_eui FROM temp.listed)",
                (registry, application),
            )
            db.executemany(
                """INSERT INTO imported_device VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (registry, dev_eui) DO UPDATE SET
                     tenant = excluded.tenant, lns = excluded.lns, application = excluded.application,
                     device_id = excluded.device_id, name = excluded.name, description = excluded.description,
                     attributes = excluded.attributes, latitude = excluded.latitude,
                     longitude = excluded.longitude, altitude = excluded.altitude,
                     imported_at = excluded.imported_at""",
                [_row(registry, d, stamp) for d in devices],
            )
            db.execute(
                """INSERT INTO registry_import VALUES (?, ?, ?, ?, ?, NULL)
                   ON CONFLICT (registry, application) DO UPDATE SET attempted_at = excluded.attempted_at,
                     succeeded_at = excluded.succeeded_at, devices = excluded.devices, error = NULL""",
                (registry, application, stamp, stamp, len(devices)),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def failed(self, registry: str, application: str, error: str, at: datetime) -> None:
        """Record a failed attempt; the application's devices stay as they were."""
        self._db.execute(
            """INSERT INTO registry_import VALUES (?, ?, ?, NULL, 0, ?)
               ON CONFLICT (registry, application) DO UPDATE SET attempted_at = excluded.attempted_at,
                 error = excluded.error""",
            (registry, application, at.isoformat(), error),
        )

    def forget(self, keep: Sequence[tuple[str, str]]) -> int:
        """Drop the rows of every (registry, application) not in ``keep`` (no longer
        configured); returns how many devices went."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS kept (registry TEXT, application TEXT)")
            db.execute("DELETE FROM temp.kept")
            db.executemany("INSERT INTO temp.kept VALUES (?, ?)", list(keep))
            gone = db.execute(
                "DELETE FROM imported_device WHERE (registry, application) NOT IN "
                "(SELECT registry, application FROM temp.kept)"
            ).rowcount
            db.execute(
                "DELETE FROM registry_import WHERE (registry, application) NOT IN "
                "(SELECT registry, application FROM temp.kept)"
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return gone

    def devices(self) -> list[StoredDevice]:
        """Every stored device, earliest first import first (the order claims are decided in)."""
        rows = self._db.execute(
            "SELECT registry, dev_eui, tenant, lns, application, device_id, name, description, attributes, "
            "latitude, longitude, altitude, first_imported_at, imported_at FROM imported_device "
            "ORDER BY first_imported_at, registry, dev_eui"
        ).fetchall()
        return [_stored(row) for row in rows]

    def statuses(self) -> list[ImportStatus]:
        rows = self._db.execute(
            "SELECT registry, application, attempted_at, succeeded_at, devices, error FROM registry_import "
            "ORDER BY registry, application"
        ).fetchall()
        return [ImportStatus(r[0], r[1], _time(r[2]), _time(r[3]) if r[3] else None, r[4], r[5]) for r in rows]

    def close(self) -> None:
        self._db.close()


def _row(registry: str, device: ImportedDevice, stamp: str) -> tuple[Any, ...]:
    record, location = device.record, device.record.location
    return (
        registry,
        record.dev_eui,
        record.tenant,
        device.source.lns,
        device.source.application,
        device.device_id,
        record.name,
        device.description,
        orjson.dumps(dict(record.attributes)).decode(),
        location.latitude if location else None,
        location.longitude if location else None,
        location.altitude if location else None,
        stamp,
        stamp,
    )


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stored(row: sqlite3.Row | tuple[Any, ...]) -> StoredDevice:
    (
        registry,
        dev_eui,
        tenant,
        lns,
        application,
        device_id,
        name,
        description,
        attributes,
        latitude,
        longitude,
        altitude,
        first,
        last,
    ) = row
    location = None
    if latitude is not None and longitude is not None:
        location = Location(latitude, longitude, altitude, LOCATION_SOURCE)
    record = DeviceRecord(
        dev_eui=dev_eui, name=name, location=location, attributes=orjson.loads(attributes), tenant=tenant
    )
    source = ImportSource(lns=lns, connection=registry, application=application, imported_at=_time(last))
    return StoredDevice(ImportedDevice(record, source, device_id=device_id, description=description), _time(first))
