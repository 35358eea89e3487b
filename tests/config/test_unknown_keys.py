"""Every table refuses a key it does not declare, naming the file and the table, with the
nearest declared names; the allowlists are the declarations the reference page is made of."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.config import TABLES, load_config
from adapter.config._schema import SECTIONS
from adapter.exceptions import ConfigError
from tests.config.support import BLOCKS, MINIMAL, with_key, write


def test_every_declared_table_is_exercised() -> None:
    assert set(BLOCKS) == {t.name for t in TABLES}


def test_the_base_configuration_and_every_block_load(tmp_path: Path) -> None:
    for table in BLOCKS:
        load_config(write(tmp_path, with_key(table, "")), env={})


@pytest.mark.parametrize("table", [t for t in TABLES], ids=lambda t: t.name)
def test_a_misspelt_key_is_refused_with_a_suggestion(tmp_path: Path, table) -> None:  # type: ignore[no-untyped-def]
    declared = sorted(table.allowed)[0]
    misspelt = declared[:-1] + ("x" if declared[-1] != "x" else "y")  # one letter off
    path = write(tmp_path, with_key(table.name, f"{misspelt} = 1"))
    with pytest.raises(ConfigError) as refused:
        load_config(path, env={})
    text = str(refused.value)
    assert str(path) in text and table.header in text and misspelt in text
    assert f"did you mean {declared!r}" in text
    assert "\n" not in text


def test_a_key_far_from_every_name_gets_no_guess(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, with_key("broker", "zzzzqqq = 1")), env={})
    assert "unknown key(s) in [broker]: zzzzqqq;" in str(refused.value)
    assert "did you mean" not in str(refused.value)


def test_several_unknown_keys_are_all_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, with_key("connection", 'hots = "x"\nprot = 1')), env={})
    text = str(refused.value)
    assert "connection ville-lns ([[connection]])" in text
    assert "hots (did you mean 'host'?)" in text and "prot (did you mean 'port'?)" in text


def test_an_unknown_section_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown section\(s\) brokre \(did you mean 'broker'\?\)"):
        load_config(write(tmp_path, MINIMAL + "\n[brokre]\n"), env={})


_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from([t for t in TABLES]), name=_NAME)
def test_any_undeclared_key_is_refused_and_no_declared_one_is_called_unknown(tmp_path: Path, table, name: str) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, with_key(table.name, f"{name} = 1"))
    try:
        load_config(path, env={})
    except ConfigError as exc:
        unknown = "unknown key(s)" in str(exc)
        assert unknown == (name not in table.allowed), str(exc)
    else:
        assert name in table.allowed


def test_array_tables_given_as_a_table_are_refused_in_one_line(tmp_path: Path) -> None:
    text = MINIMAL.replace("[[collectivity]]", "[collectivity]").replace("[[connection]]", "[connectionx]")
    with pytest.raises(ConfigError, match="collectivity must be an array of tables"):
        load_config(write(tmp_path, text.replace("[connectionx]\n", "").split('name = "ville-lns"')[0]), env={})
    assert "gateway.issuer" not in SECTIONS and "gateway" in SECTIONS


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('max_payload_bytes = "big"', "adapter max_payload_bytes must be an integer, not 'big'"),
        ("max_future_skew_s = true", "adapter max_future_skew_s must be a number"),
    ],
)
def test_adapter_numbers_are_refused_in_one_line(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, with_key("adapter", line)), env={})


def test_a_configuration_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path, env={})


@pytest.mark.parametrize("value", ["1", '"x"', "[1]", "{ a = 1 }", "true", '""'])
def test_a_wrong_value_for_any_declared_key_is_a_config_error_never_a_crash(tmp_path: Path, value: str) -> None:
    for table in TABLES:
        for key in sorted(table.allowed):
            text = with_key(table.name, f"{key} = {value}")
            if f"\n{key} =" in text.split(f"{key} = {value}")[0][-400:] and table.name in (
                "adapter",
                "collectivity",
                "connection",
            ):
                continue  # the base file sets this key already: TOML refuses the duplicate itself
            try:
                load_config(write(tmp_path, text), env={})
            except ConfigError as exc:
                assert "\n" not in str(exc).strip(), (table.name, key, value, str(exc))
