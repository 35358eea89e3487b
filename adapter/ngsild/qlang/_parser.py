"""``parse_q``: text -> AST, iterative, every refusal a ``QuerySyntaxError`` with its position.

One regular expression reads a whole common term (``name.sub[member]``, an operator and a
number, a plain string or true/false) in one step; anything else (spaces, lists, ranges,
date-times, URIs, patterns, escapes, errors) goes through the general path, which knows the
position and reason of every refusal.
"""

from __future__ import annotations

import re

from adapter.ngsild.qlang._ast import (
    BARE_PATTERN,
    DATETIME,
    EQUALITY_OPERATORS,
    MAX_NAME,
    MAX_PATH,
    NAME,
    NUMBER,
    PATTERN_OPERATORS,
    STRING_OK,
    URI,
    And,
    AttrPath,
    Boolean,
    Expr,
    Number,
    Or,
    QuerySyntaxError,
    Single,
    String,
    Value,
    Word,
    comparison_problem,
    instant,
    name_problem,
    new_and,
    new_boolean,
    new_comparison,
    new_datetime,
    new_exists,
    new_list,
    new_number,
    new_or,
    new_path,
    new_range,
    new_string,
    new_word,
    pattern_problem,
    range_problem,
    string_problem,
)

__all__ = ["parse_q"]

_N = r"[^\W\d_]\w*+(?::[\w-]++)*+"  # possessive: a name never backtracks into a shorter one
_FAST_PATH = re.compile(rf"(?>({_N}(?:\.{_N})*+)(?:\[({_N}(?:\.{_N})*+)\])?)(?![\[{{:/.])")
_FAST_TERM = re.compile(
    rf"({_N}(?:\.{_N})*)(?:\[({_N}(?:\.{_N})*)\])?"
    r"(?:(==|!=|>=|<=|>|<)"
    r'(?:"([^"\\%\x00-\x1f]*)"|(-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,30})?)|(true|false)))?'
    r"(?=[;|&)]|\Z)"
)
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9:]+)?")
_BARE = re.compile(r"(?:[\w+\-:/?#@~$*]|\.(?!\.))+")  # an unquoted value, stopping before ".."
_SIMPLE_STRING = re.compile(r'"([^"\\\x00-\x1f]*)"')
_STRING_CHUNK = re.compile(r'[^"\\\x00-\x1f]+')
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TERM_AHEAD = re.compile(r" *!?[^\W\d_][\w:.\[\]-]* *[=!<>~]")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_OPERATOR_CHARS = frozenset("=!<>~")
_COMMA_HINT = "',' only separates the values of a list after == or != (join terms with '|' for OR, ';' for AND)"

_Item = tuple[Expr, int]  # an expression and its depth (levels of nested AND/OR groups)


def parse_q(text: str, *, max_length: int = 4096, max_depth: int = 32, max_terms: int = 256) -> Expr:
    """The AST of ``text``, or ``QuerySyntaxError`` naming the reason and 0-based position.

    No input raises anything else. ``max_length`` bounds the text, ``max_depth`` the levels of
    nested AND/OR groups (redundant parentheses are free), ``max_terms`` the comparisons and
    existence tests."""
    if not isinstance(text, str):
        raise QuerySyntaxError("q is text", 0)
    if len(text) > max_length:
        raise QuerySyntaxError(f"a query longer than {max_length} characters (max_length)", max_length)
    if not text.isascii():
        bad = _SURROGATE.search(text)
        if bad is not None:
            raise QuerySyntaxError("a lone surrogate character", bad.start())
    return _Parser(text, max_depth, max_terms).parse()


