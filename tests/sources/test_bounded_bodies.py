"""Bodies bounded in size and depth, and every other way a body could crash a parser.

Each case was a crash path (``RecursionError``, ``ValueError``, ``OverflowError``) or is a limit
the review asked for; each is now an ``EventError`` with its own reason, for both network
servers and both ChirpStack marshalers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

from adapter.exceptions import EventError
from adapter.sources import DEFAULT_LIMITS, ParseLimits
from adapter.sources._common import check_depth, load_json_object
from adapter.sources.chirpstack import EVENT_MESSAGES, ChirpStackParser
from adapter.sources.tts import TTSParser
from adapter.uplink import Origin, Uplink

FIXTURES = Path(__file__).parent.parent / "fixtures"
ORIGIN = Origin(tenant="city", lns_id="test")
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CS_UP = json.loads((FIXTURES / "chirpstack" / "up_two_gateways.json").read_text())
CS_TOPIC = f"application/{CS_UP['deviceInfo']['applicationId']}/device/{CS_UP['deviceInfo']['devEui']}/event/up"
TTS_UP = json.loads((FIXTURES / "tts" / "uplink_message.json").read_text())


def reason_of(call: Any) -> str:
    with pytest.raises(EventError) as caught:
        call()
    return caught.value.reason


def chirpstack(body: bytes, **kwargs: Any) -> Any:
    return ChirpStackParser().parse(body, origin=ORIGIN, topic=CS_TOPIC, now=NOW, **kwargs)


def tts(body: bytes, **kwargs: Any) -> Any:
    return TTSParser().parse(body, origin=ORIGIN, now=NOW, **kwargs)


def nested(depth: int, leaf: Any = 1) -> Any:
    """A JSON value of exactly ``depth`` levels of objects (``leaf`` inside the innermost)."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


# --- depth ----------------------------------------------------------------------------------


def test_default_depth_limit_is_32() -> None:
    assert DEFAULT_LIMITS.max_depth == 32


