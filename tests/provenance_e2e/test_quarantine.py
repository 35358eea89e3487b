"""No row stops the RDF indexer: bad records, receipts and access rows written straight into
the SQLite files are quarantined with their reasons, the good ones around them are indexed,
nothing is read twice across a restart, and the metric counts what was set aside."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyoxigraph
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.access.graph import AccessRowError, AccessRows, access_graph_of, access_quads
from adapter.access.log import AccessLog
from adapter.metrics import render_provenance_metrics
from adapter.provenance.indexer import RdfIndexer
from adapter.provenance.rdf import graph_iri, personal_graph_iri
from adapter.provenance.store import RdfStoreError
from tests.provenance_e2e.indexing import Setup
from tests.provenance_rdf.support import log

HOSTILE_SUBJECT = 'u 1 "quoted" <x> > {y}\nsecond line'


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    opened = Setup.open(tmp_path / "files")
    yield opened
    await opened.close()


async def held(setup: Setup, subject: str, graph: str) -> set[tuple[str, str, str]]:
    return await setup.store.quads([subject], graph)


def uplink(tenant: str, n: int) -> str:
    return f"urn:ngsild-adapter:{tenant}:uplink:{n}"


def bad_files(setup: Setup) -> dict[str, Any]:
    """Good records with bad ones among them, receipts and access rows; what was written where."""
    ville = setup.record_fixtures("ville", times=2)  # 14 records, 0..13
    setup.record_fixtures("metropole")
    good = json.loads(
        setup.db.execute("SELECT record FROM prov_record WHERE tenant = 'ville' AND idx = 2").fetchone()[0]
    )
    other_tenant = {**good, "tenant": "metropole"}
    hostile_id = json.loads(json.dumps(good))
    hostile_id["entities"][0]["id"] = HOSTILE_SUBJECT
    surrogate = json.loads(json.dumps(good))
    surrogate["entities"][0]["attributes"]["note"] = {"value": "\ud800"}  # json.dumps writes it as \ud800
    setup.set_record_text("ville", 7, '{"recordType": "uplink", "formatVersion": 1, "tenant": "vil')  # truncated
    setup.set_record_text("ville", 8, json.dumps(other_tenant))  # moved from another collectivity's log
    setup.set_record_text("ville", 9, json.dumps(hostile_id))  # an entity id with spaces, quotes, > and a newline
    setup.set_record_text("ville", 10, json.dumps(surrogate))  # parses, but a string that is no Unicode text
    setup.set_record_bytes("ville", 11, b'{"recordType": "\xff\xfe"}')  # not UTF-8: the row does not even read
    receipts = [
        setup.ledger.record_delivery(
            "ville",
            started_at="2026-11-20T09:02:12Z",
            ended_at="2026-11-20T09:02:13Z",
            broker="http://orion:1026/ngsi-ld/v1/entityOperations/upsert",
            status=201,
            software="0.1.0",
            records=[n],
        )
        for n in (0, 1, 2, 3)
    ]
    setup.db.execute("UPDATE prov_delivery SET records = '[1, 2' WHERE id = ?", (receipts[1],))
    setup.db.execute("UPDATE prov_delivery SET tenant = 'Ville de Rennes' WHERE id = ?", (receipts[2],))
    accesses = {
        "good": setup.access_row(),
        "hostile subject": setup.access_row(subject=HOSTILE_SUBJECT, organization="ville de <Rennes>"),
        "bad tenant": setup.access_row(tenant="ville> <urn:x:y> <urn:z"),
        "unknown tenant": setup.access_row(tenant="eau"),
        "no tenant": setup.access_row(tenant="-"),
        "truncated entities": setup.access_row(entities='["urn:ngsi-ld:A:1", "urn:ng'),
        "entity not an IRI": setup.access_row(entities='["AirQualityObserved 1"]'),
        "time not a time": setup.access_row(at="yesterday"),
        "last": setup.access_row(),
    }
    return {"ville": ville, "receipts": receipts, "accesses": accesses}


async def test_bad_rows_are_quarantined_and_the_good_ones_indexed(setup: Setup) -> None:
    written = bad_files(setup)
    indexer = setup.indexer()
    assert await indexer.catch_up() > 0
    quarantined = {(q.kind, q.tenant, q.position): q.reason for q in indexer.quarantine()}
    receipts, accesses = written["receipts"], written["accesses"]
    assert set(quarantined) == {
        *(("record", "ville", n) for n in (7, 8, 9, 10, 11)),
        ("delivery", "", receipts[1]),
        ("delivery", "", receipts[2]),
        *(
            ("access", "", accesses[k])
            for k in ("bad tenant", "unknown tenant", "truncated entities", "entity not an IRI", "time not a time")
        ),
    }
    reasons = {key[2] if key[0] == "record" else key: reason for key, reason in quarantined.items()}
    assert "JSONDecodeError" in reasons[7]
    assert "names collectivity 'metropole'" in reasons[8]
    assert "is not a valid IRI" in reasons[9] or "not an absolute IRI" in reasons[9]
    assert "not valid Unicode" in reasons[10]
    assert "does not read" in reasons[11]
    assert "is not a configured collectivity" in reasons[("access", "", accesses["bad tenant"])]
    assert "'eau' is not a configured collectivity" in reasons[("access", "", accesses["unknown tenant"])]
    assert "entities is not JSON" in reasons[("access", "", accesses["truncated entities"])]
    assert (
        "not a valid IRI" in reasons[("access", "", accesses["entity not an IRI"])]
        or "not an absolute IRI" in reasons[("access", "", accesses["entity not an IRI"])]
    )
    assert "not a time" in reasons[("access", "", accesses["time not a time"])]
    assert "not a configured collectivity" in reasons[("delivery", "", receipts[2])]
    # every good record is indexed, in both collectivities; no bad one left anything
    for n in set(range(14)) - {7, 8, 9, 10, 11}:
        assert await held(setup, uplink("ville", n), graph_iri("ville")), n
    for n in (7, 8, 9, 10, 11):
        assert not await held(setup, uplink("ville", n), graph_iri("ville"))
        assert not await held(setup, uplink("ville", n), personal_graph_iri("ville"))
    assert all([await held(setup, uplink("metropole", n), graph_iri("metropole")) for n in range(3)])
    assert indexer.lag() == {"metropole": 0, "ville": 0}
    # receipts 0 and 3 are indexed; the access rows too, the hostile one with its subject encoded
    for receipt in (receipts[0], receipts[3]):
        assert await held(setup, f"urn:ngsild-adapter:ville:delivery:{receipt}", graph_iri("ville"))
    access_graph = access_graph_of("ville")
    for key in ("good", "hostile subject", "last"):
        assert await held(setup, f"urn:ngsild-adapter:ville:access:{accesses[key]}", access_graph), key
    activity = await held(setup, f"urn:ngsild-adapter:ville:access:{accesses['hostile subject']}", access_graph)
    (agent,) = {o for _, p, o in activity if p.endswith("#wasAssociatedWith>")}
    pyoxigraph.NamedNode(agent[1:-1])  # a valid IRI
    assert agent.endswith(":u%201%20%22quoted%22%20%3Cx%3E%20%3E%20%7By%7D%0Asecond%20line>")
    described = await held(setup, agent[1:-1], access_graph)
    subject = next(o for _, p, o in described if p.endswith("#subject>"))
    assert pyoxigraph.Literal(HOSTILE_SUBJECT).__str__() == subject  # the literal keeps it all, escaped
    organization = next(o for _, p, o in described if p.endswith("#actedOnBehalfOf>"))
    assert organization == "<urn:ngsild-adapter:organization:ville%20de%20%3CRennes%3E>"


async def test_the_indexer_goes_on_across_a_restart_and_counts_what_it_set_aside(setup: Setup) -> None:
    written = bad_files(setup)
    first = setup.indexer()
    await first.catch_up()
    before = first.quarantine()
    first.close()
    setup = await setup.reopen()
    try:
        again = setup.indexer()
        assert await again.index_round() == 0  # nothing read twice, no bad row tried again
        assert again.quarantine() == before
        counts = again.quarantined()
        assert counts == {("record", "ville"): 5, ("record", "metropole"): 0, ("delivery", ""): 2, ("access", ""): 5}
        metrics = render_provenance_metrics({"ville": 14, "metropole": 3}, again.lag(), quarantined=counts)
        assert 'ngsild_adapter_provenance_index_quarantined_records{kind="record",tenant="ville"} 5' in metrics
        assert 'ngsild_adapter_provenance_index_quarantined_records{kind="access"} 5' in metrics
        assert 'ngsild_adapter_provenance_index_quarantined_records{kind="delivery"} 2' in metrics
        assert "# TYPE ngsild_adapter_provenance_index_quarantined_records gauge" in metrics
        # what comes next is indexed as usual
        (added,) = [setup.ledger.record(log("ville")[0]).index]
        assert await again.index_round() == 1
        assert await held(setup, uplink("ville", added), graph_iri("ville"))
        assert written["accesses"]["last"] == again.position(":access")
        again.close()
    finally:
        await setup.close()


class _FlakyStore:
    """A store that fails (not an outage: a fault of its own) the first ``failures`` writes."""

    def __init__(self, store: Any, failures: int) -> None:
        self._store, self.failures, self.writes = store, failures, 0

    async def add_nquads(self, data: str) -> None:
        self.writes += 1
        if self.writes <= self.failures:
            raise RuntimeError("disk full")
        await self._store.add_nquads(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_failing_round_does_not_end_the_indexer(setup: Setup) -> None:
    setup.record_fixtures("ville")
    store = _FlakyStore(setup.store, failures=1)
    indexer = RdfIndexer(
        setup.ledger,
        setup.db,
        store,
        tenants=["ville", "metropole"],  # type: ignore[arg-type]
        pseudonyms=setup.keys(),
    )
    task = asyncio.create_task(indexer.run(idle_s=3600, retry_s=0))
    try:
        for _ in range(10_000):  # the test decides when to look: at each turn of the loop
            if indexer.position("ville") == len(log("ville")):
                break
            await asyncio.sleep(0)
        assert indexer.position("ville") == len(log("ville")) and store.writes >= 2
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _RefusingStore(_FlakyStore):
    """A store that refuses the quads of one record (as a store refuses data it cannot parse)."""

    def __init__(self, store: Any, refused: str) -> None:
        super().__init__(store, 0)
        self.refused = refused

    async def add_nquads(self, data: str) -> None:
        if self.refused in data:
            raise RdfStoreError("invalid N-Quads: line 1")
        await self._store.add_nquads(data)


async def test_quads_the_store_refuses_quarantine_their_record_only(setup: Setup) -> None:
    setup.record_fixtures("ville")
    store = _RefusingStore(setup.store, refused=f"<{uplink('ville', 3)}>")
    indexer = RdfIndexer(setup.ledger, setup.db, store, tenants=["ville"], pseudonyms=setup.keys())  # type: ignore[arg-type]
    await indexer.catch_up()
    assert [(q.kind, q.position) for q in indexer.quarantine()] == [("record", 3)]
    assert "the RDF store refused its quads" in indexer.quarantine()[0].reason
    assert all([await held(setup, uplink("ville", n), graph_iri("ville")) for n in (0, 1, 2, 4, 5, 6)])
    assert indexer.position("ville") == len(log("ville"))


_STORED_TEXT = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["", "-", "ville", "Ville", "ville ", "ville>", "eau", 'a"b', "x\ny", "urn:ngsi-ld:A:1", "<>", "%zz"]
)


@settings(derandomize=True, database=None, max_examples=150, deadline=None)
@given(
    field=st.sampled_from(
        [
            "tenant",
            "subject",
            "issuer",
            "organization",
            "reason",
            "path",
            "username",
            "client_id",
            "agreement",
            "entity",
            "entities",
            "at",
        ]
    ),
    text=_STORED_TEXT,
)
def test_any_stored_access_row_is_indexed_as_valid_quads_or_set_aside(field: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "access.sqlite"
        AccessLog(path).close()
        values: dict[str, Any] = {
            "entity": {"entities": json.dumps([text])},
            "entities": {"entities": text},
            "at": {"at": text},
        }.get(field, {field: text})
        rows = AccessRows(path)
        try:
            _insert(path, values)
            ((access_id, parsed),) = rows.after(0, 10)
            try:
                if isinstance(parsed, AccessRowError):
                    raise parsed
                quads = access_quads(parsed, {"ville", "metropole"})
            except AccessRowError:
                return  # set aside, with its reason
            store = pyoxigraph.Store()
            store.load(quads.encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)  # valid quads, whatever the text
            assert {str(g) for g in store.named_graphs()} <= {
                f"<{access_graph_of('ville')}>",
                f"<{access_graph_of('metropole')}>",
            }
        finally:
            rows.close()


def _insert(path: Path, values: dict[str, Any]) -> None:
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
        "entities": "[]",
        **values,
    }
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute(f"INSERT INTO access ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
    finally:
        db.close()
