"""One collectivity's integrity log: the API that the pipeline, the HTTP layer and verifiers use.

Why one log per collectivity: each collectivity answers for its own figures with its own key.
A partner who relies on a collectivity's data needs that collectivity's verifier key and log,
nothing else, and no collectivity can rewrite another's history.

Write side (pipeline): ``append`` / ``extend`` put the SHA-256 digest of each record's canonical
form in the Merkle tree. With an ``SQLiteStore`` on the pipeline's connection, this happens in
the caller's transaction, together with the outbox. ``signed_checkpoint`` signs the current
tree head; the caller does so at a regular interval and publishes the result.

Read side (HTTP): ``read_resource`` serves tlog-tiles up to the size of the published
checkpoint; ``inclusion_proof`` and ``consistency_proof`` serve clients that do not read tiles.

Verify side: ``verify_record`` and ``verify_extension`` need only the signed checkpoints, the
proofs and the collectivity's verifier key: never this log or its store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapter.provenance.integrity import IntegrityError
from adapter.provenance.integrity.canonical import (
    CanonicalizationError,
    JSONValue,
    record_digest,
)
from adapter.provenance.integrity.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from adapter.provenance.integrity.merkle import (
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from adapter.provenance.integrity.note import NoteSigner, NoteVerifier
from adapter.provenance.integrity.storage import MerkleStore
from adapter.provenance.integrity.tiles import read_resource

__all__ = ["CollectivityLog", "LogEntry", "verify_extension", "verify_record"]


@dataclass(frozen=True)
class LogEntry:
    """Where a record went: its leaf ``index`` and its ``digest`` (the leaf's entry)."""

    index: int
    digest: bytes


class CollectivityLog:
    """The log of the collectivity whose key is ``signer``; the key's name is the log's origin."""

    def __init__(self, store: MerkleStore, signer: NoteSigner) -> None:
        self._tree = MerkleTree(store)
        self._signer = signer

    @property
    def origin(self) -> str:
        """The log's name in its checkpoints, and its key's name."""
        return self._signer.name

    @property
    def verifier(self) -> NoteVerifier:
        """The public key that partners use to check this log's checkpoints."""
        return self._signer.verifier

    @property
    def tree(self) -> MerkleTree:
        """The Merkle tree of record digests."""
        return self._tree

    def append(self, record: dict[str, JSONValue]) -> LogEntry:
        """Log ``record``; ``CanonicalizationError`` (and nothing logged) if not canonicalisable."""
        return self.extend([record])[0]

    def extend(self, records: Iterable[dict[str, JSONValue]]) -> list[LogEntry]:
        """Log ``records`` in order, all or none."""
        digests = [record_digest(record) for record in records]
        indexes = self._tree.extend(digests)
        return [LogEntry(index, digest) for index, digest in zip(indexes, digests)]

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        """The (unsigned) tree head at ``size`` (default: now)."""
        size = self._tree.size() if size is None else size
        return Checkpoint(self.origin, size, self._tree.root(size))

    def signed_checkpoint(self, size: int | None = None) -> bytes:
        """The tree head at ``size`` (default: now) as a signed note, ready to publish."""
        return sign_checkpoint(self.checkpoint(size), [self._signer])

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The proof that leaf ``index`` is in the tree of ``size``."""
        return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The proof that the tree of ``new_size`` extends the tree of ``old_size``."""
        return self._tree.consistency_proof(old_size, new_size)

    def read_resource(self, path: str, tree_size: int) -> bytes:
        """The tlog-tiles resource at ``path`` for the published tree of ``tree_size``."""
        return read_resource(self._tree.store, path, tree_size)


def verify_record(
    record: dict[str, JSONValue],
    index: int,
    proof: Sequence[bytes],
    signed_checkpoint: bytes,
    origin: str,
    verifiers: Iterable[NoteVerifier],
) -> Checkpoint:
    """Check that ``record`` is leaf ``index`` of the log under a checkpoint signed by its key.

    Returns the checkpoint; raises ``IntegrityError`` naming what does not hold.
    """
    checkpoint = open_checkpoint(signed_checkpoint, origin, verifiers)
    try:
        digest = record_digest(record)
    except CanonicalizationError as exc:
        raise IntegrityError(f"record has no canonical form, so it is not logged: {exc}") from exc
    verify_inclusion(leaf_hash(digest), index, checkpoint.size, proof, checkpoint.root_hash)
    return checkpoint


def verify_extension(
    old_checkpoint: bytes,
    new_checkpoint: bytes,
    proof: Sequence[bytes],
    origin: str,
    verifiers: Iterable[NoteVerifier],
) -> tuple[Checkpoint, Checkpoint]:
    """Check that the log under ``new_checkpoint`` only added to the log under ``old_checkpoint``.

    Returns both checkpoints; raises ``IntegrityError`` naming what does not hold.
    """
    keys = list(verifiers)
    old = open_checkpoint(old_checkpoint, origin, keys)
    new = open_checkpoint(new_checkpoint, origin, keys)
    verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    return old, new
