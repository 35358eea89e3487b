"""A collectivity's log end to end: records in, signed checkpoints and proofs out, verified."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from adapter.provenance.integrity import IntegrityError
from adapter.provenance.integrity.canonical import CanonicalizationError, record_digest
from adapter.provenance.integrity.log import CollectivityLog, verify_extension, verify_record
from adapter.provenance.integrity.note import NoteSigner
from adapter.provenance.integrity.storage import MemoryStore, SQLiteStore

ORIGIN = "adapter.example/log/water-syndicate"


def uplink_record(fcnt: int, index_m3: float = 1234.5) -> dict[str, Any]:
    return {
        "device": "urn:dev:eui:70b3d57ed0001234",
        "fCnt": fcnt,
        "receivedAt": "2026-03-01T06:00:00Z",
        "values": {"waterConsumption": index_m3},
    }


@pytest.fixture
def key() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture
def log(key: NoteSigner) -> CollectivityLog:
    log = CollectivityLog(MemoryStore(), key)
    log.extend(uplink_record(fcnt) for fcnt in range(10))
    return log


def test_records_are_logged_as_their_digests(log: CollectivityLog) -> None:
    entry = log.append(uplink_record(10))
    assert (entry.index, entry.digest) == (10, record_digest(uplink_record(10)))
    assert log.tree.entry(10) == entry.digest
    with pytest.raises(CanonicalizationError):
        log.append({"value": float("nan")})
    assert log.tree.size() == 11


def test_a_logged_record_verifies_with_the_public_key_alone(log: CollectivityLog, key: NoteSigner) -> None:
    note = log.signed_checkpoint()
    proof = log.inclusion_proof(3, 10)
    checkpoint = verify_record(uplink_record(3), 3, proof, note, ORIGIN, [key.verifier])
    assert (checkpoint.size, checkpoint.root_hash) == (10, log.tree.root())


@pytest.mark.parametrize(
    ("record", "index"),
    [
        (uplink_record(3, index_m3=1234.6), 3),
        ({**uplink_record(3), "extra": True}, 3),
        (uplink_record(4), 3),
        (uplink_record(3), 4),
        ({"value": float("inf")}, 3),
    ],
)
def test_an_altered_record_does_not_verify(
    log: CollectivityLog, key: NoteSigner, record: dict[str, Any], index: int
) -> None:
    note, proof = log.signed_checkpoint(), log.inclusion_proof(3, 10)
    with pytest.raises(IntegrityError):
        verify_record(record, index, proof, note, ORIGIN, [key.verifier])


def test_a_checkpoint_of_another_key_or_log_does_not_verify(log: CollectivityLog) -> None:
    proof = log.inclusion_proof(3, 10)
    other_key = NoteSigner.generate(ORIGIN)
    note = log.signed_checkpoint()
    with pytest.raises(IntegrityError):
        verify_record(uplink_record(3), 3, proof, note, ORIGIN, [other_key.verifier])
    other_log = CollectivityLog(MemoryStore(), NoteSigner.generate("adapter.example/log/city"))
    other_log.extend(uplink_record(fcnt) for fcnt in range(10))
    with pytest.raises(IntegrityError, match="not of"):
        verify_record(uplink_record(3), 3, proof, other_log.signed_checkpoint(), ORIGIN, [other_log.verifier])


def test_checkpoints_prove_the_log_only_grew(log: CollectivityLog, key: NoteSigner) -> None:
    old = log.signed_checkpoint()
    log.extend(uplink_record(fcnt) for fcnt in range(10, 25))
    new = log.signed_checkpoint()
    proof = log.consistency_proof(10, 25)
    before, after = verify_extension(old, new, proof, ORIGIN, [key.verifier])
    assert (before.size, after.size) == (10, 25)
    with pytest.raises(IntegrityError):
        verify_extension(new, old, proof, ORIGIN, [key.verifier])


def test_a_rewritten_history_is_caught(key: NoteSigner) -> None:
    honest = CollectivityLog(MemoryStore(), key)
    honest.extend(uplink_record(fcnt) for fcnt in range(10))
    old = honest.signed_checkpoint()
    # The same key signs a log where record 4 was quietly dropped: checkpoints disagree.
    rewritten = CollectivityLog(MemoryStore(), key)
    rewritten.extend(uplink_record(fcnt) for fcnt in range(20) if fcnt != 4)
    new = rewritten.signed_checkpoint()
    with pytest.raises(IntegrityError):
        verify_extension(old, new, rewritten.consistency_proof(10, 19), ORIGIN, [key.verifier])


def test_the_log_shares_the_callers_sqlite_transaction(key: NoteSigner) -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    log = CollectivityLog(SQLiteStore(db, ORIGIN), key)
    db.execute("BEGIN")
    log.append(uplink_record(1))
    db.execute("ROLLBACK")
    assert log.tree.size() == 0
    db.execute("BEGIN")
    log.append(uplink_record(1))
    db.execute("COMMIT")
    assert log.checkpoint().size == 1
    assert log.read_resource("tile/entries/000.p/1", 1) == b"\x00\x20" + record_digest(uplink_record(1))
    db.close()
