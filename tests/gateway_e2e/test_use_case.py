"""The use case, end to end with the real parts: the region shares its outdoor air quality with
the city; the city's school-ventilation service, a confidential client of the city's Keycloak
realm, subscribes through the gateway; a rise of NO2 measured by a region sensor goes through
the adapter to the broker, and reaches the ventilation service as a notification filtered to
the agreement. Forged and misused tokens are refused along the way."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization

from adapter.access.tokens import InvalidToken, TokenValidator, TrustedIssuer
from adapter.config import load_config
from adapter.delivery import BrokerWriter
from adapter.demo.keycloak import KeycloakServer
from adapter.demo.network import free_port
from adapter.access.log import AccessLog
from adapter.gateway.app import GatewayContext, create_gateway_app
from tests.gateway.support import local_endpoints
from adapter.gateway.service import load_policies
from adapter.gateway.subscriptions import SubscriptionStore
from adapter.mapping.entities import DeviceRecord
from adapter.mapping.profile import load_profiles
from adapter.ngsild.client import NgsiLdClient
from adapter.provenance.runtime import entity_contexts
from adapter.uplink import Location, Origin
from tests.e2e.support import EmbeddedBroker
from tests.gateway.test_subscriptions import Partner
from tests.keycloak.support import client_credentials_token, dev_password, dev_secret, password_token
from tests.support import REPO, demo_event, demo_pipeline, eventually

pytestmark = pytest.mark.keycloak

CONFIG = load_config(None)
PURPOSE = "ventilation-control"
TRUSTED = ("ville",)  # this gateway trusts the city's realm only: a region token is from an untrusted realm
STATION = "70b3d57ed0009a01"  # a region air-quality station near a school


def _no2_uplink(value_hundredths: int, f_cnt: int) -> bytes:
    """A region air-quality station's uplink (Cayenne LPP; NO2 on analog channel 3)."""
    import struct

    body = copy.deepcopy(demo_event("01-chirpstack-air-quality")["body"])
    body["deviceInfo"]["devEui"] = STATION
    body["fCnt"] = f_cnt
    lpp = bytes.fromhex("01670070026894") + struct.pack(">BBh", 3, 2, value_hundredths)
    body["data"] = base64.b64encode(lpp).decode()
    return json.dumps(body).encode()


