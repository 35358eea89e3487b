"""The NGSI-LD query language (``q``, ETSI GS CIM 009 clause 4.9), parsed once, evaluated per entity.

Grammar accepted (``;`` = AND binds tighter than ``|`` = OR; a ``,`` between whole terms is
also OR, as Orion-LD reads it)::

    query    = or
    or       = and *( ("|" / ",") and )
    and      = term *( ";" term )
    term     = "(" or ")" / "!" attrPath / attrPath [ op value ]
    op       = "==" / "!=" / ">=" / ">" / "<=" / "<" / "~=" / "=~" / "!~="
    value    = single / single ".." single / single *( "," single )
    attrPath = name *( "." name ) *( "[" key *( "." key ) "]" )

``a.b`` is sub-attribute ``b`` of attribute ``a`` (or its ``observedAt``, ``unitCode``…;
when ``a`` has no such sub-attribute, the key ``b`` of ``a``'s value); ``a[b.c]`` is a path
inside ``a``'s value. Values are numbers, ``true``/``false``, quoted strings, unquoted
date-times (compared as instants) or bare words (URIs). A term on an array value matches if
any element matches; ``!=`` matches when no element equals. A missing attribute matches
nothing but ``!attr``.

Evaluation takes the entity's attributes (expanded names) where each attribute is one
attribute object, or a list of instances (temporal queries: a term holds if any instance
satisfies it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adapter.ngsild.broker.datetimes import is_datetime, to_millis
from adapter.ngsild.broker.errors import BadRequestData
from adapter.ngsild.broker.jsonld import TermContext
from adapter.ngsild.broker.payload import ATTRIBUTE_MEMBERS, VALUE_MEMBER

__all__ = ["Query", "parse_query"]

_OPERATORS = ("!~=", "==", "!=", ">=", "<=", "~=", "=~", ">", "<")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\Z")
_NAME_END = frozenset("=!<>~;|(),[")
_TERM_START = re.compile(r"\s*!?[^\s=!<>~;|(),\[\]\"]+(?:\[[^\]]*\])*\s*(?:!~=|==|!=|>=|<=|~=|=~|>|<)")

Attrs = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _DateTime:
    millis: int


@dataclass(frozen=True, slots=True)
class _Path:
    attr: str
    subs: tuple[tuple[str, str], ...]  # (stored key, short name) of each ".x" step
    keys: tuple[str, ...]  # the "[a.b]" path inside the value


class Query:
    """A compiled ``q``: ``matches(attrs)`` over an entity's stored attributes."""

    def __init__(self, text: str, predicate: Callable[[Attrs], bool], attributes: frozenset[str]) -> None:
        self.text = text
        self._predicate = predicate
        self.attributes = attributes

    def matches(self, attrs: Attrs) -> bool:
        return self._predicate(attrs)


def parse_query(text: str, context: TermContext) -> Query:
    """Compiles ``q`` with the request's context, or raises ``BadRequestData``."""
    parser = _Parser(text, context)
    predicate = parser.parse()
    return Query(text, predicate, frozenset(parser.attributes))


