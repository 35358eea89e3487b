"""Fixtures of the identity-administration tests (``adapter.access.admin``).

They run against the session's real Keycloak (the ``keycloak`` fixture of tests/conftest.py)
and only create realms of their own (``metropole``, ``admin-partial``...): the shipped realms
``ville``, ``region`` and ``eau``, which other tests use, are read, never changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import pytest
from keycloak import KeycloakAdmin

from adapter.access.admin import AdminResult, IdentityAdmin
from adapter.demo.keycloak import KeycloakServer

#: The partner platform the tests register in ``metropole``.
PARTNER = "ecoles-metropole"


@pytest.fixture(scope="session")
def identity_admin(keycloak: KeycloakServer) -> Iterator[IdentityAdmin]:
    """The operations under test, as the server's bootstrap administrator."""
    with IdentityAdmin(keycloak.url, keycloak.admin_username, keycloak.admin_password) as admin:
        yield admin


@pytest.fixture(scope="session")
def metropole(identity_admin: IdentityAdmin) -> tuple[AdminResult, AdminResult]:
    """The collectivity ``metropole`` provisioned twice: (first call, second call). Its ``cli``
    client allows the password grant, for the user tests only."""
    first = identity_admin.provision_collectivity("metropole", "Métropole", password_grant=True)
    second = identity_admin.provision_collectivity("metropole", "Métropole", password_grant=True)
    return first, second


@pytest.fixture(scope="session")
def partner(identity_admin: IdentityAdmin, metropole: tuple[AdminResult, AdminResult]) -> AdminResult:
    """The first registration of ``PARTNER`` in ``metropole``: the one with the secret."""
    return identity_admin.register_partner("metropole", PARTNER, description="Ventilation of the schools")


@pytest.fixture
def inspect(keycloak: KeycloakServer) -> Callable[[str], KeycloakAdmin]:
    """python-keycloak on a realm, to look at what the operations did (and to spoil a realm)."""

    def admin(realm: str) -> KeycloakAdmin:
        return KeycloakAdmin(
            server_url=keycloak.url,
            username=keycloak.admin_username,
            password=keycloak.admin_password,
            realm_name=realm,
            user_realm_name="master",
        )

    return admin


@pytest.fixture
async def http(keycloak: KeycloakServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for token requests (as tests/keycloak's)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
