"""The production compose files parse and hold together (no Docker engine runs here).

- Exposure: the published ports are exactly the gateway's, the adapter's webhook port and
  Keycloak's HTTPS port; every other service is on internal networks only, and no service
  falls back to compose's default network (which is not internal).
- The hosts, ports and URLs of the adapter's configuration are the ones the compose file gives
  those services, and the secret between the gateway and the adapter is one required variable.
- Keycloak serves HTTPS only, with a certificate mounted from outside the repository.
- Secrets come from required variables (``${VARIABLE:?}``); none is in the repository.
- Mosquitto: no anonymous access, the password file and the ACL mounted read-only
  (the ACL itself and a real broker: ``test_compose_mosquitto.py``).
- The adapter's image: the wheel built in a stage of its own and installed alone in a slim
  image pinned by version, run as a numeric non-root user who owns every volume of the
  services built from it.
"""

from __future__ import annotations

import json
import re
import shlex
from urllib.parse import urlsplit

from adapter.config import Connection, load_config
from tests.compose.stack import parse_image
from tests.compose_support import (
    ADAPTER_HTTP_PORT,
    ADAPTER_TOML,
    COMPOSE,
    CONFIG,
    ENV,
    KEYCLOAK_ENV,
    MOSQUITTO_CONF,
    NETWORKS,
    ORION_LD_PORT,
    SERVICE_TOKEN,
    SERVICES,
    internal,
    mount_at,
    mount_holding,
    mounts,
    networks,
    option,
    published,
    required,
)
from tests.support import REPO


# --- exposure ---------------------------------------------------------------------------------


def test_only_the_gateway_the_webhook_port_and_keycloaks_https_are_published() -> None:
    exposed = {name: published(name) for name in SERVICES if SERVICES[name].get("ports")}
    assert exposed == {
        "gateway": {CONFIG.gateway.port},
        "adapter": {ADAPTER_HTTP_PORT},  # webhooks; its /metrics, /sparql, /provenance need the secret
        "keycloak": {int(KEYCLOAK_ENV["KC_HTTPS_PORT"])},  # partners fetch their tokens there
    }
    for name, service in SERVICES.items():
        assert "network_mode" not in service, name  # host networking would bypass all of it


def test_every_other_service_is_on_internal_networks_only() -> None:
    assert {n for n in NETWORKS if not internal(n)} == {"edge"}
    edge = {name for name in SERVICES if "edge" in networks(name)}
    assert edge == {"gateway", "adapter", "keycloak"}
    for name in ("orion-ld", "mongo", "mintaka", "timescale", "oxigraph", "provenance", "keycloak-db", "mosquitto"):
        assert all(internal(n) for n in networks(name)), name
    assert networks("orion-ld") == networks("mintaka") == networks("provenance") == {"data"}
    assert networks("mosquitto") == {"mqtt"}  # apart from the data: an LNS joining it sees no broker
    assert networks("gateway") >= {"data", "identity"}  # it reaches the broker, provenance and Keycloak


# --- the adapter's configuration and the compose services --------------------------------------


def test_compose_file_declares_the_production_services() -> None:
    assert {"mongo", "orion-ld", "timescale", "mintaka", "mosquitto", "oxigraph", "adapter"} <= set(SERVICES)
    for name, service in SERVICES.items():
        if "image" in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name
        for mount in mounts(name):
            if mount.source.startswith("./"):
                assert (COMPOSE / mount.source).exists(), mount.source
    assert (COMPOSE / SERVICES["adapter"]["build"]["dockerfile"].removeprefix("compose/")).exists()


def test_orion_ld_is_multi_tenant_and_records_history_for_mintaka() -> None:
    orion = SERVICES["orion-ld"]
    assert "-multiservice" in orion["command"] and "-port" not in orion["command"]
    assert orion["environment"]["ORIONLD_TROE"] == "TRUE"
    assert orion["environment"]["ORIONLD_TROE_HOST"] == "timescale"
    assert SERVICES["mintaka"]["environment"]["DATASOURCES_DEFAULT_HOST"] == "timescale"


