"""HTTP servers that no slow or huge client can hold: an aiohttp application served with limits.

Every HTTP server of the project (``listen``'s port, ``serve``, ``ngsild-adapter broker``, the
gateway) starts through ``serving`` (or ``serve_forever``) with a ``ServerLimits``:

``header_timeout_s``
    A request head (request line and headers) must be complete within this time of its first
    byte, and the first one within this time of the connection's opening. Otherwise the client
    gets ``408 Request Timeout`` (if it sent anything) and the connection is closed. aiohttp
    3.14 has no such timeout: its keep-alive timer is the only bound on a head sent one byte
    at a time, and it is reset only after a response.
``body_timeout_s``
    The whole body must arrive within this time of the handler's start. Otherwise a handler
    reading it gets ``HTTPRequestTimeout`` (408, answered through the application's own
    middlewares) and the connection is closed after the answer; one that does not read it
    (or has answered already) has its connection closed.
``keepalive_timeout_s``
    An idle connection (no request under way) is closed after this time (aiohttp's
    ``keepalive_timeout``; aiohttp's default is an hour). aiohttp also closes, without an
    answer, a connection that has not delivered a complete head this long after it opened or
    after its last answer: keep ``header_timeout_s`` below it (the defaults do) for the 408.
``max_line_bytes``, ``max_field_bytes``, ``max_headers``
    The request line, each header, and the number of headers (aiohttp's ``max_line_size``,
    ``max_field_size``, ``max_headers``): past them the answer is ``400`` and the connection
    is closed.
``max_body_bytes``
    A body declared larger (``Content-Length``) is refused with ``413`` before a byte of it is
    read, and the connection closed; a chunked body is refused when reading passes the limit
    (the application's ``client_max_size``, lowered to this when it is larger).

What is not bounded here: the time a client takes to read the answer (a slow reader holds
its handler on a full socket buffer), and the number of connections (the operating system's
backlog, and a proxy in front in production).

How it is built. aiohttp keeps the protocol: each connection is aiohttp's own
``RequestHandler``, made by the runner's ``web.Server`` with the runner's settings, inside a
thin ``asyncio.Protocol`` (``_Guard``) that forwards every call and keeps the head deadline.
The request factory (``web.Server.request_factory``, wrapped) is where a head is known to be
complete: it lifts that deadline, checks the declared size and sets the body deadline. To tell
"waiting for a request head" from "handling a request" the guard reads two attributes aiohttp
keeps private (``_waiter``, the future its loop awaits the next complete head on, as its own
keep-alive check does; ``_request_in_progress``); aiohttp is pinned, and ``_check_aiohttp``
(run when a server starts) fails loudly if they are gone. aiohttp's log of a request it cannot
parse (``Error handling request``, with a traceback, at ERROR) becomes one INFO line: any
client could fill the log with them; an application error keeps its traceback.

Example (tests use port 0, an ephemeral port)::

    async with serving(app, host="127.0.0.1", port=0, limits=ServerLimits(header_timeout_s=0.3)) as server:
        ...  # server.port, server.url
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

__all__ = ["DEFAULT_SERVER_LIMITS", "RunningServer", "ServerLimits", "serve_forever", "serving"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How long and how much a client may take (see the module docstring for each field).

    The defaults suit clients on a network (network servers' webhooks, the gateway's
    partners, the broker's writers): a head takes milliseconds, a 1 MiB body a fraction of a
    second even at a few Mbit/s.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 15.0
    max_line_bytes: int = 8190
    max_field_bytes: int = 8190
    max_headers: int = 100
    max_body_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ServerLimits.{name} must be a positive number of seconds")
        for name in ("max_line_bytes", "max_field_bytes", "max_headers", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServerLimits.{name} must be at least 1")


DEFAULT_SERVER_LIMITS = ServerLimits()


@dataclass(frozen=True, slots=True)
class RunningServer:
    """Where a started server listens (``port`` is the bound one, also when 0 was asked)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    *,
    host: str,
    port: int,
    limits: ServerLimits = DEFAULT_SERVER_LIMITS,
    shutdown_timeout_s: float = 60.0,
) -> AsyncIterator[RunningServer]:
    """Serve ``app`` on ``host:port`` with ``limits`` while the block runs; then shut it down.

    ``port=0`` binds an ephemeral port (``RunningServer.port`` says which). On the way out the
    application's shutdown and cleanup hooks run, requests under way get ``shutdown_timeout_s``.
    """
    _check_aiohttp()
    runner = web.AppRunner(
        app,
        access_log=None,
        logger=_ServerLog(_aiohttp_log, {}),
        keepalive_timeout=limits.keepalive_timeout_s,
        max_line_size=limits.max_line_bytes,
        max_field_size=limits.max_field_bytes,
        max_headers=limits.max_headers,
        # aiohttp reads (and drops) an unread body for up to this long after the answer.
        lingering_time=min(10.0, limits.body_timeout_s),
        shutdown_timeout=shutdown_timeout_s,
    )
    await runner.setup()
    try:
        site = _GuardedSite(runner, host, port, limits)
        await site.start()
        yield RunningServer(host, site.port)
    finally:
        await runner.cleanup()


