"""The query AST: paths, values and expressions, each validated when built.

A node that exists can be rendered: ``to_text`` never has to refuse, and never writes a text a
broker would read differently (the character rules are explained in the package docstring).
The parser, which has checked every piece already, builds nodes through the ``new_*`` makers
(no second validation: the parse runs on every partner request).
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = [
    "EQUALITY_OPERATORS",
    "MAX_PATTERN_LENGTH",
    "OPERATORS",
    "PATTERN_OPERATORS",
    "And",
    "AttrPath",
    "Boolean",
    "Comparison",
    "DateTime",
    "Exists",
    "Expr",
    "Number",
    "Or",
    "QuerySyntaxError",
    "Range",
    "Single",
    "String",
    "Value",
    "ValueList",
    "Word",
    "all_of",
    "any_of",
]

OPERATORS = frozenset({"==", "!=", ">", ">=", "<", "<=", "~=", "!~="})
EQUALITY_OPERATORS = frozenset({"==", "!="})
PATTERN_OPERATORS = frozenset({"~=", "!~="})
MAX_PATTERN_LENGTH = 256
MAX_NAME = 256
MAX_PATH = 512  # written length; Orion-LD copies a path into char[1024] with strncpy
MAX_NUMBER = 100

NAME = re.compile(r"[^\W\d_]\w*(?::[\w-]+)*")
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#@$*+]+")
#: A pattern Orion-LD can read unquoted: no character its lexer splits on (nor space, "%").
BARE_PATTERN = re.compile(r'[^\s;|&(),"!<>=%\x00-\x1f\x7f]+')
STRING_OK = re.compile(r'[^"\\%\x00-\x1f]*')
PATTERN_OK = re.compile(r'[^"%\x00-\x1f]*')

_T = TypeVar("_T")


class QuerySyntaxError(ValueError):
    """A ``q`` the grammar refuses: ``reason`` and the 0-based ``position`` it was found at."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at position {position}")
        self.reason = reason
        self.position = position


def _maker(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of ``cls`` without validation, for values the parser has checked (twice
    as fast as the dataclass ``__init__``: the parse runs on every partner request)."""
    setters = [getattr(cls, name).__set__ for name in cls.__slots__]  # type: ignore[attr-defined]
    create = object.__new__
    if len(setters) == 1:
        (first,) = setters

        def make1(a: Any) -> _T:
            node = create(cls)
            first(node, a)
            return node

        return make1
    if len(setters) == 2:
        first, second = setters

        def make2(a: Any, b: Any) -> _T:
            node = create(cls)
            first(node, a)
            second(node, b)
            return node

        return make2
    first, second, third = setters

    def make3(a: Any, b: Any, c: Any) -> _T:
        node = create(cls)
        first(node, a)
        second(node, b)
        third(node, c)
        return node

    return make3


def name_problem(name: object) -> str | None:
    if not isinstance(name, str) or NAME.fullmatch(name) is None:
        return f"invalid name {name!r}"
    if len(name) > MAX_NAME:
        return f"a name longer than {MAX_NAME} characters"
    if not name[0].isascii() and unicodedata.category(name[0])[0] != "L":
        return "a name starts with a letter"
    return None


def string_problem(value: object, *, pattern: bool = False) -> str:
    """Why ``value`` cannot be a string (or, with ``pattern``, a regex) in q."""
    if not isinstance(value, str):
        return "a string value is text"
    if '"' in value:
        return "a string cannot hold '\"' (Orion-LD ends a string at the first quote)"
    if "%" in value:
        return "a string cannot hold '%' (Orion-LD decodes '%22' inside q a second time)"
    if "\\" in value and not pattern:
        return "a string value cannot hold '\\' (Orion-LD reads no escapes; only a pattern may)"
    return "a string cannot hold control characters"


@lru_cache(maxsize=1024)
def pattern_problem(regex: str) -> str | None:
    """Why ``regex`` cannot follow ``~=``, or ``None`` (cached: compiling costs)."""
    if not regex:
        return "an empty pattern"
    if len(regex) > MAX_PATTERN_LENGTH:
        return f"a pattern longer than {MAX_PATTERN_LENGTH} characters"
    if PATTERN_OK.fullmatch(regex) is None:
        return string_problem(regex, pattern=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # FutureWarning on '[[' etc.: refuse, never print
            re.compile(regex)
    except Exception as exc:  # re.error, FutureWarning, RecursionError...: all mean "not a regex"
        return f"invalid regular expression ({exc})"
    return None


def instant(text: object) -> datetime:
    """The UTC instant of a q date-time (no zone = UTC), or ``ValueError``."""
    match = DATETIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid date-time {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
        if zone and zone != "Z":
            hours, minutes = int(zone[1:3]), int(zone[3:].lstrip(":") or 0)
            if hours > 23 or minutes > 59:
                raise ValueError(zone)
            moment -= (1 if zone[0] == "+" else -1) * timedelta(hours=hours, minutes=minutes)
    except (ValueError, OverflowError):
        raise ValueError(f"invalid date-time {text!r}") from None
    return moment


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``attribute.sub.sub[member.member]``, names as written (``prefix:name`` stays so):
    ``sub`` are sub-attributes or metadata (``observedAt``...), ``members`` keys inside the value."""

    attribute: str
    sub: tuple[str, ...] = ()
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.sub, tuple) or not isinstance(self.members, tuple):
            raise TypeError("AttrPath.sub and .members are tuples")
        for name in (self.attribute, *self.sub, *self.members):
            problem = name_problem(name)
            if problem is not None:
                raise ValueError(problem)
        # as written, brackets left out: attribute.sub.sub[member.member]
        written = len(self.attribute) + sum(len(n) + 1 for n in (*self.sub, *self.members)) - bool(self.members)
        if written > MAX_PATH:
            raise ValueError(f"an attribute path longer than {MAX_PATH} characters")


