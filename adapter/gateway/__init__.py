"""HTTP surfaces of the adapter.

They call into the domain modules (``adapter.provenance``...), never the reverse. Errors are
RFC 9457 problem details (``problem``), as the NGSI-LD API answers them.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

__all__ = ["PROBLEM_JSON", "acceptable", "negotiate", "problem"]

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, *, type: str = "about:blank") -> web.Response:
    """An RFC 9457 problem-details answer."""
    return web.json_response(
        {"type": type, "title": title, "status": status, "detail": detail}, status=status, content_type=PROBLEM_JSON
    )


def acceptable(accept: str, offers: Sequence[str]) -> list[str]:
    """The ``offers`` an ``Accept`` header takes, best first (RFC 9110, 12.5.1: each offer gets
    the q of its most specific matching range; q=0 refuses it; ties keep the offers' order). An
    empty header takes every offer."""
    ranges: list[tuple[str, float]] = []
    for part in accept.split(",")[:64]:
        media, *parameters = part.split(";")
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media.strip():
            ranges.append((media.strip().lower(), quality if 0.0 <= quality <= 1.0 else 0.0))
    if not ranges:
        return list(offers)
    ranked = []
    for position, offer in enumerate(offers):
        wildcard = offer.split("/")[0] + "/*"
        matches = [
            (2 if media == offer else 1 if media == wildcard else 0, q)
            for media, q in ranges
            if media in (offer, wildcard, "*/*")
        ]
        quality = max(matches)[1] if matches else 0.0
        if quality > 0:
            ranked.append((-quality, position, offer))
    return [offer for _, _, offer in sorted(ranked)]


def negotiate(accept: str, offers: Sequence[str]) -> str | None:
    """The offer ``accept`` prefers, or None when it takes none of them."""
    found = acceptable(accept, offers)
    return found[0] if found else None
