"""The RDF index of the provenance log: built from the records in batches, off the hot path.

Why an index and not the store of record: writing ~20 quads per uplink into an RDF store costs
more than the rest of the pipeline, and the store is not part of the outbox's transaction. The
records in the ledger are the durable truth; this module turns them into quads
(``adapter.provenance.rdf``) in rounds of ``batch`` records per collectivity, and remembers in
the ledger's SQLite file how far it got. The quads of a record are a pure function of the
record (and of its collectivity's pseudonym key), so a round that is repeated after a crash
(quads written, position not yet saved) adds nothing: the index never misses a record and
never holds one twice.

It may lag behind during a burst (``lag()``, exported as a metric) and catches up; ``rebuild``
drops a collectivity's graphs and indexes its log again from the first record.

The gateway's access records (``adapter.access.graph.AccessRows`` over the SQLite file at
``access_log``) go to each collectivity's access graph the same way, in order of their ids,
once the gateway has created the file.

No record stops it. The files it reads are written by other processes (and can be changed by
anyone holding them), so every record, delivery receipt and access row is read and turned into
quads on its own: one that cannot be (a row that does not read, JSON that does not parse, a
record without the documented format, a tenant that is not a configured collectivity, quads
the store refuses) is *quarantined*: kept in the ``prov_index_quarantine`` table with its
position and reason, counted (``quarantined()``, the metric
``ngsild_adapter_provenance_index_quarantined_records``), and passed over for good; the round
goes on with the next one. Only what is not a row's fault pauses a collectivity (its
pseudonym key file missing: ``MissingPseudonymKey``) or the round (the store unreachable), and
``run`` tries again later, so a process never ends on what it reads.

What the index was built with is remembered with the positions: which attributes go to the
personal graphs (``personal``), the index format, and each collectivity's pseudonym keys. An
index built with another list, another format (or before they were recorded) is rebuilt from
the logs at the first round, so that no personal value or real identifier stays in a shared
graph; a collectivity whose keys changed is rebuilt too, unless the only change is a rotation
starting after every record indexed so far (the usual case: a date added ahead of time).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.access.graph import AccessRowError, AccessRows, access_graph_of, access_quads
from adapter.exceptions import ConfigError
from adapter.provenance.ledger import ProvenanceLedger, StoredRecord
from adapter.provenance.pseudonyms import MissingPseudonymKey, PseudonymKeys
from adapter.provenance.rdf import delivery_nquads, graph_iri, index_nquads, personal_graph_iri, static_nquads
from adapter.provenance.store import RdfStore, RdfStoreError, RdfStoreUnavailable

__all__ = ["INDEX_FORMAT", "Quarantined", "RdfIndexer", "graph_iri"]

log = logging.getLogger(__name__)

#: records per write to the store (~15,000 quads: large enough for pyoxigraph's bulk loader)
CHUNK = 500
#: the shape of the quads (docs/provenance.md); an index built in another one is rebuilt.
#: 2: pseudonyms in the shared graphs; payload digest, frame counter, devEui, refusals personal.
INDEX_FORMAT = 2
_MAX_STATIC_KEYS = 100_000
#: the position of the gateway's access records (not a tenant name: those have no ':')
_ACCESSES = ":access"
_TENANT = re.compile(r"[a-z0-9_-]{1,50}\Z")
_REASON_LIMIT = 2000
#: what is quarantined: a collectivity's record, a broker delivery receipt, a gateway access row
KINDS = ("record", "delivery", "access")

_TABLE = """CREATE TABLE IF NOT EXISTS prov_index_position (
    what TEXT PRIMARY KEY,   -- a tenant's records, '' for delivery receipts, ':access' for the gateway's accesses
    next INTEGER NOT NULL    -- records: the next record number to index; receipts, accesses: the last id indexed
)"""
_SETTINGS = """CREATE TABLE IF NOT EXISTS prov_index_settings (
    name TEXT PRIMARY KEY,   -- 'personal', 'format', 'pseudonyms', 'received:<tenant>'
    value TEXT NOT NULL      -- JSON: attribute names; format number; keys per tenant; last UTC day indexed
)"""
_QUARANTINE = """CREATE TABLE IF NOT EXISTS prov_index_quarantine (
    kind TEXT NOT NULL,          -- 'record', 'delivery' (a broker receipt), 'access' (a gateway access row)
    tenant TEXT NOT NULL,        -- the collectivity of a record; '' for receipts and access rows
    position INTEGER NOT NULL,   -- the record number, the receipt id, the access row id
    reason TEXT NOT NULL,        -- why it could not be indexed
    quarantined_at REAL NOT NULL,
    PRIMARY KEY (kind, tenant, position)
)"""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record, receipt or access row the index passed over, and why."""

    kind: str
    tenant: str
    position: int
    reason: str
    at: float


