"""The NGSI-LD query language (``q``): one parser, one AST, one canonical text for the project.

The sharing gateway decides on the parsed query (every attribute it names must be readable by
the partner) and sends the broker ``to_text(ast)``, never the client's string; the embedded
broker compiles its predicate from the same AST. Standard library only.

Sources: ETSI GS CIM 009 V1.9.1 clause 4.9 (the newest text found; its ABNF keeps the 1.6-1.8
productions), Orion-LD's lexer and parser (FIWARE/context.Orion-LD 36a8d17, Oct 2024:
src/lib/orionld/q/qLex.cpp, qLexCheck.cpp, qParse.cpp, qVariableFix.cpp, common/urlDecode.cpp,
and its functional tests), Scorpio's (ScorpioBroker c42c5aa: commons/tools/QueryParser.java,
QQueryTerm.java). Grammar accepted::

    query   = or
    or      = and *( "|" and )                 ; ";" binds tighter than "|" (clause 4.9)
    and     = factor *( (";" / "&") factor )   ; "&": Orion-LD's qLex reads it as AND
    factor  = "(" or ")" / "!" path / path [ op value ]
    path    = name *( "." name ) [ "[" name *( "." name ) "]" ]
    name    = letter *( letter / digit / "_" ) *( ":" 1*( letter / digit / "_" / "-" ) )
    op      = "==" / "!=" / ">=" / ">" / "<=" / "<" / "~=" / "!~="

Spaces (U+0020) may stand between tokens. Sources and decisions:

- **Operators**: the eight of the ABNF. ``=~`` is read by no real broker (Orion-LD's qLex takes
  ``a=~x`` as one attribute name, Scorpio matches no operator), so it is refused, naming ``~=``.
- **Values**: JSON numbers (RFC 8259), ``true``/``false``, JSON strings, unquoted date-times
  (``YYYY-MM-DD[Thh:mm[:ss[.f]]][Z|±hh[:mm]]``, clause 4.6.3 as Orion-LD reads them) and, after
  ``==``/``!=`` only, unquoted URIs (``CompEqualityValue``). Lists ``a==1,2,3`` and ranges
  ``a==1..5`` only after ``==``/``!=``; list items are never URIs (``ValueList = Value ...``;
  quote them), range bounds are two numbers, two strings or two date-times. Time-only values
  are refused (Orion-LD's lexer reads ``12:00:00Z`` as the integer 12). ``true``/``false`` and
  URIs never follow an ordering operator (Orion-LD: "invalid operator for boolean value").
- **Strings**: the ABNF says JSON strings, but Orion-LD's lexer has no escapes: it ends a string
  at the next ``"`` and keeps backslashes, and its ``urlDecode`` turns ``%22`` inside ``q`` into
  ``"``. A value holding ``"``, ``\\``, ``%`` or a control character could therefore not be sent
  to Orion-LD without being read differently (``"x\\";hidden==1"`` would name ``hidden``), so
  such values are refused; JSON escapes denoting any other character (``\\u00e9``, ``\\/``) are
  read. ``to_text`` writes the content between quotes as is.
- **Patterns** (``~=``, ``!~=``): a regex (``String``), written unquoted as Orion-LD requires
  (``A~=..ne.*`` in its tests; a quoted one is refused there) or as a JSON string (the spec's
  ``quotedStr``; needed for ``(``, ``|``, ``,``, spaces...). At most 256 characters, never
  ``"``/``%``, and it must compile with Python's ``re`` (the embedded broker evaluates it; Orion-LD
  hands it to MongoDB's PCRE). ``to_text`` writes it unquoted when every character is safe there.
  Catastrophic backtracking (``(a+)+$``) is not detected: the length cap is the only bound.
- **Paths**: ``a.b.c`` = sub-attribute or metadata (``observedAt``, ``unitCode``, ``datasetId``),
  then deeper; ``a[b.c]`` = members inside the value; ``a.b[c]`` is allowed (spec example 10,
  Orion-LD refuses it with 400). One ``[...]`` at most (``ValuePath = DottedPath
  *1([DottedPath])``; Orion-LD: "More than one start brackets"), so ``a[b][c]`` is refused.
  ``AttrName`` starts with a Unicode letter; ``prefix:name`` compact IRIs are kept as written
  (the broker expands them; the gateway refuses them); full IRIs cannot be written (their dots
  and slashes). Linked-entity paths ``a{b}`` (V1.8+) and ``a[*]`` are not supported. Older
  texts (``compoundAttrName = attrName *([attrName])``, quoted in Scorpio) allowed ``a[b][c]``.
- **``!a``** (non-existence) is Orion-LD's (qLex ``QNodeNotExists``), not in the ABNF; Scorpio
  misreads it. ``!`` takes a path only.
- **``,`` between whole terms** is not OR: Orion-LD fails with "mixed types in comma-list", so
  it is refused with a hint to use ``|``.
- **Precedence**: ``a;b|c`` is ``(a;b)|c`` and ``a|b;c`` is ``a|(b;c)`` (the spec's rule; Orion-LD
  refuses both unparenthesised: "mixed AND/OR operators").
- **Parentheses** may nest (spec example 6 does, though ``QueryTermAssoc`` holds only terms).
  Orion-LD refuses ``;`` and ``|`` mixed at one level and keeps at most 10 terms per level in a
  fixed array (``qNodeV[10]`` in qParse.cpp, no bound check), so ``to_text`` parenthesises
  every nested group and splits groups of more than 10 into parenthesised chunks.
- Scorpio (QueryParser.java) splits on ``;|()`` even inside quotes and URL-decodes ``q`` a
  second time; no canonical form can protect it; it is for manual checks only (DESIGN.md).

``all_of``/``any_of`` join expressions keeping the AST flattened (e.g. a client's q narrowed by a
rule). Names are at most 256 characters, a written path at most 512 (Orion-LD copies it into
``char varPath[1024]`` with ``strncpy``). Limits (each refusal names it): ``max_length`` characters, ``max_depth`` levels of nested
AND/OR groups in the AST (redundant parentheses are free; the parser is iterative), and
``max_terms`` comparisons and existence tests. Positions are 0-based indexes into the text.
"""

from adapter.ngsild.qlang._ast import (
    EQUALITY_OPERATORS,
    MAX_PATTERN_LENGTH,
    OPERATORS,
    PATTERN_OPERATORS,
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
    Value,
    ValueList,
    Word,
    all_of,
    any_of,
)
from adapter.ngsild.qlang._parser import parse_q
from adapter.ngsild.qlang._text import attribute_paths, to_text

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
    "attribute_paths",
    "parse_q",
    "to_text",
]
