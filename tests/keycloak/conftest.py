"""The real Keycloak of the federation tests: started once per test run, stopped at the end.

What these tests check (signatures against a realm's JWKS, the claims of our mappers,
identity brokering between two collectivities' realms) is Keycloak's behaviour, so they run
the real server (``adapter.demo.keycloak``, installed by ``make setup``) with the realm files
of ``compose/keycloak/``. A Keycloak that cannot start fails the tests with its last log
lines; it is never skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from adapter.demo.keycloak import KeycloakError, KeycloakServer


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """One Keycloak for the whole run, with the realms ``ville``, ``region`` and ``eau``."""
    try:
        server = KeycloakServer(tmp_path_factory.mktemp("keycloak"))
        server.start()
    except KeycloakError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def http(keycloak: KeycloakServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session that keeps Keycloak's cookies as a browser would: cookies of an IP host
    (aiohttp drops them by default), and ``Secure`` ones over plain HTTP on loopback, which
    browsers treat as a secure origin (Keycloak marks its login-session cookies ``Secure``)."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[keycloak.url])
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
