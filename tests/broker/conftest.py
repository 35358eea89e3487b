"""Fixtures of the broker tests: an in-process broker on 127.0.0.1 with its test client.

Every test gets a fresh broker (in memory unless the test names a database file), so tests
never see each other's entities, tenants or subscriptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapter.ngsild.broker import create_broker_app


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_broker_app(), host="127.0.0.1")) as test_client:
        yield test_client
