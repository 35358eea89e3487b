"""The ``ngsild-adapter`` commands, used the way the README shows them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from adapter.cli import main
from tests.support import DEMO_EVENTS, FIXTURES, REPO

runner = CliRunner()


def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(main, list(args), input=input, catch_exceptions=False)


def test_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("demo", "samples", "decode", "parse", "map", "check", "listen", "broker", "deadletter"):
        assert command in result.output


def test_decode_with_a_builtin_codec() -> None:
    result = invoke("decode", "--codec", "builtin:cayenne_lpp", "--fport", "2", "--hex", "016700e1026873")
    assert result.exit_code == 0
    assert json.loads(result.output) == {
        "data": {"temperature_1": 22.5, "relative_humidity_2": 57.5},
        "warnings": [],
        "errors": [],
    }


def test_decode_with_a_javascript_codec_file_in_base64() -> None:
    codec = str(REPO / "models" / "codecs" / "water-meter-pulse.js")
    result = invoke("decode", "--codec", codec, "--fport", "1", "--base64", "AAHiQAAAKls=")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data"]["index_l"] == 123456


def test_decode_reports_codec_errors_and_exits_non_zero() -> None:
    codec = str(REPO / "models" / "codecs" / "water-meter-pulse.js")
    result = invoke("decode", "--codec", codec, "--fport", "9", "--hex", "00")
    assert result.exit_code == 1
    assert json.loads(result.output)["errors"] == ["unexpected fPort 9 (expected 1)"]


def test_decode_refuses_bad_hex() -> None:
    result = invoke("decode", "--codec", "builtin:cayenne_lpp", "--fport", "2", "--hex", "zz")
    assert result.exit_code == 2 and "payload is not valid hex" in result.output


def test_parse_prints_the_normalised_record() -> None:
    result = invoke(
        "parse",
        "--lns",
        "chirpstack",
        "--topic",
        "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/70b3d57ed0001a01/event/up",
        str(FIXTURES / "chirpstack" / "up_two_gateways.json"),
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["lns"] == "chirpstack" and record["event"] == "up"
    assert (record["dev_eui"], record["f_cnt"], record["f_port"]) == ("70b3d57ed0001a01", 1234, 2)
    assert record["payload_hex"] == "016700e1026873"
    assert record["received_at"].startswith("2026-11-20T08:15:30.123456")
    assert [(g["id"], g["rssi"], g["snr"]) for g in record["gateways"]] == [
        ("0016c001f153a14c", -87, 9.5),
        ("7076ff0056081234", -112, -6.25),
    ]
    assert record["decoded"] is None


def test_parse_reads_stdin_and_gives_the_dead_letter_reason_on_bad_input() -> None:
    result = runner.invoke(main, ["parse", "--lns", "tts", "-"], input='{"end_device_ids": ')
    assert result.exit_code == 1
    assert "malformed_json" in result.stderr


def test_map_prints_entities() -> None:
    spec = json.loads((DEMO_EVENTS / "02-tts-school-climate.json").read_text())
    result = invoke("map", "--lns", "tts", "--topic", spec["topic"], "-", input=json.dumps(spec["body"]))
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [e["type"] for e in out["entities"]] == ["IndoorEnvironmentObserved", "Device"]
    assert out["entities"][0]["@context"][-1] == "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"


def test_map_of_an_unknown_device_names_the_reason() -> None:
    spec = json.loads((DEMO_EVENTS / "14-chirpstack-unknown-device.json").read_text())
    result = runner.invoke(main, ["map", "--lns", "chirpstack", "-"], input=json.dumps(spec["body"]))
    assert result.exit_code == 1
    assert "unknown_device: no device profile matches device a84041000181c9f2" in result.stderr


def test_check_reports_profiles_and_connections() -> None:
    result = invoke("check")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["status"] == "ok" and len(report["profiles"]) == 8


def test_samples_processes_every_sample() -> None:
    result = invoke("samples")
    assert result.exit_code == 0
    summary = json.loads(result.stderr.splitlines()[-1])  # JSON Lines on stdout, the summary last on stderr
    assert summary["samples"] == len(list(DEMO_EVENTS.glob("*.json")))
    assert summary["outcomes"] == {"mapped": 10, "duplicate": 1, "device_status": 1, "other": 1, "rejected": 3}
    assert summary["dead_letters"] == {"malformed_json": 1, "meter_index_decrease": 1, "unknown_device": 1}


def test_deadletter_list_show_and_replay(tmp_path: Path) -> None:
    config = tmp_path / "adapter.toml"
    demo = (REPO / "adapter" / "demo" / "config.toml").read_text()
    config.write_text(
        demo.replace("[adapter]\n", f'[adapter]\nmodels = "{REPO / "models"}"\nstate_dir = "{tmp_path / "state"}"\n', 1)
    )
    assert invoke("samples", "--config", str(config), "--state-dir", str(tmp_path / "state")).exit_code == 0
    listed = json.loads(invoke("deadletter", "list", "--config", str(config)).output)
    assert listed["counts"] == {"malformed_json": 1, "meter_index_decrease": 1, "unknown_device": 1}
    malformed = next(d for d in listed["dead_letters"] if d["reason"] == "malformed_json")
    shown = json.loads(invoke("deadletter", "show", "--config", str(config), str(malformed["id"])).output)
    assert shown["body"].startswith('{"deduplicationId": "x"')
    replay = invoke("deadletter", "replay", "--config", str(config), "--reason", "malformed_json")
    assert replay.exit_code == 0
    assert json.loads(replay.output[replay.output.rindex("\n{\n") :]) == {"rejected": 1}
    after = json.loads(invoke("deadletter", "list", "--config", str(config)).output)
    assert next(d for d in after["dead_letters"] if d["reason"] == "malformed_json")["attempts"] == 2


def test_readme_documents_every_command() -> None:
    readme = (REPO / "README.md").read_text()
    for name in main.commands:
        assert f"ngsild-adapter {name}" in readme, name
    assert readme.count("make demo") >= 1 and readme.count("make test") >= 1
