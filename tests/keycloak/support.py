"""Helpers of the Keycloak tests: dev credentials from the realm files, token requests, and
claims read only after their signature verified against the realm's JWKS."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import jwt

from adapter.demo.keycloak import REALMS_DIR, KeycloakServer, render_realm

__all__ = ["as_list", "client_credentials_token", "dev_password", "dev_secret", "password_token", "verified_claims"]


def _dev_realm(realm: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render_realm((REALMS_DIR / f"{realm}-realm.json").read_text(), "http://unused"))
    return data


def dev_password(realm: str, username: str) -> str:
    """The DEV ONLY password of a user of the realm files (the tests never hard-code it)."""
    user = next(u for u in _dev_realm(realm)["users"] if u["username"] == username)
    value: str = user["credentials"][0]["value"]
    return value


def dev_secret(realm: str, client_id: str) -> str:
    """The DEV ONLY secret of a confidential client of the realm files."""
    client = next(c for c in _dev_realm(realm)["clients"] if c["clientId"] == client_id)
    secret: str = client["secret"]
    return secret


async def _token(http: aiohttp.ClientSession, url: str, form: dict[str, str]) -> str:
    async with http.post(url, data=form) as response:
        body = await response.json()
        assert response.status == 200, body
    token: str = body["access_token"]
    return token


async def client_credentials_token(
    http: aiohttp.ClientSession, keycloak: KeycloakServer, realm: str, client_id: str, secret: str
) -> str:
    """What a partner platform does: the client-credentials grant with its client secret."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await _token(http, keycloak.token_url(realm), form)


async def password_token(
    http: aiohttp.ClientSession, keycloak: KeycloakServer, realm: str, username: str, password: str
) -> str:
    """A user's access token through the public ``cli`` client's password grant (tests only)."""
    form = {"grant_type": "password", "client_id": "cli", "username": username, "password": password, "scope": "openid"}
    return await _token(http, keycloak.token_url(realm), form)


async def verified_claims(
    http: aiohttp.ClientSession, keycloak: KeycloakServer, realm: str, token: str
) -> dict[str, Any]:
    """The token's claims, once its signature verified against the realm's published keys and
    its ``exp``, ``iss`` and ``aud`` checked: what the gateway does with every request."""
    async with http.get(keycloak.jwks_url(realm)) as response:
        assert response.status == 200
        jwks = await response.json()
    kid = jwt.get_unverified_header(token)["kid"]
    # Keycloak lists its encryption key (use "enc") with the signing ones.
    found = [k for k in jwks["keys"] if k["kid"] == kid and k.get("use", "sig") == "sig"]
    if not found:
        raise LookupError(f"no signing key {kid!r} in the JWKS of realm {realm!r}")
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK.from_dict(found[0]),
        algorithms=["RS256"],
        audience="ngsild-gateway",
        issuer=keycloak.issuer(realm),
    )
    return claims


def as_list(value: str | list[str]) -> list[str]:
    """``aud`` is a string when the token has one audience, else a list."""
    return [value] if isinstance(value, str) else value
