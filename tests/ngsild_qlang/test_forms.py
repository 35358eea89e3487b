"""The q grammar by examples: valid forms and their AST, invalid forms and where they fail,
the limits, the canonical text, and the AST's own invariants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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
    ValueList,
    Word,
    all_of,
    any_of,
    attribute_paths,
    parse_q,
    to_text,
)


def p(attribute: str, *sub: str, members: tuple[str, ...] = ()) -> AttrPath:
    return AttrPath(attribute, sub, members)


def c(path: str | AttrPath, op: str, value: object) -> Comparison:
    return Comparison(p(path) if isinstance(path, str) else path, op, value)  # type: ignore[arg-type]


def e(name: str, negated: bool = False) -> Exists:
    return Exists(p(name), negated)


N, S = Number, String


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a==1", c("a", "==", N("1"))),
        ("a!=1", c("a", "!=", N("1"))),
        ("a>1.5", c("a", ">", N("1.5"))),
        ("a>=-2", c("a", ">=", N("-2"))),
        ("a<1e5", c("a", "<", N("1e5"))),
        ("a<=0.25E-3", c("a", "<=", N("0.25E-3"))),
        ('a~="^x.*"', c("a", "~=", S("^x.*"))),
        ("a~=..ne.*", c("a", "~=", S("..ne.*"))),  # unquoted, as Orion-LD's tests write it
        ('a!~="(?i)x|y"', c("a", "!~=", S("(?i)x|y"))),
        ("a!~=\\d+", c("a", "!~=", S("\\d+"))),
        ('a~="\\\\d+"', c("a", "~=", S("\\d+"))),  # JSON: "\\d" is the regex \d
        ("a==1,2,3", c("a", "==", ValueList((N("1"), N("2"), N("3"))))),
        ('a!="x", "y"', c("a", "!=", ValueList((S("x"), S("y"))))),  # the spec's own example has the space
        ("a==true,false", c("a", "==", ValueList((Boolean(True), Boolean(False))))),
        ("a==1..5", c("a", "==", Range(N("1"), N("5")))),
        ("a!=-1.5..2", c("a", "!=", Range(N("-1.5"), N("2")))),
        ('a=="a".."m"', c("a", "==", Range(S("a"), S("m")))),
        (
            "a==2026-01-01..2026-12-31T23:59:59Z",
            c("a", "==", Range(DateTime("2026-01-01"), DateTime("2026-12-31T23:59:59Z"))),
        ),
        ('a=="x;|,()!=<>~"', c("a", "==", S("x;|,()!=<>~"))),
        ('a=="\\u00e9\\/\\ud83d\\ude00"', c("a", "==", S("é/\U0001f600"))),
        ('a==""', c("a", "==", S(""))),
        ("a==true", c("a", "==", Boolean(True))),
        ("a!=false", c("a", "!=", Boolean(False))),
        ("a.observedAt>=2017-12-24T12:00:00Z", c(p("a", "observedAt"), ">=", DateTime("2017-12-24T12:00:00Z"))),
        ("a<2018-12-04T11:00:00.00+01:00", c("a", "<", DateTime("2018-12-04T11:00:00.00+01:00"))),
        ("a==2018-12-03", c("a", "==", DateTime("2018-12-03"))),
        ("a==urn:ngsi-ld:Building:B", c("a", "==", Word("urn:ngsi-ld:Building:B"))),
        ("a!=https://example.org/x?y#z", c("a", "!=", Word("https://example.org/x?y#z"))),
        ("a", e("a")),
        ("!a", e("a", True)),
        ("!a.b[c]", Exists(p("a", "b", members=("c",)), True)),
        ('a.unitCode=="CEL"', c(p("a", "unitCode"), "==", S("CEL"))),
        ("a.b.c==1", c(p("a", "b", "c"), "==", N("1"))),
        ("a[b]==1", c(p("a", members=("b",)), "==", N("1"))),
        ("a[b.c]==1", c(p("a", members=("b", "c")), "==", N("1"))),
        (
            "sensor.rawdata[airquality.particulate]==40",  # the spec's example 10
            c(p("sensor", "rawdata", members=("airquality", "particulate")), "==", N("40")),
        ),
        ("ex:P100==12", c("ex:P100", "==", N("12"))),
        ("température==1", c("température", "==", N("1"))),
        ("ｎａｍｅ==1", c("ｎａｍｅ", "==", N("1"))),
        ("a;b", And((e("a"), e("b")))),
        ("a&b", And((e("a"), e("b")))),  # Orion-LD's alias of ';'
        ("a|b", Or((e("a"), e("b")))),
        ("a;b|c", Or((And((e("a"), e("b"))), e("c")))),
        ("a|b;c", Or((e("a"), And((e("b"), e("c")))))),
        ("(a|b);c", And((Or((e("a"), e("b"))), e("c")))),
        ("a;(b|c);d", And((e("a"), Or((e("b"), e("c"))), e("d")))),
        (
            '((speed>50|rpm>3000);brandName=="Mercedes")',  # the spec's example 6
            And((Or((c("speed", ">", N("50")), c("rpm", ">", N("3000")))), c("brandName", "==", S("Mercedes")))),
        ),
        ("(a;b);c", And((e("a"), e("b"), e("c")))),  # flattened
        ("a|(b|(c|d))", Or((e("a"), e("b"), e("c"), e("d")))),
        ("((((a))))", e("a")),
        (" ( a == 1 ) ; ! b ", And((c("a", "==", N("1")), e("b", True)))),
    ],
)
def test_valid_forms(text: str, expected: Expr) -> None:
    assert parse_q(text) == expected
    assert parse_q(to_text(expected)) == expected


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("", 0, "an empty query"),
        ("   ", 3, "an empty query"),
        ("a=~b", 1, "'=~' is not an NGSI-LD operator"),
        ("a=b", 1, "expected an operator"),
        ("a<>b", 2, "expected a value"),
        ("a==1,b==2", 4, "',' only separates the values of a list"),
        ('a=="x",b', 7, 'a text value is quoted: "b"'),
        ("a,b", 1, "',' only separates"),
        ("a<1,2", 3, "a list of values needs == or !="),
        ("a>1..2", 3, "a range needs == or !="),
        ("a==1..2..3", 7, "a range is two values"),
        ("a==1,2..3", 6, "a list cannot hold a range"),
        ("a==1..true", 3, "a range's bounds"),
        ('a==1.."z"', 3, "a range's bounds"),
        ("a==urn:a,urn:b", 3, "a URI in a list is quoted"),
        ("a==1,urn:b", 5, "a URI in a list is quoted"),
        ("a>true", 2, "true/false compare only with == or !="),
        ("a<=urn:x", 3, "a URI compares only with == or !="),
        ("a==x", 3, 'a text value is quoted: "x"'),
        ("a==1x", 3, "invalid number or date-time"),
        ("a==01", 3, "invalid number or date-time"),
        ("a==+1", 3, "invalid value"),
        ("a==1e999", 3, "number out of range"),
        ("a==" + "1" * 101, 3, "invalid number"),
        ("a==2026-02-30", 3, "invalid date-time"),
        ("a==2026-01-01T25:00Z", 3, "invalid date-time"),
        ("a==2026-01-01T00:00+24:00", 3, "invalid date-time"),
        ("a==12:00:00Z", 3, "time-only values are not supported"),
        ("a==", 3, "expected a value after =="),
        ("a== ;b", 4, "expected a value after =="),
        ('a=="x', 3, "a string is never closed"),
        ('a=="x\\"', 3, "a string is never closed"),
        ('a=="x\\";b==1;c==\\"y"', 3, "a string cannot hold '\"'"),  # would name b at Orion-LD
        ('a=="x%22;b==1"', 3, "a string cannot hold '%'"),  # Orion-LD turns %22 into a quote
        ('a=="a\\\\b"', 3, "cannot hold '\\'"),
        ('a=="\\n"', 3, "control characters"),
        ('a=="\x01"', 4, "a control character inside a string"),
        ('a=="\\d"', 4, "invalid escape '\\d'"),
        ('a=="\\u12"', 4, "invalid \\u escape"),
        ('a=="\\ud800"', 4, "lone surrogate"),
        ("a==\ud800", 3, "a lone surrogate character"),
        ("a~=", 3, "expected a pattern after ~="),
        ('a~=""', 3, "an empty pattern"),
        ("a~=(?i)x", 3, "'(' cannot stand in an unquoted pattern"),
        ("a~=x,y", 4, "',' cannot stand in an unquoted pattern"),
        ("a~=50%", 5, "cannot hold '%'"),
        ('a~="["', 3, "invalid regular expression"),
        ('a~="[[:alpha:]]"', 3, "invalid regular expression"),  # Python warns: refused, never printed
        ('a~="' + "x" * 257 + '"', 3, "a pattern longer than 256 characters"),
        ("!a==1", 2, "'!' only negates existence"),
        ("!", 1, "expected an attribute name"),
        ("!(a)", 1, "expected an attribute name, found '('"),
        ("==1", 0, "expected an attribute name, found '='"),
        ("1a==1", 0, "an attribute name starts with a letter"),
        ("_a", 0, "an attribute name starts with a letter"),
        ("\u2160a", 0, "a name starts with a letter"),
        ("a" * 257, 0, "a name longer than 256 characters"),
        ("a" + ".b" * 256, 0, "an attribute path longer than 512 characters"),
        (
            "a" * 200 + "[" + ".".join(["b" * 100] * 4) + "]==1",
            0,
            "an attribute path longer than 512",
        ),  # ROMAN NUMERAL ONE: \w, but not a letter
        ("a.==1", 2, "expected a name after '.'"),
        ("a..b", 2, "expected a name after '.', found '.'"),
        ("a[]==1", 2, "expected a member name"),
        ("a[b==1", 3, "expected '.' or ']'"),
        ("a[b][c]==1", 4, "only one '[...]' per path"),
        ("a[b].c==1", 4, "unexpected '.' after ']'"),
        ("a[*]==1", 2, "expected a member name"),
        ("a{b}==1", 1, "linked-entity paths"),
        ("http://example.org/a==1", 4, "a full IRI cannot name an attribute"),
        ("a:==1", 1, "a full IRI cannot name an attribute"),
        ("a b", 2, "unexpected 'b'"),
        ("a\t==1", 1, "unexpected '\\t'"),
        ("(a", 0, "'(' is never closed"),
        ("(a;(b)", 0, "'(' is never closed"),
        ("a)", 1, "')' without a matching '('"),
        ("()", 1, "expected an attribute name, found ')'"),
        ("a;", 2, "expected an attribute name"),
        ("a||b", 2, "expected an attribute name, found '|'"),
        (";a", 0, "expected an attribute name"),
        ("a==1)", 4, "')' without a matching '('"),
    ],
)
def test_invalid_forms(text: str, position: int, reason: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_q(text)

    assert reason in caught.value.reason
    assert caught.value.position == position
    assert str(caught.value) == f"{caught.value.reason} at position {position}"


def test_length_limit() -> None:
    fits = 'a=="' + "x" * 4091 + '"'

    assert len(fits) == 4096 and parse_q(fits)
    assert parse_q("a" * 10 + ";b", max_length=12)
    with pytest.raises(QuerySyntaxError, match=r"longer than 12 characters \(max_length\) at position 12"):
        parse_q("a" * 11 + ";b", max_length=12)
    with pytest.raises(QuerySyntaxError, match="max_length"):
        parse_q("a" * 4097)


def test_terms_limit() -> None:
    assert len(attribute_paths(parse_q(";".join(["a"] * 256)))) == 256
    with pytest.raises(QuerySyntaxError, match=r"more than 256 terms \(max_terms\)") as caught:
        parse_q(";".join(["a"] * 257))
    assert caught.value.position == 512  # the 257th term
    with pytest.raises(QuerySyntaxError, match=r"more than 2 terms \(max_terms\) at position 6"):
        parse_q("(a|b);c", max_terms=2)


def _nested(levels: int) -> str:
    """``levels`` nested AND/OR groups: a;(b|(c;(d|...)))."""
    text = "z"
    for level in range(levels):
        text = f"x{level}{';' if level % 2 else '|'}({text})"
    return text


def test_depth_limit() -> None:
    deepest = parse_q(_nested(32))

    assert parse_q(to_text(deepest)) == deepest
    with pytest.raises(QuerySyntaxError, match=r"deeper than 32 levels \(max_depth\)"):
        parse_q(_nested(33))
    with pytest.raises(QuerySyntaxError, match=r"deeper than 2 levels \(max_depth\) at position 0"):
        parse_q("a;(b|(c;d))", max_depth=2)
    assert parse_q("a;b|c;d|(e|f;g)", max_depth=2)  # flattened: Or(And, And, e, And)


def test_redundant_parentheses_are_free_and_never_recurse() -> None:
    assert parse_q("(" * 2000 + "a" + ")" * 2000) == e("a")
    with pytest.raises(QuerySyntaxError, match="expected an attribute name at position 4000"):
        parse_q("(" * 4000)
    with pytest.raises(QuerySyntaxError, match="'\\(' is never closed at position 3999"):  # the innermost
        parse_q("(" * 4000 + "a")


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (Or((And((e("a"), e("b"))), e("c"))), "(a;b)|c"),
        (And((Or((e("a"), e("b"))), e("c"))), "(a|b);c"),
        (c("a", "~=", S("^x.*$")), "a~=^x.*$"),  # unquoted, as Orion-LD reads patterns
        (c("a", "~=", S("(a|b)")), 'a~="(a|b)"'),
        (c("a", "~=", S("\\d x")), 'a~="\\\\d x"'),
        (c("a", "==", S("x;y")), 'a=="x;y"'),
        (c("a", "==", N("1.50")), "a==1.50"),  # numbers as written
        (parse_q('a == "x" , "y" ; ! b'), 'a=="x","y";!b'),
    ],
)
def test_canonical_text(expr: Expr, text: str) -> None:
    assert to_text(expr) == text


def test_more_than_ten_terms_a_level_are_chunked_for_orion_ld() -> None:
    wide = Or(tuple(e(f"a{i}") for i in range(25)))

    text = to_text(wide)

    assert (
        text == "(a0|a1|a2)|(a3|a4|a5)|(a6|a7|a8)|(a9|a10|a11)|(a12|a13|a14)|(a15|a16|a17)|"
        "(a18|a19|a20)|(a21|a22|a23)|a24"
    )
    assert parse_q(text) == wide
    assert parse_q(to_text(And(tuple(e(f"a{i}") for i in range(256))))) == And(tuple(e(f"a{i}") for i in range(256)))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("a", ["a"]),
        ("!a", ["a"]),
        ("a.b.c[d.e]==1", ["a"]),
        ("(a==1,2|(b;!c));d..x==1", None),  # invalid: no names from a refused text
        ("(a==1,2|(b;!c));d==1..3", ["a", "b", "c", "d"]),
        ('a=="b==1;c>2"', ["a"]),  # names inside strings are values, not attributes
        ('a~="b==1|c"', ["a"]),
        ("a~=b", ["a"]),
        ("x==1;x==2|x", ["x", "x", "x"]),
    ],
)
def test_attribute_paths_find_every_reference(text: str, names: list[str] | None) -> None:
    if names is None:
        with pytest.raises(QuerySyntaxError):
            parse_q(text)
        return
    assert [path.attribute for path in attribute_paths(parse_q(text))] == names


def test_attribute_paths_keep_sub_attributes_and_members() -> None:
    assert attribute_paths(parse_q("a.observedAt>2026-01-01;!b[c.d]")) == (
        AttrPath("a", ("observedAt",)),
        AttrPath("b", (), ("c", "d")),
    )


def test_values() -> None:
    assert N("12").value == 12 and isinstance(N("12").value, int)
    assert N("1.5").value == 1.5 and N("1e2").value == 100.0 and isinstance(N("1e2").value, float)
    assert DateTime("2026-01-01T01:00:00+01:00").instant == datetime(2026, 1, 1, tzinfo=UTC)
    assert DateTime("2026-01-01").instant == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "build",
    [
        lambda: AttrPath("a;b"),
        lambda: AttrPath("a", ("b|c",)),
        lambda: AttrPath("a", members=("x]",)),
        lambda: AttrPath("1a"),
        lambda: AttrPath("a" * 257),
        lambda: String('x"'),
        lambda: String("50%"),
        lambda: String("\n"),
        lambda: Number("1e999"),
        lambda: Number("01"),
        lambda: DateTime("2026-02-30"),
        lambda: DateTime("0001-01-01T00:00:00+01:00"),  # before the first instant a datetime holds
        lambda: Word("urn:a..b"),
        lambda: Word("urn:a;b"),
        lambda: Word("nocolon"),
        lambda: Range(N("1"), S("2")),
        lambda: Range(Boolean(True), Boolean(False)),
        lambda: ValueList((N("1"),)),
        lambda: ValueList((N("1"), Word("urn:a"))),
        lambda: c("a", "=~", S("x")),
        lambda: c("a", "==", S("a\\b")),  # a backslash only in a pattern
        lambda: c("a", ">", Boolean(True)),
        lambda: c("a", "<", Word("urn:a")),
        lambda: c("a", ">", ValueList((N("1"), N("2")))),
        lambda: c("a", "<", Range(N("1"), N("2"))),
        lambda: c("a", "~=", N("1")),
        lambda: c("a", "~=", S("(")),
        lambda: c("a", "~=", S("")),
        lambda: And((e("a"),)),
        lambda: And((e("a"), And((e("b"), e("c"))))),
        lambda: Or((e("a"), Or((e("b"), e("c"))))),
    ],
)
def test_no_invalid_node_can_be_built(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_the_longest_path_is_the_same_for_the_parser_and_the_ast() -> None:
    longest = "a" * 256 + "[" + "b" * 256 + "]"  # 512 characters without the brackets: fits

    path = attribute_paths(parse_q(longest))[0]

    assert AttrPath(path.attribute, path.sub, path.members) == path
    with pytest.raises(ValueError, match="longer than 512"):
        AttrPath("a" * 256, ("c",), ("b" * 256,))  # a...a.c[b...b]: 514
    with pytest.raises(QuerySyntaxError, match="longer than 512"):
        parse_q("a" * 200 + "." + "b" * 200 + "[" + "c" * 100 + "." + "d" * 11 + "]")  # 513


def test_all_of_and_any_of_keep_the_ast_flat() -> None:
    client = parse_q("a;b")

    assert all_of(client, e("c")) == And((e("a"), e("b"), e("c")))
    assert any_of(client, e("c")) == Or((client, e("c")))
    assert all_of(e("a")) == e("a")
    with pytest.raises(ValueError):
        all_of()


def test_a_pattern_may_hold_a_backslash() -> None:
    assert to_text(c("a", "~=", S("\\d+"))) == "a~=\\d+"
