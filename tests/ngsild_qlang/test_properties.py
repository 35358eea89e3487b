"""Properties of the q grammar over generated ASTs and texts: round trips, no crash on any
input, and the gateway's security property (the attributes a query names are exactly those
``attribute_paths`` reports, also as Orion-LD's lexer reads the canonical text)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
    String,
    Value,
    ValueList,
    Word,
    attribute_paths,
    parse_q,
    to_text,
)
from tests.ngsild_qlang.strategies import PROFILE, Tree, grammar_texts, mutated_texts, orion_ld_attributes, trees


def _written(path: AttrPath) -> str:
    text = ".".join((path.attribute, *path.sub))
    return f"{text}[{'.'.join(path.members)}]" if path.members else text


def _rebuilt(expr: Expr) -> Expr:
    """``expr`` built again through the validating constructors (the parser skips them)."""
    if isinstance(expr, (And, Or)):
        return type(expr)(tuple(_rebuilt(term) for term in expr.terms))
    path = AttrPath(expr.path.attribute, expr.path.sub, expr.path.members)
    if isinstance(expr, Exists):
        return Exists(path, expr.negated)
    return Comparison(path, expr.op, _rebuilt_value(expr.value))


def _rebuilt_value(value: Value) -> Value:
    if isinstance(value, Range):
        return Range(_rebuilt_value(value.low), _rebuilt_value(value.high))  # type: ignore[arg-type]
    if isinstance(value, ValueList):
        return ValueList(tuple(_rebuilt_value(item) for item in value.items))  # type: ignore[misc]
    if isinstance(value, (String, Boolean)):
        return type(value)(value.value)  # type: ignore[arg-type]
    assert isinstance(value, (Number, DateTime, Word))
    return type(value)(value.text)


def _levels(expr: Expr) -> list[int]:
    """The number of terms of every parenthesis level in ``to_text(expr)``, checking that no
    level mixes ';' and '|' (Orion-LD refuses that)."""
    text = to_text(expr)
    found: list[int] = []
    kinds: list[str] = [""]
    counts: list[int] = [1]
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            kinds.append("")
            counts.append(1)
        elif char == ")":
            kinds.pop()
            found.append(counts.pop())
        elif char in ";|":
            assert kinds[-1] in ("", char), f"';' and '|' mixed at one level in {text}"
            kinds[-1] = char
            counts[-1] += 1
    found.append(counts.pop())
    return found


@PROFILE
@given(trees())
def test_every_ast_survives_its_canonical_text(tree: Tree) -> None:
    text = to_text(tree.expr)

    assert parse_q(text) == tree.expr
    assert _rebuilt(parse_q(text)) == tree.expr
    assert to_text(parse_q(text)) == text


@PROFILE
@given(trees())
def test_attribute_paths_are_exactly_the_generated_ones(tree: Tree) -> None:
    expected = tuple(leaf.path for leaf in tree.leaves)

    assert attribute_paths(parse_q(to_text(tree.expr))) == expected
    assert orion_ld_attributes(to_text(tree.expr)) == [_written(path) for path in expected]


@PROFILE
@given(trees(max_leaves=40, max_groups=40))
def test_canonical_text_never_mixes_operators_nor_passes_ten_terms_a_level(tree: Tree) -> None:
    assert max(_levels(tree.expr)) <= 10


@PROFILE
@given(st.text())
def test_any_text_parses_or_is_refused(text: str) -> None:
    _check_any(text)


@PROFILE
@given(grammar_texts)
def test_any_mix_of_the_grammar_parses_or_is_refused(text: str) -> None:
    _check_any(text)


@PROFILE
@given(mutated_texts())
def test_any_near_miss_of_a_valid_query_parses_or_is_refused(text: str) -> None:
    _check_any(text)


@PROFILE
@given(grammar_texts, st.integers(0, 3), st.integers(1, 4), st.integers(0, 20))
def test_limits_refuse_cleanly(text: str, depth: int, terms: int, length: int) -> None:
    try:
        parse_q(text, max_depth=depth, max_terms=terms, max_length=length)
    except QuerySyntaxError as exc:
        assert 0 <= exc.position <= max(len(text), length)


def _check_any(text: str) -> None:
    try:
        expr = parse_q(text)
    except QuerySyntaxError as exc:
        assert 0 <= exc.position <= len(text)
        assert str(exc) == f"{exc.reason} at position {exc.position}"
        return
    canonical = to_text(expr)
    assert _rebuilt(expr) == expr  # the parser never builds a node its constructor refuses
    assert parse_q(canonical) == expr
    assert to_text(parse_q(canonical)) == canonical
    assert orion_ld_attributes(canonical) == [_written(path) for path in attribute_paths(expr)]