class _Parser:
    def __init__(self, text: str, context: TermContext) -> None:
        self.text = text
        self.pos = 0
        self.context = context
        self.attributes: set[str] = set()

    def error(self, why: str) -> BadRequestData:
        return BadRequestData("Invalid query (q)", f"{why} at position {self.pos} of {self.text!r}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> Callable[[Attrs], bool]:
        if not self.text.strip():
            raise self.error("empty query")
        predicate = self.parse_or()
        if self.pos != len(self.text):
            raise self.error(f"unexpected {self.peek()!r}")
        return predicate

    def parse_or(self) -> Callable[[Attrs], bool]:
        parts = [self.parse_and()]
        while self.peek() in ("|", ","):
            self.pos += 1
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        return lambda attrs: any(part(attrs) for part in parts)

    def parse_and(self) -> Callable[[Attrs], bool]:
        parts = [self.parse_term()]
        while self.peek() == ";":
            self.pos += 1
            parts.append(self.parse_term())
        if len(parts) == 1:
            return parts[0]
        return lambda attrs: all(part(attrs) for part in parts)

    def parse_term(self) -> Callable[[Attrs], bool]:
        if self.peek() == "(":
            self.pos += 1
            inner = self.parse_or()
            if self.peek() != ")":
                raise self.error("missing ')'")
            self.pos += 1
            return inner
        negated = self.peek() == "!"
        if negated:
            self.pos += 1
        path = self.parse_path()
        operator = next((op for op in _OPERATORS if self.text.startswith(op, self.pos)), None)
        if operator is None:
            if negated:
                return lambda attrs: not _targets(attrs, path)
            return lambda attrs: bool(_targets(attrs, path))
        if negated:
            raise self.error("'!' only negates an attribute's existence")
        self.pos += len(operator)
        raw = self.read_value()
        if not raw:
            raise self.error(f"no value after {operator}")
        return _comparison(path, operator, raw, self)

    def parse_path(self) -> _Path:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _NAME_END:
            self.pos += 1
        dotted = self.text[start:self.pos].strip()
        keys: list[str] = []
        while self.peek() == "[":
            end = self.text.find("]", self.pos)
            if end < 0:
                raise self.error("missing ']'")
            keys.extend(k for k in self.text[self.pos + 1:end].split(".") if k)
            self.pos = end + 1
        if not dotted or '"' in dotted or " " in dotted:
            raise self.error("an attribute name is expected")
        first, *rest = dotted.split(".")
        attr = self.context.expand(first)
        self.attributes.add(attr)
        subs = tuple((name if name in ATTRIBUTE_MEMBERS else self.context.expand(name), name) for name in rest)
        return _Path(attr, subs, tuple(keys))

    def read_value(self) -> str:
        """The value text: up to ``;``, ``|``, an unbalanced ``)``, or a ``,`` that starts a term."""
        text, i, depth, quoted = self.text, self.pos, 0, False
        while i < len(text):
            char = text[i]
            if quoted:
                if char == "\\":
                    i += 1
                elif char == '"':
                    quoted = False
            elif char == '"':
                quoted = True
            elif char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and char in ";|":
                break
            elif depth == 0 and char == "," and _TERM_START.match(text, i + 1):
                break
            i += 1
        if quoted:
            raise self.error("unterminated string")
        value, self.pos = text[self.pos:i], i
        return value


def _split(text: str, separator: str) -> list[str]:
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        if text[i] == '"':
            quoted = not quoted
        if not quoted and text.startswith(separator, i):
            parts.append("".join(current))
            current = []
            i += len(separator)
            continue
        current.append(text[i])
        i += 1
    parts.append("".join(current))
    return parts


def _literal(text: str, parser: _Parser) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    if '"' in text or not text:
        raise parser.error(f"invalid value {text!r}")
    if _NUMBER.match(text):
        number = float(text)
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if text in ("true", "false"):
        return text == "true"
    if is_datetime(text):
        try:
            return _DateTime(to_millis(text))
        except BadRequestData as exc:
            raise parser.error(f"invalid date-time {text!r}") from exc
    return text


def _comparison(path: _Path, operator: str, raw: str, parser: _Parser) -> Callable[[Attrs], bool]:
    if operator in ("~=", "=~", "!~="):
        pattern_text = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
        try:
            pattern = re.compile(pattern_text)
        except re.error as exc:
            raise parser.error(f"invalid regular expression {pattern_text!r}") from exc
        wanted = operator != "!~="
        return lambda attrs: any(
            isinstance(v, str) and (pattern.search(v) is not None) == wanted for v in _flat(_targets(attrs, path))
        )
    ranges = _split(raw, "..")
    if len(ranges) == 2:
        if operator not in ("==", "!="):
            raise parser.error("a range needs == or !=")
        low, high = _literal(ranges[0], parser), _literal(ranges[1], parser)

        def inside(value: Any) -> bool:
            above, below = _order(value, low), _order(value, high)
            return above is not None and below is not None and above >= 0 and below <= 0

        return _membership(path, inside, operator == "==")
    values = [_literal(part, parser) for part in _split(raw, ",")]
    if len(values) > 1 or operator in ("==", "!="):
        if len(values) > 1 and operator not in ("==", "!="):
            raise parser.error("a list of values needs == or !=")
        return _membership(path, lambda v: any(_order(v, want) == 0 for want in values), operator == "==")
    value = values[0]
    test = {">": lambda c: c > 0, ">=": lambda c: c >= 0, "<": lambda c: c < 0, "<=": lambda c: c <= 0}[operator]

    def compare(attrs: Attrs) -> bool:
        for target in _flat(_targets(attrs, path)):
            order = _order(target, value)
            if order is not None and test(order):
                return True
        return False

    return compare


def _membership(path: _Path, member: Callable[[Any], bool], wanted: bool) -> Callable[[Attrs], bool]:
    if wanted:
        return lambda attrs: any(member(v) for v in _flat(_targets(attrs, path)))

    def unequal(attrs: Attrs) -> bool:
        # per instance: an array value is unequal when none of its elements is equal
        targets = _targets(attrs, path)
        return any(not any(member(v) for v in _flat([t])) for t in targets)

    return unequal


def _flat(targets: list[Any]) -> list[Any]:
    out: list[Any] = []
    for target in targets:
        if isinstance(target, list):
            out.extend(target)
        else:
            out.append(target)
    return out


def _order(target: Any, wanted: Any) -> int | None:
    """-1, 0 or 1 comparing ``target`` with ``wanted``; ``None`` if they do not compare."""
    if isinstance(target, dict) and "@value" in target:
        target = target["@value"]
    if isinstance(wanted, _DateTime):
        if not isinstance(target, str) or not is_datetime(target):
            return None
        try:
            millis = to_millis(target)
        except BadRequestData:
            return None
        return (millis > wanted.millis) - (millis < wanted.millis)
    if isinstance(wanted, bool) or isinstance(target, bool):
        if isinstance(wanted, bool) and isinstance(target, bool):
            return 0 if target == wanted else 1
        return None
    if isinstance(wanted, (int, float)):
        if not isinstance(target, (int, float)):
            return None
        return (target > wanted) - (target < wanted)
    if isinstance(target, str):
        return (target > wanted) - (target < wanted)
    return None


def _targets(attrs: Attrs, path: _Path) -> list[Any]:
    node = attrs.get(path.attr)
    if node is None:
        return []
    found: list[Any] = []
    for instance in node if isinstance(node, list) else (node,):
        value = _resolve(instance, path)
        if value is not None:
            found.append(value)
    return found


def _resolve(attribute: Any, path: _Path) -> Any:
    current: Any = attribute
    keys = list(path.keys)
    for index, (key, short) in enumerate(path.subs):
        if not isinstance(current, dict):
            return None
        if key in current:
            current = current[key]
        else:
            # not a sub-attribute: the rest of the dotted path is a path inside the value
            keys = [short, *(s for _, s in path.subs[index + 1:]), *keys]
            break
    if isinstance(current, dict) and current.get("type") in VALUE_MEMBER:
        current = current.get(VALUE_MEMBER[current["type"]])
    for key in keys:
        if not isinstance(current, dict):
            return None
        current = current.get(key)
    return current