def test_adapter_configuration_points_at_the_compose_services() -> None:
    broker = urlsplit(CONFIG.broker.url or "")
    assert (broker.hostname, broker.port) == ("orion-ld", ORION_LD_PORT)
    assert "data" in networks("adapter") & networks("orion-ld")
    command = SERVICES["adapter"]["command"]
    assert option(command, "--http-host") == "0.0.0.0"  # reachable by Orion-LD and the LNS
    contexts = urlsplit(CONFIG.contexts_url or "")
    assert (contexts.hostname, contexts.port) == ("adapter", ADAPTER_HTTP_PORT)
    assert mount_at("adapter", option(command, "--config")).read_only
    for connection in CONFIG.connections:
        if connection.transport == "mqtt":
            assert connection.host == "mosquitto" and connection.port == 1883
    assert "mqtt" in networks("adapter") & networks("mosquitto")
    assert MOSQUITTO_CONF["listener"] == ["1883"] and MOSQUITTO_CONF["max_queued_messages"] == ["0"]


def test_production_adapter_configuration_keeps_secrets_out() -> None:
    assert CONFIG.connection("ville-chirpstack").password == "from-env"
    text = (COMPOSE / "adapter" / "adapter.toml").read_text()
    assert "password =" not in text and "token =" not in text
    environment = SERVICES["adapter"]["environment"]
    for connection in CONFIG.connections:
        variable = connection.webhook_token_env if connection.transport == "webhook" else None
        for name in (variable, _password_env(connection)):
            if name is not None:
                assert required(environment[name]) == name, name
    assert required(environment["NGSILD_ADAPTER_PSEUDONYM_KEY"]) == "NGSILD_ADAPTER_PSEUDONYM_KEY"


def _password_env(connection: Connection) -> str | None:
    """The variable the file names for the connection's password (the config keeps its value only)."""
    table = next(t for t in ADAPTER_TOML["connection"] if t["name"] == connection.name)
    name = table.get("password_env")
    return name if isinstance(name, str) else None


def test_provenance_goes_to_the_oxigraph_service_and_keys_to_their_own_volume() -> None:
    settings_ = CONFIG.provenance
    assert settings_.store == "sparql"
    port = int(option(SERVICES["oxigraph"]["command"], "--bind").rsplit(":", 1)[1])
    for url in (settings_.sparql_query_url, settings_.sparql_update_url, settings_.sparql_store_url):
        assert urlsplit(url or "").hostname == "oxigraph" and urlsplit(url or "").port == port
    assert "ports" not in SERVICES["oxigraph"]  # reached through the adapter's read-only /sparql only
    assert mount_at("adapter", str(settings_.key_dir)).source != mount_at("adapter", "/var/lib/ngsild-adapter").source


def test_provenance_is_served_to_the_gateway_only_and_indexes_its_accesses() -> None:
    provenance = SERVICES["provenance"]
    command = provenance["command"]
    assert "serve" in command and "ports" not in provenance  # partners go through the gateway
    url = urlsplit(CONFIG.gateway.adapter_url or "")
    assert (url.hostname, url.port) == ("provenance", int(option(command, "--port")))
    assert "data" in networks("provenance") & networks("gateway")
    served = load_config(COMPOSE / "adapter" / "adapter.toml", env={**ENV, **provenance["environment"]})
    assert served.provenance.open_to_network and not CONFIG.provenance.open_to_network  # the adapter keeps it local
    assert CONFIG.provenance.index_in == "serve"
    gateway_volume = mount_at("gateway", "/var/lib/ngsild-adapter").source
    access_log = CONFIG.provenance.access_log
    assert access_log is not None
    mount = mount_holding("provenance", str(access_log))
    assert mount.source == gateway_volume
    assert str(access_log) == f"{mount.target}/gateway/access.sqlite"  # where the gateway writes it


