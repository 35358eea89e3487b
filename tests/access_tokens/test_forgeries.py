"""Each forgery is refused, with its reason, and the message never echoes the token."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest

from adapter.access.tokens import MAX_TOKEN_LENGTH, InvalidToken, TokenValidator
from tests.access_tokens.conftest import MakeValidator
from tests.access_tokens.support import NOW, Realms, SigningKey, b64url, claims, forge, mint, sign_raw

Forgery = Callable[[Realms, dict[str, SigningKey]], str]


async def refused(validator: TokenValidator, token: str) -> InvalidToken:
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    message = str(caught.value)
    for part in token.split("."):
        if len(part) > 8:
            assert part not in message
    return caught.value


def _none(alg: str) -> Forgery:
    def make(realms: Realms, keys: dict[str, SigningKey]) -> str:
        return forge({"alg": alg, "kid": "ville-rs", "typ": "JWT"}, claims(realms.issuer("ville")))

    return make


def _hmac_with(secret: Callable[[SigningKey], bytes]) -> Forgery:
    """The classic: HS256 with the RSA public key (as the verifier might load it) as secret."""

    def make(realms: Realms, keys: dict[str, SigningKey]) -> str:
        header = b64url(json.dumps({"alg": "HS256", "kid": "ville-rs", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(claims(realms.issuer("ville"), roles=["admin"])).encode())
        mac = hmac.new(secret(keys["ville"]), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url(mac)}"

    return make


def _tampered(realms: Realms, keys: dict[str, SigningKey]) -> str:
    header, _, signature = mint(keys["ville"], claims(realms.issuer("ville"))).split(".")
    payload = b64url(json.dumps(claims(realms.issuer("ville"), roles=["admin"])).encode())
    return f"{header}.{payload}.{signature}"


def _signed(key: str, realm: str, header: dict[str, Any] | None = None, **overrides: Any) -> Forgery:
    def make(realms: Realms, keys: dict[str, SigningKey]) -> str:
        return mint(keys[key], claims(realms.issuer(realm), **overrides), **(header or {}))

    return make


def _signed_as(key: str, kid: str, realm: str) -> Forgery:
    """Signed with ``key`` but naming the key ``kid``."""
    return _signed(key, realm, {"kid": kid})


def _raw(header: dict[str, Any]) -> Forgery:
    """Signed by the realm's key with exactly this header (plus alg and kid)."""

    def make(realms: Realms, keys: dict[str, SigningKey]) -> str:
        return sign_raw(keys["ville"], {"alg": "RS256", "kid": "ville-rs", **header}, claims(realms.issuer("ville")))

    return make


FORGERIES: dict[str, tuple[Forgery, str]] = {
    "alg-none": (_none("none"), "algorithm_not_allowed"),
    "alg-None": (_none("None"), "algorithm_not_allowed"),
    "alg-NONE": (_none("NONE"), "algorithm_not_allowed"),
    "hs256-with-rsa-public-pem": (_hmac_with(lambda key: key.public_pem()), "algorithm_not_allowed"),
    "hs256-with-rsa-public-jwk": (
        _hmac_with(lambda key: json.dumps(key.public_jwk()).encode()),
        "algorithm_not_allowed",
    ),
    "hs256-with-rsa-modulus": (_hmac_with(lambda key: key.public_jwk()["n"].encode()), "algorithm_not_allowed"),
    "ps256-on-an-rs256-key": (_signed_as("metro_rs", "ville-rs", "ville"), "algorithm_not_allowed"),
    "es256-on-an-rsa-key": (_signed_as("ville_es", "ville-rs", "ville"), "algorithm_not_allowed"),
    "expired": (_signed("ville", "ville", exp=int(NOW) - 3600), "expired"),
    "not-yet-valid": (_signed("ville", "ville", nbf=int(NOW) + 3600), "not_yet_valid"),
    "issued-in-the-future": (_signed("ville", "ville", iat=int(NOW) + 3600), "not_yet_valid"),
    "untrusted-realm": (_signed("evil", "evil"), "untrusted_issuer"),
    "issuer-with-trailing-slash": (
        lambda realms, keys: mint(keys["ville"], claims(realms.issuer("ville") + "/")),
        "untrusted_issuer",
    ),
    "issuer-not-a-string": (
        lambda realms, keys: forge({"alg": "RS256", "kid": "ville-rs"}, claims("", iss=["x"]), b"x"),
        "untrusted_issuer",
    ),
    "no-issuer": (_signed("ville", "ville", iss=None), "missing_claim"),
    "wrong-audience": (_signed("ville", "ville", aud="account"), "wrong_audience"),
    "no-audience": (_signed("ville", "ville", aud=None), "wrong_audience"),
    "unknown-kid": (_signed_as("ville", "ville-rs-9", "ville"), "unknown_key"),
    "kid-of-the-encryption-key": (_signed_as("ville_next", "ville-enc", "ville"), "unknown_key"),
    "tampered-payload": (_tampered, "bad_signature"),
    "another-key-with-the-realm-kid": (_signed_as("evil", "ville-rs", "ville"), "bad_signature"),
    "no-kid": (_signed("ville", "ville", {"kid": None}), "malformed"),
    "empty-kid": (_signed("ville", "ville", {"kid": ""}), "malformed"),
    "no-exp": (_signed("ville", "ville", exp=None), "missing_claim"),
    "realm-a-key-claiming-realm-b": (_signed("ville", "metro", organization="metropole"), "unknown_key"),
    "realm-a-key-with-realm-b-kid": (
        _signed("ville", "metro", {"kid": "metro-rs"}, organization="metropole"),
        "algorithm_not_allowed",  # metro-rs is a PS256 key
    ),
    "realm-a-key-with-realm-b-kid-and-alg": (
        lambda realms, keys: mint(
            keys["evil"], claims(realms.issuer("metro"), organization="metropole"), kid="metro-rs", alg="PS256"
        ),
        "bad_signature",
    ),
    "embedded-jwk-header": (
        lambda realms, keys: mint(
            keys["evil"], claims(realms.issuer("ville")), kid="evil-rs", jwk=keys["evil"].public_jwk()
        ),
        "unknown_key",
    ),
    "jku-header": (
        lambda realms, keys: mint(
            keys["evil"], claims(realms.issuer("ville")), kid="evil-rs", jku=realms.certs_url("evil")
        ),
        "unknown_key",
    ),
    "crit-header": (_raw({"crit": ["exp"], "exp": 1}), "malformed"),
    "b64-header": (_raw({"b64": True, "crit": ["b64"]}), "malformed"),
    "kid-not-a-string": (
        lambda realms, keys: forge({"alg": "RS256", "kid": 3}, claims(realms.issuer("ville")), b"x"),
        "malformed",
    ),
}


