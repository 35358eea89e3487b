"""Adding a user to a collectivity: enabled, with a realm role that their tokens carry; a
temporary password must be changed at the first login; a second call changes nothing."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import aiohttp
import pytest
from keycloak import KeycloakAdmin

from adapter.access.admin import AdminError, AdminResult, IdentityAdmin
from adapter.demo.keycloak import KeycloakServer
from tests.keycloak.support import as_list, password_token, verified_claims

pytestmark = pytest.mark.keycloak


async def test_a_user_added_as_elected_official_gets_a_token_with_that_role(
    keycloak: KeycloakServer,
    http: aiohttp.ClientSession,
    identity_admin: IdentityAdmin,
    metropole: tuple[AdminResult, AdminResult],
    inspect: Callable[[str], KeycloakAdmin],
) -> None:
    added = identity_admin.add_user(
        "metropole",
        "j.martin",
        role="elected-official",
        email="j.martin@metropole.example",
        first_name="Jeanne",
        last_name="Martin",
    )
    # A password the user would have chosen (Keycloak's profile requires email and names at login).
    password = secrets.token_urlsafe(16)
    realm = inspect("metropole")
    user_id = realm.get_user_id("j.martin")
    assert user_id is not None
    realm.set_user_password(user_id, password, temporary=False)

    token = await password_token(http, keycloak, "metropole", "j.martin", password)

    assert added.action == "created"
    claims = await verified_claims(http, keycloak, "metropole", token)
    assert claims["organization"] == "metropole"
    assert "elected-official" in claims["roles"]
    assert "ngsild-gateway" in as_list(claims["aud"])
    assert claims["preferred_username"] == "j.martin"


def test_adding_the_same_user_twice_changes_nothing(
    identity_admin: IdentityAdmin, metropole: tuple[AdminResult, AdminResult]
) -> None:
    first = identity_admin.add_user("metropole", "p.durand", role="building-manager")
    second = identity_admin.add_user(
        "metropole", "P.Durand", role="building-manager", temporary_password="x-Y-z-123456"
    )

    assert first.action == "created"
    assert second.action == "unchanged" and not second.changed
    assert "already exists" in second.message and "password not changed" in second.message


def test_an_existing_user_gets_a_missing_role_only(
    identity_admin: IdentityAdmin, metropole: tuple[AdminResult, AdminResult], inspect: Callable[[str], KeycloakAdmin]
) -> None:
    identity_admin.add_user("metropole", "c.leroy", role="researcher")
    more = identity_admin.add_user("metropole", "c.leroy", role="data-admin")

    assert more.action == "updated" and more.created == ("role data-admin",)
    realm = inspect("metropole")
    user_id = realm.get_user_id("c.leroy")
    assert user_id is not None
    held = {role["name"] for role in realm.get_realm_roles_of_user(user_id)}
    assert {"researcher", "data-admin"} <= held


async def test_a_temporary_password_must_be_changed_at_the_first_login(
    keycloak: KeycloakServer,
    http: aiohttp.ClientSession,
    identity_admin: IdentityAdmin,
    metropole: tuple[AdminResult, AdminResult],
    inspect: Callable[[str], KeycloakAdmin],
) -> None:
    temporary = secrets.token_urlsafe(16)

    added = identity_admin.add_user(
        "metropole",
        "a.petit",
        role="researcher",
        email="a.petit@metropole.example",
        first_name="Anne",
        last_name="Petit",
        temporary_password=temporary,
    )

    assert temporary not in added.message
    realm = inspect("metropole")
    user_id = realm.get_user_id("a.petit")
    assert user_id is not None
    user = realm.get_user(user_id)
    assert user["enabled"] is True
    assert user["requiredActions"] == ["UPDATE_PASSWORD"]
    form = {"grant_type": "password", "client_id": "cli", "username": "a.petit", "password": temporary}
    async with http.post(keycloak.token_url("metropole"), data=form) as response:
        body = await response.json()
    assert response.status == 400
    assert body["error_description"] == "Account is not fully set up"


def test_a_user_with_an_unknown_role_is_refused(
    identity_admin: IdentityAdmin, metropole: tuple[AdminResult, AdminResult]
) -> None:
    with pytest.raises(AdminError, match="realm metropole has no role mayor"):
        identity_admin.add_user("metropole", "n.body", role="mayor")
