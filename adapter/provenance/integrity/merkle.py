"""RFC 6962 / RFC 9162 Merkle tree: an append-only log with tree heads and proofs.

Hashing (RFC 6962 section 2.1, unchanged in RFC 9162 section 2.1.1): a leaf hashes as
SHA-256(0x00 || entry), an interior node as SHA-256(0x01 || left || right), the empty tree as
SHA-256 of nothing. The two prefixes keep a leaf from being passed off as a node. These are the
rules of Certificate Transparency, Go's checksum database and the C2SP tlog specifications,
so the proofs built here are checked by their tools as they are.

Why incremental: the log grows by one entry per uplink on the ingestion path. The tree stores
the hash of every complete subtree (see ``storage``), so an append hashes O(log n) nodes, and a
tree head or a proof is put together from O(log n) stored hashes per node, whatever the size.

``verify_inclusion`` and ``verify_consistency`` need no storage: they are what a partner runs,
and follow the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from adapter.provenance.integrity import IntegrityError
from adapter.provenance.integrity.storage import HashKey, MerkleStore

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

#: The root hash of the tree of size 0.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """The hash of a leaf holding ``entry``: SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleTree:
    """An append-only Merkle tree over a ``MerkleStore``; the store is its only state.

    Appends must come from one writer; reads (tree heads, proofs) may come from anywhere.
    Sizes passed to the read methods may be any size the tree has had, up to the current one.
    """

    def __init__(self, store: MerkleStore) -> None:
        self._store = store

    @property
    def store(self) -> MerkleStore:
        """Where the entries and hashes are kept."""
        return self._store

    def size(self) -> int:
        """Number of entries."""
        return self._store.size()

    def append(self, entry: bytes) -> int:
        """Add ``entry`` as the next leaf; returns its index."""
        return self.extend([entry]).start

    def extend(self, entries: Iterable[bytes]) -> range:
        """Add ``entries`` as the next leaves, all or none; returns their indexes."""
        batch = list(entries)
        start = self._store.size()
        added: dict[HashKey, bytes] = {}
        hashes: list[tuple[int, int, bytes]] = []
        for offset, entry in enumerate(batch):
            level, index = 0, start + offset
            digest = leaf_hash(entry)
            hashes.append((level, index, digest))
            added[(level, index)] = digest
            # Each trailing 1 bit of the index completes a subtree with its left sibling.
            while index & 1:
                sibling = (level, index - 1)
                left = added.get(sibling) or self._store.read_hashes([sibling])[0]
                digest = node_hash(left, digest)
                level, index = level + 1, index >> 1
                hashes.append((level, index, digest))
                added[(level, index)] = digest
        self._store.append(start, batch, hashes)
        return range(start, start + len(batch))

    def entry(self, index: int) -> bytes:
        """The entry at ``index``."""
        return self._store.read_entries(index, index + 1)[0]

    def root(self, size: int | None = None) -> bytes:
        """The root hash (RFC 6962 MTH) of the tree at ``size`` (default: now)."""
        size = self._checked_size(size)
        if size == 0:
            return EMPTY_ROOT
        return self._range_hashes([(0, size)])[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 inclusion proof (PATH) of leaf ``index`` in the tree at ``size``."""
        size = self._checked_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of size {size}")
        ranges = []
        low, high = 0, size
        while high - low > 1:
            split = low + _split(high - low)
            if index < split:
                ranges.append((split, high))
                high = split
            else:
                ranges.append((low, split))
                low = split
        return self._range_hashes(ranges[::-1])

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 9162 consistency proof (PROOF) from the tree at ``old_size`` to ``new_size``."""
        new_size = self._checked_size(new_size)
        if not 0 < old_size <= new_size:
            raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
        ranges = []
        low, high, whole_old_tree = 0, new_size, True
        while old_size != high:
            split = low + _split(high - low)
            if old_size <= split:
                ranges.append((split, high))
                high = split
            else:
                ranges.append((low, split))
                low, whole_old_tree = split, False
        if not whole_old_tree:
            ranges.append((low, high))
        return self._range_hashes(ranges[::-1])

    def _checked_size(self, size: int | None) -> int:
        current = self._store.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise ValueError(f"the tree has never had size {size} (it has {current} leaves)")
        return size

    def _range_hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """MTH of each leaf range, read from stored hashes in one batch.

        Every range the RFC 9162 recursion produces starts at a multiple of a power of two
        at least as large as the range, so it splits into complete subtrees of decreasing
        size, which hash together from the right.
        """
        subtrees = [_complete_subtrees(low, high) for low, high in ranges]
        stored = iter(self._store.read_hashes([key for keys in subtrees for key in keys]))
        result = []
        for keys in subtrees:
            hashes = [next(stored) for _ in keys]
            digest = hashes.pop()
            while hashes:
                digest = node_hash(hashes.pop(), digest)
            result.append(digest)
        return result


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (RFC 9162's k), for ``size`` >= 2."""
    return 1 << ((size - 1).bit_length() - 1)


def _complete_subtrees(low: int, high: int) -> list[HashKey]:
    """The stored subtrees that tile leaves ``[low, high)``, left to right, largest possible."""
    keys = []
    while low < high:
        level = (high - low).bit_length() - 1
        while low % (1 << level):
            level -= 1
        keys.append((level, low >> level))
        low += 1 << level
    return keys


def _check_hashes(what: str, hashes: Iterable[bytes]) -> None:
    for digest in hashes:
        if len(digest) != HASH_SIZE:
            raise IntegrityError(f"{what}: a hash of {len(digest)} bytes instead of {HASH_SIZE}")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` (a ``leaf_hash``) is leaf ``index`` of the tree of ``size`` and ``root``.

    Raises ``IntegrityError`` naming what does not hold.
    """
    _check_hashes("inclusion proof", [leaf, root, *proof])
    if not 0 <= index < size:
        raise IntegrityError(f"inclusion proof: leaf {index} cannot be in a tree of size {size}")
    fn, sn, digest = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise IntegrityError("inclusion proof: longer than the tree is deep")
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = node_hash(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise IntegrityError("inclusion proof: shorter than the tree is deep")
    if digest != root:
        raise IntegrityError(f"inclusion proof: leaf {index} does not lead to the tree's root hash")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``new_size`` and ``new_root`` extends the one of ``old_size``.

    Raises ``IntegrityError`` naming what does not hold.
    """
    _check_hashes("consistency proof", [old_root, new_root, *proof])
    if not 0 < old_size <= new_size:
        raise IntegrityError(f"consistency proof: no proof from size {old_size} to {new_size}")
    if old_size == new_size:
        if proof:
            raise IntegrityError("consistency proof: must be empty between equal sizes")
        if old_root != new_root:
            raise IntegrityError(f"consistency proof: two different trees of size {old_size}")
        return
    if not proof:
        raise IntegrityError("consistency proof: empty between different sizes")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_digest = new_digest = path[0]
    for sibling in path[1:]:
        if sn == 0:
            raise IntegrityError("consistency proof: longer than the tree is deep")
        if fn & 1 or fn == sn:
            old_digest = node_hash(sibling, old_digest)
            new_digest = node_hash(sibling, new_digest)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_digest = node_hash(new_digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise IntegrityError("consistency proof: shorter than the tree is deep")
    if old_digest != old_root:
        raise IntegrityError(f"consistency proof: does not lead to the root of size {old_size}")
    if new_digest != new_root:
        raise IntegrityError(f"consistency proof: does not lead to the root of size {new_size}")
