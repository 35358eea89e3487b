"""``to_text`` (the canonical text sent to brokers) and ``attribute_paths`` (what the gateway checks)."""

from __future__ import annotations

from adapter.ngsild.qlang._ast import (
    BARE_PATTERN,
    PATTERN_OPERATORS,
    And,
    AttrPath,
    Boolean,
    Comparison,
    Exists,
    Expr,
    Or,
    Range,
    Single,
    String,
    Value,
    ValueList,
)

__all__ = ["attribute_paths", "to_text"]

_LEVEL_MAX = 10  # terms Orion-LD's qParse holds per parenthesis level (qNodeV[10], unchecked)


def to_text(expr: Expr) -> str:
    """The canonical text of ``expr``: ``|`` for OR, ``;`` for AND, every nested group in
    parentheses, at most 10 terms per level, no spaces; ``parse_q(to_text(e)) == e``."""
    if isinstance(expr, Comparison):
        return _path_text(expr.path) + expr.op + _value_text(expr.op, expr.value)
    if isinstance(expr, Exists):
        return ("!" if expr.negated else "") + _path_text(expr.path)
    if isinstance(expr, And):
        return _chunked([f"({to_text(t)})" if isinstance(t, Or) else to_text(t) for t in expr.terms], ";")
    if isinstance(expr, Or):
        return _chunked([f"({to_text(t)})" if isinstance(t, And) else to_text(t) for t in expr.terms], "|")
    raise TypeError(f"not a query expression: {expr!r}")


def _chunked(parts: list[str], separator: str) -> str:
    """``parts`` joined, in parenthesised chunks when there are more than Orion-LD holds
    (AND and OR are associative: the chunks change nothing, the parser flattens them)."""
    if len(parts) <= _LEVEL_MAX:
        return separator.join(parts)
    size = -(-len(parts) // _LEVEL_MAX)
    chunks = (parts[i : i + size] for i in range(0, len(parts), size))
    return separator.join(c[0] if len(c) == 1 else f"({_chunked(c, separator)})" for c in chunks)


def _path_text(path: AttrPath) -> str:
    text = ".".join((path.attribute, *path.sub)) if path.sub else path.attribute
    return f"{text}[{'.'.join(path.members)}]" if path.members else text


def _value_text(op: str, value: Value) -> str:
    if op in PATTERN_OPERATORS and isinstance(value, String):
        # unquoted when Orion-LD can read it so (it refuses quoted patterns), else a JSON string
        regex = value.value
        return regex if BARE_PATTERN.fullmatch(regex) else '"' + regex.replace("\\", "\\\\") + '"'
    if isinstance(value, Range):
        return f"{_single_text(value.low)}..{_single_text(value.high)}"
    if isinstance(value, ValueList):
        return ",".join(_single_text(item) for item in value.items)
    return _single_text(value)


def _single_text(value: Single) -> str:
    if isinstance(value, String):
        return f'"{value.value}"'  # never holds '"', '\\', '%' or control characters
    if isinstance(value, Boolean):
        return "true" if value.value else "false"
    return value.text


def attribute_paths(expr: Expr) -> tuple[AttrPath, ...]:
    """Every path ``expr`` references, left to right, repeats included (iterative)."""
    found: list[AttrPath] = []
    pending: list[Expr] = [expr]
    while pending:
        node = pending.pop()
        if isinstance(node, (And, Or)):
            pending.extend(reversed(node.terms))
        else:
            found.append(node.path)
    return tuple(found)
