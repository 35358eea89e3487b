"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, in Go's ``sumdb/note`` key formats.

Why this format: a signed tree head must be checkable by tools we did not write. Go's
``golang.org/x/mod/sumdb/note``, the transparency-log witnesses and their monitors all read
this text format and these key strings, so a partner configures a collectivity's verifier key
once and may use any of them.

A note is UTF-8 text ending in a newline, a blank line, then one line per signature::

    — <key name> <base64(4-byte key ID || Ed25519 signature of the text)>

The key ID is the first four bytes of SHA-256(key name || 0x0A || 0x01 || public key), 0x01
being the Ed25519 signature type. Keys are written as Go writes them::

    verifier key  <name>+<key ID, 8 hex digits>+<base64(0x01 || 32-byte public key)>
    signer key    PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || 32-byte private seed)>

Opening a note follows the specification: signatures by unknown keys are ignored (they may be
witnesses' cosignatures), a bad signature by a known key rejects the whole note, and a note
with no valid signature by a known key is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from adapter.exceptions import AdapterError
from adapter.provenance.integrity import IntegrityError

__all__ = [
    "ED25519",
    "KeyFormatError",
    "Note",
    "NoteSigner",
    "NoteVerifier",
    "Signature",
    "key_id",
    "open_note",
    "sign_note",
]

#: Signature type identifier of Ed25519 note signatures.
ED25519 = 0x01

_EM_DASH = "\N{EM DASH} "
# The specification asks verifiers for a limit of at least 16; Go's reader accepts 100.
_MAX_SIGNATURES = 100


class KeyFormatError(AdapterError, ValueError):
    """A key name, verifier key or signer key string is malformed or inconsistent."""


def _is_valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(char.isspace() or char < " " for char in name)


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise KeyFormatError(f"invalid key name {name!r}: empty, or holds a space or a '+'")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte ID of the Ed25519 key ``public_key`` named ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def _decode_key(encoded: str, what: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise KeyFormatError(f"{what}: key is not base64") from exc
    if len(key) != 33 or key[0] != ED25519:
        raise KeyFormatError(f"{what}: not an Ed25519 key (type 0x01 and 32 bytes)")
    return key[1:]


def _parse_key_id(hex_id: str, what: str) -> bytes:
    if len(hex_id) != 8:
        raise KeyFormatError(f"{what}: key ID must be 8 hex digits")
    try:
        return bytes.fromhex(hex_id)
    except ValueError as exc:
        raise KeyFormatError(f"{what}: key ID must be 8 hex digits") from exc


@dataclass(frozen=True)
class NoteVerifier:
    """A public key that checks note signatures by ``name``."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise KeyFormatError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this key's signatures."""
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key ``<name>+<key ID>+<base64 key>``, as Go's ``NewVerifier`` reads it."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string; ``KeyFormatError`` if malformed or its key ID is wrong."""
        # Only the name and the key ID cannot hold a '+': base64 can.
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError("a verifier key is <name>+<key ID>+<base64 key>")
        name, hex_id, encoded = parts
        verifier = cls(name, _decode_key(encoded, "verifier key"))
        if _parse_key_id(hex_id, "verifier key") != verifier.key_id:
            raise KeyFormatError(f"verifier key {name}: key ID does not match name and key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without its key ID) is this key's signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class NoteSigner:
    """A private Ed25519 key that signs notes by ``name``. Its ``repr`` never shows the key."""

    __slots__ = ("_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._verifier = NoteVerifier(name, private_key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A new random key named ``name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse a signer key string (``PRIVATE+KEY+...``); ``KeyFormatError`` if malformed."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyFormatError("a signer key is PRIVATE+KEY+<name>+<key ID>+<base64 key>")
        _, _, name, hex_id, encoded = parts
        _check_name(name)
        seed = _decode_key(encoded, "signer key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if _parse_key_id(hex_id, "signer key") != signer.key_id:
            raise KeyFormatError(f"signer key {name}: key ID does not match name and key")
        return signer

    @property
    def name(self) -> str:
        """The key name that signature lines carry."""
        return self._verifier.name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this key's signatures."""
        return self._verifier.key_id

    @property
    def verifier(self) -> NoteVerifier:
        """The matching public key, to publish."""
        return self._verifier

    @property
    def skey(self) -> str:
        """The signer key string, as Go's ``GenerateKey`` writes it and ``NewSigner`` reads it."""
        seed = self._key.private_bytes_raw()
        encoded = base64.b64encode(bytes([ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message`` (without the key ID)."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"NoteSigner({self.name!r}, key ID {self.key_id.hex()})"


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        """The signature line, with its final newline."""
        encoded = base64.b64encode(self.key_id + self.signature).decode()
        return f"{_EM_DASH}{self.name} {encoded}\n"


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures verified and those by keys not known."""

    text: str
    signatures: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def _has_control_character(text: str) -> bool:
    """Signed notes hold no control characters but newlines."""
    return any(char < " " and char != "\n" for char in text)


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """The signed note of ``text`` (which ends with a newline) by each of ``signers``."""
    if not text.endswith("\n"):
        raise ValueError("a note's text ends with a newline")
    if _has_control_character(text):
        raise ValueError("a note's text holds no control characters but newlines")
    if not signers:
        raise ValueError("a note needs at least one signature")
    if len({(signer.name, signer.key_id) for signer in signers}) != len(signers):
        raise ValueError("the same key twice")
    message = text.encode()
    lines = [Signature(s.name, s.key_id, s.sign(message)).line for s in signers]
    return message + b"\n" + "".join(lines).encode()


def _parse_signature(line: str) -> Signature:
    if not line.startswith(_EM_DASH):
        raise IntegrityError("note: a signature line does not start with an em dash and a space")
    name, space, encoded = line[len(_EM_DASH) :].partition(" ")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise IntegrityError("note: a signature is not base64") from None
    if not space or not _is_valid_name(name) or len(raw) < 5:
        raise IntegrityError("note: malformed signature line")
    return Signature(name, raw[:4], raw[4:])


def open_note(note: bytes, verifiers: Iterable[NoteVerifier]) -> Note:
    """Check ``note``'s signatures against ``verifiers`` and return it opened.

    Raises ``IntegrityError`` if the note is malformed, if a signature by one of
    ``verifiers`` does not verify, or if none of them signed it.
    """
    try:
        decoded = note.decode()
    except UnicodeDecodeError:
        raise IntegrityError("note: not valid UTF-8") from None
    if _has_control_character(decoded):
        raise IntegrityError("note: holds a control character other than newline")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise IntegrityError("note: no blank line before the signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block.endswith("\n"):
        raise IntegrityError("note: no signature, or the last one does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise IntegrityError(f"note: more than {_MAX_SIGNATURES} signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    message = text.encode()
    verified: dict[tuple[str, bytes], Signature] = {}
    unverified: dict[str, Signature] = {}
    for line in lines:
        signature = _parse_signature(line)
        key = (signature.name, signature.key_id)
        verifier = known.get(key)
        if verifier is None:
            unverified.setdefault(line, signature)
        elif key not in verified:
            if not verifier.verify(message, signature.signature):
                raise IntegrityError(f"note: invalid signature by {signature.name}+{signature.key_id.hex()}")
            verified[key] = signature
    if not verified:
        raise IntegrityError("note: no valid signature by a known key")
    return Note(text, tuple(verified.values()), tuple(unverified.values()))
