"""``ngsild-adapter init DIR``: a starting configuration that ``check`` accepts, never over a file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.cli import main
from adapter.cli.init import InitError, starting_files
from adapter.config import load_config

runner = CliRunner()
WRITTEN = (
    "adapter.toml",
    "models/water-meter.yaml",
    "models/codecs/water-meter-pulse.js",
    "agreements/example-building-managers.jsonld",
    "agreements/README.txt",
)


def _init(folder: Path, *options: str):  # type: ignore[no-untyped-def]
    return runner.invoke(main, ["init", str(folder), *options])


@pytest.mark.parametrize("lns", ["chirpstack", "tts"])
def test_check_passes_on_what_init_writes(tmp_path: Path, lns: str) -> None:
    site = tmp_path / "site"
    result = _init(site, "--tenant", "eau", "--name", "Régie des eaux", "--lns", lns)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()) == sorted(WRITTEN)
    checked = runner.invoke(main, ["check", "--config", str(site / "adapter.toml")])
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.output)
    assert report["status"] == "ok" and report["collectivities"] == ["eau"]
    assert report["profiles"] == {"water-meter": "water-meter.yaml"}
    assert report["connections"] == [f"eau-{lns} ({lns} over mqtt, eau)"]
    config = load_config(site / "adapter.toml", env={})
    # the user's folders, relative to their file: nothing points back into the package
    assert config.models_dir == site / "models" and config.state_dir == site / "state"
    assert config.gateway.policies_dir == site / "agreements"


def test_the_example_agreement_passes_policy_check(tmp_path: Path) -> None:
    assert _init(tmp_path, "--tenant", "ville").exit_code == 0
    result = runner.invoke(
        main,
        [
            "policy",
            "check",
            "--config",
            str(tmp_path / "adapter.toml"),
            str(tmp_path / "agreements" / "example-building-managers.jsonld"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "building-manager of ville" in result.output and "WaterConsumptionObserved" in result.output


def test_every_file_says_what_to_change(tmp_path: Path) -> None:
    assert _init(tmp_path).exit_code == 0
    for name in WRITTEN:
        assert "CHANGE" in (tmp_path / name).read_text(encoding="utf-8"), name


def test_an_existing_file_refuses_the_whole_run(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "water-meter.yaml").write_text("mine\n", encoding="utf-8")
    result = _init(tmp_path)
    assert result.exit_code == 1
    assert "water-meter.yaml already exists: nothing was written" in result.output
    assert (tmp_path / "models" / "water-meter.yaml").read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["models", "water-meter.yaml"]


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    assert _init(tmp_path).exit_code == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = _init(tmp_path, "--tenant", "autre")
    assert again.exit_code == 1 and "already exist:" in again.output
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    "options, message",
    [
        (["--tenant", "Ville"], "--tenant 'Ville'"),
        (["--tenant", "-x"], "--tenant '-x'"),
        (["--tenant", "a" * 51], "--tenant"),
        (["--name", " "], "--name"),
        (["--name", "line\nbreak"], "--name"),
        (["--lns", "loriot"], "'loriot' is not one of"),
    ],
)
def test_refused_options_write_nothing(tmp_path: Path, options: list[str], message: str) -> None:
    result = _init(tmp_path / "site", *options)
    assert result.exit_code != 0 and message in result.output
    assert not (tmp_path / "site").exists()


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    name=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80).filter(
        lambda n: n.strip() and n.isprintable()
    )
)
def test_any_printable_name_reads_back_unchanged(name: str) -> None:
    # the name is written as a TOML string: quotes, backslashes, accents and emoji survive
    config = dict(starting_files("ville", name, "chirpstack").files)["adapter.toml"]
    assert tomllib.loads(config)["collectivity"][0]["name"] == name


def test_a_refused_tenant_is_an_init_error() -> None:
    with pytest.raises(InitError):
        starting_files("../x", "Ville", "chirpstack")
