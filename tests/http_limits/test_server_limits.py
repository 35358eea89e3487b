"""``adapter.httpserver``: slow or huge clients are cut off, normal ones are served.

A small application (a GET, and a POST that reads its body) served with timeouts of
``SMALL`` seconds on an ephemeral port; raw TCP clients send what a slow-loris, a slow
uploader or an oversized request sends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapter.httpserver import DEFAULT_SERVER_LIMITS, RunningServer, ServerLimits, serving
from tests.http_limits.support import GENEROUS_S, SMALL, raw_client

LIMITS = ServerLimits(
    header_timeout_s=SMALL,
    body_timeout_s=SMALL,
    keepalive_timeout_s=2 * SMALL,
    max_line_bytes=1024,
    max_field_bytes=1024,
    max_headers=20,
    max_body_bytes=4096,
)
GET = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"


class Seen:
    """What the handlers saw: bodies read, and read errors."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.errors: list[BaseException] = []


def application(seen: Seen) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def upload(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPException as exc:
            seen.errors.append(exc)
            raise
        seen.bodies.append(body)
        return web.json_response({"bytes": len(body)})

    async def refuse(request: web.Request) -> web.Response:
        raise web.HTTPUnauthorized(text="no")  # answers without reading the body

    app = web.Application(client_max_size=1024 * 1024)  # larger than LIMITS: the server's limit wins
    app.router.add_get("/hello", hello)
    app.router.add_post("/upload", upload)
    app.router.add_post("/refuse", refuse)
    return app


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RunningServer, Seen]]:
    """The application served with ``LIMITS``, or with the limits a test names (``@limits(...)``)."""
    marker = request.node.get_closest_marker("limits")
    limits = dataclasses.replace(LIMITS, **marker.kwargs) if marker else LIMITS
    seen = Seen()
    async with serving(application(seen), host="127.0.0.1", port=0, limits=limits) as running:
        yield running, seen


#: for the tests where a normal request must not race a small head timeout on a loaded machine
patient = pytest.mark.limits(header_timeout_s=GENEROUS_S, body_timeout_s=GENEROUS_S, keepalive_timeout_s=GENEROUS_S)


def post(path: str, body: bytes, *, length: int | None = None, extra: bytes = b"") -> bytes:
    declared = len(body) if length is None else length
    return f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {declared}\r\n".encode() + extra + b"\r\n" + body


# --- normal clients ---------------------------------------------------------------------------


@patient
async def test_a_normal_request_is_answered(server: tuple[RunningServer, Seen]) -> None:
    running, seen = server
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{running.url}/hello") as response:
            assert (response.status, await response.text()) == (200, "hello")
        async with session.post(f"{running.url}/upload", data=b"x" * 4096) as response:
            assert (response.status, await response.json()) == (200, {"bytes": 4096})
    assert seen.bodies == [b"x" * 4096]


@patient
async def test_a_keep_alive_connection_serves_several_requests(server: tuple[RunningServer, Seen]) -> None:
    running, _ = server
    async with raw_client(running.port) as client:
        for _ in range(3):
            await client.send(GET)
            head, body = await client.response()
            assert head.startswith(b"HTTP/1.1 200") and body == b"hello"


@patient
async def test_a_head_sent_in_pieces_within_the_timeout_is_served(server: tuple[RunningServer, Seen]) -> None:
    running, _ = server
    async with raw_client(running.port) as client:
        for piece in (GET[:5], GET[5:20], GET[20:]):
            await client.send(piece)  # no pause: well within the head timeout
        head, body = await client.response()
    assert head.startswith(b"HTTP/1.1 200") and body == b"hello"


@patient
async def test_ephemeral_port_is_reported(server: tuple[RunningServer, Seen]) -> None:
    running, _ = server
    assert running.port > 0 and running.url == f"http://127.0.0.1:{running.port}"


# --- slow heads -------------------------------------------------------------------------------


async def test_half_a_request_head_then_silence_is_answered_408_and_closed(server: tuple[RunningServer, Seen]) -> None:
    running, _ = server
    async with raw_client(running.port) as client:
        await client.send(b"GET /hello HTTP/1.1\r\nHost: te")
        answer = await client.until_closed()
    assert answer.status == 408


async def test_a_head_trickled_byte_by_byte_is_cut_off(server: tuple[RunningServer, Seen]) -> None:
    """A slow-loris: each byte comes within the timeout, the whole head does not."""
    running, _ = server
    async with raw_client(running.port) as client:
        closed = asyncio.create_task(client.until_closed())
        for byte in GET[:-2]:
            if closed.done():
                break
            await client.send(bytes([byte]))
            await asyncio.sleep(SMALL / 4)
        answer = await closed
    assert answer.status == 408


async def test_a_connection_that_sends_nothing_is_closed_without_an_answer(server: tuple[RunningServer, Seen]) -> None:
    running, _ = server
    async with raw_client(running.port) as client:
        answer = await client.until_closed()
    assert answer.data == b""


@pytest.mark.limits(header_timeout_s=1.0, keepalive_timeout_s=GENEROUS_S)
async def test_the_second_head_on_a_kept_connection_has_its_own_deadline(server: tuple[RunningServer, Seen]) -> None:
    running, _ = server
    async with raw_client(running.port) as client:
        await client.send(GET)
        head, _ = await client.response()
        assert head.startswith(b"HTTP/1.1 200")
        await client.send(b"GET /hel")
        answer = await client.until_closed()
    assert answer.status == 408


