"""The collectivity's signing key file: created once, owner-only, never inside a repository."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from adapter.exceptions import ConfigError
from adapter.provenance.integrity.keys import load_or_create_signer, load_signer, write_signer
from adapter.provenance.integrity.note import NoteSigner

NAME = "adapter.example/log/region"


def test_first_run_generates_a_private_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "region.key"
    signer = load_or_create_signer(path, NAME)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == signer.skey + "\n"
    assert signer.name == NAME
    again = load_or_create_signer(path, NAME)
    assert again.verifier == signer.verifier
    assert sorted(p.name for p in path.parent.iterdir()) == ["region.key"]


def test_a_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "region.key"
    first = load_or_create_signer(path, NAME)
    with pytest.raises(FileExistsError):
        write_signer(path, NoteSigner.generate(NAME))
    assert load_signer(path).verifier == first.verifier


def test_keys_are_refused_inside_a_repository(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    path = tmp_path / "repo" / "var" / "keys" / "region.key"
    with pytest.raises(ConfigError, match="outside any repository"):
        load_or_create_signer(path, NAME)
    assert not path.exists()


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "region.key"
    load_or_create_signer(path, NAME)
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="group or others"):
        load_signer(path)


def test_a_key_of_another_name_or_malformed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "region.key"
    load_or_create_signer(path, NAME)
    with pytest.raises(ConfigError, match="named"):
        load_or_create_signer(path, "adapter.example/log/city")
    broken = tmp_path / "broken.key"
    broken.write_text("PRIVATE+KEY+oops\n")
    broken.chmod(0o600)
    with pytest.raises(ConfigError, match="not a note signer key"):
        load_signer(broken)
