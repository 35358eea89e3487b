from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapter.codecs import javascript
from adapter.codecs.base import CodecInput
from adapter.codecs.javascript import JavaScriptCodec, load_javascript_codec
from adapter.exceptions import CodecError, ConfigError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "codecs"
RECEIVED_AT = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def fixture(name: str) -> Path:
    return FIXTURES / f"ngsild_test_{name}.js"


def uplink(payload: bytes, f_port: int | None = 1, **variables: str) -> CodecInput:
    return CodecInput(payload=payload, f_port=f_port, received_at=RECEIVED_AT, variables=variables)


@pytest.fixture
def load():
    codecs: list[JavaScriptCodec] = []

    def _load(name: str, **limits: float) -> JavaScriptCodec:
        codec = load_javascript_codec(fixture(name), **limits)
        codecs.append(codec)
        return codec

    yield _load
    for codec in codecs:
        codec.close()


def test_ttn_codec_decodes_with_recv_time_as_date(load) -> None:
    codec = load("ttn_climate")

    result = codec.decode(uplink(bytes([0x09, 0x29, 0x5B, 0x0E, 0x10]), f_port=2))

    assert codec.entry_point == "decodeUplink"
    assert result.data == {
        "temperature": 23.45,
        "humidity": 45.5,
        "batteryVoltage": 3.6,
        "receivedAt": "2024-05-01T12:00:00.123Z",
    }
    assert result.warnings == ()
    assert result.errors == ()
    assert result.codec is codec.identity


def test_ttn_codec_negative_value_and_warning(load) -> None:
    result = load("ttn_climate").decode(uplink(bytes([0xFF, 0x38, 0x00, 0x0B, 0xB8]), f_port=3))

    assert result.data["temperature"] == -2.0
    assert result.data["batteryVoltage"] == 3.0
    assert result.warnings == ("unexpected fPort 3",)


def test_codec_errors_are_returned_not_raised(load) -> None:
    result = load("ttn_climate").decode(uplink(bytes([1, 2])))

    assert result.data == {}
    assert result.errors == ("expected 5 bytes, got 2",)


def test_errors_without_data_and_with_warnings(load) -> None:
    result = load("returns_errors").decode(uplink(bytes([7])))

    assert result.to_json() == {
        "data": {},
        "warnings": ["check firmware"],
        "errors": ["unknown frame type 7"],
    }


def test_chirpstack_v4_codec_reads_variables(load) -> None:
    result = load("chirpstack_v4_climate").decode(uplink(bytes([0xFF, 0xF6, 0x41]), f_port=10, site="école"))

    assert result.data == {
        "temperature": -1.0,
        "humidity": 65,
        "site": "école",
        "port": 10,
        "receivedYear": 2024,
    }
    assert result.warnings == ()
    assert result.errors == ()


def test_chirpstack_v3_codec_returns_data_directly(load) -> None:
    codec = load("chirpstack_v3_climate")

    result = codec.decode(uplink(bytes([0x00, 0xD7, 0x37]), f_port=5, site="north"))

    assert codec.entry_point == "Decode"
    assert result.data == {"temperature": 21.5, "humidity": 55, "port": 5, "site": "north"}
    assert result.errors == ()


def test_identity_is_file_name_and_sha256() -> None:
    path = fixture("ttn_climate")
    codec = JavaScriptCodec(path)
    try:
        assert codec.identity.name == "ngsild_test_ttn_climate.js"
        assert codec.identity.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    finally:
        codec.close()


def test_top_level_const_is_loaded_once_and_keeps_state(load) -> None:
    codec = load("toplevel_const")

    first = codec.decode(uplink(bytes([25])))
    second = codec.decode(uplink(bytes([30])))

    assert first.data == {"reading": 2.5, "calls": 1}
    assert second.data == {"reading": 3.0, "calls": 2}


def test_node_globals_probing_and_module_exports(load) -> None:
    result = load("node_globals").decode(uplink(bytes([21])))

    assert result.data == {"doubled": 42, "runtime": "lns"}


def test_prototype_pollution_and_overwritten_intrinsics_do_not_leak(load) -> None:
    result = load("prototype_pollution").decode(uplink(bytes([3, 4, 5])))

    assert result.data == {"total": 12, "list": [1, 2], "nested": {"a": 1}}


def test_console_output_becomes_warnings_after_codec_warnings(load) -> None:
    codec = load("console")

    first = codec.decode(uplink(bytes([1, 2])))
    second = codec.decode(uplink(bytes([1])))

    assert first.data == {"ok": True}
    assert first.warnings == (
        "from codec",
        'console.log: decoding 2 bytes {"port":1}',
        "console.warn: battery low",
    )
    assert second.warnings[1] == 'console.log: decoding 1 bytes {"port":1}'


def test_non_ascii_strings_survive(load) -> None:
    result = load("units").decode(uplink(bytes([19])))

    assert result.data == {"temperature": 19, "unit": "°C", "größe": "µg/m³ ✓"}


@pytest.mark.parametrize(
    ("first_byte", "detail"),
    [
        (0, "data.temperature is NaN"),
        (1, "data.nested.list[1] is Infinity"),
        (13, "data.list[1] is undefined"),
        (3, "data.fn is a function"),
        (4, "data.big is a BigInt"),
        (5, "data.self is a cyclic reference"),
        (6, "data.sym is a symbol"),
        (7, "result is a number, not an object"),
        (8, "data is null, not a JSON object"),
        (9, "data is an array, not a JSON object"),
        (11, "data.lone is a string with a lone surrogate"),
        (15, "data has a member name with a lone surrogate"),
    ],
)
def test_non_json_results_are_rejected_with_path(load, first_byte: int, detail: str) -> None:
    with pytest.raises(CodecError) as caught:
        load("non_json").decode(uplink(bytes([first_byte])))

    assert caught.value.reason == "codec_non_json"
    assert caught.value.detail == f"ngsild_test_non_json.js: {detail}"