def _reason(exc: BaseException) -> str:
    """An error as text. Logged and stored as text, never as the exception: its traceback holds
    the frames that raised, and a ledger read's frame holds an open SQLite statement (a read
    transaction kept open would block writers, or the WAL's checkpoints)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"


def _received_day(record: Mapping[str, Any]) -> str:
    """The UTC day a record was received (the record is valid: ``index_nquads`` accepted it)."""
    return datetime.fromisoformat(record["uplink"]["receivedAt"]).astimezone(UTC).date().isoformat()


class RdfIndexer:
    """Keeps ``store`` up to date with ``ledger``; one indexer per store.

    ``tenants``: the configured collectivities, the only ones indexed (None: those of
    ``pseudonyms``, or without it every collectivity of the ledger whose name is a tenant
    name); ``pseudonyms``: their pseudonym keys (None:
    keys made in memory, which change at every start and so rebuild the index: for tests);
    ``personal``: the attribute names whose values go to the collectivities' personal graphs
    (``[provenance] personal_attributes``); ``access_log``: the gateway's access log file, if any.
    """

    def __init__(
        self,
        ledger: ProvenanceLedger,
        db: sqlite3.Connection,
        store: RdfStore,
        *,
        batch: int = 2000,
        personal: Set[str] = frozenset(),
        access_log: Path | None = None,
        tenants: Collection[str] | None = None,
        pseudonyms: PseudonymKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._db = db
        self._store = store
        self.batch = batch
        self.personal = frozenset(personal)
        if tenants is None and pseudonyms is not None:
            tenants = pseudonyms.tenants  # the collectivities that have keys
        self._tenants = None if tenants is None else frozenset(tenants)
        self.pseudonyms = pseudonyms if pseudonyms is not None else PseudonymKeys.ephemeral(self._tenants)
        self._clock = clock
        self._access_path = access_log
        self._access: AccessRows | None = None
        self._settings_checked = False
        db.execute(_TABLE)
        db.execute(_SETTINGS)
        db.execute(_QUARANTINE)
        self._wake = asyncio.Event()
        self._static_written: set[tuple[Any, ...]] = set()

    # -- positions, settings, quarantine ------------------------------------------------------

    def tenants(self) -> list[str]:
        """The collectivities whose records are indexed."""
        if self._tenants is not None:
            return sorted(self._tenants)
        return [t for t in self._ledger.tenants() if isinstance(t, str) and _TENANT.match(t)]

    def position(self, tenant: str) -> int:
        """The number of ``tenant``'s records indexed (they are indexed in order)."""
        row = self._db.execute("SELECT next FROM prov_index_position WHERE what = ?", (tenant,)).fetchone()
        return 0 if row is None else int(row[0])

    def _save(self, what: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO prov_index_position VALUES (?, ?) ON CONFLICT (what) DO UPDATE SET next = excluded.next",
            (what, value),
        )

    def _setting(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM prov_index_settings WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO prov_index_settings VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _quarantine(self, kind: str, tenant: str, position: int, reason: str) -> None:
        log.warning(
            "provenance index: %s %s%s set aside (quarantined): %s",
            kind,
            position,
            f" of {tenant}" if tenant else "",
            reason,
        )
        self._db.execute(
            "INSERT INTO prov_index_quarantine VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, tenant, position) "
            "DO UPDATE SET reason = excluded.reason, quarantined_at = excluded.quarantined_at",
            (kind, tenant, position, reason, self._clock()),
        )

    def quarantine(self, kind: str | None = None) -> list[Quarantined]:
        """What the index passed over, in order (of one ``kind`` if given)."""
        rows = self._db.execute(
            "SELECT kind, tenant, position, reason, quarantined_at FROM prov_index_quarantine "
            "WHERE ? IS NULL OR kind = ? ORDER BY kind, tenant, position",
            (kind, kind),
        ).fetchall()
        return [Quarantined(*row) for row in rows]

    def quarantined(self) -> dict[tuple[str, str], int]:
        """How many of each kind are quarantined: ``(kind, tenant)`` (tenant "" but for records),
        every indexed collectivity and kind listed, so that the metric exists before the first."""
        counts = {("record", t): 0 for t in self.tenants()} | {("delivery", ""): 0, ("access", ""): 0}
        for kind, tenant, count in self._db.execute(
            "SELECT kind, tenant, count(*) FROM prov_index_quarantine GROUP BY kind, tenant"
        ):
            if (kind, tenant) in counts or kind == "record" and _TENANT.match(tenant):
                counts[(kind, tenant)] = count
        return counts

    def lag(self) -> Mapping[str, int]:
        """Records logged but not indexed yet, per collectivity."""
        return {tenant: self._ledger.size(tenant) - self.position(tenant) for tenant in self.tenants()}

    def wake(self) -> None:
        self._wake.set()

    # -- a round -------------------------------------------------------------------------------

    async def index_round(self) -> int:
        """Index up to ``batch`` new records of each collectivity and the new receipts and
        accesses; returns how many were read (indexed or quarantined).

        Records go to the store in chunks of ``CHUNK``; the quads of the next chunk are
        written while the store loads the previous one in its thread (it releases the GIL).
        A collectivity's position is saved once its chunk is in the store.
        """
        if not self._settings_checked:
            await self._check_settings()
        done = 0
        loading: _Loading | None = None
        for tenant in self.tenants():
            start = self.position(tenant)
            records, end = self._read_records(tenant, start)
            try:
                for first in range(0, len(records), CHUNK):
                    chunk = records[first : first + CHUNK]
                    last = first + CHUNK >= len(records)
                    parts, day = self._quads(tenant, chunk)
                    if loading is not None:
                        await self._finish(loading)
                    text = "".join(part for _, part in parts)
                    task = asyncio.create_task(self._store.add_nquads(text))
                    loading = _Loading(task, tenant, end if last else chunk[-1].index + 1, parts, day)
                    done += len(chunk)
            except MissingPseudonymKey as exc:
                log.error("records of %s are not indexed until their pseudonym key is back: %s", tenant, _reason(exc))
                continue
            if not records and end > start:  # only unreadable rows: quarantined, passed over
                self._save(tenant, end)
                done += end - start
        if loading is not None:
            await self._finish(loading)
        done += await self._index_receipts()
        return done + await self._index_accesses()

    def _read_records(self, tenant: str, start: int) -> tuple[list[StoredRecord], int]:
        """The next records of ``tenant`` and the position after them. A row that cannot even be
        read (text that is not UTF-8, a digest that is not bytes...) fails the batch query: the
        records are then read one by one and the unreadable ones quarantined."""
        try:
            records = list(self._ledger.records(tenant, start, self.batch))
            return records, (records[-1].index + 1 if records else start)
        except Exception as exc:  # noqa: BLE001 - any failure of one row: found below, row by row
            log.warning(
                "a record of %s after %d does not read (%s): reading them one by one", tenant, start, _reason(exc)
            )
        end = min(start + self.batch, self._ledger.size(tenant))
        found = []
        for index in range(start, end):
            try:
                stored = self._ledger.get(tenant, index)
            except Exception as exc:  # noqa: BLE001 - this row's fault, whatever it is
                self._quarantine("record", tenant, index, f"the stored row does not read: {_reason(exc)}")
                continue
            if stored is not None:
                found.append(stored)
        return found, max(end, start)

    def _quads(self, tenant: str, records: list[StoredRecord]) -> tuple[list[tuple[int, str]], str | None]:
        """(record number, quads) of each record that yields them, the others quarantined; and
        the last UTC day they were received. A key that is missing or refused is raised, not quarantined."""
        parts: list[tuple[int, str]] = []
        latest: str | None = None
        for stored in records:
            try:
                text, day = self._record_quads(tenant, stored)
            except (MissingPseudonymKey, ConfigError):
                raise  # the keys' fault, not the record's
            except Exception as exc:  # noqa: BLE001 - one record's fault, whatever it is: set aside
                self._quarantine("record", tenant, stored.index, _reason(exc))
                continue
            parts.append((stored.index, text))
            latest = day if latest is None or day > latest else latest
        return parts, latest

    def _record_quads(self, tenant: str, stored: StoredRecord) -> tuple[str, str]:
        record = stored.record
        if not isinstance(record, dict):
            raise ValueError("the record is not a JSON object")
        if record.get("tenant") != tenant:
            raise ValueError(f"the record names collectivity {record.get('tenant')!r}, its log is {tenant}'s")
        text = index_nquads(record, stored.index, pseudonyms=self.pseudonyms, personal=self.personal)
        day = _received_day(record)
        # What is described once (device, organisation, software, codec and profile files)
        # is written once per process and key; writing it again would add nothing.
        key = (
            tenant,
            record["device"]["devEui"],
            record["adapter"]["version"],
            self.pseudonyms.key_for(tenant, day).key_id,
            *(step.get("codecSha256") or step.get("profileSha256") for step in record["steps"]),
        )
        if key not in self._static_written:
            text = static_nquads(record, pseudonyms=self.pseudonyms) + text
            if len(self._static_written) >= _MAX_STATIC_KEYS:
                self._static_written.clear()
            self._static_written.add(key)
        return text, day

    async def _load(self, kind: str, parts: list[tuple[str, int, str]]) -> None:
        """Load ``(tenant, position, quads)`` parts at once; if the store refuses them (not an
        outage), one by one, and quarantine those it refuses."""
        try:
            await self._store.add_nquads("".join(text for _, _, text in parts))
            return
        except RdfStoreUnavailable:
            raise
        except RdfStoreError as exc:
            log.warning(
                "the RDF store refused %d %s(s) at once (%s): loading them one by one", len(parts), kind, _reason(exc)
            )
        for tenant, position, text in parts:
            try:
                await self._store.add_nquads(text)
            except RdfStoreUnavailable:
                raise
            except RdfStoreError as exc:
                self._quarantine(kind, tenant, position, f"the RDF store refused its quads: {exc}")

    async def _finish(self, loading: _Loading) -> None:
        try:
            await loading.task
        except RdfStoreUnavailable:
            raise
        except RdfStoreError as exc:
            log.warning(
                "the RDF store refused a chunk of %s (%s): loading its records one by one", loading.tenant, _reason(exc)
            )
            await self._load("record", [(loading.tenant, index, text) for index, text in loading.parts])
        self._save(loading.tenant, loading.position)
        if loading.day is not None and loading.day > (self._setting(f"received:{loading.tenant}") or ""):
            self._set(f"received:{loading.tenant}", loading.day)

    async def _index_receipts(self) -> int:
        position = self._receipts_position()
        try:
            receipts: list[tuple[int, Any]] = [(r.id, r) for r in self._ledger.deliveries(position, self.batch)]
        except Exception as exc:  # noqa: BLE001 - a row that does not read: one by one below
            log.warning(
                "a delivery receipt after %d does not read (%s): reading them one by one", position, _reason(exc)
            )
            receipts = self._receipts_one_by_one(position)
        tenants = set(self.tenants())
        parts: list[tuple[str, int, str]] = []
        for receipt_id, receipt in receipts:
            if isinstance(receipt, _Unreadable):
                self._quarantine("delivery", "", receipt_id, f"the stored row does not read: {receipt.reason}")
                continue
            try:
                if receipt.tenant not in tenants:
                    raise ValueError(f"receipt of {receipt.tenant!r}, not a configured collectivity")
                parts.append(("", receipt_id, delivery_nquads(receipt.tenant, receipt.to_json())))
            except Exception as exc:  # noqa: BLE001 - this receipt's fault: set aside
                self._quarantine("delivery", "", receipt_id, _reason(exc))
        if parts:
            await self._load("delivery", parts)
        if receipts:
            self._save("", receipts[-1][0])
        return len(receipts)

    def _receipts_one_by_one(self, position: int) -> list[tuple[int, Any]]:
        ids = [
            row[0]
            for row in self._db.execute(
                "SELECT id FROM prov_delivery WHERE id > ? ORDER BY id LIMIT ?", (position, self.batch)
            )
        ]
        found: list[tuple[int, Any]] = []
        for receipt_id in ids:
            try:
                (receipt,) = self._ledger.deliveries(receipt_id - 1, 1)
                found.append((receipt_id, receipt))
            except Exception as exc:  # noqa: BLE001 - kept as this row's reason
                found.append((receipt_id, _Unreadable(_reason(exc))))
        return found

    async def _index_accesses(self) -> int:
        if self._access is None:
            if self._access_path is None or not self._access_path.exists():
                return 0  # no gateway (yet)
            self._access = AccessRows(self._access_path)
        rows = self._access.after(self.position(_ACCESSES), self.batch)
        tenants = set(self.tenants())
        parts: list[tuple[str, int, str]] = []
        for access_id, access in rows:
            try:
                if isinstance(access, AccessRowError):
                    raise access
                parts.append(("", access_id, access_quads(access, tenants)))
            except AccessRowError as exc:
                self._quarantine("access", "", access_id, str(exc))
            except Exception as exc:  # noqa: BLE001 - this row's fault, whatever it is: set aside
                self._quarantine("access", "", access_id, _reason(exc))
        if parts:
            await self._load("access", parts)
        if rows:
            self._save(_ACCESSES, rows[-1][0])
        return len(rows)

    def close(self) -> None:
        if self._access is not None:
            self._access.close()
            self._access = None

    # -- what the index was built with ---------------------------------------------------------

    async def _check_settings(self) -> None:
        """Rebuild the graphs built with another list of personal attributes, another index
        format or other pseudonym keys (creating the keys missing first)."""
        self.pseudonyms.ensure()
        tenants = self.tenants()
        wanted_personal = json.dumps(sorted(self.personal))
        wanted_format = str(INDEX_FORMAT)
        keys = {tenant: self.pseudonyms.configuration(tenant) for tenant in tenants}
        built_personal, built_format = self._setting("personal"), self._setting("format")
        try:
            built_keys = json.loads(self._setting("pseudonyms") or "{}")
        except ValueError:
            built_keys = None
        if not isinstance(built_keys, dict):
            built_keys = {}  # unreadable: as if nothing were recorded (the graphs are rebuilt)
        everything = built_personal != wanted_personal or built_format != wanted_format
        for tenant in tenants:
            if self.position(tenant) == 0:
                continue
            if everything:
                why = (
                    f"personal attributes {built_personal or '(none recorded)'}, now {wanted_personal}"
                    if built_personal != wanted_personal
                    else f"index format {built_format or '1'}, now {wanted_format}"
                )
            elif not self._same_pseudonyms(built_keys.get(tenant), keys[tenant], self._setting(f"received:{tenant}")):
                why = "other pseudonym keys"
            else:
                continue
            log.warning("the RDF index of %s was built with %s: rebuilding its graphs", tenant, why)
            await self._clear(tenant)
        self._set("personal", wanted_personal)
        self._set("format", wanted_format)
        self._set("pseudonyms", json.dumps({**built_keys, **keys}, sort_keys=True))
        skipped = sorted(t for t in self._ledger.tenants() if t not in tenants)
        if skipped:
            log.warning("records of collectivities that are not configured are not indexed: %s", skipped)
        self._settings_checked = True

    @staticmethod
    def _same_pseudonyms(built: Any, wanted: list[list[str | None]], last_day: str | None) -> bool:
        """Whether records indexed with keys ``built`` keep their pseudonyms under ``wanted``:
        the same keys, or the same followed by rotations that start after ``last_day``."""
        if built == wanted:
            return True
        if not isinstance(built, list) or wanted[: len(built)] != built or last_day is None:
            return False
        return all(isinstance(start, str) and start > last_day for start, _ in wanted[len(built) :])

    async def _clear(self, tenant: str) -> None:
        for graph in (graph_iri(tenant), personal_graph_iri(tenant), access_graph_of(tenant)):
            await self._store.clear_graph(graph)
        self._save(tenant, 0)
        self._save("", 0)
        self._save(_ACCESSES, 0)
        self._db.execute("DELETE FROM prov_index_settings WHERE name = ?", (f"received:{tenant}",))
        # read again from the start: what is still bad is quarantined again
        self._db.execute(
            "DELETE FROM prov_index_quarantine WHERE (kind = 'record' AND tenant = ?) OR kind != 'record'", (tenant,)
        )
        self._static_written.clear()

    def _receipts_position(self) -> int:
        row = self._db.execute("SELECT next FROM prov_index_position WHERE what = ''").fetchone()
        return 0 if row is None else int(row[0])

    # -- running -------------------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Index until nothing is left; returns how many records, receipts and accesses were read."""
        total = 0
        while (done := await self.index_round()) > 0:
            total += done
        return total

    async def run(self, *, idle_s: float = 0.5, retry_s: float = 5.0) -> None:
        """Index for ever: a round whenever woken or every ``idle_s``. Store outages are waited
        out; any other failure of a round (a full disk, a bug) is logged and the round tried
        again after ``retry_s``: bad rows are quarantined, so no row is tried for ever."""
        while True:
            try:
                done = await self.index_round()
            except RdfStoreUnavailable as exc:
                log.warning("RDF store unavailable, indexing again in %.0f s: %s", retry_s, _reason(exc))
                await asyncio.sleep(retry_s)
                continue
            except Exception:  # noqa: BLE001 - the indexer outlives any round
                log.exception("an indexing round failed; trying again in %.0f s", retry_s)
                await asyncio.sleep(retry_s)
                continue
            if done == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), idle_s)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)  # let ingestion run between rounds

    async def rebuild(self, tenant: str) -> int:
        """Drop ``tenant``'s graphs and index its log again; returns the records indexed."""
        await self._clear(tenant)
        return await self.catch_up()


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """A stored row that did not read, and why."""

    reason: str


@dataclass(slots=True)
class _Loading:
    """A chunk being loaded by the store: where its collectivity's position goes once it is in."""

    task: asyncio.Task[None]
    tenant: str
    position: int
    parts: list[tuple[int, str]]
    day: str | None
