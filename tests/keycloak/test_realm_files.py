"""The realm files of compose/keycloak/ (no server needed): one realm per collectivity, the
same roles everywhere, dev-only secrets written as overridable placeholders, and the
rendering the dev server applies before importing them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from adapter.demo.keycloak import REALMS_DIR, render_realm

REALMS = ("ville", "region", "eau")
ROLES = {"building-manager", "elected-official", "researcher", "data-admin", "partner-platform"}


def _raw(realm: str) -> str:
    return (REALMS_DIR / f"{realm}-realm.json").read_text(encoding="utf-8")


def _realm(realm: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_raw(realm))
    return data


@pytest.mark.parametrize("realm", REALMS)
def test_each_collectivity_has_its_realm_with_the_shared_roles_and_the_ngsild_scope(realm: str) -> None:
    data = _realm(realm)
    assert data["realm"] == realm
    assert {role["name"] for role in data["roles"]["realm"]} == ROLES
    assert "ngsild" in data["defaultDefaultClientScopes"]
    scope = next(s for s in data["clientScopes"] if s["name"] == "ngsild")
    mappers = {m["name"]: m["config"] for m in scope["protocolMappers"]}
    assert mappers["organization"]["claim.value"] == realm
    assert mappers["roles"]["claim.name"] == "roles"
    assert mappers["audience ngsild-gateway"]["included.client.audience"] == "ngsild-gateway"
    clients = {c["clientId"]: c for c in data["clients"]}
    assert clients["ngsild-gateway"]["bearerOnly"] is True
    assert clients["cli"]["publicClient"] is True and clients["cli"]["directAccessGrantsEnabled"] is True


@pytest.mark.parametrize("realm", REALMS)
def test_secrets_and_passwords_are_dev_only_placeholders(realm: str) -> None:
    data = _realm(realm)
    values = [c["secret"] for c in data["clients"] if "secret" in c]
    values += [cred["value"] for u in data.get("users", []) for cred in u.get("credentials", [])]
    for value in values:
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*:dev-only-[a-z0-9-]+\}", value), value
    for client in data["clients"]:
        if "secret" in client:
            assert "DEV ONLY" in client["description"]


def test_rendering_puts_the_server_url_and_the_dev_values_in_place() -> None:
    rendered = json.loads(render_realm(_raw("ville"), "http://127.0.0.1:12345"))

    region = rendered["identityProviders"][0]
    assert region["config"]["issuer"] == "http://127.0.0.1:12345/realms/region"
    assert region["config"]["clientSecret"] == "dev-only-ville-broker-secret"
    # Keycloak's own template syntax stays for Keycloak
    assert rendered["identityProviderMappers"][0]["config"]["template"] == "region.${CLAIM.preferred_username}"


def test_the_broker_client_secret_is_the_same_placeholder_on_both_sides() -> None:
    ville_side = _realm("ville")["identityProviders"][0]["config"]["clientSecret"]
    region_side = next(c for c in _realm("region")["clients"] if c["clientId"] == "ville-broker")["secret"]
    assert ville_side == region_side


def _descriptions(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["description"]] if isinstance(node.get("description"), str) else []
        return own + [d for value in node.values() for d in _descriptions(value)]
    if isinstance(node, list):
        return [d for value in node for d in _descriptions(value)]
    return []


@pytest.mark.parametrize("realm", REALMS)
def test_descriptions_fit_keycloak_s_columns(realm: str) -> None:
    # Keycloak stores descriptions in VARCHAR(255): a longer one aborts the import, and the server's start.
    for description in _descriptions(_realm(realm)):
        assert len(description) <= 255, description


def test_the_readme_lists_every_placeholder_variable() -> None:
    readme = (REALMS_DIR / "README.md").read_text(encoding="utf-8")
    for realm in REALMS:
        for variable in set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)[:}]", _raw(realm))):
            assert f"`{variable}`" in readme, variable