def test_undefined_members_are_left_out_as_json_stringify_does(load) -> None:
    """``data.x = found?.value`` is common in vendor codecs: the missing reading is not written,
    the others are kept (an undefined array element stays an error: positions matter)."""
    codec = load("non_json")

    assert codec.decode(uplink(bytes([2]))).data == {"ok": 1}
    assert codec.decode(uplink(bytes([14]))).data == {"ok": 1, "present": 2}


def test_dates_become_iso_strings_and_shared_objects_are_not_cycles(load) -> None:
    codec = load("non_json")

    assert codec.decode(uplink(bytes([10]))).data == {"ok": 1, "when": "2024-05-01T12:00:00.000Z"}
    assert codec.decode(uplink(bytes([12]))).data == {
        "ok": 1,
        "a": {"v": 1},
        "b": [{"v": 1}, {"v": 1}],
    }


def test_thrown_error_is_codec_error_with_message(load) -> None:
    codec = load("throws")

    with pytest.raises(CodecError) as caught:
        codec.decode(uplink(bytes([1]), f_port=9))
    assert caught.value.reason == "codec_error"
    assert caught.value.detail == "ngsild_test_throws.js: RangeError: unsupported fPort 9"

    with pytest.raises(CodecError) as caught:
        codec.decode(uplink(b"", f_port=1))
    assert caught.value.detail == "ngsild_test_throws.js: empty payload"

    assert codec.decode(uplink(bytes([8]), f_port=1)).data == {"first": 8}


def test_timeout_then_next_call_runs_in_a_fresh_runtime(load) -> None:
    codec = load("infinite_loop", timeout_s=0.05)
    assert codec.decode(uplink(bytes([1]))).data == {"calls": 1}

    with pytest.raises(CodecError) as caught:
        codec.decode(uplink(bytes([0xFF])))
    assert caught.value.reason == "codec_timeout"
    assert caught.value.detail == "ngsild_test_infinite_loop.js: ran longer than 0.05 s"

    # The counter starts again: the codec was loaded into a new runtime.
    assert codec.decode(uplink(bytes([1]))).data == {"calls": 1}
    assert codec.decode(uplink(bytes([1]))).data == {"calls": 2}


def test_memory_limit_then_next_call_works(load) -> None:
    codec = load("memory_hog", timeout_s=5.0, max_memory_bytes=16 * 1024 * 1024)

    with pytest.raises(CodecError) as caught:
        codec.decode(uplink(bytes([0xFF])))
    assert caught.value.reason == "codec_memory"

    assert codec.decode(uplink(bytes([3]))).data == {"value": 3}


def test_codecs_do_not_see_each_others_globals(load) -> None:
    codec_a = load("global_a")
    codec_b = load("global_b")

    assert codec_a.decode(uplink(bytes([1]))).data == {"me": "codec A", "leak": "from A"}
    assert codec_b.decode(uplink(bytes([1]))).data == {"sharedName": None, "leak": None}


def test_close_frees_the_runtime_and_decode_loads_again(load) -> None:
    codec = load("toplevel_const")
    codec.decode(uplink(bytes([10])))

    codec.close()
    codec.close()

    assert codec.decode(uplink(bytes([10]))).data == {"reading": 1.0, "calls": 1}


def test_concurrent_calls_from_threads_are_serialised(load) -> None:
    codec = load("toplevel_const")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: codec.decode(uplink(bytes([10]))), range(40)))

    assert sorted(r.data["calls"] for r in results) == list(range(1, 41))


async def test_decode_inside_a_running_event_loop(load) -> None:
    codec = load("chirpstack_v4_climate")

    result = codec.decode(uplink(bytes([0x00, 0x64, 0x32]), site="x"))

    assert result.data["temperature"] == 10.0
    assert result.data["humidity"] == 50


async def test_codec_created_inside_event_loop_keeps_its_time_limit(load) -> None:
    codec = load("infinite_loop", timeout_s=0.05)

    with pytest.raises(CodecError) as caught:
        codec.decode(uplink(bytes([0xFF])))
    assert caught.value.reason == "codec_timeout"
    assert (await asyncio.to_thread(codec.decode, uplink(bytes([1])))).data == {"calls": 1}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("syntax_error", "JavaScript syntax error"),
        ("no_entry_point", "defines neither decodeUplink(input)"),
        ("toplevel_throws", "ReferenceError: undefinedHelper is not defined"),
        ("does_not_exist", "cannot read a UTF-8 JavaScript file"),
    ],
)
def test_unusable_file_is_a_config_error_naming_it(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_javascript_codec(fixture(name))

    assert f"ngsild_test_{name}.js" in str(caught.value)
    assert message in str(caught.value)


def test_top_level_code_that_never_ends_is_a_config_error(monkeypatch) -> None:
    monkeypatch.setattr(javascript, "_LOAD_TIMEOUT_S", 0.05)

    with pytest.raises(ConfigError) as caught:
        load_javascript_codec(fixture("toplevel_loop"))

    message = str(caught.value)
    assert "ngsild_test_toplevel_loop.js: top-level code ran longer than 0.05 s" in message
