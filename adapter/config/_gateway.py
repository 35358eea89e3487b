"""The [gateway] table and its [[gateway.issuer]] entries: the sharing gateway."""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from adapter.exceptions import ConfigError

from ._common import _ENV, _number
from ._models import Collectivity, GatewaySettings, IssuerSettings
from ._schema import refuse_unknown

__all__: list[str] = []


def _gateway(
    t: Mapping[str, Any], base: Path, path: Path, env: Mapping[str, str], collectivities: Mapping[str, Collectivity]
) -> GatewaySettings:
    refuse_unknown(t, "gateway", path)

    def value(key: str) -> Any:
        return env.get(f"{_ENV}GATEWAY_{key.upper()}") or t.get(key)

    for key in ("host", "public_url", "broker_url", "policies", "audience", "adapter_url"):
        given = value(key)
        if given is not None and (not isinstance(given, str) or not given):
            raise ConfigError(f"{path}: gateway {key} must be a non-empty string, not {given!r}")
    entries = t.get("issuer", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: gateway issuer must be an array of tables ([[gateway.issuer]])")
    issuers = []
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("issuer"), str):
            raise ConfigError(f"{path}: every [[gateway.issuer]] needs an issuer URL")
        refuse_unknown(entry, "gateway.issuer", path, f"issuer {entry['issuer']}")
        if not re.match(r"^https?://[^/\s]+/", entry["issuer"]):
            raise ConfigError(f"{path}: gateway issuer {entry['issuer']!r} is not an http(s) URL")
        organization, jwks_url = entry.get("organization"), entry.get("jwks_url")
        if jwks_url is not None and (not isinstance(jwks_url, str) or not re.match(r"^https?://[^/\s]+/", jwks_url)):
            raise ConfigError(f"{path}: gateway issuer {entry['issuer']}: jwks_url must be an http(s) URL")
        if organization is not None and (not isinstance(organization, str) or organization not in collectivities):
            raise ConfigError(
                f"{path}: gateway issuer {entry['issuer']}: organization {organization!r} is not declared"
            )
        issuers.append(IssuerSettings(entry["issuer"], organization, jwks_url))
    allowed = value("allowed_notification_urls") or []
    if isinstance(allowed, str):
        allowed = [u for u in allowed.split(",") if u]
    if not isinstance(allowed, list) or not all(
        isinstance(u, str) and re.match(r"^https?://[^/\s]+/", u) for u in allowed
    ):
        raise ConfigError(
            f"{path}: gateway allowed_notification_urls must be http(s) URL prefixes ending a host with /"
        )
    from adapter.gateway.endpoints import EndpointRefused, parse_prefix  # here: the gateway package imports this module

    for prefix in allowed:
        try:
            parse_prefix(prefix)
        except EndpointRefused as exc:
            raise ConfigError(f"{path}: gateway allowed_notification_urls {prefix!r}: {exc}") from exc
    private = value("allow_private_notification_addresses") or []
    if isinstance(private, str):
        private = [n.strip() for n in private.split(",") if n.strip()]
    if not isinstance(private, list) or not all(isinstance(n, str) for n in private):
        raise ConfigError(f"{path}: gateway allow_private_notification_addresses must be a list of networks")
    try:
        networks = tuple(ip_network(n, strict=True) for n in private)
    except ValueError as exc:
        raise ConfigError(f"{path}: gateway allow_private_notification_addresses: {exc}") from exc
    token_env = value("adapter_token_env")
    if token_env is not None and (not isinstance(token_env, str) or not token_env):
        raise ConfigError(f"{path}: gateway adapter_token_env must be the name of a variable")
    policies = value("policies")
    return GatewaySettings(
        host=str(value("host") or "127.0.0.1"),
        port=_number(value("port") or 8081, int, "gateway port", path),
        public_url=value("public_url"),
        broker_url=value("broker_url"),
        policies_dir=(base / policies).resolve() if policies else None,
        audience=str(value("audience") or "ngsild-gateway"),
        allowed_notification_urls=tuple(allowed),
        issuers=tuple(issuers),
        adapter_url=value("adapter_url"),
        adapter_token_env=token_env,
        adapter_token=(env.get(token_env) or None) if token_env else None,
        allow_private_notification_addresses=networks,
        cell_publication_delay_s=_number(
            value("cell_publication_delay_s") or 3600, float, "gateway cell_publication_delay_s", path
        ),
    )
