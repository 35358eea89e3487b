"""Bearer tokens from trusted Keycloak issuers, validated into a ``Principal``.

Each ``TrustedIssuer`` is one Keycloak realm (``https://kc/realms/ville``). A
``TokenValidator`` checks an access token against them and says who its bearer is, or
raises ``InvalidToken`` with a short ``reason`` code for the gateway's problem answer
(401, except ``issuer_unavailable``: 503, the token may be fine but cannot be checked now).

Example::

    validator = TokenValidator(
        [TrustedIssuer("https://kc/realms/ville", organization="ville"),
         TrustedIssuer("https://kc/realms/partners")],  # shared realm: ``organization`` claim
        session,
    )
    try:
        principal = await validator.validate(token)
    except InvalidToken as exc:
        return problem(exc.status, "Invalid token", str(exc))

Rules, deny by default, in the order they are checked
    1. Shape: a compact JWS (three base64url parts, JSON header and payload), at most
       ``MAX_TOKEN_LENGTH`` characters; no ``crit`` or ``b64`` header (we support no
       extension). Otherwise ``malformed``.
    2. ``alg`` is one of ``ALLOWED_ALGORITHMS`` (asymmetric only: ``none`` and HMAC never
       verify anything), else ``algorithm_not_allowed``. ``typ``, when present, is ``JWT`` or
       ``at+jwt`` (``wrong_token_type``). ``kid`` is required (``malformed``).
    3. ``iss`` (read from the unverified payload, only to pick the issuer's keys) is exactly
       one of the trusted issuers (no normalisation, as OIDC requires), else
       ``untrusted_issuer``; no request is made for an untrusted one.
    4. The key is the issuer's JWKS entry with that ``kid`` (``unknown_key``), usable for
       signatures (``use`` absent or ``sig``, ``key_ops`` absent or with ``verify``), of an
       allowed algorithm, and the token's ``alg`` is the key's own: its ``alg`` member, else
       the algorithms of its ``kty`` and ``crv`` (RSA: RS*/PS*, EC P-256: ES256, P-384: ES384,
       P-521: ES512, OKP Ed25519/Ed448: EdDSA), else ``algorithm_not_allowed``. An RSA key
       therefore never verifies an HS256 token, whatever the HMAC secret. RSA keys under 2048
       bits are ignored.
    5. The signature verifies with that key and that algorithm only (``bad_signature``); every
       later check reads verified claims.
    6. ``exp`` is required (``missing_claim``) and must not have passed; ``nbf`` and ``iat``,
       when present, must not be in the future (``expired``, ``not_yet_valid``). All three
       with ``leeway_s`` seconds of tolerance and the validator's ``clock``.
    7. ``aud`` (string or list) contains the issuer's ``audience`` (``wrong_audience``).
    8. Keycloak's own ``typ`` claim, when present, is ``Bearer``: ID and refresh tokens are
       refused (``wrong_token_type``).
    9. The bearer has a subject: ``sub``, else ``azp``, else ``client_id`` (``missing_claim``).
    10. The organization is known (see below).

Organization
    Realm per collectivity: ``TrustedIssuer(organization="ville")``; tokens need no claim, and
    a token whose ``organization`` claim names another collectivity is refused
    (``wrong_organization``): a realm speaks for its own collectivity only.
    Shared realm with Keycloak Organizations: ``organization=None``; every token must carry
    the ``organization`` claim (``missing_claim``). Its three forms are read as:

    * a string: ``"organization": "ville"`` (a hardcoded or user-attribute mapper);
    * a list of aliases: ``"organization": ["ville"]`` (Keycloak's organization mapper);
    * an object keyed by alias: ``"organization": {"ville": {"id": "..."}}`` (the same mapper
      with "add organization id / attributes" on).

    An empty list or object counts as no claim. More than one organization is refused
    (``ambiguous_organization``): the client asks for one with the scope
    ``organization:<alias>``.

Other claims
    ``roles``: the flat ``roles`` claim if present, else ``realm_access.roles``; plus the
    client roles ``resource_access.<audience>.roles`` (one flat set, client roles unprefixed).
    ``groups``: the ``groups`` claim, leading ``/`` of Keycloak's full paths removed.
    ``client_id``: ``azp``, else ``client_id``. ``username``: ``preferred_username``.
    ``identity_provider``: the ``identity_provider`` claim (Keycloak adds it for brokered
    logins when a mapper is configured). A claim of the wrong type is ``malformed``.

Keys (JWKS)
    Fetched with the caller's ``aiohttp.ClientSession`` from ``jwks_url``, else from the
    ``jwks_uri`` of the issuer's OIDC discovery document (whose ``issuer`` must be the
    configured one), else, when the discovery document is missing (404), from Keycloak's
    ``{issuer}/protocol/openid-connect/certs``. A key set is kept ``jwks_ttl_s`` seconds.
    An unknown ``kid`` (key rotation) triggers one refetch, at most one per issuer every
    ``min_refetch_interval_s`` seconds, so forged kids cannot make us hammer Keycloak.
    Concurrent validations wait for the same fetch. A failed fetch is retried no more often
    than ``min_refetch_interval_s``; meanwhile the previous keys keep serving, but never
    longer than one more ``jwks_ttl_s``: then ``issuer_unavailable``. An unknown ``kid``
    whose refetch fails is ``issuer_unavailable`` too (it may be a key rotated in).

Messages say what failed without echoing the token (claim values such as the issuer are
quoted, shortened).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from adapter.access.model import Principal
from adapter.exceptions import AdapterError
from adapter.httpclient import read_limited

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MAX_TOKEN_LENGTH",
    "REASONS",
    "InvalidToken",
    "TokenValidator",
    "TrustedIssuer",
]

_LOGGER = logging.getLogger(__name__)

#: The signature algorithms a token may use: asymmetric only.
ALLOWED_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

#: Longer tokens are refused unread (Keycloak tokens with many groups stay well under).
MAX_TOKEN_LENGTH = 16_384

#: Every ``InvalidToken.reason``, with what it means.
REASONS: dict[str, str] = {
    "malformed": "not a compact signed JWT with a key id, or a claim has the wrong type",
    "algorithm_not_allowed": "the algorithm is not an allowed asymmetric one, or not the key's own",
    "wrong_token_type": "not an access token (typ header or Keycloak typ claim)",
    "untrusted_issuer": "the issuer is not a trusted one",
    "unknown_key": "the issuer has no signing key with this key id",
    "bad_signature": "the signature does not verify",
    "expired": "the token has expired",
    "not_yet_valid": "the token is not valid yet (nbf or iat in the future)",
    "wrong_audience": "the token is not meant for this gateway (aud)",
    "missing_claim": "a required claim is missing (exp, iss, sub, organization)",
    "ambiguous_organization": "the token names several organizations",
    "wrong_organization": "the token names an organization its issuer does not speak for",
    "issuer_unavailable": "the issuer's keys cannot be fetched now (answer 503, not 401)",
}

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_TOKEN_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})
_MIN_RSA_BITS = 2048
_MAX_DOCUMENT_BYTES = 1 << 20


class InvalidToken(AdapterError):
    """A bearer token that does not prove who its bearer is.

    ``reason`` is one of ``REASONS`` (stable codes for the problem answer and the logs);
    ``detail`` says what failed, never the token. ``status`` is the HTTP status to answer:
    503 for ``issuer_unavailable``, 401 otherwise.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown token reason {reason!r}")
        super().__init__(f"{reason}: {detail or REASONS[reason]}")
        self.reason = reason
        self.detail = detail or REASONS[reason]

    @property
    def status(self) -> int:
        return 503 if self.reason == "issuer_unavailable" else 401


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One trusted token issuer (a Keycloak realm).

    ``issuer``: the exact ``iss`` of its tokens (``https://kc/realms/ville``).
    ``jwks_url``: where its keys are; None: found through OIDC discovery, else Keycloak's
    ``{issuer}/protocol/openid-connect/certs``. Set it when the gateway reaches Keycloak by
    another address than the public one in ``iss`` (``http://keycloak:8080/...`` in compose).
    ``organization``: the collectivity of all its users (realm per collectivity); None for a
    realm shared through Keycloak Organizations, whose tokens carry an ``organization`` claim.
    ``audience``: what ``aud`` must contain.
    """

    issuer: str
    jwks_url: str | None = None
    organization: str | None = None
    audience: str = "ngsild-gateway"

    def __post_init__(self) -> None:
        for name, url in (("issuer", self.issuer), ("jwks_url", self.jwks_url)):
            if url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
                raise ValueError(f"{name} must be an http(s) URL, got {url!r}")
        if self.organization is not None and not self.organization:
            raise ValueError("organization must be None or a non-empty name")
        if not self.audience:
            raise ValueError("audience must not be empty")


@dataclass(slots=True)
class _Key:
    """One verification key of a JWKS, and the algorithms it may verify."""

    kid: str
    algorithms: frozenset[str]
    jwk: dict[str, Any]
    parsed: dict[str, jwt.PyJWK] = field(default_factory=dict)

    def for_algorithm(self, alg: str) -> jwt.PyJWK:
        if alg not in self.parsed:
            self.parsed[alg] = jwt.PyJWK(self.jwk, alg)
        return self.parsed[alg]


@dataclass(slots=True)
class _IssuerState:
    trusted: TrustedIssuer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    keys: dict[str, _Key] | None = None
    fetched_at: float = -math.inf  # last successful fetch
    attempted_at: float = -math.inf  # last fetch, successful or not
    jwks_url: str | None = None  # resolved through discovery


class _Unavailable(Exception):
    """A JWKS or discovery fetch failed (internal: becomes ``issuer_unavailable``)."""


class _NotFound(_Unavailable):
    pass


class TokenValidator:
    """Validates bearer tokens from the trusted issuers into ``Principal``s.

    ``issuers``: the trusted ``TrustedIssuer``s (distinct ``issuer``s).
    ``session``: the aiohttp session used to fetch keys (owned by the caller).
    ``leeway_s``: clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    ``jwks_ttl_s``: how long a fetched key set is used before fetching it again.
    ``min_refetch_interval_s``: the least time between two fetches for one issuer, whether
    an unknown ``kid`` or a failure asks for it.
    ``fetch_timeout_s``: the limit of one discovery or JWKS request.
    ``clock``: seconds since the epoch (a fake one in tests).
    ``cache_s``: how long a token already validated is taken without checking its signature
    again (never past its ``exp``; 0 disables it). A partner sends the same token with every
    request for minutes: the cache saves the signature check and the claim mapping, which are
    most of the cost of a request. A token's keys rotating meanwhile does not make it invalid
    anyway: a JWT holds until it expires.

    ``await validate(token)`` returns the ``Principal`` or raises ``InvalidToken``.
    """

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        session: aiohttp.ClientSession,
        *,
        leeway_s: float = 30,
        jwks_ttl_s: float = 300,
        min_refetch_interval_s: float = 10,
        fetch_timeout_s: float = 5,
        clock: Callable[[], float] = time.time,
        cache_s: float = 30,
        cache_size: int = 10_000,
    ) -> None:
        self._cache_s = cache_s
        self._cache_size = cache_size
        self._validated: dict[str, tuple[float, Principal]] = {}  # token -> (good until, principal)
        self._issuers: dict[str, _IssuerState] = {}
        for trusted in issuers:
            if trusted.issuer in self._issuers:
                raise ValueError(f"issuer {trusted.issuer!r} is listed twice")
            self._issuers[trusted.issuer] = _IssuerState(trusted)
        if leeway_s < 0 or jwks_ttl_s <= 0 or min_refetch_interval_s < 0 or fetch_timeout_s <= 0:
            raise ValueError("leeway and refetch interval must be >= 0, TTL and timeout > 0")
        self._session = session
        self._leeway_s = leeway_s
        self._jwks_ttl_s = jwks_ttl_s
        self._min_refetch_interval_s = min_refetch_interval_s
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout_s)
        self._clock = clock

    @property
    def issuers(self) -> tuple[TrustedIssuer, ...]:
        return tuple(state.trusted for state in self._issuers.values())

    async def validate(self, token: str) -> Principal:
        """The bearer of ``token``, or ``InvalidToken`` naming the first rule it breaks."""
        cached = self._validated.get(token) if isinstance(token, str) else None
        if cached is not None:
            if self._clock() < cached[0]:
                return cached[1]
            del self._validated[token]
        principal, expires = await self._validate(token)
        if self._cache_s > 0:
            if len(self._validated) >= self._cache_size:
                self._validated.clear()
            self._validated[token] = (min(expires, self._clock() + self._cache_s), principal)
        return principal

    async def _validate(self, token: str) -> tuple[Principal, float]:
        header, unverified = _unverified(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken("algorithm_not_allowed", f"algorithm {_shown(alg)} is not allowed")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in _TOKEN_TYPES):
            raise InvalidToken("wrong_token_type", f"token type {_shown(typ)} is not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("malformed", "the token header has no key id (kid)")
        iss = unverified.get("iss")
        if iss is None:
            raise InvalidToken("missing_claim", "the token has no issuer (iss)")
        state = self._issuers.get(iss) if isinstance(iss, str) else None
        if state is None:
            raise InvalidToken("untrusted_issuer", f"issuer {_shown(iss)} is not trusted")

        key = await self._key(state, kid)
        if alg not in key.algorithms:
            raise InvalidToken(
                "algorithm_not_allowed", f"key {_shown(kid)} verifies {'/'.join(sorted(key.algorithms))}, not {alg}"
            )
        claims = _verified(token, key, alg, state.trusted)
        _check_times(claims, self._clock(), self._leeway_s)
        return _principal(claims, state.trusted), float(claims["exp"])

    async def _key(self, state: _IssuerState, kid: str) -> _Key:
        now = self._clock()
        if state.keys is None or now - state.fetched_at >= self._jwks_ttl_s:
            await self._refresh(state, kid=None)
        assert state.keys is not None
        if kid not in state.keys:
            await self._refresh(state, kid=kid)
        key = state.keys.get(kid)
        if key is None:
            raise InvalidToken("unknown_key", f"issuer {_shown(state.trusted.issuer)} has no key {_shown(kid)}")
        return key

    async def _refresh(self, state: _IssuerState, *, kid: str | None) -> None:
        """Fetch the issuer's keys unless a concurrent or recent fetch makes it pointless.

        ``kid`` None: the key set is missing or expired; else: ``kid`` is unknown."""
        async with state.lock:
            now = self._clock()
            if state.keys is not None and (
                kid in state.keys if kid is not None else now - state.fetched_at < self._jwks_ttl_s
            ):
                return  # a concurrent validation fetched them
            # expired keys still serve while the issuer is down, for one more TTL
            usable = state.keys is not None and now - state.fetched_at < 2 * self._jwks_ttl_s
            unavailable = InvalidToken("issuer_unavailable", f"the keys of {state.trusted.issuer} cannot be fetched")
            if now - state.attempted_at < self._min_refetch_interval_s:
                if not usable:
                    raise unavailable
                return  # too soon after the last fetch: decide with what we have
            state.attempted_at = now
            try:
                keys = await self._fetch_keys(state)
            except _Unavailable as exc:
                _LOGGER.warning("cannot fetch the keys of %s: %s", state.trusted.issuer, exc)
                if kid is not None or not usable:
                    raise unavailable from exc
                return
            state.keys, state.fetched_at = keys, now
            _LOGGER.info("fetched %d keys of %s", len(keys), state.trusted.issuer)

    async def _fetch_keys(self, state: _IssuerState) -> dict[str, _Key]:
        url = state.trusted.jwks_url or state.jwks_url or await self._discover(state)
        try:
            document = await self._get_json(url)
        except _Unavailable:
            state.jwks_url = None  # discover again next time
            raise
        return _parse_jwks(document, state.trusted.issuer)

    async def _discover(self, state: _IssuerState) -> str:
        issuer = state.trusted.issuer
        try:
            document = await self._get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        except _NotFound:
            state.jwks_url = f"{issuer.rstrip('/')}/protocol/openid-connect/certs"
            return state.jwks_url
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            raise _Unavailable(f"the discovery document of {issuer} is for another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("http", "https"):
            raise _Unavailable(f"the discovery document of {issuer} has no jwks_uri")
        state.jwks_url = jwks_uri
        return jwks_uri

    async def _get_json(self, url: str) -> Any:
        try:
            async with self._session.get(
                url, timeout=self._timeout, headers={"Accept": "application/json"}
            ) as response:
                if response.status == 404:
                    raise _NotFound(f"{url} answered 404")
                if response.status != 200:
                    raise _Unavailable(f"{url} answered {response.status}")
                body = await read_limited(response, _MAX_DOCUMENT_BYTES)
                if body is None:
                    raise _Unavailable(f"{url} answered more than {_MAX_DOCUMENT_BYTES} bytes")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Unavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise _Unavailable(f"{url} did not answer JSON") from exc


def _unverified(token: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload, unverified: only to pick the issuer and its key."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not _COMPACT_JWS.fullmatch(token):
        raise InvalidToken("malformed", "not a compact signed JWT")
    try:
        decoded = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidToken("malformed", f"cannot decode the token: {exc}") from None
    header, payload = decoded["header"], decoded["payload"]
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise InvalidToken("malformed", "the header and payload must be JSON objects")
    if "crit" in header or "b64" in header:
        raise InvalidToken("malformed", "JWS extensions (crit, b64) are not supported")
    return header, payload


def _verified(token: str, key: _Key, alg: str, trusted: TrustedIssuer) -> dict[str, Any]:
    """The claims, once the signature, the issuer and the audience are checked.

    Time claims are left to ``_check_times``: PyJWT reads the system clock, the validator
    has its own."""
    try:
        return jwt.decode(
            token,
            key.for_algorithm(alg),
            algorithms=[alg],
            audience=trusted.audience,
            issuer=trusted.issuer,
            options={
                "require": ["exp", "iss"],
                "verify_signature": True,
                "verify_aud": True,
                "verify_iss": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidToken("bad_signature", f"the signature does not verify with key {_shown(key.kid)}") from None
    except jwt.InvalidAlgorithmError:
        raise InvalidToken("algorithm_not_allowed", f"algorithm {alg} is not allowed") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("wrong_audience", f"the audience does not include {trusted.audience!r}") from None
    except jwt.MissingRequiredClaimError as exc:
        if exc.claim == "aud":
            raise InvalidToken("wrong_audience", f"the token has no audience, {trusted.audience!r} expected") from None
        raise InvalidToken("missing_claim", f"the token has no {exc.claim!r} claim") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("untrusted_issuer", "the issuer is not the one of the key") from None
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken("malformed", f"cannot verify the token: {exc}") from None


def _check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    exp = _timestamp(claims, "exp")
    assert exp is not None  # required by _verified
    if now >= exp + leeway:
        raise InvalidToken("expired", f"the token expired {int(now - exp)} s ago")
    for name in ("nbf", "iat"):
        value = _timestamp(claims, name)
        if value is not None and value > now + leeway:
            raise InvalidToken("not_yet_valid", f"{name} is {int(value - now)} s in the future")


def _timestamp(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidToken("malformed", f"{name} must be a number of seconds")
    return float(value)


def _principal(claims: Mapping[str, Any], trusted: TrustedIssuer) -> Principal:
    typ = claims.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() != "bearer"):
        raise InvalidToken("wrong_token_type", f"a {_shown(typ)} token is not an access token")
    client_id = _string(claims, "azp") or _string(claims, "client_id")
    subject = _string(claims, "sub") or client_id
    if not subject:
        raise InvalidToken("missing_claim", "the token has no subject (sub, azp or client_id)")

    roles = set(_strings(claims, "roles") if "roles" in claims else _strings(_object(claims, "realm_access"), "roles"))
    client = _object(_object(claims, "resource_access"), trusted.audience)
    roles.update(_strings(client, "roles"))
    groups = {group.lstrip("/") for group in _strings(claims, "groups")}
    groups.discard("")
    return Principal(
        issuer=trusted.issuer,
        subject=subject,
        organization=_organization(claims, trusted),
        roles=frozenset(roles),
        groups=frozenset(groups),
        client_id=client_id,
        username=_string(claims, "preferred_username"),
        identity_provider=_string(claims, "identity_provider"),
    )


def _organization(claims: Mapping[str, Any], trusted: TrustedIssuer) -> str:
    claim = claims.get("organization")
    if claim is None:
        names: list[str] = []
    elif isinstance(claim, str):
        names = [claim]
    elif isinstance(claim, list) and all(isinstance(name, str) for name in claim):
        names = claim
    elif isinstance(claim, dict):
        names = list(claim)
    else:
        raise InvalidToken("malformed", "organization must be a string, a list or an object keyed by alias")
    if "" in names:
        raise InvalidToken("malformed", "organization names must not be empty")
    names = list(dict.fromkeys(names))
    if trusted.organization is not None:
        others = [name for name in names if name != trusted.organization]
        if others:
            raise InvalidToken(
                "wrong_organization",
                f"issuer {_shown(trusted.issuer)} speaks for {trusted.organization!r}, not {_shown(others[0])}",
            )
        return trusted.organization
    if not names:
        raise InvalidToken("missing_claim", "the token has no organization claim")
    if len(names) > 1:
        raise InvalidToken(
            "ambiguous_organization", f"the token names {len(names)} organizations: ask for scope organization:<alias>"
        )
    return names[0]


def _string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidToken("malformed", f"{name} must be a string")
    return value or None


def _strings(claims: Mapping[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise InvalidToken("malformed", f"{name} must be a list of strings")


def _object(claims: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = claims.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidToken("malformed", f"{name} must be an object")
    return value


def _parse_jwks(document: Any, issuer: str) -> dict[str, _Key]:
    """The usable signature keys of a JWK set, by kid; unusable ones are skipped and logged."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _Unavailable(f"the JWKS of {issuer} has no keys list")
    keys: dict[str, _Key] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if jwk.get("use", "sig") != "sig":
            continue  # Keycloak lists its encryption key too
        key_ops = jwk.get("key_ops")
        if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
            continue
        if "d" in jwk:
            _LOGGER.warning("key %r of %s is a private key: ignored", kid, issuer)
            continue
        algorithms = _key_algorithms(jwk)
        if not algorithms:
            _LOGGER.debug("key %r of %s is not an allowed signature key", kid, issuer)
            continue
        key = _Key(kid, algorithms, jwk)
        try:
            parsed = key.for_algorithm(min(algorithms))
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            _LOGGER.warning("key %r of %s is invalid: %s", kid, issuer, exc)
            continue
        if isinstance(parsed.key, rsa.RSAPublicKey) and parsed.key.key_size < _MIN_RSA_BITS:
            _LOGGER.warning("key %r of %s is RSA under %d bits: ignored", kid, issuer, _MIN_RSA_BITS)
            continue
        if kid in keys:
            _LOGGER.warning("key id %r of %s is used twice: the first key is kept", kid, issuer)
            continue
        keys[kid] = key
    return keys


def _key_algorithms(jwk: Mapping[str, Any]) -> frozenset[str]:
    """What a JWK may verify: its own ``alg``, consistent with its type, or its type's."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "RSA":
        family = _RSA_ALGORITHMS
    elif kty == "EC" and crv in _EC_ALGORITHMS:
        family = frozenset({_EC_ALGORITHMS[crv]})
    elif kty == "OKP" and crv in _OKP_CURVES:
        family = frozenset({"EdDSA"})
    else:
        return frozenset()  # oct (HMAC) keys and anything else: never
    alg = jwk.get("alg")
    if alg is None:
        return family
    return frozenset({alg}) if alg in family else frozenset()


def _shown(value: object, limit: int = 80) -> str:
    """A claim value for a message: quoted and shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