def test_the_gateway_and_the_adapter_share_one_required_secret() -> None:
    """Neither the provenance service nor the adapter's /metrics trusts a caller by its
    address: the gateway sends the secret the adapter requires, both from one variable."""
    assert CONFIG.provenance.service_token_env == CONFIG.gateway.adapter_token_env == SERVICE_TOKEN
    for name in ("adapter", "provenance", "gateway"):
        assert required(SERVICES[name]["environment"][SERVICE_TOKEN]) == SERVICE_TOKEN, name
    assert CONFIG.provenance.required_service_token() == CONFIG.gateway.required_adapter_token() == ENV[SERVICE_TOKEN]


# --- Keycloak ---------------------------------------------------------------------------------


def test_keycloak_has_a_database_and_no_dev_secret_is_left_to_its_default() -> None:
    keycloak = SERVICES["keycloak"]
    assert "start" in keycloak["command"] and "--import-realm" in keycloak["command"]  # not start-dev
    assert KEYCLOAK_ENV["KC_DB"] == "postgres" and "keycloak-db" in KEYCLOAK_ENV["KC_DB_URL"]
    assert mount_at("keycloak", "/opt/keycloak/data/import").read_only
    placeholders = set()
    for realm in (COMPOSE / "keycloak" / "production").glob("*-realm.json"):  # what it imports
        placeholders |= set(re.findall(r"\$\{([A-Z_]+)[:}]", realm.read_text()))
    assert placeholders >= {"KEYCLOAK_URL", "REGION_VILLE_BROKER_SECRET"}
    for variable in placeholders:  # every secret of the realm files is required in production
        assert ":?" in KEYCLOAK_ENV.get(variable, ""), variable


def test_keycloak_serves_https_only_with_the_operators_certificate() -> None:
    command = SERVICES["keycloak"]["command"]
    assert KEYCLOAK_ENV["KC_HTTP_ENABLED"] == "false" and not any("http-enabled" in a for a in command)
    assert not any(a.startswith("--hostname") or a.startswith("--https") for a in command)  # one place: the environment
    assert KEYCLOAK_ENV.get("KC_HOSTNAME_STRICT", "true") == "true"
    for variable in ("KC_HTTPS_CERTIFICATE_FILE", "KC_HTTPS_CERTIFICATE_KEY_FILE"):
        mount = mount_holding("keycloak", KEYCLOAK_ENV[variable])
        assert mount.read_only and required(mount.source) == "KEYCLOAK_TLS_DIR", variable  # not the repository's
    hostname = KEYCLOAK_ENV["KC_HOSTNAME"]
    assert hostname.startswith("https://") and required(hostname.removeprefix("https://")) == "KEYCLOAK_HOSTNAME"
    assert KEYCLOAK_ENV["KEYCLOAK_URL"] == hostname  # the realm files' federation endpoints
    assert not published("keycloak") & {8080, 9000}  # plain HTTP and the management port
    # the public URL has no port: Keycloak listens on 443 itself, so the same URL works inside
    assert KEYCLOAK_ENV["KC_HTTPS_PORT"] == "443"
    assert SERVICES["keycloak"]["sysctls"]["net.ipv4.ip_unprivileged_port_start"] == 0


def test_the_gateway_reads_the_realms_keys_over_https_at_the_issuers_host() -> None:
    aliases = SERVICES["keycloak"]["networks"]["identity"]["aliases"]
    assert [required(a) for a in aliases] == ["KEYCLOAK_HOSTNAME"]  # the public name, inside the stack
    assert "identity" in networks("gateway")
    issuers = CONFIG.gateway.issuers
    assert {i.organization for i in issuers} == {"ville", "region", "eau"}
    assert len({urlsplit(i.issuer).netloc for i in issuers}) == 1  # one Keycloak, one host name
    for issuer in issuers:
        assert urlsplit(issuer.issuer).scheme == "https" and issuer.issuer.endswith(f"/realms/{issuer.organization}")
        assert issuer.jwks_url == f"{issuer.issuer}/protocol/openid-connect/certs"


