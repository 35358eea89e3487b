"""Fixtures of the token tests: two trusted realms and an untrusted one served on 127.0.0.1,
a fake clock, and validators trusting ``ville`` (realm per collectivity) and ``metro``
(a realm shared through Keycloak Organizations)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapter.access.tokens import TokenValidator, TrustedIssuer
from tests.access_tokens.support import HOST, FakeClock, Realms, SigningKey, ec_key, ed_key, rsa_key

MakeValidator = Callable[..., TokenValidator]


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    return {
        "ville": rsa_key("ville-rs"),
        "ville_es": ec_key("ville-es"),
        "ville_ed": ed_key("ville-ed"),
        "ville_next": rsa_key("ville-rs-2"),
        "metro": ec_key("metro-es"),
        "metro_rs": rsa_key("metro-rs", "PS256"),
        "evil": rsa_key("evil-rs"),
    }


@pytest.fixture
async def realms(keys: dict[str, SigningKey]) -> AsyncIterator[Realms]:
    served = Realms(
        keys={
            "ville": [keys["ville"], keys["ville_es"], keys["ville_ed"]],
            "metro": [keys["metro"], keys["metro_rs"]],
            "evil": [keys["evil"]],
        },
        # Keycloak lists its encryption key with the signing ones
        extra={"ville": [{**keys["ville_next"].public_jwk(), "kid": "ville-enc", "use": "enc", "alg": "RSA-OAEP"}]},
    )
    async with TestServer(served.app(), host=HOST) as server:
        served.base = str(server.make_url("")).rstrip("/")
        yield served


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def make_validator(realms: Realms, session: aiohttp.ClientSession, clock: FakeClock) -> MakeValidator:
    def make(issuers: list[TrustedIssuer] | None = None, **options: Any) -> TokenValidator:
        if issuers is None:
            issuers = [
                TrustedIssuer(realms.issuer("ville"), organization="ville"),
                TrustedIssuer(realms.issuer("metro")),
            ]
        return TokenValidator(issuers, session, clock=clock, **options)

    return make


@pytest.fixture
def validator(make_validator: MakeValidator) -> TokenValidator:
    return make_validator()