@pytest.mark.parametrize(("forgery", "reason"), FORGERIES.values(), ids=FORGERIES.keys())
async def test_forgery_is_refused(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], forgery: Forgery, reason: str
) -> None:
    error = await refused(validator, forgery(realms, keys))

    assert error.reason == reason
    assert error.status == 401


async def test_untrusted_issuer_is_never_contacted(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey]
) -> None:
    await refused(validator, mint(keys["evil"], claims(realms.issuer("evil"))))
    await refused(validator, mint(keys["evil"], claims(realms.issuer("ville")), jku=realms.certs_url("evil")))

    assert realms.count("evil", "certs") == realms.count("evil", "discovery") == 0


async def test_forged_algorithms_are_refused_before_any_request(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey]
) -> None:
    await refused(validator, _none("none")(realms, keys))
    await refused(validator, _hmac_with(lambda key: key.public_pem())(realms, keys))

    assert sum(realms.requests.values()) == 0


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d.e",  # a JWE
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.sig with spaces",
        "bm90IGpzb24.eyJpc3MiOiJ4In0.c2ln",  # header not JSON
        "WzFd.eyJpc3MiOiJ4In0.c2ln",  # header a JSON array
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.WzFd.c2ln",  # payload a JSON array
        "x" * (MAX_TOKEN_LENGTH + 1),
    ],
    ids=["empty", "one-part", "two-parts", "jwe", "spaces", "header-not-json", "header-array", "payload-array", "huge"],
)
async def test_malformed_tokens(validator: TokenValidator, token: str) -> None:
    assert (await refused(validator, token)).reason == "malformed"


async def test_not_a_string(validator: TokenValidator) -> None:
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(b"a.b.c")  # type: ignore[arg-type]

    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    ("overrides", "valid"),
    [
        ({"exp": int(NOW) - 29}, True),  # within the 30 s leeway
        ({"exp": int(NOW) - 30}, False),
        ({"nbf": int(NOW) + 29}, True),
        ({"nbf": int(NOW) + 31}, False),
        ({"iat": int(NOW) + 29}, True),
        ({"iat": int(NOW) + 31}, False),
        ({"exp": NOW + 0.5}, True),  # numeric dates may be fractional
    ],
)
async def test_leeway(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], overrides: dict[str, Any], valid: bool
) -> None:
    token = mint(keys["ville"], claims(realms.issuer("ville"), **overrides))

    if valid:
        assert await validator.validate(token)
    else:
        assert (await refused(validator, token)).reason in {"expired", "not_yet_valid"}


async def test_no_leeway(make_validator: MakeValidator, realms: Realms, keys: dict[str, SigningKey]) -> None:
    validator = make_validator(leeway_s=0)

    error = await refused(validator, mint(keys["ville"], claims(realms.issuer("ville"), exp=int(NOW))))

    assert error.reason == "expired"
