"""RFC 6962 / RFC 9162 Merkle tree: hashing, tree heads, proofs, their verification, storage.

The oracle is the recursive definition of RFC 9162 section 2.1 (MTH, PATH, PROOF/SUBPROOF),
written here as literally as possible; the incremental tree must agree with it everywhere. The
symbolic tree of RFC 6962 section 2.1.3 checks the proofs against the RFC's worked examples.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from adapter.provenance.integrity import IntegrityError
from adapter.provenance.integrity.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from adapter.provenance.integrity.storage import HashKey, MemoryStore, MerkleStore, SQLiteStore


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + d[0])
    k = largest_power_of_two_below(n)
    return sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> Iterator[MerkleStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    db = sqlite3.connect(":memory:", isolation_level=None)
    yield SQLiteStore(db, "collectivity-a")
    db.close()


def test_hashing_is_domain_separated() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == sha256(b"\x00")
    assert node_hash(b"L" * 32, b"R" * 32) == sha256(b"\x01" + b"L" * 32 + b"R" * 32)
    assert leaf_hash(b"\x01" + b"L" * 32 + b"R" * 32) != node_hash(b"L" * 32, b"R" * 32)


def test_matches_the_rfc_definitions(store: MerkleStore) -> None:
    data = entries(40)
    tree = MerkleTree(store)
    assert tree.root() == EMPTY_ROOT
    for entry in data:
        tree.append(entry)
    assert tree.size() == 40
    for n in range(0, 41):
        assert tree.root(n) == mth(data[:n])
    for n in range(1, 41):
        for m in range(n):
            assert tree.inclusion_proof(m, n) == path(m, data[:n]), (m, n)
        for m in range(1, n + 1):
            assert tree.consistency_proof(m, n) == subproof(m, data[:n], True), (m, n)


def test_every_proof_verifies() -> None:
    data = entries(70)
    tree = MerkleTree(MemoryStore())
    tree.extend(data)
    for n in range(1, 71):
        root = tree.root(n)
        for m in range(n):
            verify_inclusion(leaf_hash(data[m]), m, n, tree.inclusion_proof(m, n), root)
        for m in range(1, n + 1):
            verify_consistency(m, n, tree.root(m), root, tree.consistency_proof(m, n))


def test_rfc_6962_worked_examples() -> None:
    tree = MerkleTree(MemoryStore())
    tree.extend(entries(7))
    a, b, c, d, e, f, j = (leaf_hash(entry) for entry in entries(7))
    g, h, i = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, l = node_hash(g, h), node_hash(i, j)
    assert tree.root() == node_hash(k, l)
    assert tree.inclusion_proof(0, 7) == [b, h, l]
    assert tree.inclusion_proof(3, 7) == [c, g, l]
    assert tree.inclusion_proof(4, 7) == [f, j, k]
    assert tree.inclusion_proof(6, 7) == [i, k]
    assert tree.root(3) == node_hash(g, c)
    assert tree.root(4) == k
    assert tree.root(6) == node_hash(k, i)
    assert tree.consistency_proof(3, 7) == [c, d, g, l]
    assert tree.consistency_proof(4, 7) == [l]
    assert tree.consistency_proof(6, 7) == [i, j, k]


def test_extend_equals_appends_one_by_one(store: MerkleStore) -> None:
    one_by_one = MerkleTree(MemoryStore())
    for entry in entries(600):
        one_by_one.append(entry)
    batched = MerkleTree(store)
    assert batched.extend(entries(300)) == range(0, 300)
    assert batched.extend(entries(600)[300:]) == range(300, 600)
    assert batched.root() == one_by_one.root()
    assert [batched.entry(i) for i in (0, 299, 599)] == [b"entry 0", b"entry 299", b"entry 599"]


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read_hashes(self, keys: Sequence[HashKey]) -> list[bytes]:
        self.reads += len(keys)
        return super().read_hashes(keys)


def test_appends_and_proofs_read_logarithmically_many_hashes() -> None:
    store = CountingStore()
    tree = MerkleTree(store)
    tree.extend(entries(5000))
    depth = (5000).bit_length()
    for _ in range(3):
        store.reads = 0
        tree.append(b"more")
        assert store.reads <= depth
    size = tree.size()
    for index in (0, 2500, size - 1):
        store.reads = 0
        tree.inclusion_proof(index, size)
        assert store.reads <= depth * depth
    store.reads = 0
    tree.consistency_proof(1234, size)
    assert store.reads <= depth * depth


def test_read_methods_refuse_sizes_the_tree_never_had() -> None:
    tree = MerkleTree(MemoryStore())
    tree.extend(entries(5))
    with pytest.raises(ValueError):
        tree.root(6)
    with pytest.raises(ValueError):
        tree.inclusion_proof(5, 5)
    with pytest.raises(ValueError):
        tree.inclusion_proof(0, 6)
    with pytest.raises(ValueError):
        tree.consistency_proof(0, 5)
    with pytest.raises(ValueError):
        tree.consistency_proof(4, 3)


def flip(digest: bytes) -> bytes:
    return bytes([digest[0] ^ 1]) + digest[1:]


@pytest.fixture(scope="module")
def tree13() -> MerkleTree:
    tree = MerkleTree(MemoryStore())
    tree.extend(entries(13))
    return tree


def test_inclusion_verification_rejects_every_alteration(tree13: MerkleTree) -> None:
    leaf, root, proof = leaf_hash(b"entry 5"), tree13.root(13), tree13.inclusion_proof(5, 13)
    verify_inclusion(leaf, 5, 13, proof, root)
    # A size only changes the proof's shape, not its hashes: sizes 9 to 16 give leaf 5 the
    # same path. The signed checkpoint binds the size to the root; these sizes do not fit.
    alterations = [
        (leaf_hash(b"entry 6"), 5, 13, proof, root),
        (leaf, 4, 13, proof, root),
        (leaf, 5, 8, proof, root),
        (leaf, 5, 17, proof, root),
        (leaf, 5, 13, proof, flip(root)),
        (leaf, 5, 13, proof[:-1], root),
        (leaf, 5, 13, [*proof, proof[0]], root),
        (leaf, 5, 13, [flip(proof[1]), *proof[1:]], root),
        (leaf, 5, 13, proof[::-1], root),
        (leaf, 13, 13, proof, root),
        (leaf, -1, 13, proof, root),
        (leaf, 5, 13, [proof[0][:31], *proof[1:]], root),
        (b"entry 5".ljust(32), 5, 13, proof, root),
    ]
    for arguments in alterations:
        with pytest.raises(IntegrityError):
            verify_inclusion(*arguments)


def test_consistency_verification_rejects_every_alteration(tree13: MerkleTree) -> None:
    old, new = tree13.root(6), tree13.root(13)
    proof = tree13.consistency_proof(6, 13)
    verify_consistency(6, 13, old, new, proof)
    alterations = [
        (6, 13, flip(old), new, proof),
        (6, 13, old, flip(new), proof),
        (5, 13, old, new, proof),
        (6, 8, old, new, proof),
        (6, 17, old, new, proof),
        (7, 13, old, new, proof),
        (6, 13, old, new, proof[:-1]),
        (6, 13, old, new, [*proof, proof[0]]),
        (6, 13, old, new, [flip(proof[0]), *proof[1:]]),
        (6, 13, old, new, []),
        (0, 13, EMPTY_ROOT, new, []),
        (13, 6, new, old, proof),
        (13, 13, new, new, [new]),
        (13, 13, new, old, []),
    ]
    for arguments in alterations:
        with pytest.raises(IntegrityError):
            verify_consistency(*arguments)
    verify_consistency(13, 13, new, new, [])
    # Size 8 is a power of two: the old root itself is the proof's first step.
    verify_consistency(8, 13, tree13.root(8), new, tree13.consistency_proof(8, 13))


def test_a_forked_log_is_not_consistent() -> None:
    honest, forked = MerkleTree(MemoryStore()), MerkleTree(MemoryStore())
    honest.extend(entries(20))
    forked.extend([*entries(9), b"rewritten", *entries(20)[10:]])
    proof = honest.consistency_proof(12, 20)
    with pytest.raises(IntegrityError):
        verify_consistency(12, 20, forked.root(12), honest.root(20), proof)


def test_stores_refuse_appends_out_of_place(store: MerkleStore) -> None:
    tree = MerkleTree(store)
    tree.extend(entries(3))
    with pytest.raises(ValueError):
        store.append(2, [b"stale"], [(0, 2, leaf_hash(b"stale"))])
    with pytest.raises(ValueError):
        store.append(3, [b"x"], [(0, 2, leaf_hash(b"x"))])
    assert tree.size() == 3
    assert tree.root() == mth(entries(3))
    for missing in [(2, 0), (0, 3), (0, -1), (-1, 0)]:
        with pytest.raises(LookupError):
            store.read_hashes([missing])
    with pytest.raises(LookupError):
        store.read_entries(2, 4)


def test_sqlite_store_joins_the_callers_transaction_and_persists(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    tree = MerkleTree(SQLiteStore(db, "collectivity-a"))
    tree.extend(entries(10))
    db.execute("BEGIN")
    tree.extend(entries(20)[10:])
    assert tree.size() == 20
    db.execute("ROLLBACK")
    assert tree.size() == 10
    db.execute("BEGIN")
    tree.append(b"entry 10")
    db.execute("COMMIT")
    db.close()

    reopened = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    assert MerkleTree(SQLiteStore(reopened, "collectivity-a")).root() == mth(entries(11))
    assert MerkleTree(SQLiteStore(reopened, "collectivity-b")).size() == 0
    reopened.close()
