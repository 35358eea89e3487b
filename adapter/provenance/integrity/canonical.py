"""RFC 8785 (JCS) canonical JSON of a record, and the SHA-256 digest that stands for it in the log.

Why a canonical form: anyone, in any language, must be able to recompute a record's digest from
the record as they received it. Whitespace, key order and the spelling of numbers must not
change the digest. The JSON Canonicalization Scheme fixes all three (keys sorted by UTF-16 code
units, numbers written as ECMAScript writes them, minimal string escaping) and has
implementations in most ecosystems.

The serialisation is Trail of Bits' ``rfc8785`` package; this module fixes what a record is (a
JSON object) and reports its refusals as ``CanonicalizationError``. Refused, rather than
silently changed: integers beyond +/-(2**53 - 1) (a meter index rounded by a JSON reader would
still verify while being wrong), NaN and infinities, strings that are not valid Unicode (lone
surrogates), non-string keys and any non-JSON type.
"""

from __future__ import annotations

import hashlib
from typing import TypeAlias, Union

import rfc8785

from adapter.exceptions import AdapterError

__all__ = [
    "DIGEST_SIZE",
    "CanonicalizationError",
    "JSONValue",
    "canonicalize",
    "record_digest",
]

#: Size in bytes of a record digest (SHA-256).
DIGEST_SIZE = 32

JSONValue: TypeAlias = Union[
    None, bool, int, float, str, list["JSONValue"], tuple["JSONValue", ...], dict[str, "JSONValue"]
]


class CanonicalizationError(AdapterError, ValueError):
    """A value has no RFC 8785 canonical form (see the module docstring for what is refused)."""


def canonicalize(value: JSONValue) -> bytes:
    """The RFC 8785 canonical UTF-8 serialisation of ``value``."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalizationError(str(exc)) from exc
    except RecursionError as exc:
        raise CanonicalizationError("value is nested too deeply") from exc


def record_digest(record: dict[str, JSONValue]) -> bytes:
    """SHA-256 of the canonical form of ``record``, a JSON object: the record's log entry."""
    if not isinstance(record, dict):
        raise CanonicalizationError(f"a record is a JSON object, not {type(record).__name__}")
    return hashlib.sha256(canonicalize(record)).digest()