async def serve_forever(
    app: web.Application,
    *,
    host: str,
    port: int,
    limits: ServerLimits = DEFAULT_SERVER_LIMITS,
    started: Callable[[RunningServer], None] | None = None,
) -> None:
    """``serving`` until cancelled; ``started`` is called once the port is bound (to log it)."""
    async with serving(app, host=host, port=port, limits=limits) as server:
        if started is not None:
            started(server)
        await asyncio.Event().wait()


class _ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log, with a malformed request (bad client input) as one INFO line.

    aiohttp logs every request it cannot parse (a header past the limits, a bad request line)
    as ``Error handling request`` with a traceback, at ERROR: anyone could fill the log with
    them. A failure of the application itself keeps its traceback at ERROR.
    """

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self.info("%s: %s", str(msg) % args if args else msg, exc_info.message or exc_info)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


_aiohttp_log = logging.getLogger("aiohttp.server")


# --- the site and its connections ---------------------------------------------------------------


class _GuardedSite(web.BaseSite):
    """A TCP site whose connections are aiohttp's handlers inside a ``_Guard``."""

    __slots__ = ("_bound_port", "_host", "_limits", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, limits: ServerLimits) -> None:
        super().__init__(runner)
        self._host, self._port, self._limits = host, port, limits
        self._bound_port = port

    @property
    def name(self) -> str:
        return RunningServer(self._host, self.port).url

    @property
    def port(self) -> int:
        return self._bound_port

    async def start(self) -> None:
        await super().start()  # registers the site with the runner
        server = self._runner.server
        assert server is not None  # the runner is set up before a site is made
        limits = self._limits
        loop = asyncio.get_running_loop()
        guards: dict[RequestHandler, _Guard] = {}
        # Read by each handler when it is made: set before the first connection.
        server.request_factory = _bounded_requests(server.request_factory, limits, loop, guards)

        def connection() -> asyncio.Protocol:
            return _Guard(server(), limits.header_timeout_s, loop, guards)

        self._server = await loop.create_server(connection, self._host, self._port)
        sockets = self._server.sockets
        if sockets:
            self._bound_port = sockets[0].getsockname()[1]


_TIMEOUT_TEXT = b"the request head did not arrive in time\n"
_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
    + b"Content-Length: %d\r\n\r\n" % len(_TIMEOUT_TEXT)
    + _TIMEOUT_TEXT
)


