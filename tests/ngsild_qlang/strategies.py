"""Hypothesis strategies for q: valid ASTs (with the attribute paths they hold, in order) and
texts mixing the grammar's characters; plus a model of Orion-LD's q lexer to check the
canonical text against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hypothesis import settings
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
    Range,
    String,
    ValueList,
    Word,
)

__all__ = ["PROFILE", "Tree", "grammar_texts", "mutated_texts", "orion_ld_attributes", "trees"]

#: Deterministic and bounded, so CI runs the same examples every time.
PROFILE = settings(derandomize=True, deadline=None, max_examples=200)

_names = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,7}", fullmatch=True),
    st.sampled_from(["température", "ｎａｍｅ", "ex:P100", "urn:x-y:z1", "observedAt", "unitCode", "datasetId", "NO2"]),
)
paths = st.builds(AttrPath, _names, st.lists(_names, max_size=2).map(tuple), st.lists(_names, max_size=2).map(tuple))

# text the grammar's structure characters are mixed into
_string_chars = st.sampled_from(list("ab Z09;|,()!=<>~.[]{}&:/*#'$^+-_") + ["é", "ü", "\u00a0", "語"])
strings = st.builds(String, st.text(_string_chars, max_size=12))
numbers = st.from_regex(r"-?(0|[1-9][0-9]{0,12})(\.[0-9]{1,6})?([eE][+-]?[0-9]{1,2})?", fullmatch=True).map(Number)
booleans = st.builds(Boolean, st.booleans())


@st.composite
def datetimes(draw: st.DrawFn) -> DateTime:
    moment = draw(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9998, 12, 30)))
    shape = draw(st.sampled_from(["date", "minutes", "seconds", "fraction"]))
    text = {
        "date": f"{moment:%Y-%m-%d}",
        "minutes": f"{moment:%Y-%m-%dT%H:%M}",
        "seconds": f"{moment:%Y-%m-%dT%H:%M:%S}",
        "fraction": f"{moment:%Y-%m-%dT%H:%M:%S.%f}",
    }[shape]
    if shape != "date":
        text += draw(st.sampled_from(["", "Z", "+01:00", "-0530", "+14"]))
    return DateTime(text)


words = (
    st.from_regex(r"(urn|http|ex|mqtt+s):[A-Za-z0-9_~:/?#@$*+-]{1,12}", fullmatch=True)
    .filter(lambda t: ".." not in t)
    .map(Word)
)
_regex_safe = st.sampled_from(list("abZ09.^$| ,;:!<>=~'&/-_") + ["é"])  # any mix of these compiles
patterns = st.one_of(
    st.sampled_from(["^room.*$", "(?i)kitchen", "\\d{2,3}", "a|b", "[[]", "x\\(y", "^(a|b)+$", "..ne.*", "\\bfoo"]),
    st.text(_regex_safe, min_size=1, max_size=16),
).filter(lambda r: _valid(Comparison, "~=", r))


def _valid(kind: type, op: str, regex: str) -> bool:
    try:
        kind(AttrPath("a"), op, String(regex))
    except ValueError:
        return False
    return True


_plain_strings = strings.filter(lambda s: "\\" not in s.value)
_comparable = st.one_of(numbers, _plain_strings, datetimes())
_list_items = st.one_of(numbers, _plain_strings, datetimes(), booleans)
_ranges = st.one_of(
    st.builds(Range, numbers, numbers),
    st.builds(Range, _plain_strings, _plain_strings),
    st.builds(Range, datetimes(), datetimes()),
)


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    path = draw(paths)
    op = draw(st.sampled_from(["==", "!=", ">", ">=", "<", "<=", "~=", "!~="]))
    if op in ("~=", "!~="):
        return Comparison(path, op, String(draw(patterns)))
    if op in (">", ">=", "<", "<="):
        return Comparison(path, op, draw(_comparable))
    value = draw(
        st.one_of(
            _comparable,
            booleans,
            words,
            _ranges,
            st.lists(_list_items, min_size=2, max_size=4).map(lambda v: ValueList(tuple(v))),
        )
    )
    return Comparison(path, op, value)


leaves = st.one_of(comparisons(), st.builds(Exists, paths, st.booleans()))


@dataclass(frozen=True)
class Tree:
    expr: Expr
    leaves: tuple[Comparison | Exists, ...]  # left to right, as generated


@st.composite
def trees(draw: st.DrawFn, max_leaves: int = 12, max_groups: int = 4) -> Tree:
    """A random AND/OR tree over generated leaves (kinds alternate, so it is flattened)."""
    items = draw(st.lists(leaves, min_size=1, max_size=max_leaves))
    top: type[And] | type[Or] = And if draw(st.booleans()) else Or

    def build(part: list[Comparison | Exists], kind: type[And] | type[Or]) -> Expr:
        if len(part) == 1:
            return part[0]
        groups = draw(st.integers(2, min(len(part), max_groups)))
        cuts = sorted(draw(st.sets(st.integers(1, len(part) - 1), min_size=groups - 1, max_size=groups - 1)))
        bounds = [0, *cuts, len(part)]
        other: type[And] | type[Or] = Or if kind is And else And
        return kind(tuple(build(part[a:b], other) for a, b in zip(bounds, bounds[1:], strict=False)))

    return Tree(build(items, top), tuple(items))


_TOKENS = [
    "a",
    "b",
    "temperature",
    "b.c",
    "x[y]",
    "x[y.z]",
    "ex:p",
    "é",
    "1a",
    "_a",
    "==",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "~=",
    "!~=",
    "=~",
    "=",
    "!",
    "~",
    ";",
    "|",
    "&",
    ",",
    "..",
    ".",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    "/",
    " ",
    '"',
    '"x"',
    '"a;b|c"',
    "\\",
    '\\"',
    "\\u00e9",
    "\\ud800",
    "\\n",
    "%",
    "%22",
    "1",
    "-2.5",
    "1e5",
    "1e999",
    "01",
    "true",
    "false",
    "2026-01-01T00:00:00Z",
    "2026-13-01",
    "12:00:00Z",
    "urn:a",
    "(?i)",
    "*",
    "\x00",
    "\ud800",
    "\t",
]
grammar_texts = st.lists(st.sampled_from(_TOKENS), max_size=14).map("".join)


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    """A valid query's text (spaces sprinkled in) with up to three tokens inserted, deleted or
    replaced: texts close to valid, where a parser's mistakes hide."""
    from adapter.ngsild.qlang import to_text

    text = to_text(draw(trees(max_leaves=5)).expr)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        token = draw(st.sampled_from(_TOKENS))
        if action == "insert":
            text = text[:at] + token + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 3)) :]
        else:
            text = text[:at] + token + text[at + len(token) :]
    return text


