"""Answers no honest broker gives, from a broker (or a proxy in front of it) that is broken or
hostile: JSON nested past the parser's depth, a redirect, an answer of many megabytes. None may
stop the writer, and none may make an entity count as delivered: each ends in the outbox (to
retry) or as a dead letter that says what the broker answered. A small aiohttp server on
127.0.0.1 gives each answer; the test decides which."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapter.deadletter import DeadLetterStore
from adapter.delivery import BROKER_UNCONFIRMED
from adapter.ngsild.client import MAX_ANSWER_BYTES, BrokerRejectedRequest, NgsiLdClient
from adapter.outbox import Outbox
from tests.delivery.support import HOST, make_entity, queue, running, writer_for
from tests.support import eventually

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _deep(_: web.Request) -> web.Response:
    return web.Response(status=207, body=b"[" * 200_000 + b"]" * 200_000, content_type="application/json")


async def _huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=207, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    chunk = b" " * 1_048_576
    for _ in range(MAX_ANSWER_BYTES // len(chunk) + 2):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _redirect(_: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/moved"})


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[dict[str, Answer], list[str], str]]:
    """(the answer to give to the next upsert, the requests seen, the base URL)."""
    answer: dict[str, Answer] = {}
    seen: list[str] = []

    async def upsert(request: web.Request) -> web.StreamResponse:
        seen.append(f"{request.method} {request.path}")
        return await answer["upsert"](request)

    async def moved(request: web.Request) -> web.Response:  # where a followed redirect would land
        seen.append(f"{request.method} {request.path}")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/ngsi-ld/v1/entityOperations/upsert", upsert)
    app.router.add_route("*", "/moved", moved)
    async with TestServer(app, host=HOST) as server:
        yield answer, seen, str(server.make_url("")).rstrip("/")


@pytest.mark.parametrize("shape", ["deep", "huge"])
async def test_an_unreadable_answer_leaves_each_entity_unconfirmed_and_the_writer_running(
    hostile,
    outbox: Outbox,
    dead_letters: DeadLetterStore,
    session: aiohttp.ClientSession,
    shape: str,
) -> None:
    answer, seen, url = hostile
    answer["upsert"] = _deep if shape == "deep" else _huge
    writer = writer_for(outbox, url, session, dead_letters)
    async with running(writer) as task:
        queue(outbox, [make_entity(1), make_entity(2)])
        writer.wake()
        await eventually(lambda: outbox.depth() == 0, "both entities concluded", timeout=60)
        assert not task.done()
    assert dead_letters.counts() == {BROKER_UNCONFIRMED: 2}  # sent together, then each alone
    assert len(seen) == 3 and outbox.metrics().delivered == 0


async def test_a_redirect_is_not_followed_and_nothing_counts_as_delivered(
    hostile,
    outbox: Outbox,
    dead_letters: DeadLetterStore,
    session: aiohttp.ClientSession,
) -> None:
    answer, seen, url = hostile
    answer["upsert"] = _redirect
    with pytest.raises(BrokerRejectedRequest, match="HTTP 302 redirect to '/moved'"):
        await NgsiLdClient(url, session).batch_upsert("ville", [make_entity(1)])
    writer = writer_for(outbox, url, session, dead_letters)
    async with running(writer) as task:
        queue(outbox, [make_entity(1)])
        writer.wake()
        await eventually(lambda: outbox.metrics().retried >= 1, "the redirect read as a failure to retry", timeout=30)
        assert not task.done()
    assert "GET /moved" not in seen and outbox.depth() == 1
    assert outbox.metrics().delivered == 0 and dead_letters.counts() == {}
