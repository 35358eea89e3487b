"""``listen``, ``serve``, ``gateway`` and ``check`` run one start check: every unset variable
an ``*_env`` key names is listed at once, before anything opens."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapter.app import AdapterService
from adapter.cli import main
from adapter.config import StartRefused, load_config, start_problems, validate_for_start
from tests.config.support import MINIMAL, write

SECRET = "s" * 40
MANY = (
    MINIMAL
    + """
[[connection]]
name = "ville-mqtt"
collectivity = "ville"
lns = "tts"
username = "app@ttn"
password_env = "VILLE_TTS_KEY"

[[connection]]
name = "ville-hook2"
collectivity = "ville"
lns = "chirpstack"
transport = "webhook"
token_env = "VILLE_HOOK_TOKEN"

[[registry]]
connection = "ville-mqtt"
url = "https://eu1.cloud.thethings.network"
applications = ["ville-app"]
token_env = "VILLE_TTS_REGISTRY"

[broker]
url = "http://orion:1026"
token_env = "BROKER_TOKEN"

[provenance]
service_token_env = "SERVICE_TOKEN"
key_dir = "keys"
"""
)


def config(tmp_path: Path, env: dict[str, str]):  # type: ignore[no-untyped-def]
    return load_config(write(tmp_path, MANY), env=env)


def test_every_unset_variable_is_listed_at_once(tmp_path: Path) -> None:
    problems = start_problems(config(tmp_path, {}), "listen")
    text = " | ".join(problems)
    for variable in ("VILLE_TTS_KEY", "VILLE_HOOK_TOKEN", "VILLE_TTS_REGISTRY", "BROKER_TOKEN", "SERVICE_TOKEN"):
        assert variable in text, text
    assert len(problems) == 5


def test_with_the_variables_set_the_start_passes(tmp_path: Path) -> None:
    env = {
        "VILLE_TTS_KEY": "k",
        "VILLE_HOOK_TOKEN": "t",
        "VILLE_TTS_REGISTRY": "r",
        "BROKER_TOKEN": "b",
        "SERVICE_TOKEN": SECRET,
    }
    validate_for_start(config(tmp_path, env), "listen")


def test_without_an_http_port_the_webhook_and_service_secrets_are_not_needed(tmp_path: Path) -> None:
    env = {"VILLE_TTS_KEY": "k", "VILLE_TTS_REGISTRY": "r", "BROKER_TOKEN": "b"}
    assert start_problems(config(tmp_path, env), "listen", http=False) == []
    assert start_problems(config(tmp_path, env), "serve") == [
        "[provenance] service_token_env: the variable SERVICE_TOKEN is not set"
    ]


def test_the_adapter_service_refuses_with_the_same_list_before_opening_anything(tmp_path: Path) -> None:
    settings = config(tmp_path, {})
    with pytest.raises(StartRefused) as refused:
        AdapterService(settings, http_port=0)
    assert refused.value.problems == tuple(start_problems(settings, "listen"))
    assert str(refused.value).startswith("5 problems stop the start: ") and "\n" not in str(refused.value)
    assert not (tmp_path / "var").exists() and not (tmp_path / "keys").exists()


def test_a_key_folder_that_is_a_file_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("not a folder")
    problems = start_problems(config(tmp_path, {}), "serve")
    assert any(p.startswith("[provenance] key_dir") and "is a file, not a folder" in p for p in problems)


def test_check_reports_the_start_problems_of_each_process_asked(tmp_path: Path) -> None:
    path = write(tmp_path, MANY)
    result = CliRunner().invoke(main, ["check", "--config", str(path), "--for", "listen", "--for", "gateway"], env={})
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "failed"
    by_process = {e["process"] for e in report["errors"]}
    assert by_process == {"listen", "gateway"}
    assert any("[gateway] policies is not set" in e["message"] for e in report["errors"])
    assert "Error:" in result.stderr and "Traceback" not in result.output


def test_the_demo_configuration_checks_clean() -> None:
    result = CliRunner().invoke(main, ["check"], env={})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "ok" and report["errors"] == []
    assert "water-meter" in report["fields_not_checked"]  # a JavaScript codec declares no outputs


@pytest.mark.parametrize("command", [["broker"], ["serve"]])
def test_a_busy_port_is_one_line_not_a_traceback(tmp_path: Path, command: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [*command, "--port", str(port)]
        if command == ["serve"]:
            path = write(tmp_path, MINIMAL + f'\n[provenance]\nkey_dir = "{tmp_path / "keys"}"\n')
            args += ["--config", str(path)]
        result = CliRunner().invoke(main, args, env={})
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in result.stderr
    assert "Traceback" not in result.output
