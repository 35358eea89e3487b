"""The [[collectivity]], [[connection]] and [[device]] tables: who owns what, and how uplinks arrive."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapter.exceptions import ConfigError
from adapter.mapping.entities import DeviceRecord
from adapter.sources._common import normalise_eui, optional_location

from ._common import _ENV, _number
from ._schema import refuse_unknown
from ._models import MQTT_PORT, MQTT_TLS_PORT, Collectivity, Connection, TlsSettings

__all__: list[str] = []

_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")


def _collectivity(t: Mapping[str, Any], path: Path) -> Collectivity:
    tenant = t.get("tenant")
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise ConfigError(f"{path}: collectivity tenant {tenant!r} must be 1-50 characters of a-z, 0-9, '_' or '-'")
    name = t.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: collectivity {tenant} needs a name")
    refuse_unknown(t, "collectivity", path, f"collectivity {tenant}")
    identifiers = t.get("identifiers", {})
    if not isinstance(identifiers, Mapping):
        raise ConfigError(f'{path}: collectivity {tenant} identifiers must be a table, e.g. {{ siren = "200046977" }}')
    return Collectivity(tenant=tenant, name=name, identifiers={str(k): str(v) for k, v in identifiers.items()})


_TLS_KEYS = ("ca_file", "cert_file", "key_file", "tls_server_name")
#: a DNS name (RFC 1123 labels), what a server certificate's subjectAltName carries
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?"
)


def _connection(
    t: Mapping[str, Any], path: Path, collectivities: Mapping[str, Collectivity], env: Mapping[str, str]
) -> Connection:
    name = t.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: every [[connection]] needs a name")
    where = f"{path}: connection {name}"
    if "tls_insecure" in t:
        raise ConfigError(
            f"{where}: tls_insecure is not supported (it would send the credentials to anyone on the path); "
            "trust a private CA or a self-signed server certificate with ca_file, and give tls_server_name "
            "when the certificate names another host"
        )
    refuse_unknown(t, "connection", path, f"connection {name}")
    if not isinstance(t.get("collectivity"), str) or t["collectivity"] not in collectivities:
        raise ConfigError(f"{where}: collectivity {t.get('collectivity')!r} is not declared")
    if t.get("lns") not in ("chirpstack", "tts"):
        raise ConfigError(f"{where}: lns must be 'chirpstack' or 'tts'")
    transport = t.get("transport", "mqtt")
    if transport not in ("mqtt", "webhook"):
        raise ConfigError(f"{where}: transport must be 'mqtt' or 'webhook'")
    prefix = _ENV + re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_"
    password_env = t.get("password_env")
    if password_env is not None and (not isinstance(password_env, str) or not password_env):
        raise ConfigError(f"{where}: password_env must be the name of an environment variable")
    host = env.get(prefix + "HOST") or t.get("host", "127.0.0.1")
    username = env.get(prefix + "USERNAME") or t.get("username")
    for key, text in (
        ("host", host),
        ("username", username),
        ("client_id", t.get("client_id")),
        ("application", t.get("application")),
    ):
        if text is not None and (not isinstance(text, str) or not text):
            raise ConfigError(f"{where}: {key} must be a non-empty string, not {text!r}")
    if password_env and not username:
        # MQTT sends no password without a user name: it would be dropped without a word
        raise ConfigError(f"{where}: password_env needs a username (TTS: the application id, e.g. app@ttn)")
    tls = _tls(t, where, path.parent, transport)
    default_port = MQTT_TLS_PORT if tls is not None else MQTT_PORT
    port = _number(env.get(prefix + "PORT") or t.get("port", default_port), int, f"connection {name} port", path)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port must be 1 to 65535, not {port}")
    token_env = t.get("token_env")
    if token_env is not None and (not isinstance(token_env, str) or not token_env):
        raise ConfigError(f"{where}: token_env must be the name of an environment variable")
    allow_unauthenticated = t.get("allow_unauthenticated", False) is True
    if transport == "webhook" and not token_env and not allow_unauthenticated:
        raise ConfigError(
            f"{where}: a webhook needs token_env (the variable holding the bearer token the network "
            "server sends) or, for a local demo only, allow_unauthenticated = true"
        )
    return Connection(
        name=name,
        collectivity=t["collectivity"],
        lns=t["lns"],
        transport=transport,
        host=host,
        port=port,
        username=username,
        password=(env.get(password_env) or None) if password_env else None,
        password_env=password_env,
        tls=tls,
        application=t.get("application"),
        client_id=t.get("client_id"),
        webhook_token_env=token_env,
        webhook_token=env.get(token_env) if token_env else None,
        allow_unauthenticated=allow_unauthenticated,
    )


def _tls(t: Mapping[str, Any], where: str, base: Path, transport: str) -> TlsSettings | None:
    """A connection's TLS keys, checked for shape only (the files are read by ``listen``)."""
    tls = t.get("tls", False)
    if not isinstance(tls, bool):
        raise ConfigError(f"{where}: tls must be true or false, not {tls!r}")
    given = [k for k in _TLS_KEYS if k in t]
    if not tls:
        if given:
            # the connection would be plaintext although the file asks for certificates
            raise ConfigError(f"{where}: {', '.join(given)} given but tls is not true")
        return None
    if transport != "mqtt":
        raise ConfigError(f"{where}: tls applies to MQTT connections; a webhook's TLS is its reverse proxy's")
    files: dict[str, Path | None] = {}
    for key in ("ca_file", "cert_file", "key_file"):
        value = t.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{where}: {key} must be a file path")
        files[key] = (base / value).resolve() if value else None
    if (files["cert_file"] is None) != (files["key_file"] is None):
        raise ConfigError(f"{where}: cert_file and key_file go together (the client certificate and its key)")
    server_name = t.get("tls_server_name")
    if server_name is not None and (not isinstance(server_name, str) or not _HOSTNAME.fullmatch(server_name)):
        raise ConfigError(f"{where}: tls_server_name must be a host name, not {server_name!r}")
    return TlsSettings(
        ca_file=files["ca_file"], cert_file=files["cert_file"], key_file=files["key_file"], server_name=server_name
    )


def _device(t: Mapping[str, Any], path: Path, collectivities: Mapping[str, Collectivity]) -> DeviceRecord:
    try:
        eui = normalise_eui(str(t.get("dev_eui", "")))
    except Exception as exc:
        raise ConfigError(f"{path}: [[device]] dev_eui {t.get('dev_eui')!r} is not a 16-digit hex EUI") from exc
    location = None
    if "location" in t:
        location = optional_location(t["location"])
        if location is None:
            raise ConfigError(f"{path}: device {eui} location needs latitude and longitude in range")
    refuse_unknown(t, "device", path, f"device {eui}")
    tenant = t.get("collectivity")
    if t.get("name") is not None and not isinstance(t["name"], str):
        raise ConfigError(f"{path}: device {eui} name must be a string")
    if tenant is not None and (not isinstance(tenant, str) or tenant not in collectivities):
        raise ConfigError(f"{path}: device {eui} collectivity {tenant!r} is not declared")
    attributes = t.get("attributes", {})
    if not isinstance(attributes, Mapping):
        raise ConfigError(f"{path}: device {eui} attributes must be a table of attribute names and values")
    return DeviceRecord(
        dev_eui=eui,
        name=t.get("name"),
        location=location,
        attributes=dict(attributes),
        tenant=tenant,
    )
