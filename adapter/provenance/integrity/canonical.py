"""RFC 8785 (JCS) canonical JSON of a record, and the SHA-256 digest that stands for it in the log.

Why a canonical form: anyone, in any language, must be able to recompute a record's digest from
the record as they received it. Whitespace, key order and the spelling of numbers must not
change the digest. The JSON Canonicalization Scheme fixes all three (keys sorted by UTF-16 code
units, numbers written as ECMAScript writes them, minimal string escaping) and has
implementations in most ecosystems.

The reference serialisation is Trail of Bits' ``rfc8785`` package; this module fixes what a
record is (a JSON object) and reports its refusals as ``CanonicalizationError``. Records are
canonicalised on the ingestion hot path, where ``rfc8785`` (pure Python) costs ~70 us for a
typical record; so the common case goes through the standard library's C JSON encoder, which
writes exactly the RFC 8785 form when every key is ASCII (code-point order is then UTF-16
order), every integer is within +/-(2**53 - 1), and every float is either integral (written as
the integer ECMAScript prints) or non-integral within [1e-4, 1e16) (where Python's shortest
repr and ECMAScript's Number-to-String agree digit for digit).

Three tiers, cheapest first: (1) for values known to have string keys only (records built by
the adapter, or parsed from JSON: ``keys_are_strings=True``; the C encoder would silently turn
an int key into a string), encode, and accept the output when it is ASCII and holds no token
that could be a float spelt differently from ECMAScript (``1.0``, ``1e-05``, 16+ digit runs: a
digit string inside a JSON string may trigger this too, which only costs the next tier); (2) rewrite integral floats as ints by walking the value and encode again; (3) the
``rfc8785`` package, which also words every refusal. The tests compare the result with
``rfc8785`` on generated values. Refused, rather than
silently changed: integers beyond +/-(2**53 - 1) (a meter index rounded by a JSON reader would
still verify while being wrong), NaN and infinities, strings that are not valid Unicode (lone
surrogates), non-string keys and any non-JSON type.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, TypeAlias, Union

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


class _NeedsReference(Exception):
    """The value has something the fast path does not write as RFC 8785 does."""


_MAX_SAFE_INT = 2**53 - 1
_fast_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"), check_circular=False
)


def _fast_form(value: Any) -> Any:
    """``value`` with integral floats as ints; raises ``_NeedsReference`` for the rest."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            return value
        raise _NeedsReference
    if kind is float:
        if value.is_integer():
            if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
                return int(value)
            raise _NeedsReference
        if 1e-4 <= abs(value) < 1e16:
            return value
        raise _NeedsReference
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                raise _NeedsReference
            out[key] = _fast_form(item)
        return out
    if kind is list or kind is tuple:
        return [_fast_form(item) for item in value]
    raise _NeedsReference


# Float tokens Python writes differently from ECMAScript: "12.0", "-0.0" / "1e-05", "1e+16";
# and digit runs long enough to pass 2**53 (found as zeros once every digit is a zero: the
# regular-expression engine is ten times slower at "[0-9]{16}").
_INTEGRAL_FLOAT = re.compile(r"\.0(?:[,\]}]|$)")
_EXPONENT = re.compile(r"e[-+][0-9]")
_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 16


def _plainly_canonical(text: str) -> bytes | None:
    """``text`` as bytes if nothing in it may differ from the RFC 8785 form, else None."""
    if not text.isascii() or _INTEGRAL_FLOAT.search(text) or _EXPONENT.search(text):
        return None
    data = text.encode("ascii")
    return None if _LONG_RUN in data.translate(_DIGITS_AS_ZEROS) else data


def canonicalize(value: JSONValue, *, keys_are_strings: bool = False) -> bytes:
    """The RFC 8785 canonical UTF-8 serialisation of ``value``.

    ``keys_are_strings``: the caller knows every object key in ``value`` is a ``str`` (the
    cheapest path is then allowed; a wrong claim would turn an int key into a string).
    """
    if keys_are_strings:
        try:
            plain = _plainly_canonical(_fast_encoder.encode(value))
            if plain is not None:
                return plain
        except (TypeError, ValueError, RecursionError):
            pass  # NaN, infinities, non-JSON types: the reference path decides
    try:
        return _fast_encoder.encode(_fast_form(value)).encode("utf-8")
    except (_NeedsReference, UnicodeEncodeError, RecursionError):
        pass  # the reference implementation decides, and words the refusal
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