@pytest.mark.limits(header_timeout_s=GENEROUS_S)
async def test_an_idle_keep_alive_connection_is_closed(server: tuple[RunningServer, Seen]) -> None:
    running, _ = server
    async with raw_client(running.port) as client:
        await client.send(GET)
        head, _ = await client.response()
        assert b"close" not in head.lower()  # the server meant to keep it
        answer = await client.until_closed()
    assert answer.data == b""


# --- slow and large bodies -------------------------------------------------------------------


async def test_a_body_sent_too_slowly_is_refused_408_and_the_connection_closed(
    server: tuple[RunningServer, Seen],
) -> None:
    running, seen = server
    async with raw_client(running.port) as client:
        await client.send(post("/upload", b"only part", length=100))
        answer = await client.until_closed()
    assert answer.status == 408
    assert b"did not arrive" in answer.body
    assert [type(e) for e in seen.errors] == [web.HTTPRequestTimeout] and seen.bodies == []


async def test_a_body_trickled_slowly_is_cut_off(server: tuple[RunningServer, Seen]) -> None:
    running, seen = server
    async with raw_client(running.port) as client:
        closed = asyncio.create_task(client.until_closed())
        await client.send(post("/upload", b"", length=1000))
        for _ in range(1000):
            if closed.done():
                break
            try:
                await client.send(b"x")
            except ConnectionError:
                break
            await asyncio.sleep(SMALL / 4)
        try:
            answer: Any = await closed
        except ConnectionResetError:
            # cut off: the server closed with the client's bytes unread, and the reset can arrive
            # before its 408 is read (on a loaded machine it does); either way the body never got in
            answer = None
    assert (answer is None or answer.status == 408) and seen.bodies == []


async def test_an_unread_body_of_an_answered_request_does_not_hold_the_connection(
    server: tuple[RunningServer, Seen],
) -> None:
    running, _ = server
    async with raw_client(running.port) as client:
        await client.send(post("/refuse", b"part", length=1000))
        answer = await client.until_closed()
    assert answer.status == 401


async def test_a_declared_body_over_the_limit_is_refused_413_before_it_is_read(
    server: tuple[RunningServer, Seen],
) -> None:
    running, seen = server
    async with raw_client(running.port) as client:
        await client.send(post("/upload", b"", length=LIMITS.max_body_bytes + 1))  # and no body at all
        answer = await client.until_closed()
    assert answer.status == 413
    assert str(LIMITS.max_body_bytes).encode() in answer.body
    assert seen.bodies == []


async def test_a_chunked_body_over_the_limit_is_refused_413(server: tuple[RunningServer, Seen]) -> None:
    running, seen = server

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 2048

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{running.url}/upload", data=chunks()) as response:
            assert response.status == 413
    assert seen.bodies == []


# --- header limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n",  # one header too long
        b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: test\r\n\r\n",  # request line too long
        b"GET /hello HTTP/1.1\r\nHost: test\r\n"
        + b"".join(b"X-%d: 1\r\n" % n for n in range(30))
        + b"\r\n",  # too many
    ],
    ids=["long-header", "long-request-line", "too-many-headers"],
)
async def test_an_oversized_head_is_refused(
    server: tuple[RunningServer, Seen], request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    running, _ = server
    with caplog.at_level(logging.INFO, logger="aiohttp.server"):
        async with raw_client(running.port) as client:
            await client.send(request_bytes)
            answer = await client.until_closed()
    assert answer.status in (400, 431)
    # bad client input is one line of the log, not an error with a traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- the limits themselves ---------------------------------------------------------------------


def test_defaults() -> None:
    assert DEFAULT_SERVER_LIMITS == ServerLimits(
        header_timeout_s=10.0,
        body_timeout_s=30.0,
        keepalive_timeout_s=15.0,
        max_line_bytes=8190,
        max_field_bytes=8190,
        max_headers=100,
        max_body_bytes=1024 * 1024,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"header_timeout_s": 0},
        {"body_timeout_s": -1},
        {"keepalive_timeout_s": 0},
        {"max_headers": 0},
        {"max_body_bytes": 0},
    ],
)
def test_limits_that_would_disable_themselves_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ServerLimits(**bad)


@pytest.mark.limits(header_timeout_s=1.0, keepalive_timeout_s=GENEROUS_S)
async def test_many_stalled_clients_do_not_keep_their_connections(server: tuple[RunningServer, Seen]) -> None:
    """Twenty slow-loris connections at once are all cut off, and a normal client is served meanwhile."""
    running, _ = server
    opened = [await asyncio.open_connection("127.0.0.1", running.port) for _ in range(20)]
    try:
        for _, writer in opened:
            writer.write(b"GET /hello HTTP/1.1\r\n")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{running.url}/hello") as response:
                assert response.status == 200
        answers = await asyncio.gather(*(asyncio.wait_for(reader.read(), GENEROUS_S) for reader, _ in opened))
    finally:
        for _, writer in opened:
            writer.close()
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers
