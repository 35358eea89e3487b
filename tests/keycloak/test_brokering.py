"""Identity brokering between collectivities, end to end over HTTP, no browser: a region
agent logs into the city's realm with the home (region) account, and the city's realm
issues the token, for a local account federated from the region."""

from __future__ import annotations

import base64
import hashlib
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapter.access.model import Principal
from adapter.access.tokens import TokenValidator, TrustedIssuer
from adapter.config import load_config
from adapter.demo.keycloak import KeycloakServer
from adapter.access.log import AccessLog
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.gateway.service import load_policies
from adapter.mapping.profile import load_profiles
from adapter.provenance.runtime import entity_contexts
from tests.keycloak.support import as_list, dev_password, verified_claims
from tests.support import REPO

pytestmark = pytest.mark.keycloak

#: A redirect URI of the public ``cli`` client (pattern ``http://127.0.0.1/*``). Nothing
#: listens there: the flow stops at the redirect that carries the code.
REDIRECT_URI = "http://127.0.0.1/callback"
MAX_REDIRECTS = 10


class _LoginForm(HTMLParser):
    """The ``action`` of Keycloak's login form (``<form id="kc-form-login" action=...>``)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and attributes.get("id") == "kc-form-login":
            self.action = attributes.get("action")


def _login_form_action(html: str) -> str:
    parser = _LoginForm()
    parser.feed(html)
    assert parser.action, "no login form on the page"
    return parser.action


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def _follow_until_redirect_uri(http: aiohttp.ClientSession, url: str, form: dict[str, str]) -> str:
    """Post the login form, then follow Keycloak's redirects (broker endpoint, first broker
    login...) by hand, keeping cookies, up to the one to the client's redirect URI: return it."""
    response = await http.post(url, data=form, allow_redirects=False)
    for _ in range(MAX_REDIRECTS):
        async with response:
            body = await response.text()
            assert response.status in (302, 303), f"{response.status} at {response.url}: {body[:500]}"
            location = urljoin(str(response.url), response.headers["Location"])
        if location.startswith(REDIRECT_URI):
            return location
        response = await http.get(location, allow_redirects=False)
    raise AssertionError(f"no redirect to {REDIRECT_URI} after {MAX_REDIRECTS} redirects")


async def test_a_region_agent_logs_into_the_city_realm_with_the_region_account(
    keycloak: KeycloakServer, http: aiohttp.ClientSession
) -> None:
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    authorization = {
        "client_id": "cli",
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": REDIRECT_URI,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "kc_idp_hint": "region",  # straight to the region's login page, as its link would
    }

    # The city's realm sends the browser to the region's realm, which shows its login form.
    async with http.get(keycloak.auth_url("ville"), params=authorization) as page:
        assert page.status == 200
        assert str(page.url).startswith(keycloak.auth_url("region"))
        action = _login_form_action(await page.text())

    # The agent logs in with the home account; the redirects lead back through the city's
    # broker endpoint (first login: the local account is created, no form) to the client.
    credentials = {"username": "agent.region", "password": dev_password("region", "agent.region")}
    callback = parse_qs(urlsplit(await _follow_until_redirect_uri(http, action, credentials)).query)
    assert callback["state"] == [state]

    exchange = {
        "grant_type": "authorization_code",
        "client_id": "cli",
        "code": callback["code"][0],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    async with http.post(keycloak.token_url("ville"), data=exchange) as token_response:
        tokens = await token_response.json()
        assert token_response.status == 200, tokens

    claims = await verified_claims(http, keycloak, "ville", tokens["access_token"])
    assert claims["iss"] == keycloak.issuer("ville")
    assert claims["identity_provider"] == "region"
    assert claims["preferred_username"] == "region.agent.region"  # namespaced by its home realm
    assert claims["organization"] == "ville"  # the realm that issued it speaks for the city
    assert "ngsild-gateway" in as_list(claims["aud"])
    assert claims["email"] == "agent.region@region.example"

    # The brokered token is one the sharing gateway takes: the agent is a principal of the
    # city (from the region), and the agreements decide (this agent has no role: 403, not 401).
    principal, status, detail = await _at_the_gateway(keycloak, tokens["access_token"])
    assert (principal.organization, principal.identity_provider) == ("ville", "region")
    assert status == 403 and "no agreement grants read" in detail


async def _at_the_gateway(keycloak: KeycloakServer, token: str) -> tuple[Principal, int, str]:
    config = load_config(None)
    async with aiohttp.ClientSession() as session:
        validator = TokenValidator([TrustedIssuer(keycloak.issuer("ville"), organization="ville")], session)
        principal = await validator.validate(token)
        context = GatewayContext(
            validator.validate,
            load_policies(config, REPO / "compose" / "policies"),
            "http://127.0.0.1:9",
            session,
            entity_contexts(load_profiles(config.models_dir)),
            AccessLog(":memory:"),
        )
        async with TestClient(TestServer(create_gateway_app(context), host="127.0.0.1")) as gateway:
            answer = await gateway.get(
                "/ngsi-ld/v1/entities",
                params={"type": "AirQualityObserved"},
                headers={"Authorization": f"Bearer {token}", "NGSILD-Tenant": "ville"},
            )
            return principal, answer.status, (await answer.json()).get("detail", "")
