"""What a request's headers and body say: answer format, tenant, payload, @context source.

The rules are Orion-LD's (reference note, sections 1, 4 and 5):

- ``Accept``: none, ``*/*``, ``application/*`` or ``application/json`` → JSON with a ``Link``
  header; ``application/ld+json`` → ``@context`` in the body; nothing acceptable → 406;
- ``Content-Type`` of a body: ``application/json`` or ``application/ld+json`` (PATCH also
  ``application/merge-patch+json``), else 415; more than 1 MiB → 413; bad JSON → 400;
- the @context comes from the ``Link`` header with JSON, from the body with JSON-LD; a Link
  header together with a JSON-LD body, a body @context in plain JSON, or a JSON-LD body
  without @context → 400;
- ``NGSILD-Tenant`` (alias ``Fiware-Service``) is lowercased, ``[A-Za-z0-9_-]``, at most 50.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from adapter.ngsild.broker.errors import (
    BadRequestData,
    InvalidRequest,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)

__all__ = [
    "JSON",
    "JSON_LD",
    "MAX_BODY",
    "body_context_source",
    "link_context",
    "read_json",
    "request_content_type",
    "tenant_of",
    "wants_json_ld",
]

JSON = "application/json"
JSON_LD = "application/ld+json"
MERGE_PATCH = "application/merge-patch+json"
MAX_BODY = 1024 * 1024
_TENANT = re.compile(r"[A-Za-z0-9_-]{1,50}\Z")
_LINK = re.compile(r"\s*<([^>]*)>(.*)\Z", re.DOTALL)


def wants_json_ld(request: web.Request) -> bool:
    """Whether the answer carries ``@context`` in the body (``application/ld+json``)."""
    header = request.headers.get("Accept", "").strip()
    if not header:
        return False
    best: tuple[float, int] | None = None
    choice = False
    for part in header.split(","):
        media, _, parameters = part.partition(";")
        media = media.strip().lower()
        quality = 1.0
        for parameter in parameters.split(";"):
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media == JSON_LD:
            rank, ld = (quality, 2), True
        elif media == JSON:
            rank, ld = (quality, 2), False
        elif media in ("*/*", "application/*"):
            rank, ld = (quality, 1), False
        else:
            continue
        if best is None or rank > best:
            best, choice = rank, ld
    if best is None:
        raise NotAcceptable("invalid mime-type", f"no acceptable format in Accept: {header}")
    return choice


def tenant_of(request: web.Request) -> str:
    """The tenant named by the request ("" for the default tenant), checked and lowercased."""
    name = request.headers.get("NGSILD-Tenant", request.headers.get("Fiware-Service", ""))
    if name == "":
        return ""
    if not _TENANT.match(name):
        raise BadRequestData("Invalid tenant name", name)
    return name.lower()


def request_content_type(request: web.Request) -> str:
    media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media == MERGE_PATCH and request.method == "PATCH":
        return JSON
    if media not in (JSON, JSON_LD):
        raise UnsupportedMediaType("Unsupported Media Type", media or "no Content-Type header")
    return media


async def read_json(request: web.Request) -> Any:
    """The parsed body (size, JSON syntax and duplicate keys checked)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge("Payload too large", f"{request.content_length} bytes, the limit is {MAX_BODY}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge("Payload too large", f"the limit is {MAX_BODY} bytes") from exc
    if not raw.strip():
        raise InvalidRequest("Empty payload", "the request needs a JSON body")
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        raise InvalidRequest("JSON Parse Error", str(exc)) from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise BadRequestData("Duplicated key in JSON object", key)
            seen.add(key)
    return result


def link_context(request: web.Request) -> str | None:
    """The context URL of the ``Link`` header, if there is one."""
    header = request.headers.get("Link")
    if header is None:
        return None
    match = _LINK.match(header)
    if match is None or not match.group(1).strip():
        raise BadRequestData("Invalid Link header", header)
    url = match.group(1).strip()
    if ":" not in url:
        raise BadRequestData("Invalid Link header", f"not a URL: {url}")
    return url


def body_context_source(request: web.Request, content_type: str, body: Any) -> tuple[bool, Any]:
    """Where a body request's context is: ``(True, value)`` from the body, ``(False, url)`` from Link.

    For arrays (batches) with JSON-LD each item carries its own @context, checked per item.
    """
    link = link_context(request)
    if content_type == JSON_LD:
        if link is not None:
            raise BadRequestData(
                "invalid combination of HTTP headers Content-Type and Link",
                "a JSON-LD payload carries its @context in the body",
            )
        if isinstance(body, list):
            return True, None
        if not isinstance(body, dict) or "@context" not in body:
            raise BadRequestData("@context missing in JSON payload", "Content-Type is application/ld+json")
        return True, body["@context"]
    if isinstance(body, dict) and "@context" in body:
        raise BadRequestData(
            "Mismatch between /Content-Type/ and contents of the request payload body",
            "an @context in the body needs Content-Type application/ld+json",
        )
    return False, link