@pytest.mark.parametrize("parse", [chirpstack, tts], ids=["chirpstack", "tts"])
def test_a_body_of_opening_brackets_is_too_deep_not_a_recursion_error(parse: Any) -> None:
    for opener in (b"[", b'{"a":', b'[{"a":'):
        body = (opener * (DEFAULT_LIMITS.max_body_bytes // len(opener)))[: DEFAULT_LIMITS.max_body_bytes]
        assert reason_of(lambda: parse(body)) == "body_too_deep", opener


def test_depth_at_the_limit_is_accepted_one_past_it_is_refused() -> None:
    limit = DEFAULT_LIMITS.max_depth
    assert load_json_object(json.dumps(nested(limit)).encode(), DEFAULT_LIMITS) == nested(limit)
    assert (
        reason_of(lambda: load_json_object(json.dumps(nested(limit + 1)).encode(), DEFAULT_LIMITS)) == "body_too_deep"
    )
    arrays = json.dumps({"a": json.loads("[" * (limit - 1) + "]" * (limit - 1))}).encode()
    assert load_json_object(arrays, DEFAULT_LIMITS)
    arrays = json.dumps({"a": json.loads("[" * limit + "]" * limit)}).encode()
    assert reason_of(lambda: load_json_object(arrays, DEFAULT_LIMITS)) == "body_too_deep"


def test_many_brackets_side_by_side_are_not_depth() -> None:
    wide = {"a": [[1]] * 5000, "b": {str(n): {"x": [n]} for n in range(500)}}
    assert load_json_object(json.dumps(wide).encode(), DEFAULT_LIMITS) == wide


def test_brackets_inside_strings_are_not_depth() -> None:
    text = {"a": "[" * 1000 + "{" * 1000}
    assert load_json_object(json.dumps(text).encode(), DEFAULT_LIMITS) == text


def test_the_depth_limit_is_a_setting() -> None:
    body = json.dumps(nested(5)).encode()
    assert reason_of(lambda: load_json_object(body, ParseLimits(max_depth=4))) == "body_too_deep"
    assert load_json_object(body, ParseLimits(max_depth=5))


@pytest.mark.parametrize(
    "parse, event, path",
    [
        (chirpstack, CS_UP, ("object",)),
        (tts, TTS_UP, ("uplink_message", "decoded_payload")),
    ],
    ids=["chirpstack", "tts"],
)
def test_a_deep_decoded_object_in_a_real_uplink_is_refused(
    parse: Any, event: dict[str, Any], path: tuple[str, ...]
) -> None:
    def with_decoded(depth: int) -> bytes:
        copy = json.loads(json.dumps(event))
        target = copy
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = nested(depth)
        return json.dumps(copy).encode()

    room = DEFAULT_LIMITS.max_depth - len(path)  # the event itself is a level, each key on the path one more
    assert isinstance(parse(with_decoded(room)), Uplink)
    assert reason_of(lambda: parse(with_decoded(room + 1))) == "body_too_deep"


def test_check_depth_is_iterative() -> None:
    deep: Any = []
    for _ in range(100_000):  # far past Python's recursion limit
        deep = [deep]
    with pytest.raises(EventError) as caught:
        check_depth(deep, 32, "value")
    assert caught.value.reason == "body_too_deep"


# --- protobuf -------------------------------------------------------------------------------


def _struct(depth: int) -> struct_pb2.Struct:
    value = struct_pb2.Value(number_value=1)
    for _ in range(depth):
        inner = struct_pb2.Struct()
        inner.fields["a"].CopyFrom(value)
        value = struct_pb2.Value(struct_value=inner)
    return value.struct_value


def _protobuf_up(object_depth: int) -> bytes:
    message = json_format.ParseDict(CS_UP, EVENT_MESSAGES["up"]())
    message.object.CopyFrom(_struct(object_depth))
    binary: bytes = message.SerializeToString()
    return binary


def test_protobuf_object_within_the_depth_limit_is_accepted() -> None:
    uplink = chirpstack(_protobuf_up(DEFAULT_LIMITS.max_depth - 1))
    assert isinstance(uplink, Uplink) and uplink.decoded is not None


def test_protobuf_object_past_the_depth_limit_is_refused() -> None:
    assert reason_of(lambda: chirpstack(_protobuf_up(DEFAULT_LIMITS.max_depth))) == "body_too_deep"


def test_protobuf_past_the_decoders_own_depth_limit_is_refused_as_too_deep() -> None:
    # upb stops at 100 message levels: a Struct is two per level of JSON.
    deep = b""
    for _ in range(60):
        entry = b"\x0a\x01a\x12" + _length(b"\x2a" + _length(deep))  # key "a", Value.struct_value
        deep = b"\x0a" + _length(entry)  # Struct.fields entry
    number = EVENT_MESSAGES["up"].DESCRIPTOR.fields_by_name["object"].number
    binary = bytes([number << 3 | 2]) + _length(deep)  # UplinkEvent.object, length-delimited
    assert reason_of(lambda: chirpstack(binary)) == "body_too_deep"


def _length(data: bytes) -> bytes:
    n, out = len(data), bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + data


# --- size -----------------------------------------------------------------------------------


@pytest.mark.parametrize("parse", [chirpstack, tts], ids=["chirpstack", "tts"])
def test_body_over_the_size_limit_is_too_large_before_decoding(parse: Any) -> None:
    body = b"{" + b" " * DEFAULT_LIMITS.max_body_bytes + b"}"  # valid JSON: the size alone refuses it
    assert reason_of(lambda: parse(body)) == "body_too_large"


def test_protobuf_body_over_the_size_limit_is_too_large() -> None:
    assert reason_of(lambda: chirpstack(_protobuf_up(2), limits=ParseLimits(max_body_bytes=64))) == "body_too_large"


# --- text and numbers that Python's json let through or crashed on ---------------------------


@pytest.mark.parametrize(
    "body, reason",
    [
        (b'{"a": 1e999999}', "non_finite_value"),  # json gave inf
        (b'{"a": ' + b"9" * 5000 + b"}", "non_finite_value"),  # json raised ValueError (int digits limit)
        (b'{"a": -1e400}', "non_finite_value"),
        (b'{"a": NaN}', "malformed_json"),
        (b'{"a": Infinity}', "malformed_json"),
        (b'{"a": "\\ud800"}', "malformed_json"),  # a lone surrogate: not text, json kept it
        (b'{"a": "\\udc00\\ud800"}', "malformed_json"),
        (b'{"a": "\xff"}', "invalid_utf8"),
        (b'{"a": "\xed\xa0\x80"}', "invalid_utf8"),  # a surrogate encoded in UTF-8
        (b"\xef\xbb\xbf{}", "malformed_json"),  # a byte order mark
        (b'{"a": 1} {"b": 2}', "malformed_json"),
        (b"", "malformed_json"),
        (b"[1, 2]", "unknown_format"),
        (b'"text"', "unknown_format"),
    ],
)
def test_json_that_is_not_json_text_is_a_specific_event_error(body: bytes, reason: str) -> None:
    assert reason_of(lambda: load_json_object(body, DEFAULT_LIMITS)) == reason


def test_invalid_utf8_names_the_byte() -> None:
    with pytest.raises(EventError) as caught:
        load_json_object(b'{"a": "ok\xc3\x28"}', DEFAULT_LIMITS)
    assert caught.value.detail == "byte 9 is not valid UTF-8"


def test_a_frame_counter_past_32_bits_is_refused() -> None:
    for value in (2**32, 2**63, 2**64 - 1):  # 2**63 and more did not fit SQLite's dedup table
        event = CS_UP | {"fCnt": value}
        assert reason_of(lambda: chirpstack(json.dumps(event).encode())) == "missing_field", value
        message = json.loads(json.dumps(TTS_UP))
        message["uplink_message"]["f_cnt"] = value
        assert reason_of(lambda: tts(json.dumps(message).encode())) == "missing_field", value


@pytest.mark.parametrize("frequency", ["²", "٨٦٨١٠٠٠٠٠", "9" * 5000, "-1", "868.1"])
def test_tts_frequency_that_is_not_ascii_digits_is_refused(frequency: str) -> None:
    message = json.loads(json.dumps(TTS_UP))
    message["uplink_message"]["settings"]["frequency"] = frequency
    assert reason_of(lambda: tts(json.dumps(message).encode())) == "missing_field"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamp_out_of_the_range_of_dates_is_bad(moment: str) -> None:
    event = CS_UP | {"time": moment}
    assert reason_of(lambda: chirpstack(json.dumps(event).encode())) == "bad_timestamp"