@dataclass(frozen=True, slots=True)
class Number:
    """A JSON number, kept as written (``1.50`` stays ``1.50`` in the canonical text)."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or len(self.text) > MAX_NUMBER or not NUMBER.fullmatch(self.text):
            raise ValueError(f"invalid number {self.text!r}")
        if not math.isfinite(float(self.text)):
            raise ValueError(f"number out of range {self.text!r}")

    @property
    def value(self) -> int | float:
        return float(self.text) if any(c in self.text for c in ".eE") else int(self.text)


@dataclass(frozen=True, slots=True)
class String:
    """A string's content, unescaped; also the regex of ``~=``/``!~=``. Never ``"``, ``%`` or
    control characters; ``\\`` only in a regex (checked by ``Comparison``)."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or PATTERN_OK.fullmatch(self.value) is None:
            raise ValueError(string_problem(self.value, pattern=True))


@dataclass(frozen=True, slots=True)
class Boolean:
    value: bool

    def __post_init__(self) -> None:
        if not isinstance(self.value, bool):
            raise ValueError("a Boolean holds True or False")


@dataclass(frozen=True, slots=True)
class DateTime:
    """An unquoted ISO 8601 date or date-time as written, compared as an instant."""

    text: str

    def __post_init__(self) -> None:
        instant(self.text)

    @property
    def instant(self) -> datetime:
        return instant(self.text)


