"""``parse`` and ``map`` read the bundled sample files as they are, and ``--connection`` decides
the collectivity; the sample format itself (``adapter.demo.samples``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.config import load_config
from adapter.demo.samples import Sample, SampleError, load_samples, read_sample
from adapter.cli import main
from tests.support import DEMO_EVENTS

runner = CliRunner()
CONFIG = load_config(None)
SAMPLES = sorted(DEMO_EVENTS.glob("*.json"))
WATER = DEMO_EVENTS / "03-chirpstack-webhook-water-meter.json"
#: What a sample alone (fresh state, nothing before it) is refused for.
REFUSED_ALONE = {
    "14-chirpstack-unknown-device.json": "unknown_device",
    "15-chirpstack-malformed-json.json": "malformed_json",
}
UNPARSABLE = {"15-chirpstack-malformed-json.json": "malformed_json"}


def _tenant_of(sample: Path) -> str:
    name = json.loads(sample.read_text())["connection"]
    return next(c.collectivity for c in CONFIG.connections if c.name == name)


def _bare_body(sample: Path) -> str:
    return json.dumps(json.loads(sample.read_text())["body"])


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_parse_reads_every_bundled_sample_as_it_is(sample: Path) -> None:
    result = runner.invoke(main, ["parse", str(sample)])
    if sample.name in UNPARSABLE:
        assert result.exit_code == 1 and UNPARSABLE[sample.name] in result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
        return
    assert result.exit_code == 0, result.output + result.stderr
    record = json.loads(result.stdout)
    assert record["lns"] == json.loads(sample.read_text())["lns"]
    assert record["tenant"] == _tenant_of(sample)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_map_reads_every_bundled_sample_and_delivers_to_its_connections_collectivity(sample: Path) -> None:
    result = runner.invoke(main, ["map", str(sample)])
    if sample.name in REFUSED_ALONE:
        assert result.exit_code == 1 and REFUSED_ALONE[sample.name] in result.stderr
        assert isinstance(result.exception, SystemExit)
        return
    assert result.exit_code == 0, result.output + result.stderr
    out = json.loads(result.stdout)
    tenant = _tenant_of(sample)
    assert out["tenant"] == tenant and out["connection"] == json.loads(sample.read_text())["connection"]
    assert all(f":{tenant}:" in entity["id"] for entity in out["entities"])


def test_the_water_authoritys_meter_comes_out_in_its_own_tenant() -> None:
    out = json.loads(runner.invoke(main, ["map", str(WATER)]).stdout)
    assert out["tenant"] == "eau"
    assert {e["id"] for e in out["entities"]} >= {"urn:ngsi-ld:WaterConsumptionObserved:eau:70b3d57ed0003c03"}


def test_map_connection_chooses_the_collectivity_of_a_bare_event() -> None:
    body = _bare_body(WATER)
    default = json.loads(runner.invoke(main, ["map", "--lns", "chirpstack", "--event", "up", "-"], input=body).stdout)
    assert (default["tenant"], default["connection"]) == ("ville", "ville-chirpstack")  # the first ChirpStack one
    chosen = runner.invoke(main, ["map", "--connection", "eau-chirpstack", "--event", "up", "-"], input=body)
    assert chosen.exit_code == 0, chosen.stderr
    out = json.loads(chosen.stdout)
    assert (out["tenant"], out["connection"]) == ("eau", "eau-chirpstack")  # --lns taken from the connection
    assert out["entities"][0]["id"] == "urn:ngsi-ld:WaterConsumptionObserved:eau:70b3d57ed0003c03"


def test_map_connection_wins_over_the_samples() -> None:
    out = json.loads(runner.invoke(main, ["map", "--connection", "ville-chirpstack", str(WATER)]).stdout)
    assert (out["tenant"], out["connection"]) == ("ville", "ville-chirpstack")


def test_an_unknown_connection_is_an_error_listing_the_known_ones() -> None:
    result = runner.invoke(main, ["map", "--connection", "eau-chirpstak", str(WATER)])
    assert result.exit_code == 1
    assert "unknown connection 'eau-chirpstak'" in result.stderr
    for known in ("ville-chirpstack", "metropole-tts", "region-tts", "eau-chirpstack"):
        assert known in result.stderr
    parsed = runner.invoke(main, ["parse", "--connection", "nowhere", str(WATER)])
    assert parsed.exit_code == 1 and "unknown connection 'nowhere'" in parsed.stderr


def test_a_sample_naming_a_connection_the_configuration_lacks_is_an_error(tmp_path: Path) -> None:
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({**json.loads(WATER.read_text()), "connection": "syndicat-chirpstack"}))
    result = runner.invoke(main, ["map", str(sample)])
    assert result.exit_code == 1 and "unknown connection 'syndicat-chirpstack'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lns", "tts", str(WATER)], "is a chirpstack sample, not tts"),
        (["--connection", "metropole-tts", str(WATER)], "connection metropole-tts receives tts events, not chirpstack"),
        (["--connection", "metropole-tts", "--lns", "chirpstack", "-"], "receives tts events, not chirpstack"),
    ],
)
def test_options_that_contradict_the_event_are_errors(args: list[str], message: str) -> None:
    result = runner.invoke(main, ["map", *args], input=_bare_body(WATER))
    assert result.exit_code == 1 and message in result.stderr


def test_a_bare_event_needs_its_format() -> None:
    result = runner.invoke(main, ["map", "-"], input=_bare_body(WATER))
    assert result.exit_code == 2 and "give --lns (chirpstack, tts) or --connection NAME" in result.stderr


def test_a_sample_file_with_a_mistake_is_named(tmp_path: Path) -> None:
    sample = tmp_path / "typo.json"
    sample.write_text(json.dumps({**json.loads(WATER.read_text()), "conection": "eau-chirpstack"}))
    result = runner.invoke(main, ["map", str(sample)])
    assert result.exit_code == 1 and "unknown key(s) conection" in result.stderr


# --- the sample format ------------------------------------------------------------------------


def test_a_sample_keeps_the_event_bytes_and_what_travels_beside_them() -> None:
    raw = json.dumps({"lns": "tts", "topic": "v3/a@b/devices/c/up", "body": "not json {"}).encode()
    assert read_sample(raw) == Sample("tts", b"not json {", topic="v3/a@b/devices/c/up")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"lns": "loriot", "body": {}}, "'lns' must be one of chirpstack, tts"),
        ({"lns": "tts", "body": [1]}, "'body' must be the event"),
        ({"lns": "tts", "body": {}, "topic": 7}, "'topic' must be a non-empty string"),
        ({"lns": "tts", "body": {}, "connection": ""}, "'connection' must be a non-empty string"),
        ({"lns": "tts", "body": {}, "note": "x"}, "unknown key(s) note"),
    ],
)
def test_a_malformed_sample_is_refused_with_the_reason(doc: dict[str, object], message: str) -> None:
    with pytest.raises(SampleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_sample(json.dumps(doc).encode(), "x.json")


@settings(derandomize=True, database=None, max_examples=200, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=64),
        st.dictionaries(
            st.text(max_size=8),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                lambda inner: st.lists(inner, max_size=3),
                max_leaves=6,
            ),
            max_size=5,
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_any_input_is_a_sample_a_bare_event_or_a_named_mistake(raw: bytes) -> None:
    try:
        sample = read_sample(raw)
    except SampleError:
        return
    doc = None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        pass
    is_sample = isinstance(doc, dict) and "lns" in doc and "body" in doc
    assert (sample is not None) == is_sample


def test_every_bundled_file_is_a_sample() -> None:
    names = [name for name, _ in load_samples(DEMO_EVENTS)]
    assert names == [p.name for p in SAMPLES]