class _Parser:
    """An explicit stack of open parentheses: no input can exhaust recursion."""

    __slots__ = ("max_depth", "max_terms", "n", "text")

    def __init__(self, text: str, max_depth: int, max_terms: int) -> None:
        self.text, self.n, self.max_depth, self.max_terms = text, len(text), max_depth, max_terms

    def skip(self, pos: int) -> int:
        text, n = self.text, self.n
        while pos < n and text[pos] == " ":
            pos += 1
        return pos

    def parse(self) -> Expr:
        text, n = self.text, self.n
        pos = self.skip(0)
        if pos == n:
            raise QuerySyntaxError("an empty query", pos)
        stack: list[tuple[int, list[_Item], list[_Item]]] = []
        ors: list[_Item] = []
        ands: list[_Item] = []
        terms = 0
        while True:  # a factor is expected at pos
            if pos < n and text[pos] == " ":
                pos = self.skip(pos)
            char = text[pos] if pos < n else ""
            if char == "(":
                stack.append((pos, ors, ands))
                ors, ands = [], []
                pos += 1
                continue
            terms += 1
            if terms > self.max_terms:
                raise QuerySyntaxError(f"more than {self.max_terms} terms (max_terms)", pos)
            if char == "!":
                path, pos = self.path(self.skip(pos + 1))
                after = self.skip(pos)
                if after < n and text[after] in _OPERATOR_CHARS:
                    raise QuerySyntaxError("'!' only negates existence (write a!=value)", after)
                ands.append((new_exists(path, True), 0))
            else:
                pos = self.term(pos, ands)
            while True:  # after a factor
                if pos < n and text[pos] == " ":
                    pos = self.skip(pos)
                if pos >= n:
                    if stack:
                        raise QuerySyntaxError("'(' is never closed", stack[-1][0])
                    ors.append(self.combine(ands, And, 0))
                    return self.combine(ors, Or, 0)[0]
                char = text[pos]
                if char == ";" or char == "&":
                    pos += 1
                    break
                if char == "|":
                    ors.append(self.combine(ands, And, pos))
                    ands = []
                    pos += 1
                    break
                if char == ")":
                    if not stack:
                        raise QuerySyntaxError("')' without a matching '('", pos)
                    opened, outer_ors, outer_ands = stack.pop()
                    ors.append(self.combine(ands, And, opened))
                    group = self.combine(ors, Or, opened)
                    ors, ands = outer_ors, outer_ands
                    ands.append(group)
                    pos += 1
                    continue
                if char == ",":
                    raise QuerySyntaxError(_COMMA_HINT, pos)
                raise QuerySyntaxError(f"unexpected {char!r} (expected ';', '|', ')' or the end)", pos)

    def combine(self, items: list[_Item], kind: type[And] | type[Or], where: int) -> _Item:
        if len(items) == 1:
            return items[0]
        terms: list[Expr] = []
        depth = 0
        for expr, level in items:
            if isinstance(expr, kind):
                terms.extend(expr.terms)
                level -= 1  # its terms join this group: one level less
            else:
                terms.append(expr)
            if level > depth:
                depth = level
        if depth >= self.max_depth:
            raise QuerySyntaxError(f"groups nested deeper than {self.max_depth} levels (max_depth)", where)
        return (new_and if kind is And else new_or)(tuple(terms)), depth + 1

    def term(self, pos: int, ands: list[_Item]) -> int:
        fast = _FAST_TERM.match(self.text, pos)
        if fast is not None:
            dotted, members, op, string, number, boolean = fast.groups()
            if (
                dotted.isascii()
                and len(dotted) <= MAX_NAME
                and (members is None or (members.isascii() and len(members) <= MAX_NAME))
                and (boolean is None or op in EQUALITY_OPERATORS)
            ):
                first, *sub = dotted.split(".")
                path = new_path(first, tuple(sub), tuple(members.split(".")) if members else ())
                if op is None:
                    ands.append((new_exists(path, False), 0))
                else:
                    value = (
                        new_string(string)
                        if string is not None
                        else new_number(number)
                        if number is not None
                        else new_boolean(boolean == "true")
                    )
                    ands.append((new_comparison(path, op, value), 0))
                return fast.end()
        return self.general_term(pos, ands)

    def general_term(self, pos: int, ands: list[_Item]) -> int:
        text, n = self.text, self.n
        path, pos = self.path(pos)
        at = self.skip(pos)
        op = _operator_at(text, at)
        if op is None:
            if text.startswith("=~", at):
                raise QuerySyntaxError("'=~' is not an NGSI-LD operator (pattern match is '~=')", at)
            if at < n and text[at] in _OPERATOR_CHARS:
                raise QuerySyntaxError("expected an operator: ==, !=, >, >=, <, <=, ~= or !~=", at)
            ands.append((new_exists(path, False), 0))
            return pos
        start = self.skip(at + len(op))
        value: Value
        if op in PATTERN_OPERATORS:
            value, pos = self.pattern(start, op)
        else:
            value, pos = self.value(start, op)
        ands.append((new_comparison(path, op, value), 0))  # pattern(), value() checked op and value
        return pos

    def name(self, pos: int, what: str) -> tuple[str, int]:
        match = NAME.match(self.text, pos)
        if match is None:
            char = self.text[pos] if pos < self.n else ""
            if char and (char.isdigit() or char == "_"):
                raise QuerySyntaxError(f"{what} starts with a letter", pos)
            raise QuerySyntaxError(f"expected {what}" + (f", found {char!r}" if char else ""), pos)
        name = match.group()
        problem = name_problem(name)
        if problem is not None:
            raise QuerySyntaxError(problem, pos)
        return name, match.end()

    def path(self, pos: int) -> tuple[AttrPath, int]:
        text, n = self.text, self.n
        start = pos
        fast = _FAST_PATH.match(text, pos)
        if fast is not None:
            dotted, inside = fast.groups()
            if (
                dotted.isascii()
                and len(dotted) <= MAX_NAME
                and (inside is None or (inside.isascii() and len(inside) <= MAX_NAME))
            ):
                first, *rest = dotted.split(".")
                return new_path(first, tuple(rest), tuple(inside.split(".")) if inside else ()), fast.end()
        attribute, pos = self.name(pos, "an attribute name")
        sub: list[str] = []
        while pos < n and text[pos] == ".":
            name, pos = self.name(pos + 1, "a name after '.'")
            sub.append(name)
        members: list[str] = []
        if pos < n and text[pos] == "[":
            while True:
                name, pos = self.name(pos + 1, "a member name inside '[...]'")
                members.append(name)
                if pos < n and text[pos] == ".":
                    continue
                if pos < n and text[pos] == "]":
                    pos += 1
                    break
                raise QuerySyntaxError("expected '.' or ']'", pos)
        char = text[pos] if pos < n else ""
        if char == "[":
            raise QuerySyntaxError("only one '[...]' per path (write a[b.c])", pos)
        if char == "{":
            raise QuerySyntaxError("linked-entity paths ('{...}') are not supported", pos)
        if char == ":" or char == "/":
            raise QuerySyntaxError("a full IRI cannot name an attribute in q (use a term or prefix:name)", pos)
        if char == ".":
            raise QuerySyntaxError("unexpected '.' after ']'", pos)
        if pos - start - 2 * bool(members) > MAX_PATH:
            raise QuerySyntaxError(f"an attribute path longer than {MAX_PATH} characters", start)
        return new_path(attribute, tuple(sub), tuple(members)), pos

    def pattern(self, pos: int, op: str) -> tuple[String, int]:
        text, n = self.text, self.n
        if pos < n and text[pos] == '"':
            regex, end = self.string(pos)
        else:
            match = BARE_PATTERN.match(text, pos)
            end = match.end() if match else pos
            char = text[end] if end < n else ""
            if char and char not in ";|&) ":
                if char == "%":
                    raise QuerySyntaxError(string_problem("%"), end)
                raise QuerySyntaxError(f"{char!r} cannot stand in an unquoted pattern (quote the pattern)", end)
            if match is None:
                raise QuerySyntaxError(f"expected a pattern after {op}", pos)
            regex = match.group()
        problem = pattern_problem(regex)
        if problem is not None:
            raise QuerySyntaxError(problem, pos)
        return new_string(regex), end

    def value(self, pos: int, op: str) -> tuple[Value, int]:
        text, n = self.text, self.n
        first_at = pos
        first, pos = self.single(pos, op)
        after = self.skip(pos)
        if text.startswith("..", after):
            if op not in EQUALITY_OPERATORS:
                raise QuerySyntaxError("a range needs == or !=", after)
            high, pos = self.single(self.skip(after + 2), op)
            problem = range_problem(first, high)
            if problem is not None:
                raise QuerySyntaxError(problem, first_at)
            value: Value = new_range(first, high)
            after = self.skip(pos)
            if after < n and (text[after] == "," or text.startswith("..", after)):
                raise QuerySyntaxError("a range is two values", after)
            return value, pos
        if after < n and text[after] == ",":
            if _TERM_AHEAD.match(text, after + 1):
                raise QuerySyntaxError(_COMMA_HINT, after)
            if op not in EQUALITY_OPERATORS:
                raise QuerySyntaxError("a list of values needs == or !=", after)
            if isinstance(first, Word):
                raise QuerySyntaxError("a URI in a list is quoted", first_at)
            items = [first]
            while after < n and text[after] == ",":
                if _TERM_AHEAD.match(text, after + 1):
                    raise QuerySyntaxError(_COMMA_HINT, after)
                start = self.skip(after + 1)
                item, pos = self.single(start, op)
                if isinstance(item, Word):
                    raise QuerySyntaxError("a URI in a list is quoted", start)
                items.append(item)
                after = self.skip(pos)
                if text.startswith("..", after):
                    raise QuerySyntaxError("a list cannot hold a range", after)
            return new_list(tuple(items)), pos
        return first, pos

    def single(self, pos: int, op: str) -> tuple[Single, int]:
        text = self.text
        if pos < self.n and text[pos] == '"':
            content, end = self.string(pos)
            if STRING_OK.fullmatch(content) is None:
                raise QuerySyntaxError(string_problem(content), pos)
            return new_string(content), end
        match = _BARE.match(text, pos)
        if match is None:
            found = f", found {text[pos]!r}" if pos < self.n else ""
            raise QuerySyntaxError(f"expected a value after {op}{found}", pos)
        token, end = match.group(), match.end()
        value: Single
        try:
            if token == "true" or token == "false":
                value = new_boolean(token == "true")
            elif token[0].isdigit() or token[0] == "-":
                if NUMBER.fullmatch(token):
                    value = Number(token)
                elif DATETIME.fullmatch(token):
                    instant(token)  # a real calendar instant, or ValueError
                    value = new_datetime(token)
                elif _TIME.fullmatch(token):
                    raise ValueError("time-only values are not supported")
                else:
                    raise ValueError(f"invalid number or date-time {token!r}")
            elif URI.fullmatch(token):
                value = new_word(token)  # _BARE stops before "..", URI excludes "%"
            elif NAME.fullmatch(token):
                raise ValueError(f'a text value is quoted: "{token}"')
            else:
                raise ValueError(f"invalid value {token!r}")
        except ValueError as exc:
            raise QuerySyntaxError(str(exc), pos) from None
        if op not in EQUALITY_OPERATORS and isinstance(value, (Boolean, Word)):
            raise QuerySyntaxError(comparison_problem(op, value) or "invalid value", pos)
        return value, end

    def string(self, pos: int) -> tuple[str, int]:
        """A JSON string starting at ``pos``: its content and the position after it."""
        text, n = self.text, self.n
        simple = _SIMPLE_STRING.match(text, pos)
        if simple is not None:
            return simple.group(1), simple.end()
        parts: list[str] = []
        i = pos + 1
        while True:
            chunk = _STRING_CHUNK.match(text, i)
            if chunk is not None:
                parts.append(chunk.group())
                i = chunk.end()
            if i >= n:
                raise QuerySyntaxError("a string is never closed", pos)
            char = text[i]
            if char == '"':
                return "".join(parts), i + 1
            if char != "\\":
                raise QuerySyntaxError("a control character inside a string (escape it)", i)
            escape = text[i + 1] if i + 1 < n else ""
            if escape in _ESCAPES:
                parts.append(_ESCAPES[escape])
                i += 2
            elif escape == "u":
                code, i = self.unicode_escape(i)
                parts.append(code)
            else:
                raise QuerySyntaxError(
                    f"invalid escape '\\{escape}' (strings follow JSON: '\\\\' is a "
                    "backslash; a pattern may also be written unquoted)",
                    i,
                )

    def unicode_escape(self, i: int) -> tuple[str, int]:
        text = self.text
        digits = text[i + 2 : i + 6]
        if _HEX4.fullmatch(digits) is None:
            raise QuerySyntaxError("invalid \\u escape (four hex digits)", i)
        code = int(digits, 16)
        if 0xD800 <= code <= 0xDBFF and text.startswith("\\u", i + 6) and _HEX4.fullmatch(text[i + 8 : i + 12]):
            low = int(text[i + 8 : i + 12], 16)
            if 0xDC00 <= low <= 0xDFFF:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), i + 12
        if 0xD800 <= code <= 0xDFFF:
            raise QuerySyntaxError("a \\u escape of a lone surrogate", i)
        return chr(code), i + 6


def _operator_at(text: str, pos: int) -> str | None:
    char = text[pos : pos + 1]
    following = text[pos + 1 : pos + 2]
    if char == "=":
        return "==" if following == "=" else None
    if char == "!":
        if following == "=":
            return "!="
        return "!~=" if text.startswith("~=", pos + 1) else None
    if char == ">" or char == "<":
        return char + "=" if following == "=" else char
    if char == "~":
        return "~=" if following == "=" else None
    return None
