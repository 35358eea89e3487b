"""Fixtures of the end-to-end tests: the fleet, the embedded broker on a real port, its reader,
and the adapter running in-process (``AdapterService``) from a generated TOML file.

Each test gets its own Mosquitto (``restartable_mosquitto`` from ``tests/conftest.py``), so the
adapter's persistent MQTT sessions of one test never queue messages of another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapter.demo.fleet import FleetDevice, build_fleet
from tests.e2e.support import BrokerReader, EmbeddedBroker


@pytest.fixture
def fleet() -> list[FleetDevice]:
    """The demo fleet (100 devices of ville, region and eau); its counters are the test's own."""
    return build_fleet()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    embedded = EmbeddedBroker(tmp_path / "broker.sqlite")
    await embedded.start()
    try:
        yield embedded
    finally:
        await embedded.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def reader(session: aiohttp.ClientSession, broker: EmbeddedBroker) -> BrokerReader:
    return BrokerReader(session, broker.url)
