"""Shared fixtures of the integrity tests: a large tree, and Go's independent verifier.

``goverify`` builds the Go program of ``goverify/`` once per session into a temporary
directory (the first build downloads golang.org/x/mod through the Go module proxy; ``make
setup`` downloads it beforehand). A missing Go toolchain fails the tests: it is never a skip,
since these are the checks that do not trust our own code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.provenance.integrity.merkle import MerkleTree
from adapter.provenance.integrity.storage import MemoryStore
from tests.provenance.support import BIG_TREE_SIZE, GoVerify, big_entry

GOVERIFY_SOURCE = Path(__file__).parent / "goverify"
BUILD_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def big_tree() -> MerkleTree:
    tree = MerkleTree(MemoryStore())
    tree.extend(big_entry(i) for i in range(BIG_TREE_SIZE))
    return tree


@pytest.fixture(scope="session")
def goverify(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoVerify]:
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            "the Go toolchain is not on PATH: run `make setup`, which installs Go and "
            "downloads golang.org/x/mod for the independent checks of the integrity log",
            pytrace=False,
        )
    binary = tmp_path_factory.mktemp("goverify") / "goverify"
    # -buildvcs=false: the build must not call git; GOTOOLCHAIN=local: nor fetch another Go.
    env = {**os.environ, "GOFLAGS": "-mod=mod -buildvcs=false", "GOTOOLCHAIN": "local"}
    try:
        build = subprocess.run(
            [go, "build", "-o", str(binary), "."],
            cwd=GOVERIFY_SOURCE,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`go build` of {GOVERIFY_SOURCE} took over {BUILD_TIMEOUT_S} s", pytrace=False)
    if build.returncode != 0:
        pytest.fail(f"`go build` of {GOVERIFY_SOURCE} failed:\n{build.stderr}", pytrace=False)
    yield GoVerify(binary)
