"""QuickJS agrees with Node.js on every codec of the generated corpus (tests/codecs/corpus/).

Each corpus file is a codec in one of the shapes real vendor JavaScript takes; its
``// uplink: fPort=N hex=... [variables={...}]`` lines are its inputs. Node.js is the
reference engine: ``node_reference.js`` runs the whole corpus once per test session, in
one process, and each case compares the adapter's decoding with Node's as parsed JSON.
Node is part of the machine (see the environment notes), so its absence is a failure
with a message, never a silent skip. How to add a codec: corpus/README.md.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapter.codecs.base import CodecInput
from adapter.codecs.javascript import JavaScriptCodec
from adapter.exceptions import CodecError

CORPUS = Path(__file__).parent / "corpus"
HARNESS = Path(__file__).parent / "node_reference.js"
RECEIVED_AT = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
_UPLINK = re.compile(r"^// uplink: fPort=(\d+) hex=([0-9a-fA-F]*)(?: variables=(\{.*\}))?\s*$")


@dataclass(frozen=True)
class Case:
    f_port: int
    payload: bytes
    variables: dict[str, str]

    def node_input(self) -> dict[str, Any]:
        return {
            "bytes": list(self.payload),
            "fPort": self.f_port,
            "recvTime": round(RECEIVED_AT.timestamp() * 1000),
            "variables": self.variables,
        }


def corpus_cases(path: Path) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _UPLINK.match(line)
        if match:
            variables = json.loads(match.group(3)) if match.group(3) else {}
            cases.append(Case(int(match.group(1)), bytes.fromhex(match.group(2)), variables))
    return cases


CODECS = sorted(CORPUS.glob("*.js"))
PARAMS = [
    pytest.param(path, index, id=f"{path.stem}-{index}") for path in CODECS for index in range(len(corpus_cases(path)))
]


@pytest.fixture(scope="session")
def node_outcomes() -> dict[str, list[dict[str, Any]]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js) is not on PATH: the codec corpus needs it as the reference engine")
    request = {
        "codecs": [
            {
                "name": p.name,
                "source": p.read_text(encoding="utf-8"),
                "cases": [c.node_input() for c in corpus_cases(p)],
            }
            for p in CODECS
        ]
    }
    done = subprocess.run(
        [node, str(HARNESS)], input=json.dumps(request), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"node_reference.js failed ({done.returncode}): {done.stderr[-2000:]}")
    outcomes: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return outcomes


@pytest.fixture(scope="module")
def quickjs_codecs() -> Iterator[dict[Path, JavaScriptCodec]]:
    # One runtime per file for the whole module, cases in file order: stateful codecs see
    # the same sequence as in Node.
    codecs = {path: JavaScriptCodec(path) for path in CODECS}
    yield codecs
    for codec in codecs.values():
        codec.close()


def test_the_corpus_is_large_and_every_codec_has_inputs() -> None:
    assert len(CODECS) >= 40
    for path in CODECS:
        assert corpus_cases(path), f"{path.name} has no // uplink: line"
        assert path.read_text(encoding="utf-8").startswith("// Corpus codec written for this project"), path.name


@pytest.mark.parametrize(("path", "index"), PARAMS)
def test_quickjs_agrees_with_node(
    path: Path, index: int, node_outcomes: dict[str, list[dict[str, Any]]], quickjs_codecs: dict[Path, JavaScriptCodec]
) -> None:
    expected = node_outcomes[path.name]
    assert "load" not in expected[0], expected[0]
    case = corpus_cases(path)[index]
    codec_input = CodecInput(
        payload=case.payload, f_port=case.f_port, received_at=RECEIVED_AT, variables=case.variables
    )

    try:
        actual: dict[str, Any] = {"ok": quickjs_codecs[path].decode(codec_input).to_json()}
    except CodecError as exc:
        assert exc.reason == "codec_error", exc.detail
        actual = {"thrown": exc.detail.removeprefix(f"{path.name}: ")}

    assert actual == expected[index]
