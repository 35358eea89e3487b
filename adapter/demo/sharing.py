"""The demo's sharing part: the region's air quality reaches the city's school ventilation.

With the adapter of the demo still running, it starts the real Keycloak (the collectivities'
realms of ``compose/keycloak/``) and the sharing gateway (the agreements of
``compose/policies/``); the city's school-ventilation service (a stand-in endpoint here) gets
a token with its client credentials, subscribes through the gateway to the region's air
quality for its agreed purpose, and an NO2 rise sent by a region station reaches it, filtered
to the agreement. The same token is then refused the city's water meters (no agreement).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipaddress import ip_network

import aiohttp
from aiohttp import web

from adapter import resources
from adapter.access.tokens import TokenValidator, TrustedIssuer
from adapter.config import AdapterConfig
from adapter.demo.fleet import FleetDevice, SimulatedEvent, uplinks
from adapter.demo.keycloak import REALMS_DIR, KeycloakError, KeycloakServer
from adapter.demo.network import free_port
from adapter.access.log import AccessLog
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.gateway.endpoints import EndpointPolicy, parse_prefix
from adapter.gateway.service import load_policies
from adapter.gateway.subscriptions import SubscriptionStore
from adapter.mapping.profile import load_profiles
from adapter.provenance.runtime import entity_contexts

__all__ = ["SharingReport", "run_sharing"]

HOST = "127.0.0.1"
PURPOSE = "ventilation-control"
POLICIES = resources.demo_agreements_dir()


@dataclass
class SharingReport:
    keycloak_seconds: float = 0.0
    subscribed: bool = False
    notification: dict[str, Any] | None = None
    refused: str = ""
    accesses: int = 0
    skipped: str = ""
    lines: list[str] = field(default_factory=list)


def _dev_secret(realm: str, client_id: str) -> str:
    """The DEV ONLY secret of a client of the realm files (the demo runs on their defaults)."""
    document = json.loads((REALMS_DIR / f"{realm}-realm.json").read_text(encoding="utf-8"))
    secret = next(c["secret"] for c in document["clients"] if c["clientId"] == client_id)
    match = re.fullmatch(r"\$\{[A-Z_]+:(.*)\}", secret)
    return match.group(1) if match else str(secret)


async def run_sharing(
    config: AdapterConfig,
    broker_url: str,
    fleet: list[FleetDevice],
    publish: Callable[[SimulatedEvent], Awaitable[None]],
    progress: Callable[[str], None],
) -> SharingReport:
    """The use case on the running demo (``publish`` sends one uplink as its network server)."""
    report = SharingReport()
    station = next((d for d in fleet if d.kind == "air-quality" and d.tenant == "region"), None)
    if station is None:
        report.skipped = "no air-quality station of the region in the fleet"
        return report
    workdir = Path(tempfile.mkdtemp(prefix="ngsild-adapter-demo-keycloak-"))
    received: list[dict[str, Any]] = []
    got_one = asyncio.Event()

    async def ventilation(request: web.Request) -> web.Response:
        received.append(await request.json())
        got_one.set()
        return web.Response(status=204)

    progress("starting Keycloak (one realm per collectivity) and the sharing gateway...")
    try:
        keycloak = KeycloakServer(workdir)
        await asyncio.to_thread(keycloak.start)
    except KeycloakError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        report.skipped = f"Keycloak could not start ({exc}); run make setup"
        return report
    report.keycloak_seconds = keycloak.start_seconds or 0.0
    endpoint_app = web.Application()
    endpoint_app.router.add_post("/notify", ventilation)
    endpoint = web.AppRunner(endpoint_app, access_log=None)
    endpoint_port, gateway_port = free_port(), free_port()
    log, store = AccessLog(":memory:"), SubscriptionStore(":memory:")
    gateway: web.AppRunner | None = None
    try:
        await endpoint.setup()
        await web.TCPSite(endpoint, HOST, endpoint_port).start()
        async with aiohttp.ClientSession() as session:
            validator = TokenValidator([TrustedIssuer(keycloak.issuer("ville"), organization="ville")], session)
            context = GatewayContext(
                validator.validate,
                load_policies(config, POLICIES),
                broker_url,
                session,
                entity_contexts(load_profiles(config.models_dir)),
                log,
                subscriptions=store,
                public_url=f"http://{HOST}:{gateway_port}",
                contexts_url=config.contexts_url,
                endpoints=EndpointPolicy(
                    (parse_prefix(f"http://{HOST}:{endpoint_port}/"),), (ip_network(f"{HOST}/32"),)
                ),
            )
            gateway = web.AppRunner(create_gateway_app(context), access_log=None)
            await gateway.setup()
            await web.TCPSite(gateway, HOST, gateway_port).start()
            base = f"http://{HOST}:{gateway_port}/ngsi-ld/v1"
            form = {
                "grant_type": "client_credentials",
                "client_id": "ecole-ventilation",
                "client_secret": _dev_secret("ville", "ecole-ventilation"),
            }
            async with session.post(keycloak.token_url("ville"), data=form) as answer:
                token = (await answer.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}", "NGSILD-Tenant": "region", "NGSILD-Purpose": PURPOSE}
            subscription = {
                "type": "Subscription",
                "entities": [{"type": "AirQualityObserved"}],
                "watchedAttributes": ["no2"],
                "q": "no2>100",
                "notification": {"endpoint": {"uri": f"http://{HOST}:{endpoint_port}/notify"}},
            }
            async with session.post(f"{base}/subscriptions", json=subscription, headers=headers) as answer:
                report.subscribed = answer.status == 201
                if not report.subscribed:
                    report.skipped = f"the subscription was refused: {await answer.text()}"
                    return report
            progress("a region station near a school measures an NO2 rise...")
            station.state["no2"] = 140.0
            await publish(next(uplinks([station], 1)))
            try:
                await asyncio.wait_for(got_one.wait(), 30)
                report.notification = received[0]
            except TimeoutError:
                report.skipped = "no notification within 30 s"
            water = {**headers, "NGSILD-Tenant": "eau"}
            async with session.get(
                f"{base}/entities", params={"type": "WaterConsumptionObserved"}, headers=water
            ) as answer:
                report.refused = f"{answer.status}: {(await answer.json()).get('detail', '')}"
            report.accesses = len(log.records("region")) + len(log.records("eau"))
    finally:
        if gateway is not None:
            await gateway.cleanup()
        await endpoint.cleanup()
        store.close()
        log.close()
        await asyncio.to_thread(keycloak.stop)
        shutil.rmtree(workdir, ignore_errors=True)
    return report
