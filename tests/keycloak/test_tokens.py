"""Tokens from the real Keycloak carry what the gateway reads: a verifiable signature, the
issuer of the collectivity's realm, the gateway as audience, the collectivity
(``organization``) and the realm roles as a flat ``roles`` list."""

from __future__ import annotations

import aiohttp
import pytest

from adapter.demo.keycloak import KeycloakServer
from tests.keycloak.support import (
    as_list,
    client_credentials_token,
    dev_password,
    dev_secret,
    password_token,
    verified_claims,
)

pytestmark = pytest.mark.keycloak


@pytest.mark.parametrize(("realm", "client_id"), [("ville", "ecole-ventilation"), ("region", "region-platform")])
async def test_a_partner_platform_gets_a_token_for_the_gateway_with_client_credentials(
    keycloak: KeycloakServer, http: aiohttp.ClientSession, realm: str, client_id: str
) -> None:
    token = await client_credentials_token(http, keycloak, realm, client_id, dev_secret(realm, client_id))

    claims = await verified_claims(http, keycloak, realm, token)
    assert claims["iss"] == keycloak.issuer(realm)
    assert "ngsild-gateway" in as_list(claims["aud"])
    assert claims["typ"] == "Bearer"
    assert claims["organization"] == realm
    assert "partner-platform" in claims["roles"]
    assert claims["azp"] == client_id
    assert claims["client_id"] == client_id
    assert claims["sub"]  # the client's service account


async def test_a_wrong_client_secret_gets_no_token(keycloak: KeycloakServer, http: aiohttp.ClientSession) -> None:
    form = {"grant_type": "client_credentials", "client_id": "ecole-ventilation", "client_secret": "not-the-secret"}
    async with http.post(keycloak.token_url("ville"), data=form) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized_client"


@pytest.mark.parametrize(
    ("realm", "username", "role", "group"),
    [
        ("ville", "elu", "elected-official", "conseil-municipal"),
        ("ville", "gestionnaire.batiment", "building-manager", "direction-batiments"),
        ("ville", "admin.donnees", "data-admin", "service-donnees"),
        ("region", "chercheur", "researcher", "partenariats-recherche"),
    ],
)
async def test_a_user_token_carries_the_roles_of_the_user_s_service(
    keycloak: KeycloakServer, http: aiohttp.ClientSession, realm: str, username: str, role: str, group: str
) -> None:
    token = await password_token(http, keycloak, realm, username, dev_password(realm, username))

    claims = await verified_claims(http, keycloak, realm, token)
    assert claims["iss"] == keycloak.issuer(realm)
    assert "ngsild-gateway" in as_list(claims["aud"])
    assert claims["organization"] == realm
    assert role in claims["roles"]
    assert claims["groups"] == [group]
    assert claims["preferred_username"] == username
    assert claims["sub"]
    assert "identity_provider" not in claims  # a local account, not a federated one


async def test_a_region_agent_has_no_special_role(keycloak: KeycloakServer, http: aiohttp.ClientSession) -> None:
    token = await password_token(http, keycloak, "region", "agent.region", dev_password("region", "agent.region"))

    claims = await verified_claims(http, keycloak, "region", token)
    special = {"building-manager", "elected-official", "researcher", "data-admin", "partner-platform"}
    assert not special & set(claims.get("roles", []))  # no role at all: no claim
    assert claims["organization"] == "region"


async def test_a_token_of_one_realm_does_not_verify_against_another_realm_s_keys(
    keycloak: KeycloakServer, http: aiohttp.ClientSession
) -> None:
    token = await password_token(http, keycloak, "ville", "elu", dev_password("ville", "elu"))

    with pytest.raises(Exception, match="(?i)key"):
        await verified_claims(http, keycloak, "region", token)
