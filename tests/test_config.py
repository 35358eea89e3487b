"""Configuration: TOML file, environment overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import load_config
from adapter.exceptions import ConfigError

MINIMAL = """
[adapter]
models = "models"

[[collectivity]]
tenant = "ville"
name = "Ville"

[[connection]]
name = "ville-lns"
collectivity = "ville"
lns = "chirpstack"
host = "10.0.0.1"
username = "adapter-ville"
password_env = "VILLE_MQTT_PASSWORD"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "adapter.toml"
    path.write_text(text)
    return path


def test_embedded_demo_configuration_has_four_collectivities() -> None:
    config = load_config(None, env={})
    assert sorted(config.collectivities) == ["eau", "metropole", "region", "ville"]
    assert {c.lns for c in config.connections} == {"chirpstack", "tts"}
    assert config.devices["70b3d57ed0005e05"].attributes["refParkingSite"].startswith("urn:ngsi-ld:")


def test_environment_overrides_the_file_and_secrets_come_only_from_it(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    config = load_config(
        path,
        env={
            "NGSILD_ADAPTER_VILLE_LNS_HOST": "127.0.0.1",
            "NGSILD_ADAPTER_VILLE_LNS_PORT": "1884",
            "VILLE_MQTT_PASSWORD": "s3cret",
            "NGSILD_ADAPTER_MODELS": "/srv/models",
            "NGSILD_ADAPTER_MAX_PAYLOAD_BYTES": "64",
        },
    )
    connection = config.connection("ville-lns")
    assert (connection.host, connection.port, connection.password) == ("127.0.0.1", 1884, "s3cret")
    assert "s3cret" not in repr(connection)
    assert config.models_dir == Path("/srv/models")
    assert config.limits.max_payload_bytes == 64
    assert load_config(path, env={}).connection("ville-lns").host == "10.0.0.1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('tenant = "ville"', 'tenant = "Ville de Paris"'), "must be 1-50 characters"),
        (('lns = "chirpstack"', 'lns = "loriot"'), "lns must be 'chirpstack' or 'tts'"),
        (('collectivity = "ville"', 'collectivity = "region"'), "collectivity 'region' is not declared"),
        (("[adapter]", "[adaptor]"), "unknown section(s) adaptor"),
        (('name = "Ville"', 'name = "Ville"\n[[device]]\ndev_eui = "xyz"'), "is not a 16-digit hex EUI"),
        (("[adapter]", "[adapter"), "not valid TOML"),
    ],
)
def test_configuration_mistakes(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL.replace(*change)), env={})
    assert message in str(caught.value)


def test_broker_temporal_url_from_the_file_or_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[broker]\nurl = "http://orion-ld:1026"\ntemporal_url = "http://mintaka:8080"\n')
    assert load_config(path, env={}).broker.temporal_url == "http://mintaka:8080"
    overridden = load_config(path, env={"NGSILD_ADAPTER_BROKER_TEMPORAL_URL": "http://history:9090"})
    assert overridden.broker.temporal_url == "http://history:9090"
    assert load_config(write(tmp_path, MINIMAL), env={}).broker.temporal_url is None
    with pytest.raises(ConfigError, match="broker temporal_url must be an http:// or https:// URL"):
        load_config(write(tmp_path, MINIMAL + '\n[broker]\ntemporal_url = "mintaka:8080"\n'), env={})
