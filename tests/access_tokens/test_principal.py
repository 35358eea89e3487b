"""Valid tokens become the right ``Principal``: both organization shapes, both role shapes,
service accounts, and each signature algorithm family."""

from __future__ import annotations

from typing import Any

import pytest

from adapter.access.model import Principal
from adapter.access.tokens import InvalidToken, TokenValidator, TrustedIssuer
from tests.access_tokens.conftest import MakeValidator
from tests.access_tokens.support import Realms, SigningKey, claims, mint


async def test_rs256_token_of_a_realm_per_collectivity(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey]
) -> None:
    token = mint(
        keys["ville"],
        claims(
            realms.issuer("ville"),
            realm_access={"roles": ["agent", "default-roles-ville"]},
            resource_access={"ngsild-gateway": {"roles": ["reader"]}, "account": {"roles": ["manage-account"]}},
            groups=["/ville/agents", "/ville/voirie"],
        ),
    )

    assert await validator.validate(token) == Principal(
        issuer=realms.issuer("ville"),
        subject="5f0c2d36-user",
        organization="ville",  # from the issuer: no claim in the token
        roles=frozenset({"agent", "default-roles-ville", "reader"}),
        groups=frozenset({"ville/agents", "ville/voirie"}),
        client_id="portal",
        username="alice",
        identity_provider=None,
    )


async def test_es256_token_of_a_shared_realm_with_flat_roles(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey]
) -> None:
    token = mint(
        keys["metro"],
        claims(
            realms.issuer("metro"),
            organization=["metropole"],
            roles=["partner"],
            realm_access={"roles": ["ignored-when-roles-is-there"]},
            resource_access={"ngsild-gateway": {"roles": ["sparql"]}},
            identity_provider="franceconnect",
        ),
    )

    principal = await validator.validate(token)

    assert principal.organization == "metropole"
    assert principal.roles == {"partner", "sparql"}
    assert principal.identity_provider == "franceconnect"
    assert principal.issuer == realms.issuer("metro")


@pytest.mark.parametrize("key_name", ["ville_es", "ville_ed"])
async def test_each_key_of_the_realm_verifies_its_own_algorithm(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], key_name: str
) -> None:
    principal = await validator.validate(mint(keys[key_name], claims(realms.issuer("ville"))))

    assert principal.subject == "5f0c2d36-user"


async def test_ps256_key(validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey]) -> None:
    token = mint(keys["metro_rs"], claims(realms.issuer("metro"), organization="metropole"))

    assert (await validator.validate(token)).organization == "metropole"


@pytest.mark.parametrize(
    "claim",
    [
        "metropole",  # a string (hardcoded or user-attribute mapper)
        ["metropole"],  # Keycloak's organization mapper
        ["metropole", "metropole"],
        {"metropole": {"id": "4b1a-org"}},  # the same mapper with the organization id
    ],
    ids=["string", "list", "list-repeated", "object-by-alias"],
)
async def test_organization_claim_forms(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], claim: Any
) -> None:
    token = mint(keys["metro"], claims(realms.issuer("metro"), organization=claim))

    assert (await validator.validate(token)).organization == "metropole"


@pytest.mark.parametrize(
    ("realm", "claim", "reason"),
    [
        ("metro", None, "missing_claim"),  # a shared realm must say which collectivity
        ("metro", [], "missing_claim"),
        ("metro", {}, "missing_claim"),
        ("metro", ["metropole", "ville"], "ambiguous_organization"),
        ("metro", {"metropole": {}, "ville": {}}, "ambiguous_organization"),
        ("ville", "metropole", "wrong_organization"),  # a realm speaks for its own collectivity only
        ("ville", ["ville", "metropole"], "wrong_organization"),
        ("metro", 42, "malformed"),
        ("metro", "", "malformed"),
        ("metro", ["metropole", 1], "malformed"),
    ],
)
async def test_organization_refused(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], realm: str, claim: Any, reason: str
) -> None:
    key = keys["metro"] if realm == "metro" else keys["ville"]
    token = mint(key, claims(realms.issuer(realm), organization=claim))

    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)

    assert caught.value.reason == reason


@pytest.mark.parametrize("claim", ["ville", ["ville"], {"ville": {"id": "1"}}, []])
async def test_realm_per_collectivity_accepts_its_own_organization_claim(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], claim: Any
) -> None:
    token = mint(keys["ville"], claims(realms.issuer("ville"), organization=claim))

    assert (await validator.validate(token)).organization == "ville"


