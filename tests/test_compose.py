"""The production compose files parse and hold together (no Docker engine runs here)."""

from __future__ import annotations

import yaml

from adapter.config import load_config
from tests.support import REPO

COMPOSE = REPO / "compose"


def test_compose_file_declares_the_production_services() -> None:
    doc = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"mongo", "orion-ld", "mosquitto", "adapter"} <= set(services)
    for name, service in services.items():
        if "image" in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name
    for volume in services["adapter"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (COMPOSE / source).exists(), source
    assert (COMPOSE / services["adapter"]["build"]["dockerfile"].removeprefix("compose/")).exists()


def test_production_adapter_configuration_loads_and_keeps_secrets_out() -> None:
    path = COMPOSE / "adapter" / "adapter.toml"
    config = load_config(path, env={"VILLE_MQTT_PASSWORD": "from-env"})
    assert config.connection("ville-chirpstack").password == "from-env"
    assert "password =" not in path.read_text()
