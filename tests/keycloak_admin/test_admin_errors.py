"""Errors at the Keycloak boundary: an unreachable server and refused credentials are
``AdminError`` messages that say so, and never hold the password."""

from __future__ import annotations

import pytest

from adapter.access.admin import AdminError, IdentityAdmin
from adapter.demo.keycloak import KeycloakServer
from adapter.demo.network import free_port


def test_an_unreachable_keycloak_is_said_so() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with IdentityAdmin(url, "admin", "the-password") as admin, pytest.raises(AdminError) as caught:
        admin.register_partner("metropole", "x-platform")

    assert str(caught.value).startswith(f"Keycloak is unreachable at {url}")
    assert "the-password" not in str(caught.value)


@pytest.mark.keycloak
def test_wrong_admin_credentials_are_said_so_without_the_password(keycloak: KeycloakServer) -> None:
    with (
        IdentityAdmin(keycloak.url, keycloak.admin_username, "not-the-password") as admin,
        pytest.raises(AdminError) as caught,
    ):
        admin.provision_collectivity("admin-never", "Never")

    message = str(caught.value)
    assert message.startswith("Keycloak refused the credentials of the administrator 'admin' (realm master)")
    assert "not-the-password" not in message and keycloak.admin_password not in message


@pytest.mark.keycloak
def test_a_keycloak_refusal_carries_its_reason(keycloak: KeycloakServer) -> None:
    with IdentityAdmin(keycloak.url, keycloak.admin_username, keycloak.admin_password) as admin:
        admin.provision_collectivity("admin-refusals", "Refusals")
        with pytest.raises(AdminError, match=r"HTTP 400: username: error-invalid-length \(username, 3, 255\)"):
            admin.add_user("admin-refusals", "ab", role="researcher")
