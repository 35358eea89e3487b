"""What every HTTP client of the adapter shares: reading an answer that may not be bounded.

A broker, a network server's API, an issuer's keys or a SPARQL store (or a proxy in front of
any of them) can answer a body of any size, compressed or not; the adapter reads at most
what the caller allows, and no further.
"""

from __future__ import annotations

import aiohttp

__all__ = ["read_limited"]

_CHUNK = 64 * 1024


async def read_limited(response: aiohttp.ClientResponse, limit: int | None) -> bytes | None:
    """The body, decompressed, or None as soon as it passes ``limit`` bytes (None: no limit)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if limit is not None and len(body) > limit:
            return None
    return bytes(body)
