"""The researchers' example SPARQL queries over the provenance index, with safe parameters.

Each query is a ``.rq`` file in this folder, readable and runnable on its own once its
parameters are written in: a comment header says what it answers and declares its
parameters, one line each (``#   $name  kind  description``), and the query uses them as
``$name`` (SPARQL's other variable sigil, which the example queries keep for parameters).

Why a loader rather than string formatting: parameters come from people (a web form, a
notebook), and a ``>`` in an IRI or a ``"`` in a literal would otherwise rewrite the query.
``load_query`` checks every value against its kind and writes it as a SPARQL term; anything
that is not exactly an IRI, a time, a hash or a name is refused with ``QueryError``, never
escaped into something else. Kinds:

``iri``        an absolute IRI (validated as Oxigraph validates IRIs; no ``<>"{}|^`\\`` or spaces)
``attribute``  an absolute IRI, or an attribute short name (letters, digits, ``_``), written as a string
``datetime``   an ISO 8601 time with a UTC offset (a string or an aware ``datetime``), as ``xsd:dateTime`` in UTC
``gateway``    a gateway id (letters, digits, ``-``, ``_``, ``.``) or its ``urn:ngsild-adapter:gateway:`` IRI
``codec``      the lowercase hex SHA-256 of a codec file, written as the codec file's IRI

>>> query = load_query("codec_version", codec="71d5...3b16")
>>> store.query(query)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pyoxigraph

from adapter import resources
from adapter.exceptions import AdapterError

__all__ = ["Parameter", "QUERY_NAMES", "QueryError", "QueryInfo", "load_query", "queries"]

_FOLDER = resources.queries_dir()
_PARAMETER_LINE = re.compile(r"#\s+\$([A-Za-z_][A-Za-z0-9_]*)\s+([a-z]+)\s+(.*)")
_PARAMETER_USE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_FORBIDDEN_IN_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\\x7f]')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_GATEWAY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_GATEWAY_PREFIX = "urn:ngsild-adapter:gateway:"


class QueryError(AdapterError, ValueError):
    """An unknown query, a missing or unexpected parameter, or a value refused for its kind."""


@dataclass(frozen=True, slots=True)
class Parameter:
    """One declared parameter of a query: its name (without ``$``), kind and description."""

    name: str
    kind: str
    description: str


@dataclass(frozen=True, slots=True)
class QueryInfo:
    """An example query: its name (the file name without ``.rq``), header comment, parameters and text."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    text: str


def _iri(value: Any, what: str) -> str:
    if not isinstance(value, str) or _SCHEME.match(value) is None or _FORBIDDEN_IN_IRI.search(value):
        raise QueryError(f"{what}: {value!r} is not an absolute IRI")
    try:
        pyoxigraph.NamedNode(value)
    except ValueError as exc:
        raise QueryError(f"{what}: {value!r} is not a valid IRI: {exc}") from exc
    return f"<{value}>"


def _attribute(value: Any, what: str) -> str:
    if isinstance(value, str) and _NAME.match(value):
        return f'"{value}"'  # a short name: only letters, digits and _, nothing to escape
    return _iri(value, what)


def _datetime(value: Any, what: str) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise QueryError(f"{what}: {value!r} is not an ISO 8601 time") from exc
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise QueryError(f"{what}: {value!r} is not a time with a UTC offset")
    lexical = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f'"{lexical}"^^<http://www.w3.org/2001/XMLSchema#dateTime>'


def _gateway(value: Any, what: str) -> str:
    if isinstance(value, str) and value.startswith(_GATEWAY_PREFIX):
        return _iri(value, what)
    if not isinstance(value, str) or _GATEWAY_ID.match(value) is None:
        raise QueryError(f"{what}: {value!r} is not a gateway id (letters, digits, '.', '_', '-')")
    return f"<{_GATEWAY_PREFIX}{value}>"


def _codec(value: Any, what: str) -> str:
    if not isinstance(value, str) or _HEX64.match(value) is None:
        raise QueryError(f"{what}: {value!r} is not a lowercase hex SHA-256")
    return f"<urn:ngsild-adapter:codec:{value}>"


_KINDS: Mapping[str, Callable[[Any, str], str]] = {
    "attribute": _attribute,
    "codec": _codec,
    "datetime": _datetime,
    "gateway": _gateway,
    "iri": _iri,
}


def _parse(name: str, text: str) -> QueryInfo:
    header: list[str] = []
    parameters: list[Parameter] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line[1:].strip())
        declared = _PARAMETER_LINE.match(line)
        if declared:
            parameter = Parameter(*declared.groups())
            if parameter.kind not in _KINDS:
                raise QueryError(f"{name}.rq: parameter ${parameter.name} has unknown kind {parameter.kind!r}")
            parameters.append(parameter)
    body_uses = {m.group(1) for line in _body_lines(text) for m in _PARAMETER_USE.finditer(line)}
    undeclared = body_uses - {p.name for p in parameters}
    if undeclared:
        raise QueryError(f"{name}.rq uses undeclared parameters {sorted(undeclared)}")
    description = "\n".join(header).strip()
    return QueryInfo(name, description, tuple(parameters), text)


def _body_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.lstrip().startswith("#")]


@cache
def queries() -> dict[str, QueryInfo]:
    """Every example query, by name (read from the ``.rq`` files once)."""
    found = {}
    for path in sorted(_FOLDER.glob("*.rq")):
        found[path.stem] = _parse(path.stem, path.read_text(encoding="utf-8"))
    return found


#: The names of the example queries.
QUERY_NAMES: tuple[str, ...] = ("accesses", "codec_version", "daily_mean_no2", "gateway_window", "lineage")


def load_query(name: str, **params: Any) -> str:
    """The text of example query ``name`` with its parameters written in as SPARQL terms.

    Every declared parameter must be given, and nothing else; each value is validated for
    its kind (see the module docstring) and refused with ``QueryError`` otherwise. Comment
    lines are left as they are.
    """
    info = queries().get(name)
    if info is None:
        raise QueryError(f"no example query named {name!r}; known: {sorted(queries())}")
    declared = {p.name: p for p in info.parameters}
    missing = sorted(set(declared) - set(params))
    unexpected = sorted(set(params) - set(declared))
    if missing or unexpected:
        raise QueryError(f"query {name}: missing parameters {missing}, unexpected parameters {unexpected}")
    terms = {
        key: _KINDS[parameter.kind](params[key], f"query {name}, parameter ${key}")
        for key, parameter in declared.items()
    }
    lines = []
    for line in info.text.splitlines(keepends=True):
        if not line.lstrip().startswith("#"):
            line = _PARAMETER_USE.sub(lambda m: terms[m.group(1)], line)
        lines.append(line)
    return "".join(lines)
