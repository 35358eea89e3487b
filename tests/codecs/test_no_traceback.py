"""No codec can stop the CLI or the pipeline: results the bridge once could not read
(ropes) are decoded, and every hostile shape is a dead letter or a one-line error.

The CLI runs with ``catch_exceptions=False``, so a traceback fails the test.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapter.cli import main
from adapter.config import load_config
from adapter.pipeline import Pipeline
from tests.support import demo_event, pipeline_with_test_codec

FIXTURES = Path(__file__).parent.parent / "fixtures" / "codecs"
runner = CliRunner()


def decode(codec: str, payload: bytes) -> Any:
    return runner.invoke(
        main,
        ["decode", "--codec", str(FIXTURES / codec), "--fport", "1", "--hex", payload.hex()],
        catch_exceptions=False,
    )


def test_cli_decode_prints_a_result_built_by_concatenation() -> None:
    result = decode("ngsild_test_ropes.js", bytes([1, 7]))

    assert result.exit_code == 0
    assert len(json.loads(result.output)["data"]["sensors"]) == 300


@pytest.mark.parametrize(
    ("codec", "payload", "reason"),
    [
        ("ngsild_test_ropes.js", bytes([4]), "codec_error"),
        ("ngsild_test_hostile_limits.js", bytes([1]), "codec_error"),
        ("ngsild_test_hostile_limits.js", bytes([3]), "codec_result_too_large"),
        ("ngsild_test_hostile_limits.js", bytes([7]), "codec_result_too_large"),
        ("ngsild_test_non_json.js", bytes([0]), "codec_non_json"),
    ],
)
def test_cli_decode_reports_a_failing_codec_as_json_with_the_reason(codec: str, payload: bytes, reason: str) -> None:
    result = decode(codec, payload)

    assert result.exit_code == 1
    printed = json.loads(result.output)
    assert printed["data"] is None and printed["errors"][0].startswith(f"{reason}: {codec}: ")


def test_cli_decode_of_a_codec_that_cannot_load_is_a_one_line_error() -> None:
    result = decode("ngsild_test_toplevel_recursion.js", b"\x00")

    assert result.exit_code == 1
    assert result.output.startswith("Error: codec ") and "Traceback" not in result.output


def _pipeline(tmp_path: Path, codec: str) -> Pipeline:
    return pipeline_with_test_codec(tmp_path, codec, "length")


def _process(pipeline: Pipeline, payload: bytes, f_cnt: int) -> Any:
    spec = demo_event("01-chirpstack-air-quality")
    body = dict(spec["body"], data=base64.b64encode(payload).decode(), fCnt=f_cnt)
    origin = load_config(None).connection(spec["connection"]).origin
    return pipeline.process(json.dumps(body).encode(), lns="chirpstack", origin=origin, topic=spec.get("topic"))


def test_pipeline_maps_rope_results_and_dead_letters_hostile_ones(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, "ngsild_test_ropes.js")
    try:
        mapped = _process(pipeline, bytes([0, 0xAB]), 1)
        assert mapped.status == "mapped", mapped.detail
        assert mapped.decoded.data["dump"] == "00ab" * 100
        assert [e["no2"]["value"] for e in mapped.entities if e["type"] == "AirQualityObserved"] == [400]

        thrown = _process(pipeline, bytes([4]), 2)
        assert (thrown.status, thrown.reason) == ("rejected", "codec_error")
        assert pipeline.dead_letters.get(thrown.dead_letter_id) is not None

        assert _process(pipeline, bytes([0, 1]), 3).status == "mapped"
    finally:
        pipeline.close()


def test_pipeline_dead_letters_a_result_over_the_limits(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, "ngsild_test_hostile_limits.js")
    try:
        cases = ((3, "codec_result_too_large"), (7, "codec_result_too_large"), (1, "codec_error"))
        for f_cnt, (shape, reason) in enumerate(cases, start=1):
            result = _process(pipeline, bytes([shape]), f_cnt)
            assert (result.status, result.reason) == ("rejected", reason), result.detail
            assert pipeline.dead_letters.get(result.dead_letter_id) is not None
    finally:
        pipeline.close()
