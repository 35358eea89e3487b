"""Reading ``compose/docker-compose.yml`` the way Docker Compose does, without a Docker engine.

Compose interpolates ``${...}`` in every value of the file (not in its comments) before it
validates the result against the Compose Specification; ``interpolate`` does the same for the
forms the specification defines, so the tests see the file compose would run and the names of
the variables it needs. ``COMPOSE_SPEC`` is the specification's JSON schema, a copy kept beside
this module (``tests/compose/README.md`` says from where).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import REPO

__all__ = [
    "COMPOSE_DIR",
    "COMPOSE_FILE",
    "COMPOSE_SPEC",
    "DOCUMENT",
    "ENV_EXAMPLE",
    "ImageReference",
    "InterpolationError",
    "env_example_names",
    "interpolate",
    "parse_image",
    "strings",
    "variables",
]

COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
COMPOSE_SPEC: dict[str, Any] = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
DOCUMENT: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())

# $$ (a literal $), ${NAME<op><word>} with op in :- - :? ? :+ +, ${NAME}, $NAME
_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


class InterpolationError(ValueError):
    """A value compose would refuse: a required variable unset, or a malformed ``$``."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with its variables replaced from ``env``, as compose does (``$$`` is a ``$``)."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["invalid"] is not None and match["braced"] is None and match["bare"] is None:
            raise InterpolationError(f"invalid interpolation at {match.start()} in {text!r}")
        name = match["braced"] or match["bare"]
        op, word = match["op"], match["word"] or ""
        value = env.get(name)
        present, non_empty = value is not None, bool(value)
        if op in (":?", "?") and not (non_empty if op == ":?" else present):
            raise InterpolationError(f"{name} is required: {word or 'unset'}")
        if op in (":-", "-") and not (non_empty if op == ":-" else present):
            return word
        if op in (":+", "+"):
            return word if (non_empty if op == ":+" else present) else ""
        return value or ""

    return _TOKEN.sub(replace, text)


def variables(text: str) -> set[str]:
    """The names of the variables ``text`` reads (``$$`` escapes none)."""
    return {m["braced"] or m["bare"] for m in _TOKEN.finditer(text) if m["braced"] or m["bare"]}


def strings(node: Any) -> Iterator[str]:
    """Every string of a loaded YAML document, keys included (compose interpolates values only,
    but a key with a ``$`` would be a mistake worth seeing)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def interpolated(node: Any, env: Mapping[str, str]) -> Any:
    """The document with every string value interpolated (keys left as they are)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, Mapping):
        return {key: interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    return node


def env_example_names() -> list[str]:
    """The variable names ``.env.example`` assigns, in order (comments and blank lines skipped)."""
    names = []
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, _ = line.partition("=")
        if not equals or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise ValueError(f"{ENV_EXAMPLE.name} line {number}: {line!r} is not NAME=value")
        names.append(name)
    return names


@dataclass(frozen=True, slots=True)
class ImageReference:
    """``[registry/]repository[:tag][@sha256:digest]``."""

    repository: str
    tag: str | None
    digest: str | None


_IMAGE = re.compile(
    r"(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@sha256:(?P<digest>[0-9a-f]{64}))?"
)


def parse_image(text: str) -> ImageReference:
    """The parts of an image reference; ``ValueError`` if it is not one."""
    match = _IMAGE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an image reference")
    return ImageReference(match["repository"], match["tag"], match["digest"])
