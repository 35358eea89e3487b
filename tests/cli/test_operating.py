"""Operating the adapter after a run: the commands that read state take ``--state-dir``, the
demo prints the commands that inspect what it left (and ``verify`` holds on them), ``samples``
prints JSON Lines and counts them, ``deadletter`` refuses ids it does not have."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapter.cli import main
from adapter.cli._state import with_state_dir
from adapter.config import load_config
from adapter.deadletter import DeadLetterStore
from adapter.provenance.integrity.keys import load_signer
from tests.support import DEMO_EVENTS

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(main, list(args))


def _samples_state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    assert invoke("samples", "--state-dir", str(state)).exit_code == 0
    return state


# --- samples: JSON Lines, counted ------------------------------------------------------------


def test_samples_prints_one_json_document_per_line_and_counts_them() -> None:
    result = invoke("samples")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    results = [json.loads(line) for line in lines]  # every line alone is a JSON document
    assert [r["sample"] for r in results] == sorted(p.name for p in DEMO_EVENTS.glob("*.json"))
    summary = json.loads(result.stderr.splitlines()[-1])
    assert summary["printed"] == len(lines) == summary["samples"]
    assert summary["outcomes"] == {"mapped": 10, "duplicate": 1, "device_status": 1, "other": 1, "rejected": 3}
    assert sum(summary["outcomes"].values()) == summary["printed"]
    assert summary["dead_letters"] == {"malformed_json": 1, "meter_index_decrease": 1, "unknown_device": 1}


def test_samples_on_a_configuration_without_their_connections_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "adapter.toml"
    config.write_text('[adapter]\nstate_dir = "state"\n\n[[collectivity]]\ntenant = "ville"\nname = "Ville"\n')
    result = invoke("samples", "--config", str(config))
    assert result.exit_code == 1 and result.stdout == ""
    assert "unknown connection 'ville-chirpstack' (the configuration's connections: none)" in result.stderr


# --- --state-dir -----------------------------------------------------------------------------


def test_state_dir_replaces_the_configured_folder_and_brings_its_own_keys(tmp_path: Path) -> None:
    config = load_config(None)
    (tmp_path / "run").mkdir()
    plain = with_state_dir(config, tmp_path / "run")
    assert plain.state_dir == tmp_path / "run" and plain.provenance.key_dir == config.provenance.key_dir
    (tmp_path / "run" / "keys").mkdir()
    own = with_state_dir(config, tmp_path / "run")
    assert own.provenance.key_dir == tmp_path / "run" / "keys"
    assert with_state_dir(config, None) is config


@pytest.mark.parametrize(
    "command",
    [
        ["deadletter", "list"],
        ["deadletter", "show", "1"],
        ["deadletter", "replay", "--id", "1"],
        ["provenance", "status"],
        ["provenance", "sign"],
        ["provenance", "reindex"],
        ["verify", "--tenant", "ville", "--entity", "urn:x", "--attr", "no2", "--observed-at", "2026-11-20T08:00:00Z"],
    ],
)
def test_a_state_folder_that_does_not_exist_is_an_error_not_an_empty_state(command: list[str], tmp_path: Path) -> None:
    result = invoke(*command, "--state-dir", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and f"no state folder {tmp_path / 'nowhere'}" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_deadletter_list_reads_the_state_folder_given(tmp_path: Path) -> None:
    state = _samples_state(tmp_path)
    listed = json.loads(invoke("deadletter", "list", "--state-dir", str(state)).stdout)
    assert listed["counts"] == {"malformed_json": 1, "meter_index_decrease": 1, "unknown_device": 1}


# --- deadletter: ids it does not have ----------------------------------------------------------


def test_replaying_an_unknown_id_is_an_error_and_replays_nothing(tmp_path: Path) -> None:
    state = _samples_state(tmp_path)
    letters = json.loads(invoke("deadletter", "list", "--state-dir", str(state)).stdout)["dead_letters"]
    known = letters[0]["id"]
    result = invoke("deadletter", "replay", "--state-dir", str(state), "--id", str(known), "--id", "4242")
    assert result.exit_code == 1 and "no dead letter 4242; nothing replayed" in result.stderr
    after = json.loads(invoke("deadletter", "list", "--state-dir", str(state)).stdout)["dead_letters"]
    assert after == letters  # the known one was not tried either (same attempts)


def test_showing_an_unknown_id_is_an_error(tmp_path: Path) -> None:
    state = _samples_state(tmp_path)
    result = invoke("deadletter", "show", "--state-dir", str(state), "4242")
    assert result.exit_code == 1 and "no dead letter 4242" in result.stderr


def test_replaying_a_letter_already_replayed_is_refused(tmp_path: Path) -> None:
    state = _samples_state(tmp_path)
    store = DeadLetterStore(state / "deadletters.sqlite")
    (letter, *_) = store.list()
    store.mark_replayed(letter.id)
    store.close()
    result = invoke("deadletter", "replay", "--state-dir", str(state), "--id", str(letter.id))
    assert result.exit_code == 1 and f"dead letter {letter.id} already replayed" in result.stderr


# --- the demo, then the commands it printed ----------------------------------------------------


def _printed_commands(output: str) -> dict[str, list[str]]:
    block = output[output.index("Inspect what the demo left") :].splitlines()[1:]
    commands = [shlex.split(line) for line in block if line.startswith("  ")]
    assert all(Path(c[0]).name == "ngsild-adapter" for c in commands)
    return {" ".join(c[1:3]) if c[1] != "verify" else "verify": c[1:] for c in commands}


@pytest.mark.integration
def test_the_demo_prints_commands_that_inspect_what_it_left_and_verify_holds(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    demo = invoke("demo", "--no-sharing", "--rounds", "1", "--workdir", str(workdir))
    assert demo.exit_code == 0, demo.output + demo.stderr
    commands = _printed_commands(demo.stdout)
    assert set(commands) == {"deadletter list", "provenance status", "verify"}
    state = workdir / "adapter"
    assert all(c[c.index("--state-dir") + 1] == str(state) for c in commands.values())

    listed = invoke(*commands["deadletter list"])
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.stdout)["counts"] == {"malformed_json": 1, "unknown_device": 1}

    status = invoke(*commands["provenance status"])
    assert status.exit_code == 0, status.stderr
    logs = json.loads(status.stdout)
    assert logs["ville"]["records"] > 0 and logs["ville"]["signed_size"] == logs["ville"]["records"]
    assert logs["ville"]["key"] == load_signer(state / "keys" / "ville.key").verifier.vkey  # the demo's own key

    verified = invoke(*commands["verify"])
    assert verified.exit_code == 0, verified.output + verified.stderr
    assert "HOLDS" in verified.output.splitlines()[0]

    # what it checks: another value does not hold...
    args = commands["verify"]
    forged = [*args[: args.index("--value") + 1], "1000.5", *args[args.index("--value") + 2 :]]
    changed = invoke(*forged)
    assert changed.exit_code == 1 and "differs from the recorded" in changed.output
    # ... and without the keys that signed it the signature cannot be trusted either
    shutil.move(state / "keys", tmp_path / "keys-elsewhere")
    keyless = invoke(*args)
    assert keyless.exit_code == 1 and "HOLDS" not in keyless.output
