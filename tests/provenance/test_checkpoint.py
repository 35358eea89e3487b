"""C2SP tlog-checkpoint: the note text of a tree head, signed and opened."""

from __future__ import annotations

import base64

import pytest

from adapter.provenance.integrity import IntegrityError
from adapter.provenance.integrity.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from adapter.provenance.integrity.note import NoteSigner, sign_note

ORIGIN = "adapter.example/log/metropole"
ROOT = bytes(range(32))
ROOT64 = base64.b64encode(ROOT).decode()


def test_text_layout_and_parsing() -> None:
    checkpoint = Checkpoint(ORIGIN, 20852163, ROOT)
    assert checkpoint.text == f"{ORIGIN}\n20852163\n{ROOT64}\n"
    assert Checkpoint.parse(checkpoint.text) == checkpoint
    extended = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext two"))
    assert extended.text == f"{ORIGIN}\n0\n{ROOT64}\next one\next two\n"
    assert Checkpoint.parse(extended.text) == extended


def test_specification_example_parses() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = Checkpoint.parse(text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert base64.b64encode(checkpoint.root_hash).decode() == text.split("\n")[2]


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n5\n{ROOT64}",
        f"{ORIGIN}\n5\n",
        f"\n5\n{ROOT64}\n",
        f"{ORIGIN}\n05\n{ROOT64}\n",
        f"{ORIGIN}\n+5\n{ROOT64}\n",
        f"{ORIGIN}\n-1\n{ROOT64}\n",
        f"{ORIGIN}\n5 \n{ROOT64}\n",
        f"{ORIGIN}\n\u0665\n{ROOT64}\n",
        f"{ORIGIN}\n5\n{ROOT64}\n\n",
        f"{ORIGIN}\n5\n{ROOT64}\next\n\n",
        f"{ORIGIN}\n5\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"{ORIGIN}\n5\n{ROOT64[:-2]}\n",
        f"{ORIGIN}\n5\n{ROOT64[:-2]}B=\n",
        f"{ORIGIN}\n5\nnot*base64\n",
    ],
)
def test_malformed_texts_are_not_checkpoints(text: str) -> None:
    with pytest.raises(IntegrityError):
        Checkpoint.parse(text)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        (ORIGIN, -1, ROOT, ()),
        (ORIGIN, 1, ROOT[:31], ()),
        (ORIGIN, 1, ROOT, ("",)),
    ],
)
def test_invalid_checkpoints_cannot_be_made(origin: str, size: int, root: bytes, extensions: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        Checkpoint(origin, size, root, extensions)


def test_signed_checkpoints_open_only_for_their_log_and_key() -> None:
    key = NoteSigner.generate(ORIGIN)
    checkpoint = Checkpoint(ORIGIN, 42, ROOT)
    note = sign_checkpoint(checkpoint, [key])
    assert note.startswith(f"{checkpoint.text}\n\u2014 {ORIGIN} ".encode())
    assert open_checkpoint(note, ORIGIN, [key.verifier]) == checkpoint
    with pytest.raises(IntegrityError, match="not of"):
        open_checkpoint(note, "adapter.example/log/city", [key.verifier])
    with pytest.raises(IntegrityError):
        open_checkpoint(note, ORIGIN, [NoteSigner.generate(ORIGIN).verifier])
    with pytest.raises(IntegrityError):
        open_checkpoint(note.replace(b"\n42\n", b"\n43\n"), ORIGIN, [key.verifier])
    with pytest.raises(IntegrityError, match="checkpoint"):
        open_checkpoint(sign_note(f"{ORIGIN}\nno size\n", [key]), ORIGIN, [key.verifier])
    with pytest.raises(ValueError):
        sign_checkpoint(checkpoint, [NoteSigner.generate("adapter.example/log/city")])
