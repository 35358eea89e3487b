"""RFC 8785 canonical JSON and record digests, checked against the RFC's own examples.

The vectors below are written from RFC 8785: the example of section 3.2.2 (serialisation of
primitives), the example of section 3.2.3 (sorting by UTF-16 code units) and the number
samples of Appendix B (ECMAScript Number-to-String, given as IEEE 754 bit patterns).
"""

from __future__ import annotations

import hashlib
import json
import random
import struct

import pytest
import rfc8785

from adapter.provenance.integrity.canonical import (
    CanonicalizationError,
    JSONValue,
    canonicalize,
    record_digest,
)


def test_section_3_2_2_primitives() -> None:
    value: JSONValue = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    assert (
        canonicalize(value)
        == (
            '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
        ).encode()
    )


def test_section_3_2_3_keys_sort_by_utf16_code_units() -> None:
    value: JSONValue = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(json.loads(canonicalize(value)))
    # U+1F600 is the surrogate pair D83D DE00: before U+FB33 in UTF-16, after it in code points.
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert canonicalize(value).startswith(b'{"\\r":"Carriage Return","1":"One","\xc2\x80":')


@pytest.mark.parametrize(
    ("ieee", "expected"),
    [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ],
)
def test_appendix_b_numbers(ieee: str, expected: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee))
    assert canonicalize(number) == expected.encode()


@pytest.mark.parametrize("ieee", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_appendix_b_nan_and_infinities_are_refused(ieee: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee))
    with pytest.raises(CanonicalizationError):
        canonicalize([number])


def test_string_escaping() -> None:
    controls = "".join(chr(c) for c in range(0x20))
    assert canonicalize(controls) == (
        b'"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r'
        b"\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
        b'\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f"'
    )
    # Only '"' and '\' are escaped besides controls: '/', DEL and non-ASCII go as UTF-8.
    assert canonicalize('"\\/\x7f\u00e9\U0001f600') == b'"\\"\\\\/\x7f\xc3\xa9\xf0\x9f\x98\x80"'


def test_integers_within_ijson_and_nesting() -> None:
    value: JSONValue = {"b": [1, -0.0, 2.0, {"z": 9007199254740991, "a": -9007199254740991}], "a": {}}
    assert canonicalize(value) == (b'{"a":{},"b":[1,0,2,{"a":-9007199254740991,"z":9007199254740991}]}')


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        -(2**53),
        "\ud800",
        {1: "non-string key"},
        {"set": {1, 2}},
        b"bytes",
    ],
)
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize(value)  # type: ignore[arg-type]


def test_record_digest_is_sha256_of_canonical_form_whatever_the_spelling() -> None:
    spellings = [
        '{"fCnt": 42, "value": 4.50, "device": "70b3d57ed0001234"}',
        '{ "device":"70b3d57ed0001234",\n "value":4.5e0, "fCnt":42.0 }',
    ]
    digests = {record_digest(json.loads(spelling)) for spelling in spellings}
    canonical = b'{"device":"70b3d57ed0001234","fCnt":42,"value":4.5}'
    assert digests == {hashlib.sha256(canonical).digest()}


def test_record_digest_needs_an_object() -> None:
    with pytest.raises(CanonicalizationError):
        record_digest([1, 2])  # type: ignore[arg-type]


def _random_value(rng: random.Random, depth: int = 0) -> object:
    """JSON values mixing what the fast path takes and what it hands to the reference path."""
    choice = rng.randrange(12 if depth < 3 else 8)
    if choice == 0:
        return rng.uniform(-1e6, 1e6)
    if choice == 1:
        return rng.random() * 10 ** rng.randint(-9, 23) * rng.choice((1, -1))
    if choice == 2:
        return float(rng.randint(-(10**17), 10**17))
    if choice == 3:
        return rng.randint(-(2**53) + 1, 2**53 - 1)
    if choice == 4:
        return rng.choice((True, False, None, 0, -0.0, 1e-4, 1e16, 0.1, 5e-324, 1.7976931348623157e308))
    if choice == 5:
        return "".join(rng.choice('az"\\\n\t\x00\x1f\x7f\u2028é€😀\ufb33') for _ in range(rng.randrange(6)))
    if choice in (6, 7):
        return rng.choice(("ville", "urn:ngsi-ld:Device:ville:1", ""))
    if choice in (8, 9):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ("a", "B", "é", "😀", "\ufb33", "10", "1", "")
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def test_fast_path_writes_exactly_what_the_reference_implementation_writes() -> None:
    """Records are canonicalised through the C JSON encoder when that gives the RFC 8785 bytes;
    this checks it against Trail of Bits' implementation on many generated values."""
    rng = random.Random(8785)
    for _ in range(20_000):
        value = {"v": _random_value(rng)}
        assert canonicalize(value) == rfc8785.dumps(value), value
        parsed = json.loads(json.dumps(value))  # string keys only: the cheapest path may be taken
        assert canonicalize(parsed, keys_are_strings=True) == rfc8785.dumps(parsed), parsed


@pytest.mark.parametrize("value", [0.0, -0.0, 1.0, [2.0], {"a": 1e-05}, 1e16, 2**53 - 1, 1e21, -5e-324])
def test_cheapest_path_hands_over_floats_python_spells_differently(value: object) -> None:
    assert canonicalize(value, keys_are_strings=True) == rfc8785.dumps(value)