async def test_service_account_token(validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey]) -> None:
    token = mint(
        keys["ville"],
        claims(
            realms.issuer("ville"),
            sub="b3e1-service-account",
            azp="partner-platform",
            preferred_username="service-account-partner-platform",
            realm_access={"roles": ["partner"]},
        ),
    )

    principal = await validator.validate(token)

    assert (principal.subject, principal.client_id) == ("b3e1-service-account", "partner-platform")
    assert principal.roles == {"partner"}


@pytest.mark.parametrize(
    ("overrides", "subject", "client_id"),
    [
        ({"sub": None}, "portal", "portal"),  # azp stands for the subject
        ({"sub": None, "azp": None, "client_id": "partner"}, "partner", "partner"),
        ({"azp": None, "client_id": "partner"}, "5f0c2d36-user", "partner"),
        ({"azp": None}, "5f0c2d36-user", None),
    ],
)
async def test_subject_and_client(
    validator: TokenValidator,
    realms: Realms,
    keys: dict[str, SigningKey],
    overrides: dict[str, Any],
    subject: str,
    client_id: str | None,
) -> None:
    principal = await validator.validate(mint(keys["ville"], claims(realms.issuer("ville"), **overrides)))

    assert (principal.subject, principal.client_id) == (subject, client_id)


async def test_no_subject_at_all_is_refused(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey]
) -> None:
    token = mint(keys["ville"], claims(realms.issuer("ville"), sub=None, azp=None))

    with pytest.raises(InvalidToken, match="subject") as caught:
        await validator.validate(token)

    assert caught.value.reason == "missing_claim"


async def test_minimal_token(validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey]) -> None:
    token = mint(
        keys["ville"],
        {"iss": realms.issuer("ville"), "sub": "u", "aud": "ngsild-gateway", "exp": 1_800_000_060},
        typ=None,
    )

    principal = await validator.validate(token)

    assert principal == Principal(issuer=realms.issuer("ville"), subject="u", organization="ville")


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "application/at+JWT"])
async def test_access_token_type_headers(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey], typ: str
) -> None:
    assert await validator.validate(mint(keys["ville"], claims(realms.issuer("ville")), typ=typ))


@pytest.mark.parametrize(
    ("overrides", "header", "reason"),
    [
        ({"typ": "ID"}, {}, "wrong_token_type"),  # a Keycloak ID token
        ({"typ": "Refresh"}, {}, "wrong_token_type"),
        ({}, {"typ": "JWE"}, "wrong_token_type"),
        ({}, {"typ": "dpop+jwt"}, "wrong_token_type"),
        ({"roles": 5}, {}, "malformed"),
        ({"roles": ["ok", 5]}, {}, "malformed"),
        ({"realm_access": ["agent"]}, {}, "malformed"),
        ({"resource_access": {"ngsild-gateway": "reader"}}, {}, "malformed"),
        ({"groups": {"ville": 1}}, {}, "malformed"),
        ({"preferred_username": 7}, {}, "malformed"),
        ({"sub": 7}, {}, "malformed"),
        ({"exp": "1800000300"}, {}, "malformed"),
        ({"nbf": True}, {}, "malformed"),
    ],
)
async def test_claims_of_the_wrong_kind(
    validator: TokenValidator,
    realms: Realms,
    keys: dict[str, SigningKey],
    overrides: dict[str, Any],
    header: dict[str, Any],
    reason: str,
) -> None:
    token = mint(keys["ville"], claims(realms.issuer("ville"), **overrides), **header)

    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)

    assert caught.value.reason == reason


async def test_a_single_role_string_is_one_role(
    validator: TokenValidator, realms: Realms, keys: dict[str, SigningKey]
) -> None:
    token = mint(keys["ville"], claims(realms.issuer("ville"), roles="agent", groups="/ville"))

    principal = await validator.validate(token)

    assert (principal.roles, principal.groups) == ({"agent"}, {"ville"})


async def test_client_roles_come_from_the_configured_audience_only(
    make_validator: MakeValidator, realms: Realms, keys: dict[str, SigningKey]
) -> None:
    validator = make_validator([TrustedIssuer(realms.issuer("ville"), organization="ville", audience="gw-test")])
    token = mint(
        keys["ville"],
        claims(
            realms.issuer("ville"),
            aud="gw-test",
            resource_access={"gw-test": {"roles": ["mine"]}, "ngsild-gateway": {"roles": ["not-mine"]}},
        ),
    )

    assert (await validator.validate(token)).roles == {"mine"}
