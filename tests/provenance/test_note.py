"""C2SP signed notes with Ed25519 keys, and the key strings of Go's sumdb/note.

Keys are built from RFC 8032's first Ed25519 test vector, so the signatures are known bytes.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapter.provenance.integrity import IntegrityError
from adapter.provenance.integrity.note import (
    KeyFormatError,
    NoteSigner,
    NoteVerifier,
    key_id,
    open_note,
    sign_note,
)

# RFC 8032 section 7.1, TEST 1.
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
EMPTY_MESSAGE_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
NAME = "adapter.example/log/metropole"


def signer(name: str = NAME, seed: bytes = SEED) -> NoteSigner:
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed))


def test_key_id_and_key_strings_follow_the_specification() -> None:
    expected_id = hashlib.sha256(NAME.encode() + b"\x0a\x01" + PUBLIC).digest()[:4]
    assert key_id(NAME, PUBLIC) == expected_id
    key = signer()
    assert key.verifier.public_key == PUBLIC
    assert key.key_id == expected_id
    public = base64.b64encode(b"\x01" + PUBLIC).decode()
    private = base64.b64encode(b"\x01" + SEED).decode()
    assert key.verifier.vkey == f"{NAME}+{expected_id.hex()}+{public}"
    assert key.skey == f"PRIVATE+KEY+{NAME}+{expected_id.hex()}+{private}"
    assert key.sign(b"") == EMPTY_MESSAGE_SIGNATURE
    assert NoteVerifier.from_vkey(key.verifier.vkey) == key.verifier
    assert NoteSigner.from_skey(key.skey).verifier == key.verifier
    assert SEED.hex() not in repr(key) and private not in repr(key)


def test_key_strings_round_trip_when_base64_holds_a_plus() -> None:
    keys = [signer(seed=hashlib.sha256(bytes([i])).digest()) for i in range(40)]
    assert any("+" in key.verifier.vkey.split("+", 2)[2] for key in keys)
    for key in keys:
        assert NoteVerifier.from_vkey(key.verifier.vkey) == key.verifier
        assert NoteSigner.from_skey(key.skey).verifier == key.verifier


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        NAME,
        f"{NAME}+00000000+" + base64.b64encode(b"\x01" + PUBLIC).decode(),
        f"{NAME}+{key_id(NAME, PUBLIC).hex()}+" + base64.b64encode(b"\x02" + PUBLIC).decode(),
        f"{NAME}+{key_id(NAME, PUBLIC).hex()}+" + base64.b64encode(b"\x01" + PUBLIC[:31]).decode(),
        f"{NAME}+{key_id(NAME, PUBLIC).hex()}+not base64!",
        f"{NAME}+{key_id(NAME, PUBLIC).hex()[:6]}+" + base64.b64encode(b"\x01" + PUBLIC).decode(),
        "a name+00000000+" + base64.b64encode(b"\x01" + PUBLIC).decode(),
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(KeyFormatError):
        NoteVerifier.from_vkey(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        signer().skey.replace("PRIVATE+KEY", "PUBLIC+KEY"),
        signer().skey.replace(key_id(NAME, PUBLIC).hex(), "00000000"),
        signer().verifier.vkey,
    ],
)
def test_malformed_signer_keys_are_refused(skey: str) -> None:
    with pytest.raises(KeyFormatError):
        NoteSigner.from_skey(skey)


@pytest.mark.parametrize("name", ["", "with space", "with+plus", "tab\there", "nbsp\u00a0x", "ctl\x01"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(KeyFormatError):
        signer(name)


def test_signed_note_layout() -> None:
    text = "Ognuno sta solo sul cuor della terra\n\ned \u00e8 subito sera.\n"
    note = sign_note(text, [signer()])
    signature = signer().sign(text.encode())
    line = f"\u2014 {NAME} " + base64.b64encode(key_id(NAME, PUBLIC) + signature).decode() + "\n"
    assert note == text.encode() + b"\n" + line.encode()
    assert line.encode().startswith(b"\xe2\x80\x94 ")
    opened = open_note(note, [signer().verifier])
    assert opened.text == text
    assert [s.name for s in opened.signatures] == [NAME]
    assert opened.unverified == ()


def test_unknown_keys_are_ignored_and_known_ones_must_verify() -> None:
    witness = signer("witness.example/w1", hashlib.sha256(b"witness").digest())
    impostor = signer(NAME, hashlib.sha256(b"impostor").digest())
    text = "adapter.example/log/metropole\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"
    note = sign_note(text, [signer(), witness, impostor])
    opened = open_note(note, [signer().verifier])
    assert [s.name for s in opened.signatures] == [NAME]
    # Same name, other key ID: an unknown key, ignored, as the specification requires.
    assert {(s.name, s.key_id) for s in opened.unverified} == {
        (witness.name, witness.key_id),
        (impostor.name, impostor.key_id),
    }
    assert len(open_note(note, [signer().verifier, witness.verifier]).signatures) == 2
    with pytest.raises(IntegrityError, match="no valid signature"):
        open_note(note, [])
    with pytest.raises(IntegrityError, match="no valid signature"):
        open_note(sign_note(text, [witness]), [signer().verifier])


def test_a_bad_signature_by_a_known_key_rejects_the_note() -> None:
    text = "the figures\n"
    note = sign_note(text, [signer()])
    with pytest.raises(IntegrityError, match="invalid signature"):
        open_note(note.replace(b"figures", b"figurez"), [signer().verifier])
    forged_line = sign_note("other text\n", [signer()]).split(b"\n\n")[1]
    with pytest.raises(IntegrityError, match="invalid signature"):
        open_note(text.encode() + b"\n" + forged_line, [signer().verifier])
    short = base64.b64encode(signer().key_id + bytes(10)).decode()
    with pytest.raises(IntegrityError, match="invalid signature"):
        open_note(f"{text}\n\u2014 {NAME} {short}\n".encode(), [signer().verifier])


def test_malformed_notes_are_rejected() -> None:
    note = sign_note("text\n", [signer()])
    text, line = note.split(b"\n\n")
    malformed = [
        note[:-1],
        text + b"\n" + line,
        text + b"\n\n",
        b"te\rxt\n\n" + line,
        b"te\xffxt\n\n" + line,
        text + b"\n\n" + line.replace("\u2014".encode(), b"-"),
        text + b"\n\n" + line.replace(b" ", b"", 2),
        text + b"\n\n" + line[:-10] + b"!!!!!!!!!\n",
        text + b"\n\n" + "\u2014 x AQID\n".encode(),
        text + b"\n\n" + line * 101,
    ]
    for candidate in malformed:
        with pytest.raises(IntegrityError):
            open_note(candidate, [signer().verifier])


def test_sign_note_refuses_what_cannot_be_a_note() -> None:
    with pytest.raises(ValueError):
        sign_note("no final newline", [signer()])
    with pytest.raises(ValueError):
        sign_note("tab\there\n", [signer()])
    with pytest.raises(ValueError):
        sign_note("text\n", [])
    with pytest.raises(ValueError):
        sign_note("text\n", [signer(), signer()])