class _Guard(asyncio.Protocol):
    """One connection: aiohttp's ``RequestHandler``, plus the deadline on each request head.

    The deadline is set when the connection opens (for its first head) and when a byte of a
    later head arrives while aiohttp waits for one; it is lifted when a request starts (its
    head complete). When it passes while aiohttp still waits for the head, the connection is
    closed. A head that arrived whole, behind a request under way (pipelining), is bounded by
    the keep-alive timeout instead.
    """

    __slots__ = ("_deadline", "_guards", "_handler", "_heard", "_loop", "_timeout")

    def __init__(
        self,
        handler: RequestHandler,
        timeout: float,
        loop: asyncio.AbstractEventLoop,
        guards: dict[RequestHandler, _Guard],
    ) -> None:
        self._handler, self._timeout, self._loop, self._guards = handler, timeout, loop, guards
        self._deadline: asyncio.TimerHandle | None = None
        self._heard = False  # a byte arrived since the last request started

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._guards[self._handler] = self
        self._handler.connection_made(transport)
        self._deadline = self._loop.call_later(self._timeout, self._head_overdue)

    def data_received(self, data: bytes) -> None:
        handler = self._handler
        handler.data_received(data)
        self._heard = True
        if self._deadline is None and _awaiting_head(handler):
            self._deadline = self._loop.call_later(self._timeout, self._head_overdue)

    def request_started(self) -> None:
        """A head is complete: aiohttp makes its request (``_bounded_requests`` calls this)."""
        self._heard = False
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def eof_received(self) -> bool | None:
        self._handler.eof_received()
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guards.pop(self._handler, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._handler.connection_lost(exc)

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()

    def _head_overdue(self) -> None:
        self._deadline = None
        handler = self._handler
        transport = handler.transport
        if transport is None or transport.is_closing() or not _awaiting_head(handler):
            return
        if self._heard:  # a client that sent nothing is let go without an answer
            transport.write(_TIMEOUT_408)
        log.info(
            "closing a connection from %s: no complete request head within %g s",
            transport.get_extra_info("peername"),
            self._timeout,
        )
        handler.force_close()


def _awaiting_head(handler: RequestHandler) -> bool:
    """Whether aiohttp's loop waits for a request head that has not fully arrived (it awaits
    each head on a future of its own, set when a complete head is parsed)."""
    waiter: asyncio.Future[None] | None = getattr(handler, "_waiter")
    return waiter is not None and not waiter.done()


_RequestFactory = Callable[..., web.BaseRequest]


def _bounded_requests(
    make: _RequestFactory,
    limits: ServerLimits,
    loop: asyncio.AbstractEventLoop,
    guards: dict[RequestHandler, _Guard],
) -> _RequestFactory:
    """``make`` (aiohttp's request factory), which also lifts the head deadline and sets the body
    size limit and deadline of each request."""

    def bounded(message: Any, payload: Any, protocol: RequestHandler, writer: Any, task: Any) -> web.BaseRequest:
        guard = guards.get(protocol)
        if guard is not None:
            guard.request_started()
        request = make(message, payload, protocol, writer, task)
        if not request.body_exists:  # GET, an error answer's request
            return request
        limit = limits.max_body_bytes
        if request.client_max_size == 0 or request.client_max_size > limit:
            request = request.clone(client_max_size=limit)
        declared = request.content_length
        if declared is not None and declared > limit:
            _refuse_body(payload, protocol, web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared))
            return request
        if payload.is_eof():  # all of it arrived with the head
            return request
        deadline = loop.call_later(limits.body_timeout_s, _body_overdue, payload, protocol, limits.body_timeout_s)
        payload.on_eof(deadline.cancel)
        return request

    return bounded


def _refuse_body(payload: Any, protocol: RequestHandler, error: web.HTTPException) -> None:
    """Make the body's reader raise ``error``, stop reading the connection, close it after the answer."""
    payload.set_exception(error)
    payload.feed_eof()  # so that aiohttp does not linger reading the rest
    protocol.close()  # no further request on this connection; it closes once the answer is sent


def _body_overdue(payload: Any, protocol: RequestHandler, timeout: float) -> None:
    transport = protocol.transport
    if payload.is_eof() or payload.exception() is not None or transport is None:
        return
    log.info("request body from %s not received within %g s", transport.get_extra_info("peername"), timeout)
    if getattr(protocol, "_request_in_progress"):
        _refuse_body(
            payload, protocol, web.HTTPRequestTimeout(text=f"the request body did not arrive within {timeout:g} s")
        )
    else:  # answered already; aiohttp is reading the rest to drop it: stop
        protocol.force_close()


_PRIVATE = ("_waiter", "_request_in_progress")


def _check_aiohttp() -> None:
    """The handler attributes this module reads are still there (aiohttp is pinned)."""
    missing = [name for name in _PRIVATE if name not in RequestHandler.__slots__]
    if missing:
        raise RuntimeError(
            f"aiohttp's RequestHandler no longer has {', '.join(missing)}: adapter.httpserver cannot "
            "bound request heads and bodies; check it against the installed aiohttp"
        )
