"""Reading the production compose files for the tests (no Docker engine runs here).

The compose file, the adapter's configuration and Mosquitto's files are parsed into plain
models once: volumes as ``Mount``, ports, networks, required variables, and Mosquitto's
``acl_file`` as ``MosquittoAcl``, evaluated the way Mosquitto does.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from paho.mqtt.client import topic_matches_sub

from adapter.config import load_config
from tests.support import REPO

__all__ = [
    "ACL",
    "ADAPTER_HTTP_PORT",
    "ADAPTER_TOML",
    "COMPOSE",
    "CONFIG",
    "ENV",
    "KEYCLOAK_ENV",
    "MOSQUITTO_CONF",
    "MOSQUITTO_CONF_TEXT",
    "NETWORKS",
    "ORION_LD_PORT",
    "SERVICES",
    "SERVICE_TOKEN",
    "Access",
    "AclRule",
    "AclSyntaxError",
    "MosquittoAcl",
    "Mount",
    "internal",
    "mosquitto_directives",
    "mount_at",
    "mount_holding",
    "mounts",
    "networks",
    "option",
    "parse_acl",
    "published",
    "required",
]

COMPOSE = REPO / "compose"
_DOC = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
SERVICES: Mapping[str, Any] = _DOC["services"]
NETWORKS: Mapping[str, Any] = _DOC["networks"]
SERVICE_TOKEN = "NGSILD_ADAPTER_SERVICE_TOKEN"
ENV = {"VILLE_MQTT_PASSWORD": "from-env", SERVICE_TOKEN: "s" * 40}
CONFIG = load_config(COMPOSE / "adapter" / "adapter.toml", env=ENV)
ADAPTER_TOML = tomllib.loads((COMPOSE / "adapter" / "adapter.toml").read_text())
ORION_LD_PORT = 1026  # Orion-LD's own port (no -port option in the command)
#: a required variable: compose refuses to start without it, and there is no default value
REQUIRED_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]+\}")


# --- reading the compose file -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mount:
    """One short-syntax volume: ``source:target[:mode]`` (the source may be a ``${...}``)."""

    source: str
    target: str
    read_only: bool


def mounts(service: str) -> list[Mount]:
    """The volumes of ``service``, in order."""
    found = []
    for text in SERVICES[service].get("volumes", []):
        match = re.fullmatch(r"(?P<source>\$\{[^}]*\}|[^:]+):(?P<target>/[^:]*)(?::(?P<mode>[a-z,]+))?", text)
        assert match is not None, f"{service}: volume {text!r} is not source:target[:mode]"
        found.append(Mount(match["source"], match["target"], "ro" in (match["mode"] or "").split(",")))
    return found


def mount_at(service: str, target: str) -> Mount:
    """The mount of ``service`` at exactly ``target``."""
    return next(m for m in mounts(service) if m.target == target)


def mount_holding(service: str, path: str) -> Mount:
    """The mount whose target folder holds ``path``."""
    return next(m for m in mounts(service) if path.startswith(m.target.rstrip("/") + "/"))


def published(service: str) -> set[int]:
    """The container ports of ``service`` published on the host."""
    ports = set()
    for entry in SERVICES[service].get("ports", []):
        match = re.fullmatch(r"(?:[\d.]+:)?(?P<host>\d+):(?P<container>\d+)(?:/tcp)?", str(entry))
        assert match is not None and match["host"] == match["container"], f"{service}: port {entry!r}"
        ports.add(int(match["container"]))
    return ports


def networks(service: str) -> set[str]:
    """The networks ``service`` is on; each service must name them."""
    names = SERVICES[service].get("networks")
    assert names, f"{service} names no network: compose would put it on its default network, not internal"
    return set(names)


def internal(network: str) -> bool:
    """Whether ``network`` is declared ``internal: true`` (no published port, no way out)."""
    return (NETWORKS[network] or {}).get("internal") is True


def required(value: Any) -> str | None:
    """The name of the required variable ``value`` is made of, else None."""
    match = REQUIRED_VARIABLE.fullmatch(str(value))
    return match["name"] if match else None


def option(command: list[str], name: str) -> str:
    """The value following ``name`` in a service's command."""
    return command[command.index(name) + 1]


ADAPTER_HTTP_PORT = int(option(SERVICES["adapter"]["command"], "--http-port"))
KEYCLOAK_ENV: Mapping[str, str] = SERVICES["keycloak"]["environment"]


# --- Mosquitto's files -----------------------------------------------------------------------


def mosquitto_directives(text: str) -> dict[str, list[str]]:
    """Mosquitto's ``directive value`` lines, each directive with its values in order."""
    directives: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            directives.setdefault(key, []).append(value.strip())
    return directives


MOSQUITTO_CONF_TEXT = (COMPOSE / "mosquitto" / "mosquitto.conf").read_text()
MOSQUITTO_CONF = mosquitto_directives(MOSQUITTO_CONF_TEXT)


Access = Literal["read", "write"]


class AclSyntaxError(ValueError):
    """A line of the ACL file that Mosquitto's ``acl_file`` does not know."""


@dataclass(frozen=True, slots=True)
class AclRule:
    access: str  # "read", "write", "readwrite" or "deny"
    topic: str


@dataclass(frozen=True, slots=True)
class MosquittoAcl:
    """Mosquitto's ``acl_file``: ``topic`` lines before any ``user`` apply to every client
    (anonymous ones too), then to the last named user; ``pattern`` lines to every client with
    ``%u``/``%c`` replaced. A ``topic`` without an access keyword grants read and write."""

    global_rules: tuple[AclRule, ...]
    users: Mapping[str, tuple[AclRule, ...]]
    patterns: tuple[AclRule, ...]

    def allows(self, user: str, access: Access, topic: str) -> bool:
        rules = [
            *self.global_rules,
            *self.users.get(user, ()),
            *(AclRule(p.access, p.topic.replace("%u", user).replace("%c", user)) for p in self.patterns),
        ]
        matching = [r for r in rules if topic_matches_sub(r.topic, topic)]
        if any(r.access == "deny" for r in matching):
            return False
        return any(r.access in (access, "readwrite") for r in matching)


def parse_acl(text: str) -> MosquittoAcl:
    """Read an ``acl_file``; a line Mosquitto would not read raises ``AclSyntaxError``."""
    global_rules: list[AclRule] = []
    patterns: list[AclRule] = []
    users: dict[str, list[AclRule]] = {}
    current: list[AclRule] = global_rules
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        if keyword == "user" and rest:
            current = users.setdefault(rest, [])
            continue
        if keyword not in ("topic", "pattern") or not rest:
            raise AclSyntaxError(f"line {number}: {line!r}")
        access, _, topic = rest.partition(" ")
        rule = (
            AclRule(access, topic.strip())
            if access in ("read", "write", "readwrite", "deny") and topic.strip()
            else AclRule("readwrite", rest)
        )
        (patterns if keyword == "pattern" else current).append(rule)
    return MosquittoAcl(tuple(global_rules), {u: tuple(r) for u, r in users.items()}, tuple(patterns))


ACL = parse_acl((COMPOSE / "mosquitto" / "acl").read_text())
