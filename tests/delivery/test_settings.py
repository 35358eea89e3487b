"""The ``[broker]`` and ``[outbox]`` settings: defaults, file, environment, refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapter.config import BrokerSettings, load_config
from adapter.exceptions import ConfigError

BASE = """
[[collectivity]]
tenant = "ville"
name = "Ville"
"""

FULL = (
    BASE
    + """
[broker]
url = "http://orion:1026"
token_env = "ORION_TOKEN"
batch_max_entities = 500
batch_max_bytes = 524288
batch_delay_s = 0.2
max_in_flight = 8
retry_initial_s = 1
retry_max_s = 120
request_timeout_s = 10

[outbox]
max_depth = 5000
"""
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "adapter.toml"
    path.write_text(text)
    return path


def test_defaults_follow_orion_limits_and_no_broker_is_configured(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), env={})
    assert config.broker == BrokerSettings()
    assert (config.broker.url, config.broker.batch_max_entities, config.broker.batch_max_bytes) == (None, 1000, 1048576)
    assert (config.broker.max_in_flight, config.broker.batch_delay_s, config.outbox_max_depth) == (4, 0.05, 100_000)


def test_file_values_and_the_token_from_its_variable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), env={"ORION_TOKEN": "t0ken"})
    assert config.broker == BrokerSettings(
        url="http://orion:1026",
        token_env="ORION_TOKEN",
        token="t0ken",
        batch_max_entities=500,
        batch_max_bytes=524288,
        batch_delay_s=0.2,
        max_in_flight=8,
        retry_initial_s=1.0,
        retry_max_s=120.0,
        request_timeout_s=10.0,
    )
    assert "t0ken" not in repr(config.broker)
    assert config.outbox_max_depth == 5000


def test_environment_overrides(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, FULL),
        env={
            "NGSILD_ADAPTER_BROKER_URL": "https://broker.example:8443/",
            "NGSILD_ADAPTER_BROKER_MAX_IN_FLIGHT": "2",
            "NGSILD_ADAPTER_BROKER_BATCH_DELAY_S": "0.01",
            "NGSILD_ADAPTER_OUTBOX_MAX_DEPTH": "42",
        },
    )
    assert (config.broker.url, config.broker.max_in_flight, config.broker.batch_delay_s) == (
        "https://broker.example:8443/",
        2,
        0.01,
    )
    assert config.outbox_max_depth == 42 and config.broker.token is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("batch_max_entities = 1001", "batch_max_entities must be 1 to 1000"),
        ("batch_max_bytes = 2000000", "batch_max_bytes must be 1024 to 1048576"),
        ("max_in_flight = 0", "max_in_flight must be at least 1"),
        ("retry_initial_s = 5\nretry_max_s = 1", "retry_initial_s <= retry_max_s"),
        ('url = "orion:1026"', "http:// or https:// URL"),
        ('max_in_flight = "many"', "max_in_flight must be an integer"),
        ("batch_size = 10", "unknown key(s) in [broker]: batch_size"),
    ],
)
def test_wrong_broker_settings_are_refused(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, BASE + "[broker]\n" + line + "\n"), env={})


def test_outbox_depth_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_depth must be at least 1"):
        load_config(write(tmp_path, BASE + "[outbox]\nmax_depth = 0\n"), env={})
