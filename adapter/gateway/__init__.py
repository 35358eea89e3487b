"""HTTP surfaces of the adapter.

They call into the domain modules (``adapter.provenance``...), never the reverse. Errors are
RFC 9457 problem details (``problem``), as the NGSI-LD API answers them.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["PROBLEM_JSON", "problem"]

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, *, type: str = "about:blank") -> web.Response:
    """An RFC 9457 problem-details answer."""
    return web.json_response(
        {"type": type, "title": title, "status": status, "detail": detail}, status=status, content_type=PROBLEM_JSON
    )