@dataclass(frozen=True, slots=True)
class Word:
    """An unquoted URI (only after ``==``/``!=``): ASCII, no ``%``, no ``..``."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or URI.fullmatch(self.text) is None or ".." in self.text:
            raise ValueError(f"invalid URI {self.text!r}")


Single = Number | String | Boolean | DateTime | Word


@dataclass(frozen=True, slots=True)
class Range:
    """``low..high``, both included: two numbers, two strings or two date-times."""

    low: Single
    high: Single

    def __post_init__(self) -> None:
        problem = range_problem(self.low, self.high)
        if problem is not None:
            raise ValueError(problem)


def range_problem(low: object, high: object) -> str | None:
    if not isinstance(low, (Number, String, DateTime)) or type(low) is not type(high):
        return "a range's bounds are two numbers, two strings or two date-times"
    return None


@dataclass(frozen=True, slots=True)
class ValueList:
    """``v1,v2,...``, at least two: numbers, strings, date-times or booleans (never URIs)."""

    items: tuple[Single, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.items, tuple) or len(self.items) < 2:
            raise ValueError("a list holds at least two values")
        for item in self.items:
            if not isinstance(item, (Number, String, DateTime, Boolean)):
                raise ValueError("a list holds numbers, strings, date-times or true/false (quote a URI)")


Value = Single | Range | ValueList


@dataclass(frozen=True, slots=True)
class Comparison:
    """``path op value``; after ``~=``/``!~=`` the value is a ``String`` holding the regex."""

    path: AttrPath
    op: str
    value: Value

    def __post_init__(self) -> None:
        if not isinstance(self.path, AttrPath):
            raise ValueError("a comparison needs an AttrPath")
        problem = comparison_problem(self.op, self.value)
        if problem is not None:
            raise ValueError(problem)


def comparison_problem(op: str, value: object) -> str | None:
    """Why ``op`` cannot take ``value`` (clause 4.9: lists, ranges, URIs, booleans with == / !=)."""
    if op not in OPERATORS:
        return f"unknown operator {op!r}"
    if op in PATTERN_OPERATORS:
        return pattern_problem(value.value) if isinstance(value, String) else f"{op} takes a pattern"
    singles: tuple[object, ...]
    if isinstance(value, Range):
        singles = (value.low, value.high)
    elif isinstance(value, ValueList):
        singles = value.items
    elif isinstance(value, (Number, String, Boolean, DateTime, Word)):
        singles = (value,)
    else:
        return "invalid value"
    if op not in EQUALITY_OPERATORS:
        if isinstance(value, Range):
            return "a range needs == or !="
        if isinstance(value, ValueList):
            return "a list of values needs == or !="
        if isinstance(value, Boolean):
            return "true/false compare only with == or !="
        if isinstance(value, Word):
            return "a URI compares only with == or !="
    for item in singles:
        if isinstance(item, String) and STRING_OK.fullmatch(item.value) is None:
            return string_problem(item.value)
    return None


@dataclass(frozen=True, slots=True)
class Exists:
    """``path`` (the attribute exists) or ``!path`` (it does not)."""

    path: AttrPath
    negated: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.path, AttrPath) or not isinstance(self.negated, bool):
            raise ValueError("Exists holds an AttrPath and a bool")


@dataclass(frozen=True, slots=True)
class And:
    """At least two terms, none of them an ``And`` (flattened)."""

    terms: tuple[Expr, ...]

    def __post_init__(self) -> None:
        _check_terms(self.terms, And)


@dataclass(frozen=True, slots=True)
class Or:
    """At least two terms, none of them an ``Or`` (flattened)."""

    terms: tuple[Expr, ...]

    def __post_init__(self) -> None:
        _check_terms(self.terms, Or)


def _check_terms(terms: object, kind: type) -> None:
    if not isinstance(terms, tuple) or len(terms) < 2:
        raise ValueError(f"{kind.__name__} holds at least two terms")
    for term in terms:
        if not isinstance(term, (Comparison, Exists, And, Or)) or isinstance(term, kind):
            raise ValueError(f"{kind.__name__} holds flattened expressions")


Expr = Comparison | Exists | And | Or


def all_of(*terms: Expr) -> Expr:
    """The AND of ``terms``, flattened (one term is itself), e.g. a client's q narrowed by a rule."""
    return _joined(terms, And)


def any_of(*terms: Expr) -> Expr:
    """The OR of ``terms``, flattened (one term is itself)."""
    return _joined(terms, Or)


def _joined(terms: tuple[Expr, ...], kind: type[And] | type[Or]) -> Expr:
    flat: list[Expr] = []
    for term in terms:
        flat.extend(term.terms if isinstance(term, kind) else (term,))
    if not flat:
        raise ValueError(f"{kind.__name__} of nothing")
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


new_path = _maker(AttrPath)
new_number = _maker(Number)
new_string = _maker(String)
new_boolean = _maker(Boolean)
new_datetime = _maker(DateTime)
new_word = _maker(Word)
new_range = _maker(Range)
new_list = _maker(ValueList)
new_comparison = _maker(Comparison)
new_exists = _maker(Exists)
new_and = _maker(And)
new_or = _maker(Or)