def orion_ld_attributes(text: str) -> list[str]:
    """The attribute paths Orion-LD's qLex would see in ``text`` (FIWARE/context.Orion-LD,
    src/lib/orionld/q/qLex.cpp, after urlDecode.cpp): the terms that are not a value."""
    text = text.replace("%22", '"')
    separators = ["!~=", "==", "!=", ">=", "<=", "~=", "..", "<", ">", "|", ",", "!", ";", "&", "(", ")"]
    values_after = {"==", "!=", ">=", "<=", ">", "<", "~=", "!~=", ",", ".."}
    tokens: list[tuple[str, str]] = []  # (kind, text)
    term, i = "", 0
    while i < len(text):
        if text[i] == '"':
            end = text.find('"', i + 1)
            assert end > 0, "Orion-LD would refuse a string never closed"
            tokens.append(("string", text[i + 1 : end]))
            i = end + 1
            continue
        found = next((s for s in separators if text.startswith(s, i)), None)
        if found == ".." and tokens and tokens[-1][1] in ("~=", "!~="):
            found = None  # qLex: no range inside a pattern
        if found is None:
            term += text[i]
            i += 1
            continue
        if term.strip():
            tokens.append(("term", term.strip()))
        term = ""
        tokens.append(("op", found))
        i += len(found)
    if term.strip():
        tokens.append(("term", term.strip()))
    attributes = []
    for index, (kind, value) in enumerate(tokens):
        previous = tokens[index - 1][1] if index and tokens[index - 1][0] == "op" else None
        if kind == "term" and previous not in values_after:
            attributes.append(value)
    return attributes
