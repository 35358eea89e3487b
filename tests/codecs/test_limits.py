"""A hostile codec meets its limits (time, memory, stack, result size and depth) as a
dead letter with a specific reason, and the next uplink decodes normally."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapter.codecs.base import CodecInput
from adapter.codecs.javascript import MAX_RESULT_CHARS, MAX_RESULT_DEPTH, JavaScriptCodec, load_javascript_codec
from adapter.exceptions import REASONS, CodecError, ConfigError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "codecs"
NAME = "ngsild_test_hostile_limits.js"


def uplink(*payload: int) -> CodecInput:
    return CodecInput(payload=bytes(payload), f_port=1, received_at=datetime(2024, 5, 1, tzinfo=UTC))


@pytest.fixture
def hostile() -> Iterator[JavaScriptCodec]:
    codec = load_javascript_codec(FIXTURES / NAME, timeout_s=5.0)
    yield codec
    codec.close()


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        ((1,), "codec_error", f"{NAME}: RangeError: Maximum call stack size exceeded"),
        (
            (3,),
            "codec_result_too_large",
            f"{NAME}: result is longer than {MAX_RESULT_CHARS} characters of JSON (at data.text)",
        ),
        ((4,), "codec_memory", f"{NAME}: used more than {32 * 1024 * 1024} bytes"),
        ((8,), "codec_error", f"{NAME}: (a value that cannot be printed was thrown)"),
    ],
)
def test_hostile_shape_is_a_specific_dead_letter_then_the_codec_works(
    hostile: JavaScriptCodec, payload: tuple[int, ...], reason: str, detail: str
) -> None:
    with pytest.raises(CodecError) as caught:
        hostile.decode(uplink(*payload))

    assert caught.value.reason == reason
    assert caught.value.detail == detail
    assert hostile.decode(uplink(0)).data == {"ok": 0}


def test_nesting_past_the_depth_limit_names_the_path(hostile: JavaScriptCodec) -> None:
    with pytest.raises(CodecError) as caught:
        hostile.decode(uplink(2, 10))  # 100 levels

    assert caught.value.reason == "codec_result_too_large"
    path = "data" + ".child" * MAX_RESULT_DEPTH
    assert caught.value.detail == f"{NAME}: {path} nests deeper than {MAX_RESULT_DEPTH} levels"


def test_nesting_within_the_depth_limit_passes(hostile: JavaScriptCodec) -> None:
    data = hostile.decode(uplink(2, 6)).data  # 60 levels

    depth = 0
    while data:
        data = data["child"]
        depth += 1
    assert depth == 60


def test_deep_arrays_and_many_small_objects_are_refused_before_python_parses_them(hostile: JavaScriptCodec) -> None:
    for payload in (7, 5):
        with pytest.raises(CodecError) as caught:
            hostile.decode(uplink(payload))
        assert caught.value.reason == "codec_result_too_large"


def test_a_huge_thrown_string_is_clipped(hostile: JavaScriptCodec) -> None:
    with pytest.raises(CodecError) as caught:
        hostile.decode(uplink(6))

    assert caught.value.reason == "codec_error"
    assert caught.value.detail == f"{NAME}: " + "x" * 1000 + "..."


def test_stack_overflow_in_top_level_code_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_javascript_codec(FIXTURES / "ngsild_test_toplevel_recursion.js")

    assert "ngsild_test_toplevel_recursion.js: top-level code" in str(caught.value)
    assert "Maximum call stack size exceeded" in str(caught.value)


def test_the_result_limit_reason_is_registered() -> None:
    assert "codec_result_too_large" in REASONS
