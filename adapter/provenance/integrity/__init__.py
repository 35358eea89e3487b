"""Tamper-evident integrity log: the primitives, one job per module.

Every uplink yields one record; the log of a collectivity holds the SHA-256 digests of the
records' canonical forms, in an RFC 6962 Merkle tree whose heads are signed and published. A
partner who trusts only the collectivity's public key can then check that a record is in the
log (inclusion proof), that the log was only ever appended to (consistency proof), and that
the published tree matches the signed head, using Go's ``golang.org/x/mod/sumdb`` packages, a
transparency-log witness, or this package's own verifiers.

``canonical``
    RFC 8785 canonical JSON of a record, and its SHA-256 digest (the log's entries).
``merkle``
    RFC 6962/9162 Merkle tree: appends in O(log n), tree heads, inclusion and consistency
    proofs, and their verification.
``storage``
    Where the tree's entries and hashes live: in memory or in SQLite.
``note``
    C2SP signed notes with Ed25519 keys, in the key formats of Go's ``sumdb/note``.
``keys``
    A collectivity's private key file: generated on first run, mode 0600, outside the repository.
``checkpoint``
    C2SP tlog-checkpoint: the signed tree head.
``tiles``
    C2SP tlog-tiles: the static resources (hash tiles, entry bundles) that publish the log.
``log``
    One collectivity's log, tying the above together for the pipeline and for verifiers.
"""

from __future__ import annotations

from adapter.exceptions import AdapterError

__all__ = ["IntegrityError"]


class IntegrityError(AdapterError):
    """A proof, a signature or a signed document does not verify, or is malformed.

    Raised by every verification in this package: the message names what does not hold.
    """
