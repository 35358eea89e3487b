"""Fixtures of the RDF store tests: each store, and a real Oxigraph server for the remote one.

``store`` runs every contract test on both implementations: ``OxigraphStore`` on disk in the
test's folder, and ``RemoteSparqlStore`` against an Oxigraph server (the ``oxigraph`` CLI of
the test virtualenv) started once for the session and emptied before each test. A missing
binary fails the tests, it never skips them: it is installed by ``make setup``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from adapter.demo.network import LOOPBACK, free_port
from adapter.provenance.store import OxigraphStore, RdfStore, RemoteSparqlStore

OXIGRAPH = Path(sys.executable).parent / "oxigraph"
#: the server's own query time limit (``serve --timeout-s``)
SERVER_TIMEOUT_S = 3
START_TIMEOUT_S = 20.0


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/query?query=ASK%7B%7D", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def oxigraph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of an Oxigraph server on 127.0.0.1, for the whole session."""
    if not OXIGRAPH.is_file():
        pytest.fail(f"the Oxigraph server is not installed ({OXIGRAPH} not found): run `make setup`", pytrace=False)
    base = f"http://{LOOPBACK}:{free_port()}"
    command = [str(OXIGRAPH), "serve", "--location", str(tmp_path_factory.mktemp("oxigraph")),
               "--bind", base.removeprefix("http://"), "--timeout-s", str(SERVER_TIMEOUT_S)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(base):
            if process.poll() is not None:
                assert process.stderr is not None
                pytest.fail(
                    f"oxigraph exited with code {process.returncode}: {process.stderr.read().decode()}", pytrace=False
                )
            if time.monotonic() > deadline:
                pytest.fail(f"oxigraph did not answer on {base} within {START_TIMEOUT_S} s", pytrace=False)
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


async def remote_store(base: str, session: aiohttp.ClientSession) -> RemoteSparqlStore:
    """A remote store on an emptied server."""
    async with session.post(
        f"{base}/update", data="DROP SILENT ALL", headers={"Content-Type": "application/sparql-update"}
    ) as response:
        assert response.status == 204, await response.text()
    return RemoteSparqlStore(f"{base}/query", f"{base}/update", f"{base}/store", session)


@pytest.fixture(params=["oxigraph", "remote"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RdfStore]:
    if request.param == "oxigraph":
        embedded = OxigraphStore(tmp_path / "index")
        try:
            yield embedded
        finally:
            await embedded.close()
    else:
        base = request.getfixturevalue("oxigraph_server")
        async with aiohttp.ClientSession() as session:
            yield await remote_store(base, session)
