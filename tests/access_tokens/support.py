"""A tiny Keycloak for the token tests: OIDC discovery and JWKS of several realms on
127.0.0.1, with keys generated here, and helpers to mint (and forge) tokens."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

__all__ = [
    "AUDIENCE",
    "HOST",
    "NOW",
    "FakeClock",
    "Realms",
    "SigningKey",
    "b64url",
    "claims",
    "ec_key",
    "ed_key",
    "forge",
    "mint",
    "sign_raw",
    "rsa_key",
]

HOST = "127.0.0.1"
AUDIENCE = "ngsild-gateway"
NOW = 1_800_000_000.0  # the fake clock's start


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any  # a cryptography private key

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def rsa_key(kid: str, alg: str = "RS256", bits: int = 2048) -> SigningKey:
    return SigningKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=bits))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def ed_key(kid: str) -> SigningKey:
    return SigningKey(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())


@dataclass
class FakeClock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Realms:
    """Discovery and JWKS of the realms in ``keys``; ``requests`` counts (realm, what)."""

    keys: dict[str, list[SigningKey]] = field(default_factory=dict)
    extra: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # raw JWKs served too
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    discovery: bool = True  # False: discovery answers 404 (as an old Keycloak behind a proxy)
    failing: set[str] = field(default_factory=set)  # realms whose JWKS answers 500
    not_json: set[str] = field(default_factory=set)  # realms whose JWKS is not JSON
    delay_s: float = 0.0
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/realms/{realm}/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/realms/{realm}/protocol/openid-connect/certs", self._certs)
        return app

    def issuer(self, realm: str) -> str:
        return f"{self.base}/realms/{realm}"

    def certs_url(self, realm: str) -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/certs"

    def count(self, realm: str, what: str = "certs") -> int:
        return self.requests[realm, what]

    async def _discovery(self, request: web.Request) -> web.Response:
        realm = request.match_info["realm"]
        self.requests[realm, "discovery"] += 1
        if not self.discovery or realm not in self.keys:
            raise web.HTTPNotFound()
        return web.json_response({"issuer": self.issuer(realm), "jwks_uri": self.certs_url(realm)})

    async def _certs(self, request: web.Request) -> web.Response:
        realm = request.match_info["realm"]
        self.requests[realm, "certs"] += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if realm in self.failing:
            raise web.HTTPInternalServerError()
        if realm in self.not_json:
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        if realm not in self.keys:
            raise web.HTTPNotFound()
        keys = [key.public_jwk() for key in self.keys[realm]] + self.extra.get(realm, [])
        return web.json_response({"keys": keys})


def claims(issuer: str, now: float = NOW, **overrides: Any) -> dict[str, Any]:
    """The claims of a Keycloak access token, with ``overrides`` (None removes a claim)."""
    base: dict[str, Any] = {
        "iss": issuer,
        "sub": "5f0c2d36-user",
        "aud": [AUDIENCE, "account"],
        "exp": int(now) + 300,
        "iat": int(now),
        "typ": "Bearer",
        "azp": "portal",
        "preferred_username": "alice",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(key: SigningKey, payload: dict[str, Any], **header: Any) -> str:
    """A token signed by ``key``; ``header`` adds or (None) removes header parameters."""
    headers = {"kid": key.kid, "typ": "JWT", **header}
    # PyJWT drops an empty typ itself; other parameters are left out here
    headers = {name: value for name, value in headers.items() if value is not None or name == "typ"}
    return jwt.encode(payload, key.private, algorithm=key.alg, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, as an attacker would."""
    return ".".join((b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), b64url(signature)))


def sign_raw(key: SigningKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """A token signed by ``key`` with exactly ``header`` (PyJWT's encoder would amend it)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = jwt.get_algorithm_by_name(key.alg).sign(signing_input.encode(), key.private)
    return f"{signing_input}.{b64url(signature)}"
