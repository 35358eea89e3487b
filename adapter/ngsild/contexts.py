"""Local copies of the JSON-LD @context documents, and a pyld document loader over them.

Entities name their contexts by their official URLs (so a broker or a partner can
fetch them), but the adapter never fetches anything at run time: ``contexts/index.json``
maps each URL to a file in the ``contexts/`` folder, and any other URL is an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from adapter import resources
from adapter.exceptions import ConfigError

__all__ = [
    "ADAPTER_CONTEXT",
    "CORE_CONTEXT",
    "ContextNotAvailable",
    "context_files",
    "default_contexts_dir",
    "document_loader",
    "load_context",
]

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
ADAPTER_CONTEXT = "https://w3id.org/ngsild-adapter/context.jsonld"


class ContextNotAvailable(ConfigError):
    """A JSON-LD context URL has no local copy."""


def default_contexts_dir() -> Path:
    """The shipped copies (``contexts/`` of the repository, package data in the wheel)."""
    return resources.contexts_dir()


@cache
def context_files(contexts_dir: Path | None = None) -> Mapping[str, Path]:
    folder = contexts_dir or default_contexts_dir()
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return {url: folder / name for url, name in index.items()}


@cache
def load_context(url: str, contexts_dir: Path | None = None) -> dict[str, Any]:
    """The parsed document behind a context URL (read once, then cached)."""
    path = context_files(contexts_dir).get(url)
    if path is None:
        raise ContextNotAvailable(
            f"no local copy of JSON-LD context {url}; add it to contexts/ and contexts/index.json"
        )
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def document_loader(contexts_dir: Path | None = None) -> Callable[..., dict[str, Any]]:
    """A pyld ``documentLoader`` that serves only the local copies."""

    def load(url: str, options: Any = None) -> dict[str, Any]:
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": load_context(url, contexts_dir),
        }

    return load
