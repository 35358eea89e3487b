"""A raw TCP client for the HTTP limits tests: it sends what a slow or hostile client sends.

The tests decide when bytes are sent; they wait for the server's answer or close in bounded
loops (``GENEROUS_S``, far above the small timeouts the servers get) and assert the outcome,
never how fast it came.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["GENEROUS_S", "SMALL", "Answer", "RawClient", "raw_client", "wait_listening"]

#: the servers' timeouts in these tests, in seconds
SMALL = 0.3
#: how long a test waits at most for what the server does (seconds): a loaded machine is slow
GENEROUS_S = 20.0


@dataclass(frozen=True)
class Answer:
    """What the server sent before it closed the connection."""

    data: bytes

    @property
    def status(self) -> int | None:
        line = self.data.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) >= 2 and line[1].isdigit() else None

    @property
    def body(self) -> bytes:
        return self.data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.data else b""


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_closed(self) -> Answer:
        """Everything the server sends until it closes the connection (fails past GENEROUS_S)."""
        data = await asyncio.wait_for(self.reader.read(), GENEROUS_S)
        return Answer(data)

    async def response(self) -> tuple[bytes, bytes]:
        """One response with a Content-Length (head, body), leaving the connection open."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), GENEROUS_S)
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        body = await asyncio.wait_for(self.reader.readexactly(length), GENEROUS_S)
        return head, body


@contextlib.asynccontextmanager
async def raw_client(port: int, host: str = "127.0.0.1") -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        yield RawClient(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def wait_listening(port: int, task: asyncio.Task[None], host: str = "127.0.0.1") -> None:
    """Wait (bounded) until something accepts connections on ``port``; ``task`` must not end first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GENEROUS_S
    while True:
        if task.done():
            task.result()
            raise AssertionError("the server task ended before listening")
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return
