"""The federation tests' HTTP session (the ``keycloak`` fixture itself is in tests/conftest.py:
one server for the whole run, shared with the gateway's end-to-end tests).

What these tests check (signatures against a realm's JWKS, the claims of our mappers,
identity brokering between two collectivities' realms) is Keycloak's behaviour, so they run
the real server (``adapter.demo.keycloak``, installed by ``make setup``) with the realm files
of ``compose/keycloak/``. A Keycloak that cannot start fails the tests with its last log
lines; it is never skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from adapter.demo.keycloak import KeycloakServer


@pytest.fixture
async def http(keycloak: KeycloakServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session that keeps Keycloak's cookies as a browser would: cookies of an IP host
    (aiohttp drops them by default), and ``Secure`` ones over plain HTTP on loopback, which
    browsers treat as a secure origin (Keycloak marks its login-session cookies ``Secure``)."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[keycloak.url])
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
