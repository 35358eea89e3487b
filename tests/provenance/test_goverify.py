"""Go's golang.org/x/mod/sumdb packages check what our Python code produced, and reject tampering.

This is the check that a partner need not trust our code: signed checkpoints opened by
``note.Open``, proofs checked by ``tlog.CheckRecord`` and ``tlog.CheckTree``, the published
tiles authenticated and read by ``tlog.TileHashReader`` (which rebuilds the proofs), entry
bundles hashed against the level-0 tiles. Each tampering is made on its own, and Go must say no.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest

from adapter.provenance.integrity.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from adapter.provenance.integrity.merkle import MerkleTree
from adapter.provenance.integrity.note import NoteSigner, NoteVerifier, open_note, sign_note
from adapter.provenance.integrity.storage import MemoryStore
from tests.provenance.support import GoVerify, big_entry, publish

ORIGIN = "adapter.example/log/region"
KEY = NoteSigner.generate(ORIGIN)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def signed(tree: MerkleTree, size: int, key: NoteSigner = KEY) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), [key]).decode()


def request(
    tree: MerkleTree,
    size: int,
    indexes: list[int],
    old_sizes: list[int],
    tiles: Path | None = None,
) -> dict[str, Any]:
    return {
        "vkey": KEY.verifier.vkey,
        "origin": ORIGIN,
        "checkpoint": signed(tree, size),
        "inclusion": [
            {
                "index": index,
                "entry": b64(tree.entry(index)),
                "proof": [b64(h) for h in tree.inclusion_proof(index, size)],
            }
            for index in indexes
        ],
        "consistency": [
            {
                "checkpoint": signed(tree, old),
                "proof": [b64(h) for h in tree.consistency_proof(old, size)],
            }
            for old in old_sizes
        ],
        "tiles": str(tiles) if tiles else "",
    }


@pytest.fixture(scope="module")
def published(big_tree: MerkleTree, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish(big_tree, big_tree.size(), tmp_path_factory.mktemp("tiles"))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 255, 256, 257, 511, 512, 513, 65535, 65536, 65537])
def test_go_accepts_checkpoints_and_proofs(goverify: GoVerify, big_tree: MerkleTree, size: int) -> None:
    indexes = sorted({0, size // 2, size - 1, min(256, size - 1)})
    old_sizes = sorted({1, (size + 1) // 2, size, min(256, size), max(1, size - 1)})
    assert goverify.verify(request(big_tree, size, indexes, old_sizes)) == "OK"


@pytest.mark.parametrize("size", [1, 255, 256, 257, 65536, 65537])
def test_go_reads_our_tiles_at_every_edge(goverify: GoVerify, big_tree: MerkleTree, size: int, tmp_path: Path) -> None:
    tiles = publish(big_tree, size, tmp_path)
    indexes = sorted({0, size - 1, size // 3})
    old_sizes = sorted({1, size, max(1, size - 1), (size + 1) // 2})
    assert goverify.verify(request(big_tree, size, indexes, old_sizes, tiles)) == "OK"


def test_go_reads_the_whole_published_log(goverify: GoVerify, big_tree: MerkleTree, published: Path) -> None:
    size = big_tree.size()
    indexes = [0, 255, 256, 65535, 65536, size - 1]
    old_sizes = [1, 256, 4097, 65536, 69999, size]
    assert goverify.verify(request(big_tree, size, indexes, old_sizes, published)) == "OK"


def flip_bit(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def flip_first(proof: list[str]) -> list[str]:
    return [b64(flip_bit(base64.b64decode(proof[0]))), *proof[1:]]


def test_go_rejects_each_tampering(goverify: GoVerify, big_tree: MerkleTree) -> None:
    size = 1000
    honest = request(big_tree, size, [123], [600])
    assert goverify.verify(honest) == "OK"
    impostor = NoteSigner.generate(ORIGIN)
    forked = MerkleTree(MemoryStore())
    forked.extend(big_entry(i) if i != 300 else b"rewritten" for i in range(600))

    def altered(**changes: Any) -> dict[str, Any]:
        return {**honest, **changes}

    inclusion, consistency = honest["inclusion"][0], honest["consistency"][0]
    proof_error = "invalid transparency proof"
    tamperings = {
        "size in checkpoint": (
            altered(checkpoint=honest["checkpoint"].replace(f"\n{size}\n", f"\n{size + 1}\n")),
            "invalid signature",
        ),
        "checkpoint by another key": (
            altered(checkpoint=signed(big_tree, size, impostor)),
            "no verifiable signatures",
        ),
        "root hash re-signed by another key": (
            altered(
                checkpoint=sign_checkpoint(Checkpoint(ORIGIN, size, flip_bit(big_tree.root(size))), [impostor]).decode()
            ),
            "no verifiable signatures",
        ),
        "checkpoint of another log": (altered(origin="adapter.example/log/city"), "origin"),
        "entry": (altered(inclusion=[{**inclusion, "entry": b64(b"forged")}]), proof_error),
        "index": (altered(inclusion=[{**inclusion, "index": 124}]), proof_error),
        "inclusion proof": (
            altered(inclusion=[{**inclusion, "proof": flip_first(inclusion["proof"])}]),
            proof_error,
        ),
        "inclusion proof truncated": (
            altered(inclusion=[{**inclusion, "proof": inclusion["proof"][:-1]}]),
            proof_error,
        ),
        "consistency proof": (
            altered(consistency=[{**consistency, "proof": flip_first(consistency["proof"])}]),
            proof_error,
        ),
        "old checkpoint of a forked log": (
            altered(consistency=[{**consistency, "checkpoint": signed(forked, 600)}]),
            proof_error,
        ),
    }
    for what, (tampered, reason) in tamperings.items():
        answer = goverify.verify(tampered)
        assert answer.startswith("FAIL:") and reason in answer, (what, answer)


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        ("tile/0/001", "inconsistent tile"),
        ("tile/0/003.p/232", "inconsistent tile"),
        ("tile/1/000.p/3", "inconsistent tile"),
        ("tile/entries/002", "entry 767 does not hash to its leaf"),
    ],
)
def test_go_rejects_a_tampered_tile(
    goverify: GoVerify, big_tree: MerkleTree, tmp_path: Path, resource: str, reason: str
) -> None:
    tiles = publish(big_tree, 1000, tmp_path)
    target = tiles / resource
    target.write_bytes(flip_bit(target.read_bytes(), at=len(target.read_bytes()) - 1))
    answer = goverify.verify(request(big_tree, 1000, [600], [], tiles))
    assert answer.startswith("FAIL:") and reason in answer, answer


def test_go_rejects_a_missing_or_truncated_tile(goverify: GoVerify, big_tree: MerkleTree, tmp_path: Path) -> None:
    tiles = publish(big_tree, 1000, tmp_path)
    shutil.rmtree(tiles / "tile" / "1")
    answer = goverify.verify(request(big_tree, 1000, [600], [], tiles))
    assert answer.startswith("FAIL:") and "no such file" in answer, answer
    tiles = publish(big_tree, 1000, tmp_path / "again")
    bundle = tiles / "tile" / "entries" / "003.p" / "232"
    bundle.write_bytes(bundle.read_bytes()[:-1])
    answer = goverify.verify(request(big_tree, 1000, [600], [], tiles))
    assert answer.startswith("FAIL:") and "entry 999: truncated" in answer, answer


def test_key_formats_and_signatures_agree_with_go(goverify: GoVerify) -> None:
    text = Checkpoint(ORIGIN, 5, bytes(32)).text
    # Ed25519 is deterministic: Go signing with our private key string gives our very bytes.
    assert goverify.sign(KEY.skey, text) == sign_note(text, [KEY])
    go_skey, go_vkey = goverify.keygen(ORIGIN)
    ours = NoteSigner.from_skey(go_skey)
    assert ours.skey == go_skey
    assert ours.verifier.vkey == go_vkey
    assert NoteVerifier.from_vkey(go_vkey) == ours.verifier
    go_note = goverify.sign(go_skey, text)
    assert open_note(go_note, [NoteVerifier.from_vkey(go_vkey)]).text == text
    assert open_checkpoint(go_note, ORIGIN, [ours.verifier]) == Checkpoint(ORIGIN, 5, bytes(32))
    go_checks_ours = {
        "vkey": go_vkey,
        "origin": ORIGIN,
        "checkpoint": sign_checkpoint(Checkpoint(ORIGIN, 5, bytes(32)), [ours]).decode(),
    }
    assert goverify.verify(go_checks_ours) == "OK"
