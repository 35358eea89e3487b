"""The key sets: found through discovery, cached, refetched once on rotation, never hammered,
shared by concurrent validations, and what happens when the issuer is down."""

from __future__ import annotations

import asyncio
import secrets
import socket

import pytest
from jwt.algorithms import RSAAlgorithm

from adapter.access.tokens import InvalidToken, TokenValidator, TrustedIssuer
from tests.access_tokens.conftest import MakeValidator
from tests.access_tokens.support import FakeClock, Realms, SigningKey, claims, mint, rsa_key, sign_raw


def _token(realms: Realms, key: SigningKey, clock: FakeClock, **header: str) -> str:
    return mint(key, claims(realms.issuer("ville"), now=clock.now), **header)


async def _reason(validator: TokenValidator, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    return caught.value.reason


async def test_keys_are_fetched_once_and_cached(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    for _ in range(25):
        await validator.validate(_token(realms, keys["ville"], clock))
        await validator.validate(_token(realms, keys["ville_es"], clock))
        clock.advance(10)  # 250 s in all: under the 300 s TTL

    assert realms.count("ville", "discovery") == 1
    assert realms.count("ville", "certs") == 1


async def test_keys_are_fetched_again_after_their_ttl(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    await validator.validate(_token(realms, keys["ville"], clock))
    clock.advance(300)
    await validator.validate(_token(realms, keys["ville"], clock))

    assert realms.count("ville") == 2
    assert realms.count("ville", "discovery") == 1  # the jwks_uri found is kept


async def test_concurrent_validations_share_one_fetch(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    realms.delay_s = 0.05
    tokens = [_token(realms, keys[name], clock) for name in ("ville", "ville_es", "ville_ed") * 10]

    principals = await asyncio.gather(*(validator.validate(token) for token in tokens))

    assert len(principals) == 30
    assert realms.count("ville", "discovery") == realms.count("ville") == 1


async def test_key_rotation(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    await validator.validate(_token(realms, keys["ville"], clock))
    realms.keys["ville"] = [keys["ville_next"]]  # Keycloak rotated: the old key is gone
    clock.advance(30)

    principal = await validator.validate(_token(realms, keys["ville_next"], clock))

    assert principal.organization == "ville"
    assert realms.count("ville") == 2
    # the old key is no longer trusted once the new set is known (no refetch for it now)
    assert await _reason(validator, _token(realms, keys["ville"], clock)) == "unknown_key"
    assert realms.count("ville") == 2


async def test_rotation_right_after_a_fetch_waits_for_the_refetch_interval(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    await validator.validate(_token(realms, keys["ville"], clock))
    realms.keys["ville"].append(keys["ville_next"])
    clock.advance(5)  # under min_refetch_interval_s

    assert await _reason(validator, _token(realms, keys["ville_next"], clock)) == "unknown_key"
    clock.advance(5)
    assert await validator.validate(_token(realms, keys["ville_next"], clock))
    assert realms.count("ville") == 2


async def test_forged_kids_cannot_make_us_hammer_the_issuer(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    await validator.validate(_token(realms, keys["ville"], clock))
    clock.advance(10)

    def forged() -> str:
        return _token(realms, keys["evil"], clock, kid=secrets.token_hex(8))

    reasons = await asyncio.gather(*(_reason(validator, forged()) for _ in range(100)))
    reasons += [await _reason(validator, forged()) for _ in range(100)]

    assert set(reasons) == {"unknown_key"}
    assert realms.count("ville") == 2  # one refetch for 200 unknown kids

    for _ in range(3):
        clock.advance(10)
        for _ in range(50):
            await _reason(validator, forged())
    assert realms.count("ville") == 5  # then at most one per interval
    assert await validator.validate(_token(realms, keys["ville"], clock))  # the real key still works


async def test_refetch_interval_is_per_issuer(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    await validator.validate(_token(realms, keys["ville"], clock))
    await validator.validate(mint(keys["metro"], claims(realms.issuer("metro"), organization="m", now=clock.now)))
    clock.advance(10)

    await _reason(validator, _token(realms, keys["evil"], clock, kid="x1"))
    await _reason(validator, mint(keys["evil"], claims(realms.issuer("metro"), organization="m"), kid="x2"))

    assert (realms.count("ville"), realms.count("metro")) == (2, 2)


async def test_keycloak_certs_path_without_discovery(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    realms.discovery = False

    assert await validator.validate(_token(realms, keys["ville"], clock))
    assert (realms.count("ville", "discovery"), realms.count("ville")) == (1, 1)


async def test_explicit_jwks_url_skips_discovery(
    make_validator: MakeValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    validator = make_validator(
        [TrustedIssuer(realms.issuer("ville"), jwks_url=realms.certs_url("ville"), organization="ville")]
    )

    assert await validator.validate(_token(realms, keys["ville"], clock))
    assert (realms.count("ville", "discovery"), realms.count("ville")) == (0, 1)


async def test_discovery_of_another_issuer_is_refused(
    make_validator: MakeValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    issuer = realms.issuer("ville") + "/"  # the document says ".../ville", not ".../ville/"
    validator = make_validator([TrustedIssuer(issuer, organization="ville")])

    error = await _reason(validator, mint(keys["ville"], claims(issuer)))

    assert error == "issuer_unavailable"
    assert realms.count("ville") == 0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_issuer(
    make_validator: MakeValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/certs"
    validator = make_validator([TrustedIssuer(realms.issuer("ville"), jwks_url=url, organization="ville")])

    with pytest.raises(InvalidToken) as caught:
        await validator.validate(_token(realms, keys["ville"], clock))

    assert (caught.value.reason, caught.value.status) == ("issuer_unavailable", 503)
    assert isinstance(caught.value.__cause__, Exception)


@pytest.mark.parametrize("failure", ["failing", "not_json"])
async def test_failing_issuer_is_retried_at_most_once_per_interval(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock, failure: str
) -> None:
    getattr(realms, failure).add("ville")

    for _ in range(20):
        assert await _reason(validator, _token(realms, keys["ville"], clock)) == "issuer_unavailable"
    assert realms.count("ville") == 1

    getattr(realms, failure).discard("ville")
    clock.advance(10)
    assert await validator.validate(_token(realms, keys["ville"], clock))
    assert realms.count("ville") == 2


async def test_previous_keys_serve_for_one_more_ttl_while_the_issuer_is_down(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    await validator.validate(_token(realms, keys["ville"], clock))
    realms.failing.add("ville")

    clock.advance(300)  # expired: the refetch fails, the keys still serve
    assert await validator.validate(_token(realms, keys["ville"], clock))
    clock.advance(299)
    assert await validator.validate(_token(realms, keys["ville"], clock))
    # no new key while down: an unknown kid is refused without waiting
    assert await _reason(validator, _token(realms, keys["ville_next"], clock)) == "unknown_key"

    clock.advance(1)  # two TTLs since the last successful fetch
    assert await _reason(validator, _token(realms, keys["ville"], clock)) == "issuer_unavailable"

    realms.failing.discard("ville")
    clock.advance(10)
    assert await validator.validate(_token(realms, keys["ville"], clock))


async def test_unusable_keys_in_the_jwks_are_ignored(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    weak = rsa_key("weak", bits=1024)
    mismatched = {**keys["ville_next"].public_jwk(), "kid": "mismatched", "alg": "ES256"}
    hmac_key = {"kty": "oct", "kid": "shared", "alg": "HS256", "k": "c2VjcmV0"}
    leaked = rsa_key("leaked")
    private = {**RSAAlgorithm.to_jwk(leaked.private, as_dict=True), "kid": "leaked", "alg": "RS256"}
    realms.keys["ville"] = [keys["ville"], weak]
    realms.extra["ville"] = [mismatched, hmac_key, private, {"kty": "RSA", "kid": "broken", "n": "AA", "e": "AQAB"}]

    weak_token = sign_raw(weak, {"alg": "RS256", "kid": "weak"}, claims(realms.issuer("ville"), now=clock.now))
    assert await _reason(validator, weak_token) == "unknown_key"
    assert await _reason(validator, _token(realms, keys["ville_next"], clock, kid="mismatched")) == "unknown_key"
    assert await _reason(validator, _token(realms, keys["ville"], clock, kid="broken")) == "unknown_key"
    assert await _reason(validator, _token(realms, leaked, clock)) == "unknown_key"  # a private JWK: misconfigured
    assert await _reason(validator, _token(realms, keys["ville"], clock, kid="shared", alg=None)) == "unknown_key"
    assert await validator.validate(_token(realms, keys["ville"], clock))  # the good key still serves


async def test_unknown_kid_while_the_issuer_is_down_cannot_be_checked(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    await validator.validate(_token(realms, keys["ville"], clock))
    realms.failing.add("ville")
    clock.advance(10)

    # it may be a key Keycloak rotated in: 503, not 401
    assert await _reason(validator, _token(realms, keys["ville_next"], clock)) == "issuer_unavailable"
    assert await validator.validate(_token(realms, keys["ville"], clock))  # known keys still serve
    assert await _reason(validator, _token(realms, keys["ville_next"], clock)) == "unknown_key"  # no retry yet
    assert realms.count("ville") == 2
