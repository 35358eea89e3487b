"""Results of every internal string representation cross the QuickJS bridge.

QuickJS-NG keeps long concatenations as ropes (tag -6), which the ``quickjs-ng`` binding
cannot convert (``TypeError: Unknown quickjs tag: -6``); before the fix each of these
shapes stopped the caller with that TypeError. Expected values are computed here in
Python, independently of the engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.codecs.base import CodecInput
from adapter.codecs.javascript import JavaScriptCodec, load_javascript_codec
from adapter.exceptions import CodecError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "codecs"
RECEIVED_AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def uplink(payload: bytes, **variables: str) -> CodecInput:
    return CodecInput(payload=payload, f_port=1, received_at=RECEIVED_AT, variables=variables)


@pytest.fixture(scope="module")
def ropes() -> Iterator[JavaScriptCodec]:
    codec = load_javascript_codec(FIXTURES / "ngsild_test_ropes.js")
    yield codec
    codec.close()


def test_hex_dump_and_labels_built_by_concatenation(ropes: JavaScriptCodec) -> None:
    payload = bytes([0, 0xAB, 0x10])

    data = ropes.decode(uplink(payload)).data

    assert data["dump"] == payload.hex() * 100
    assert data["label"] == "sensor-" * 1500
    assert data["joined"] == "a" * 600 + "b" * 600
    assert data["length"] == 600


def test_large_nested_object(ropes: JavaScriptCodec) -> None:
    data = ropes.decode(uplink(bytes([1, 2]))).data

    assert len(data["sensors"]) == 300
    for s in (0, 1, 299):
        assert data["sensors"][f"sensor_{s}"] == {
            "id": f"id-{s}",
            "readings": [s, s * 0.5, -s],
            "meta": {"ok": s % 2 == 0, "name": f"name {s} of 2", "tags": [f"t{s}", f"u{s}"]},
        }


def test_keys_that_look_like_other_values_stay_strings(ropes: JavaScriptCodec) -> None:
    data = ropes.decode(uplink(bytes([2]))).data

    assert data == {
        "false": False,
        "NO": "NO",
        "true": 1,
        "null": None,
        "0": "zero",
        "": "empty",
        "constructor": "c",
        "toString": "t",
        "hasOwnProperty": 2,
        "yes": "no",
        "proto": {"__proto__": "own key"},
    }


def test_arrays_of_strings(ropes: JavaScriptCodec) -> None:
    data = ropes.decode(uplink(bytes([3]))).data

    assert data["list"] == [f"item {k}:" + "x" * (k % 7) for k in range(1000)]
    assert data["long"] == ["0123456789" * (100 + m) for m in range(5)]


def test_long_thrown_message_is_a_codec_error_clipped(ropes: JavaScriptCodec) -> None:
    with pytest.raises(CodecError) as caught:
        ropes.decode(uplink(bytes([4])))

    assert caught.value.reason == "codec_error"
    detail = caught.value.detail
    assert detail.startswith("ngsild_test_ropes.js: Error: frame bad bad ")
    assert detail.endswith("...") and len(detail) < 1100


def test_long_warnings_and_errors(ropes: JavaScriptCodec) -> None:
    result = ropes.decode(uplink(bytes([5])))

    assert result.warnings == ("w:" + "w" * 600,)
    assert result.errors == ("e:" + "e" * 9000, "short")


def test_long_console_line_is_clipped_to_a_warning(ropes: JavaScriptCodec) -> None:
    result = ropes.decode(uplink(bytes([6])))

    assert result.data == {"logged": True}
    assert result.warnings == (("console.log: log:" + "l" * 2000)[:500],)


def test_file_ending_in_values_the_binding_cannot_read_still_loads() -> None:
    codec = load_javascript_codec(FIXTURES / "ngsild_test_rope_completion.js")
    try:
        assert codec.decode(uplink(bytes([9]))).data == {"first": 9}
    finally:
        codec.close()


# Any JSON document, its strings rebuilt by concatenation in the codec, comes back equal.
_SAFE_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
_TEXT = st.one_of(st.text(max_size=20), st.text(min_size=1030, max_size=3000))
# Integer-valued doubles past 2**53 print as digits that Python reads as a different int.
_FLOAT = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
_JSON = st.recursive(
    st.none() | st.booleans() | _SAFE_INT | _FLOAT | _TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_JSON)
def test_any_json_document_round_trips_through_concatenated_strings(doc: Any) -> None:
    codec = _roundtrip()

    result = codec.decode(uplink(b"\x00", doc=json.dumps(doc)))

    assert result.data == {"doc": doc}


_CODECS: dict[str, JavaScriptCodec] = {}


def _roundtrip() -> JavaScriptCodec:
    # One runtime for every example: loading is the slow part, and the codec keeps no state.
    if "roundtrip" not in _CODECS:
        _CODECS["roundtrip"] = load_javascript_codec(FIXTURES / "ngsild_test_roundtrip.js")
    return _CODECS["roundtrip"]