@pytest.fixture
async def world(keycloak: KeycloakServer, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    broker = EmbeddedBroker(tmp_path / "broker.sqlite")
    await broker.start()
    ventilation = Partner()
    await ventilation.start()
    log, store = AccessLog(":memory:"), SubscriptionStore(":memory:")
    try:
        async with aiohttp.ClientSession() as session:
            validator = TokenValidator([TrustedIssuer(keycloak.issuer(r), organization=r) for r in TRUSTED], session)
            port = free_port()
            context = GatewayContext(
                validator.validate,
                load_policies(CONFIG, REPO / "compose" / "policies"),
                broker.url,
                session,
                entity_contexts(load_profiles(CONFIG.models_dir)),
                log,
                subscriptions=store,
                public_url=f"http://127.0.0.1:{port}",
                endpoints=local_endpoints(ventilation.url),
            )
            server = TestServer(create_gateway_app(context), host="127.0.0.1", port=port)
            await server.start_server()
            try:
                yield {
                    "gateway": f"http://127.0.0.1:{port}",
                    "broker": broker,
                    "ventilation": ventilation,
                    "session": session,
                    "log": log,
                    "validator": validator,
                }
            finally:
                await server.close()
    finally:
        store.close()
        log.close()
        await ventilation.stop()
        await broker.stop()


async def _deliver(broker_url: str, uplinks: list[bytes], tmp: Path) -> None:
    """The adapter's pipeline and broker writer, for the region's network-server connection."""
    pipeline = demo_pipeline(tmp)
    station = DeviceRecord(
        dev_eui=STATION,
        name="AQ station - école Jules Ferry",
        location=Location(48.1147, -1.6794),
        attributes={},
        tenant="region",
    )
    pipeline.devices = {**pipeline.devices, STATION: station}
    origin = Origin(tenant="region", lns_id="region-chirpstack")
    try:
        for uplink in uplinks:
            assert pipeline.process(uplink, lns="chirpstack", origin=origin).status == "mapped"
        assert pipeline.outbox is not None
        async with aiohttp.ClientSession() as session:
            writer = BrokerWriter(
                pipeline.outbox,
                NgsiLdClient(broker_url, session),
                pipeline.dead_letters,
                CONFIG.broker,
                receipts=pipeline.ledger,
            )
            import asyncio

            task = asyncio.create_task(writer.run())
            await eventually(lambda: pipeline.outbox.depth() == 0, "the outbox to be delivered", timeout=10)  # type: ignore[union-attr]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        pipeline.close()


async def test_a_no2_rise_near_a_school_reaches_the_ventilation_service_filtered(
    world: dict[str, Any], keycloak: KeycloakServer, tmp_path: Path
) -> None:
    gateway, ventilation = world["gateway"], world["ventilation"]
    async with aiohttp.ClientSession() as http:
        token = await client_credentials_token(
            http, keycloak, "ville", "ecole-ventilation", dev_secret("ville", "ecole-ventilation")
        )
        headers = {"Authorization": f"Bearer {token}", "NGSILD-Tenant": "region", "NGSILD-Purpose": PURPOSE}
        subscription = {
            "type": "Subscription",
            "entities": [{"type": "AirQualityObserved"}],
            "watchedAttributes": ["no2", "pm25"],
            "q": "no2>40|pm25>25",
            "notification": {"endpoint": {"uri": ventilation.url, "accept": "application/json"}},
        }
        async with http.post(f"{gateway}/ngsi-ld/v1/subscriptions", json=subscription, headers=headers) as answer:
            assert answer.status == 201, await answer.text()
    await _deliver(world["broker"].url, [_no2_uplink(2100, 1), _no2_uplink(8250, 2)], tmp_path)  # 21 then 82.5
    await eventually(lambda: bool(ventilation.received), "the ventilation service to be notified", timeout=15)
    data = [d for n in ventilation.received for d in n["data"]]
    assert {d["no2"]["value"] for d in data} == {82.5}  # the rise only (q), not the quiet reading
    allowed = {"dateObserved", "location", "no2", "o3", "pm10", "pm25", "relativeHumidity", "temperature"}
    for entity in data:
        assert set(entity) - {"id", "type", "@context", "wasDerivedFrom"} <= allowed  # no refDevice, no typeofLocation
        assert entity["id"] == "urn:ngsi-ld:AirQualityObserved:region:70b3d57ed0009a01"
    accesses = world["log"].records("region")
    assert any(
        a.client_id == "ecole-ventilation"
        and a.entities
        and a.agreement.endswith("region-air-quality-to-ville-schools")
        for a in accesses
    )


async def test_forged_and_misused_tokens_are_refused(world: dict[str, Any], keycloak: KeycloakServer) -> None:
    gateway = world["gateway"]
    async with aiohttp.ClientSession() as http:
        real = await client_credentials_token(
            http, keycloak, "ville", "ecole-ventilation", dev_secret("ville", "ecole-ventilation")
        )
        async with http.get(keycloak.jwks_url("ville")) as answer:
            jwks = await answer.json()
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    rsa_key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public_pem = jwt.PyJWK(rsa_key).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    head, body, signature = real.split(".")
    forged = {
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': header['kid']})}.{body}.",
        "HS256 with the RSA public key": _hs256(
            public_pem, {"alg": "HS256", "typ": "JWT", "kid": header["kid"]}, claims
        ),
        "tampered payload": f"{head}.{b64({**claims, 'organization': 'region'})}.{signature}",
        "unknown kid": f"{b64({**header, 'kid': 'not-a-key'})}.{body}.{signature}",
    }
    async with aiohttp.ClientSession() as http:
        forged["a valid token from an untrusted realm"] = await password_token(
            http, keycloak, "region", "chercheur", dev_password("region", "chercheur")
        )
    params = {"type": "AirQualityObserved"}
    async with aiohttp.ClientSession() as http:
        for what, token in forged.items():
            headers = {"Authorization": f"Bearer {token}", "NGSILD-Tenant": "region", "NGSILD-Purpose": PURPOSE}
            async with http.get(f"{gateway}/ngsi-ld/v1/entities", params=params, headers=headers) as answer:
                assert answer.status == 401, what
                assert token[-12:] not in await answer.text()  # the answer never echoes the token
        headers = {"Authorization": f"Bearer {real}", "NGSILD-Tenant": "region", "NGSILD-Purpose": PURPOSE}
        async with http.get(f"{gateway}/ngsi-ld/v1/entities", params=params, headers=headers) as answer:
            assert answer.status not in (401, 403)  # the real one passes (the region has no data yet: 404)


async def test_real_tokens_out_of_time_or_for_another_audience_are_refused(
    world: dict[str, Any], keycloak: KeycloakServer
) -> None:
    async with aiohttp.ClientSession() as http:
        real = await client_credentials_token(
            http, keycloak, "ville", "ecole-ventilation", dev_secret("ville", "ecole-ventilation")
        )
        issuer = [TrustedIssuer(keycloak.issuer("ville"), organization="ville")]
        cases = {
            "expired": TokenValidator(issuer, http, clock=lambda: time.time() + 7200),
            "not_yet_valid": TokenValidator(issuer, http, clock=lambda: time.time() - 7200),
            "wrong_audience": TokenValidator(
                [TrustedIssuer(keycloak.issuer("ville"), organization="ville", audience="another-service")], http
            ),
        }
        for reason, validator in cases.items():
            with pytest.raises(InvalidToken) as refused:
                await validator.validate(real)
            assert refused.value.reason == reason
        principal = await TokenValidator(issuer, http).validate(real)
        assert (principal.organization, principal.client_id) == ("ville", "ecole-ventilation")
        assert "partner-platform" in principal.roles


def _hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """The classic forgery: an HMAC made with the issuer's public key as the secret
    (PyJWT refuses to make one, rightly, so it is made by hand)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
