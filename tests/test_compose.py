"""The production compose files parse and hold together (no Docker engine runs here):
every service the adapter needs is there, and the hosts, ports and URLs of the adapter's
configuration are the ones the compose file gives those services."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import yaml

from adapter.config import load_config
from tests.support import REPO

COMPOSE = REPO / "compose"
DOC = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
SERVICES = DOC["services"]
CONFIG = load_config(COMPOSE / "adapter" / "adapter.toml", env={"VILLE_MQTT_PASSWORD": "from-env"})


def _published_container_ports(service: str) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in SERVICES[service].get("ports", [])}


def test_compose_file_declares_the_production_services() -> None:
    assert {"mongo", "orion-ld", "timescale", "mintaka", "mosquitto", "oxigraph", "adapter"} <= set(SERVICES)
    for name, service in SERVICES.items():
        if "image" in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name
    for volume in SERVICES["adapter"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (COMPOSE / source).exists(), source
    assert (COMPOSE / SERVICES["adapter"]["build"]["dockerfile"].removeprefix("compose/")).exists()


def test_orion_ld_is_multi_tenant_and_records_history_for_mintaka() -> None:
    orion = SERVICES["orion-ld"]
    assert "-multiservice" in orion["command"]
    assert orion["environment"]["ORIONLD_TROE"] == "TRUE"
    assert orion["environment"]["ORIONLD_TROE_HOST"] == "timescale"
    assert SERVICES["mintaka"]["environment"]["DATASOURCES_DEFAULT_HOST"] == "timescale"


def test_adapter_configuration_points_at_the_compose_services() -> None:
    broker = urlsplit(CONFIG.broker.url or "")
    assert broker.hostname == "orion-ld" and broker.port in _published_container_ports("orion-ld")
    command = SERVICES["adapter"]["command"]
    http_port = int(command[command.index("--http-port") + 1])
    assert command[command.index("--http-host") + 1] == "0.0.0.0"  # reachable by Orion-LD and the LNS
    contexts = urlsplit(CONFIG.contexts_url or "")
    assert contexts.hostname == "adapter" and contexts.port == http_port
    assert http_port in _published_container_ports("adapter")
    config_path = command[command.index("--config") + 1]
    assert any(v.endswith(f":{config_path}:ro") for v in SERVICES["adapter"]["volumes"])
    mosquitto_conf = (COMPOSE / "mosquitto" / "mosquitto.conf").read_text()
    for connection in CONFIG.connections:
        if connection.transport == "mqtt":
            assert connection.host == "mosquitto"
            assert f"listener {connection.port}" in mosquitto_conf
    assert "max_queued_messages 0" in mosquitto_conf


def test_production_adapter_configuration_keeps_secrets_out() -> None:
    assert CONFIG.connection("ville-chirpstack").password == "from-env"
    text = (COMPOSE / "adapter" / "adapter.toml").read_text()
    assert "password =" not in text and "token =" not in text
    for variable in ("VILLE_MQTT_PASSWORD", "NGSILD_ADAPTER_PSEUDONYM_KEY"):
        assert "?" in SERVICES["adapter"]["environment"][variable]  # required from .env, no default


def test_provenance_goes_to_the_oxigraph_service_and_keys_to_their_own_volume() -> None:
    settings = CONFIG.provenance
    assert settings.store == "sparql"
    command = SERVICES["oxigraph"]["command"]
    port = int(command[command.index("--bind") + 1].rsplit(":", 1)[1])
    for url in (settings.sparql_query_url, settings.sparql_update_url, settings.sparql_store_url):
        assert urlsplit(url or "").hostname == "oxigraph" and urlsplit(url or "").port == port
    assert "ports" not in SERVICES["oxigraph"]  # reached through the adapter's read-only /sparql only
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["adapter"]["volumes"]}
    assert mounts[str(settings.key_dir)] != mounts["/var/lib/ngsild-adapter"]  # keys apart from the data


def test_keycloak_has_a_database_and_no_dev_secret_is_left_to_its_default() -> None:
    keycloak = SERVICES["keycloak"]
    assert "start" in keycloak["command"] and "--import-realm" in keycloak["command"]  # not start-dev
    assert keycloak["environment"]["KC_DB"] == "postgres" and "keycloak-db" in keycloak["environment"]["KC_DB_URL"]
    assert any(v.endswith(":/opt/keycloak/data/import:ro") for v in keycloak["volumes"])
    placeholders = set()
    for realm in (COMPOSE / "keycloak").glob("*-realm.json"):
        placeholders |= set(re.findall(r"\$\{([A-Z_]+)[:}]", realm.read_text()))
    for variable in placeholders:  # every secret of the realm files is required in production
        assert ":?" in keycloak["environment"].get(variable, ""), variable


def test_the_gateway_trusts_the_realms_and_reads_the_shipped_agreements() -> None:
    gateway = SERVICES["gateway"]
    assert "gateway" in gateway["command"]
    settings = CONFIG.gateway
    assert {i.organization for i in settings.issuers} == {"ville", "region", "eau"}
    for issuer in settings.issuers:
        assert urlsplit(issuer.jwks_url or "").hostname == "keycloak"
        assert issuer.issuer.endswith(f"/realms/{issuer.organization}")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in gateway["volumes"]}
    assert mounts[str(settings.policies_dir)] == "./policies" and (COMPOSE / "policies").is_dir()
    assert urlsplit(settings.broker_url or "").hostname == "orion-ld"
    assert settings.port in _published_container_ports("gateway")


def test_provenance_is_served_to_the_gateway_only_and_indexes_its_accesses() -> None:
    provenance = SERVICES["provenance"]
    command = provenance["command"]
    assert "serve" in command and "ports" not in provenance  # partners go through the gateway
    port = int(command[command.index("--port") + 1])
    url = urlsplit(CONFIG.gateway.adapter_url or "")
    assert (url.hostname, url.port) == ("provenance", port)
    served = load_config(COMPOSE / "adapter" / "adapter.toml", env={**provenance["environment"], "VILLE_MQTT_PASSWORD": "x"})
    assert served.provenance.open_to_network and not CONFIG.provenance.open_to_network  # the adapter keeps it local
    assert CONFIG.provenance.index_in == "serve"
    gateway_volume = next(v.split(":")[0] for v in SERVICES["gateway"]["volumes"] if ":/var/lib/ngsild-adapter" in v)
    mounts = {v.split(":")[1]: v.split(":")[0] for v in provenance["volumes"]}
    assert CONFIG.provenance.access_log is not None
    mount_point = next(m for m in mounts if str(CONFIG.provenance.access_log).startswith(m + "/"))
    assert mounts[mount_point] == gateway_volume
    assert str(CONFIG.provenance.access_log) == f"{mount_point}/gateway/access.sqlite"  # where the gateway writes it
