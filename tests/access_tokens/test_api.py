"""The public surface of ``adapter.access.tokens``: its names, its errors, its settings, and a
docstring that documents every reason code."""

from __future__ import annotations

import aiohttp
import pytest

from adapter.access import tokens
from adapter.access.tokens import REASONS, InvalidToken, TokenValidator, TrustedIssuer
from adapter.exceptions import AdapterError


def test_exported_names_are_sorted_and_exist() -> None:
    # isort style, as adapter.exceptions: constants, then classes
    assert tokens.__all__ == sorted(tokens.__all__, key=lambda name: (not name.isupper(), name))
    assert all(hasattr(tokens, name) for name in tokens.__all__)


def test_every_reason_is_documented() -> None:
    assert tokens.__doc__ is not None
    missing = [reason for reason in REASONS if f"``{reason}``" not in tokens.__doc__]
    assert missing == []


def test_invalid_token() -> None:
    error = InvalidToken("expired", "the token expired 12 s ago")

    assert isinstance(error, AdapterError)
    assert str(error) == "expired: the token expired 12 s ago"
    assert (error.reason, error.status) == ("expired", 401)
    assert InvalidToken("issuer_unavailable").status == 503
    assert InvalidToken("bad_signature").detail == REASONS["bad_signature"]
    with pytest.raises(ValueError, match="unknown token reason"):
        InvalidToken("nope")


def test_no_symmetric_algorithm_is_allowed() -> None:
    assert not {alg for alg in tokens.ALLOWED_ALGORITHMS if alg.startswith("HS") or alg.lower() == "none"}


@pytest.mark.parametrize(
    "options",
    [
        {"issuer": "kc/realms/ville"},
        {"issuer": "ftp://kc/realms/ville"},
        {"issuer": "https://kc/realms/ville", "jwks_url": "certs.json"},
        {"issuer": "https://kc/realms/ville", "organization": ""},
        {"issuer": "https://kc/realms/ville", "audience": ""},
    ],
)
def test_trusted_issuer_refuses_bad_settings(options: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        TrustedIssuer(**options)


async def test_validator_refuses_bad_settings() -> None:
    ville = TrustedIssuer("https://kc/realms/ville")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="twice"):
            TokenValidator([ville, TrustedIssuer("https://kc/realms/ville", organization="ville")], session)
        for options in ({"leeway_s": -1}, {"jwks_ttl_s": 0}, {"min_refetch_interval_s": -1}, {"fetch_timeout_s": 0}):
            with pytest.raises(ValueError):
                TokenValidator([ville], session, **options)
        assert TokenValidator([ville], session).issuers == (ville,)


async def test_no_trusted_issuer_trusts_nothing(session: aiohttp.ClientSession) -> None:
    validator = TokenValidator([], session)

    with pytest.raises(InvalidToken) as caught:
        await validator.validate("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJ4In0.c2ln")

    assert caught.value.reason == "untrusted_issuer"
