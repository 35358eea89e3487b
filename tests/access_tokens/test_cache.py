"""A token already validated is taken from a short cache, never past its expiry."""

from __future__ import annotations

import pytest

from adapter.access.tokens import InvalidToken, TokenValidator
from tests.access_tokens.conftest import MakeValidator
from tests.access_tokens.support import FakeClock, Realms, SigningKey, claims, mint


async def test_a_cached_token_still_expires(
    make_validator: MakeValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    validator: TokenValidator = make_validator(cache_s=600, leeway_s=0)
    token = mint(keys["ville"], claims(realms.issuer("ville"), now=clock(), exp=int(clock()) + 60))
    first = await validator.validate(token)
    assert await validator.validate(token) is first  # the cached principal
    clock.advance(61)
    with pytest.raises(InvalidToken) as refused:
        await validator.validate(token)
    assert refused.value.reason == "expired"


async def test_a_refused_token_is_never_cached(
    make_validator: MakeValidator, realms: Realms, keys: dict[str, SigningKey], clock: FakeClock
) -> None:
    validator: TokenValidator = make_validator(cache_s=600)
    token = mint(keys["evil"], claims(realms.issuer("ville"), now=clock()), kid="ville-rs")
    for _ in range(2):
        with pytest.raises(InvalidToken) as refused:
            await validator.validate(token)
        assert refused.value.reason == "bad_signature"
