"""C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): a log's signed tree head.

Why: a partner who holds a checkpoint signed by a collectivity's key holds the collectivity's
commitment to the whole log at that size. Inclusion proofs are checked against its root hash,
and two checkpoints of the same log must be consistent, or the log was rewritten. It is a
signed note (see ``note``) whose text is::

    <origin>
    <tree size, decimal, no leading zero>
    <base64 of the 32-byte RFC 6962 root hash>
    [<extension line>...]

The origin names the log (one per collectivity) and is also the name of the key that signs it,
as the specification recommends: a verifier then knows which key to expect for which log.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapter.provenance.integrity import IntegrityError
from adapter.provenance.integrity.merkle import HASH_SIZE
from adapter.provenance.integrity.note import NoteSigner, NoteVerifier, open_note, sign_note

__all__ = ["Checkpoint", "open_checkpoint", "sign_checkpoint"]

_SIZE = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's ``origin``, its ``size`` and its ``root_hash``."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        lines = (self.origin, *self.extensions)
        if not all(lines) or any("\n" in line for line in lines):
            raise ValueError("origin and extension lines are non-empty single lines")
        if self.size < 0:
            raise ValueError("a tree size is not negative")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"a root hash is {HASH_SIZE} bytes")

    @property
    def text(self) -> str:
        """The note text of this checkpoint."""
        root = base64.b64encode(self.root_hash).decode()
        lines = (self.origin, str(self.size), root, *self.extensions)
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint note text; ``IntegrityError`` if it is not one."""
        if not text.endswith("\n"):
            raise IntegrityError("checkpoint: text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or not all(lines):
            raise IntegrityError("checkpoint: fewer than three lines, or an empty line")
        origin, size, root, *extensions = lines
        if not _SIZE.fullmatch(size):
            raise IntegrityError(f"checkpoint: tree size {size!r} is not a canonical decimal")
        try:
            root_hash = base64.b64decode(root, validate=True)
        except binascii.Error:
            raise IntegrityError("checkpoint: root hash is not base64") from None
        if len(root_hash) != HASH_SIZE or base64.b64encode(root_hash).decode() != root:
            raise IntegrityError("checkpoint: root hash is not the base64 of 32 bytes")
        return cls(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[NoteSigner]) -> bytes:
    """``checkpoint`` as a signed note, signed first by the log's own key, named as its origin."""
    if not signers or signers[0].name != checkpoint.origin:
        raise ValueError(f"the first key to sign a checkpoint is named {checkpoint.origin!r}")
    return sign_note(checkpoint.text, signers)


def open_checkpoint(note: bytes, origin: str, verifiers: Iterable[NoteVerifier]) -> Checkpoint:
    """Verify a signed checkpoint of log ``origin`` and read it.

    Raises ``IntegrityError`` if no signature by ``verifiers`` holds, if any of them is
    invalid, if the text is not a checkpoint, or if it is the checkpoint of another log.
    """
    checkpoint = Checkpoint.parse(open_note(note, verifiers).text)
    if checkpoint.origin != origin:
        raise IntegrityError(f"checkpoint: of log {checkpoint.origin!r}, not of {origin!r}")
    return checkpoint