def test_the_gateway_trusts_the_realms_and_reads_the_shipped_agreements() -> None:
    assert "gateway" in SERVICES["gateway"]["command"]
    settings_ = CONFIG.gateway
    mount = mount_at("gateway", str(settings_.policies_dir))
    assert mount.source == "./policies" and mount.read_only and (COMPOSE / "policies").is_dir()
    assert urlsplit(settings_.broker_url or "").hostname == "orion-ld"


# --- secrets ----------------------------------------------------------------------------------

_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PWD|_KEY$")


def test_every_secret_comes_from_a_required_variable() -> None:
    seen = set()
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if _SECRET_NAME.search(key):
                assert required(value) is not None, f"{name}: {key} is not a required variable"
                seen.add(key)
    assert {"KC_DB_PASSWORD", "NGSILD_ADAPTER_PSEUDONYM_KEY", SERVICE_TOKEN, "REGION_MQTT_PASSWORD"} <= seen
    assert required(mount_at("mosquitto", "/mosquitto/config/passwd").source) == "MOSQUITTO_PASSWORD_FILE"


def test_no_secret_is_in_the_repository() -> None:
    for path in COMPOSE.rglob("*"):
        if path.is_file():
            assert path.name not in {"passwd", ".env"} and path.suffix not in {".key", ".pem", ".crt", ".p12"}, path
            assert "-----BEGIN" not in path.read_text(errors="replace"), path
    assert "/compose/.env" in (REPO / ".gitignore").read_text().split()


# --- Mosquitto: configuration -----------------------------------------------------------------


# --- Mosquitto: configuration -----------------------------------------------------------------


def test_mosquitto_refuses_anonymous_clients_and_mounts_its_password_file_and_acl() -> None:
    assert MOSQUITTO_CONF["allow_anonymous"] == ["false"]
    assert "per_listener_settings" not in MOSQUITTO_CONF  # the settings above hold for every listener
    assert MOSQUITTO_CONF["listener"] == ["1883"]
    [password_file], [acl_file] = MOSQUITTO_CONF["password_file"], MOSQUITTO_CONF["acl_file"]
    passwords, acl = mount_at("mosquitto", password_file), mount_at("mosquitto", acl_file)
    assert passwords.read_only and acl.read_only
    assert required(passwords.source) == "MOSQUITTO_PASSWORD_FILE"  # the operator's, outside the repository
    assert acl.source == "./mosquitto/acl" and (COMPOSE / acl.source).is_file()
    assert MOSQUITTO_CONF["use_username_as_clientid"] == ["true"]  # no account takes over another's session
    # 2.0.16 to 2.0.21 disconnect a client after a refused publish when max_queued_messages is 0
    image = parse_image(SERVICES["mosquitto"]["image"])
    assert image.repository == "eclipse-mosquitto" and tuple(int(n) for n in (image.tag or "").split(".")) >= (2, 0, 22)


# --- the adapter's image (compose/adapter/Dockerfile, read as Docker would) -------------------

