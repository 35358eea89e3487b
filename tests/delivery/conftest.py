"""Fixtures of the delivery tests: a fake broker on 127.0.0.1, a client session, an outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapter.deadletter import DeadLetterStore
from adapter.outbox import Outbox
from tests.delivery.fake_broker import FakeBroker
from tests.delivery.support import HOST


@pytest.fixture
def fake() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
async def broker_url(fake: FakeBroker) -> AsyncIterator[str]:
    async with TestServer(fake.app(), host=HOST) as server:
        yield str(server.make_url("")).rstrip("/")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.open(tmp_path / "outbox.sqlite")
    yield box
    box.close()


@pytest.fixture
def dead_letters(tmp_path: Path) -> Iterator[DeadLetterStore]:
    store = DeadLetterStore(tmp_path / "deadletters.sqlite")
    yield store
    store.close()
