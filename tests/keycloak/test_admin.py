"""The admin API through python-keycloak, the path the identity-admin command line will use:
the bootstrap admin of the ``master`` realm administers the collectivities' realms."""

from __future__ import annotations

import pytest
from keycloak import KeycloakAdmin

from adapter.demo.keycloak import KeycloakServer

pytestmark = pytest.mark.keycloak


def _admin(keycloak: KeycloakServer, realm: str) -> KeycloakAdmin:
    return KeycloakAdmin(
        server_url=keycloak.url,
        username=keycloak.admin_username,
        password=keycloak.admin_password,
        realm_name=realm,  # the realm administered
        user_realm_name="master",  # the realm of the admin account
    )


def test_the_bootstrap_admin_lists_the_collectivities_realms(keycloak: KeycloakServer) -> None:
    realms = {realm["realm"] for realm in _admin(keycloak, "master").get_realms()}

    assert {"ville", "region", "eau"} <= realms


def test_the_admin_client_reads_the_city_s_identity_provider(keycloak: KeycloakServer) -> None:
    providers = _admin(keycloak, "ville").get_idps()

    region = next(p for p in providers if p["alias"] == "region")
    assert region["config"]["issuer"] == keycloak.issuer("region")  # ${KEYCLOAK_URL} rendered
    assert region["firstBrokerLoginFlowAlias"] == "first broker login - automatic"