DOCKERFILE = REPO / SERVICES["adapter"]["build"]["dockerfile"]
#: the services built from it (the adapter, the provenance service, the gateway)
BUILT = sorted(name for name, service in SERVICES.items() if "build" in service)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: continuation lines joined, comments dropped."""
    found, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        instruction, _, arguments = (pending + line).strip().partition(" ")
        found.append((instruction.upper(), arguments.strip()))
        pending = ""
    assert not pending, f"{DOCKERFILE}: ends inside a continued line"
    return found


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if instruction[0] == "FROM":
            stages.append([])
        assert stages, f"{DOCKERFILE}: {instruction[0]} before any FROM"
        stages[-1].append(instruction)
    return stages


def _owned_folders(stage: list[tuple[str, str]], before: int) -> dict[str, str]:
    """Folders the RUN lines before index ``before`` create or chown, with their uid:gid."""
    owned = {}
    for instruction, arguments in stage[:before]:
        if instruction != "RUN":
            continue
        for command in (shlex.split(part) for part in arguments.split("&&")):
            if command[:1] == ["install"] and "-d" in command:
                # without -o/-g the folder belongs to the user of the build: root
                owner = command[command.index("-o") + 1] if "-o" in command else "0"
                group = command[command.index("-g") + 1] if "-g" in command else "0"
                skip = {command.index(flag) + k for flag in ("-o", "-g", "-m") if flag in command for k in (0, 1)}
                paths = [w for i, w in enumerate(command) if i and i not in skip and not w.startswith("-")]
                owned.update({path: f"{owner}:{group}" for path in paths})
            elif command[:1] == ["chown"]:
                words = [w for w in command[1:] if not w.startswith("-")]
                owned.update({path: words[0] for path in words[1:]})
    return owned


def test_every_built_service_uses_the_one_adapter_image() -> None:
    assert BUILT == ["adapter", "gateway", "provenance"]
    assert {SERVICES[name]["build"]["dockerfile"] for name in BUILT} == {"compose/adapter/Dockerfile"}
    assert {SERVICES[name]["build"]["context"] for name in BUILT} == {".."}  # the repository root


def test_the_image_installs_the_wheel_not_the_source_tree() -> None:
    stages = _stages()
    assert len(stages) >= 2, "build the wheel in a stage of its own, install it in the final one"
    final, builders = stages[-1], stages[:-1]
    names = {args.split()[-1] for (_, args), *_ in builders if " AS " in args.upper()}
    # the wheel is built in an earlier stage...
    assert any("pip wheel" in args or "-m build" in args for stage in builders for kind, args in stage if kind == "RUN")
    # ...and the final stage takes only files of that stage, none from the build context
    copies = [args for kind, args in final if kind in ("COPY", "ADD")]
    assert copies and all(
        re.match(r"--from=(\S+) ", args) and re.match(r"--from=(\S+) ", args)[1] in names for args in copies
    ), f"{DOCKERFILE}: the final stage copies from the sources: {copies}"
    installs = [args for kind, args in final if kind == "RUN" and "pip install" in args]
    assert installs and all(".whl" in args for args in installs)
    assert not any(re.search(r"(^|\s)(-e|--editable)(\s|$)", args) for stage in stages for _, args in stage)


def test_the_image_base_is_slim_and_pinned_by_exact_version() -> None:
    for stage in _stages():
        image = parse_image(stage[0][1].split()[0])
        assert image.tag and re.fullmatch(r"\d+\.\d+\.\d+-slim(-[a-z]+)?", image.tag), (
            f"{DOCKERFILE}: FROM {image}: an exact Python version of a slim image (no moving tag)"
        )


def test_the_image_runs_as_its_own_user_and_owns_every_volume_of_its_services() -> None:
    final = _stages()[-1]
    [user] = [args for kind, args in final if kind == "USER"][-1:]
    assert re.fullmatch(r"\d+:\d+", user) and int(user.split(":")[0]) != 0, (
        f"{DOCKERFILE}: end with a numeric non-root USER uid:gid (compose sets no user: for these services)"
    )
    [volume_at] = [i for i, (kind, _) in enumerate(final) if kind == "VOLUME"]
    declared = set(json.loads(final[volume_at][1]))
    # changes to a folder after its VOLUME line are thrown away: the owner must be set before
    owned = _owned_folders(final, volume_at)
    for name in BUILT:
        assert "user" not in SERVICES[name], f"{name}: the image's USER is the one that owns its volumes"
        for mount in mounts(name):
            if mount.source.startswith((".", "/", "$")):
                continue  # a file of the repository or the operator's, mounted read-only
            assert mount.target in declared, f"{name}: {mount.target} is not a VOLUME of {DOCKERFILE}"
            assert owned.get(mount.target) == user, f"{name}: {mount.target} is not created owned by {user}"


def test_the_models_folder_of_the_compose_configuration_is_in_the_image_or_mounted() -> None:
    folder = str(CONFIG.models_dir)
    made = any(kind == "RUN" and f"'{folder}'" in args for kind, args in _stages()[-1])
    assert made or all(any(m.target == folder for m in mounts(name)) for name in BUILT), (
        f"[adapter] models = {folder}: neither made by {DOCKERFILE} nor mounted"
    )
