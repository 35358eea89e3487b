"""The NGSI-LD query language (``q``) in the embedded broker: the project's one grammar
(``adapter.ngsild.qlang``, which documents what is accepted and why) compiled into a predicate
evaluated per entity.

Names are expanded with the request's context. ``a.b`` is sub-attribute ``b`` of attribute ``a``
(or its ``observedAt``, ``unitCode``...; when ``a`` has no such sub-attribute, the key ``b`` of
``a``'s value); ``a[b.c]`` is a path inside ``a``'s value. Numbers, strings, booleans and URIs
compare as JSON values; unquoted date-times compare as instants with date-time strings. A term
on an array value matches if any element matches; ``!=`` matches when no element equals. A
missing attribute matches nothing but ``!attr``.

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
from adapter.ngsild.qlang import (
    And,
    AttrPath,
    Boolean,
    Comparison,
    DateTime,
    Exists,
    Expr,
    Number,
    Or,
    QuerySyntaxError,
    Range,
    Single,
    String,
    ValueList,
    Word,
    parse_q,
)

__all__ = ["Query", "parse_query"]

Attrs = Mapping[str, Any]
Predicate = Callable[[Attrs], bool]
_ORDERING: dict[str, Callable[[int], bool]] = {
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
}


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

    def __init__(self, text: str, predicate: Predicate, attributes: frozenset[str], expr: Expr) -> None:
        self.text = text
        self.expr = expr
        self._predicate = predicate
        self.attributes = attributes

    def matches(self, attrs: Attrs) -> bool:
        return self._predicate(attrs)


def parse_query(text: str, context: TermContext) -> Query:
    """Compiles ``q`` with the request's context, or raises ``BadRequestData`` "Invalid query (q)"."""
    try:
        expr = parse_q(text)
    except QuerySyntaxError as exc:
        raise BadRequestData("Invalid query (q)", f"{exc.reason} at position {exc.position} of {text!r}") from None
    attributes: set[str] = set()
    predicate = _compile(expr, context, attributes)
    return Query(text, predicate, frozenset(attributes), expr)


def _compile(expr: Expr, context: TermContext, attributes: set[str]) -> Predicate:
    # recursion is bounded by parse_q's max_depth
    if isinstance(expr, (And, Or)):
        parts = [_compile(term, context, attributes) for term in expr.terms]
        if isinstance(expr, And):
            return lambda attrs: all(part(attrs) for part in parts)
        return lambda attrs: any(part(attrs) for part in parts)
    path = _path(expr.path, context)
    attributes.add(path.attr)
    if isinstance(expr, Exists):
        if expr.negated:
            return lambda attrs: not _targets(attrs, path)
        return lambda attrs: bool(_targets(attrs, path))
    return _comparison(path, expr)


def _path(path: AttrPath, context: TermContext) -> _Path:
    subs = tuple((name if name in ATTRIBUTE_MEMBERS else context.expand(name), name) for name in path.sub)
    return _Path(context.expand(path.attribute), subs, path.members)


def _literal(value: Single) -> Any:
    if isinstance(value, DateTime):
        try:
            return _DateTime(to_millis(value.text))
        except (BadRequestData, OverflowError) as exc:
            raise BadRequestData("Invalid query (q)", f"invalid date-time {value.text!r}") from exc
    if isinstance(value, Word):
        return value.text
    if isinstance(value, (Number, String, Boolean)):
        return value.value
    raise TypeError(value)


def _comparison(path: _Path, term: Comparison) -> Predicate:
    operator, value = term.op, term.value
    if operator in ("~=", "!~="):
        assert isinstance(value, String)  # the AST guarantees it
        pattern = re.compile(value.value)
        wanted = operator == "~="
        return lambda attrs: any(
            isinstance(v, str) and (pattern.search(v) is not None) == wanted for v in _flat(_targets(attrs, path))
        )
    if isinstance(value, Range):
        low, high = _literal(value.low), _literal(value.high)

        def inside(target: Any) -> bool:
            above, below = _order(target, low), _order(target, high)
            return above is not None and below is not None and above >= 0 and below <= 0

        return _membership(path, inside, operator == "==")
    if isinstance(value, ValueList):
        values = [_literal(item) for item in value.items]
        return _membership(path, lambda v: any(_order(v, want) == 0 for want in values), operator == "==")
    wanted_value = _literal(value)
    if operator in ("==", "!="):
        return _membership(path, lambda v: _order(v, wanted_value) == 0, operator == "==")
    test = _ORDERING[operator]

    def compare(attrs: Attrs) -> bool:
        for target in _flat(_targets(attrs, path)):
            order = _order(target, wanted_value)
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
        except (BadRequestData, OverflowError):  # a stored text no instant can hold
            return None
        return (millis > wanted.millis) - (millis < wanted.millis)
    if isinstance(wanted, bool) or isinstance(target, bool):
        if isinstance(wanted, bool) and isinstance(target, bool):
            return 0 if target == wanted else 1
        return None
    if isinstance(wanted, (int, float)):
        if not isinstance(target, (int, float)):
            return None
        return int(target > wanted) - int(target < wanted)
    if isinstance(target, str):
        return int(target > wanted) - int(target < wanted)
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
            keys = [short, *(s for _, s in path.subs[index + 1 :]), *keys]
            break
    if isinstance(current, dict) and current.get("type") in VALUE_MEMBER:
        current = current.get(VALUE_MEMBER[current["type"]])
    for key in keys:
        if not isinstance(current, dict):
            return None
        current = current.get(key)
    return current
