"""Interoperability: a partner platform's client library (ngsildclient, from PyPI) against the
embedded broker: create, upsert, read, query and read the temporal history.

ngsildclient runs in its own virtualenv (``.venv-interop``, built by ``make setup``) because
it pins old httpx and aiofiles; the scenario script prints what it observed as JSON.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from adapter.demo.network import free_port
from adapter.ngsild.broker import create_broker_app
from tests.support import REPO

pytestmark = pytest.mark.integration

INTEROP_PYTHON = REPO / ".venv-interop" / "bin" / "python"
SCENARIO = Path(__file__).with_name("ngsildclient_scenario.py")


async def test_ngsildclient_creates_queries_and_reads_history(tmp_path: Path) -> None:
    if not INTEROP_PYTHON.exists():
        pytest.fail(f"{INTEROP_PYTHON} is missing: run `make setup`", pytrace=False)
    port = free_port()
    runner = web.AppRunner(create_broker_app(db_path=tmp_path / "broker.sqlite"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        process = await asyncio.create_subprocess_exec(
            str(INTEROP_PYTHON),
            str(SCENARIO),
            "127.0.0.1",
            str(port),
            "partner",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        await runner.cleanup()
    assert process.returncode == 0, stderr.decode()[-3000:]
    observed = json.loads(stdout.decode().strip().splitlines()[-1])
    assert observed["created"] is True
    assert observed["no2"] == 29.5 and observed["unitCode"] == "GQ"
    assert observed["location"] == [-1.68, 48.11]
    assert observed["query_ids"] == ["urn:ngsi-ld:AirQualityObserved:partner:station-1"]
    assert observed["query_none"] == []
    assert observed["count"] == 1
    # without the Smart Data Models context, "AirQualityObserved" is another type (default vocabulary)
    assert observed["count_without_context"] == 0
    history = observed["temporal"]
    values = history["no2"]["values"] if isinstance(history.get("no2"), dict) else history["no2"]
    assert [v[0] if isinstance(v, list) else v["value"] for v in values] in (
        [21.0, 34.5, 48.0, 29.5],
        [29.5, 48.0, 34.5, 21.0],
    )
