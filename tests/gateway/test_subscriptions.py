"""Partners subscribe through the gateway: the broker notifies the gateway, which forwards only
what the agreement allows, and stops when the agreement no longer grants it."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapter.access.model import Action
from adapter.demo.network import free_port
from adapter.access.log import AccessLog
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.gateway.subscriptions import SubscriptionStore
from adapter.ngsild.client import NgsiLdClient
from tests.e2e.support import EmbeddedBroker
from tests.gateway.support import CONTEXTS, StaticTokens, TableOfGrants, air_quality_entities, local_endpoints
from tests.gateway.test_enforcement import GRANTS, SCHOOL_GRANT, TOKENS
from tests.support import eventually


class Partner:
    """The school-ventilation service's notification endpoint."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    async def start(self) -> None:
        async def receive(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/notify", receive)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[str, NgsiLdClient, Partner, TableOfGrants, SubscriptionStore]]:
    broker = EmbeddedBroker(tmp_path / "broker.sqlite")
    await broker.start()
    partner = Partner()
    await partner.start()
    grants = TableOfGrants(
        [*GRANTS.rows, ("ville", "partner-platform", Action.SUBSCRIBE, "region", "AirQualityObserved", SCHOOL_GRANT)]
    )
    store = SubscriptionStore(":memory:")
    log = AccessLog(":memory:")
    try:
        async with aiohttp.ClientSession() as session:
            client = NgsiLdClient(broker.url, session)
            for entity in air_quality_entities("region", 2, days=1):
                await client.batch_upsert("region", [entity])
            port = free_port()
            context = GatewayContext(
                StaticTokens(TOKENS).validate,
                grants,
                broker.url,
                session,
                CONTEXTS,
                log,
                subscriptions=store,
                public_url=f"http://127.0.0.1:{port}",
                endpoints=local_endpoints(partner.url),
            )
            server = TestServer(create_gateway_app(context), host="127.0.0.1", port=port)
            await server.start_server()
            try:
                yield f"http://127.0.0.1:{port}", client, partner, grants, store
            finally:
                await server.close()
    finally:
        store.close()
        log.close()
        await partner.stop()
        await broker.stop()


def _subscription(endpoint: str, attributes: list[str] | None) -> dict[str, Any]:
    notification: dict[str, Any] = {"endpoint": {"uri": endpoint, "accept": "application/json"}}
    if attributes is not None:
        notification["attributes"] = attributes
    return {
        "type": "Subscription",
        "entities": [{"type": "AirQualityObserved"}],
        "watchedAttributes": ["no2"],
        "notification": notification,
    }


async def test_a_rise_of_no2_reaches_the_partner_filtered_to_the_agreement(world: Any) -> None:
    gateway, broker, partner, _, _ = world
    headers = {"Authorization": "Bearer schools", "NGSILD-Tenant": "region"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{gateway}/ngsi-ld/v1/subscriptions",
            headers=headers,
            json=_subscription(partner.url, ["no2", "temperature"]),
        ) as answer:
            assert answer.status == 403  # temperature is not granted: refused, not silently dropped
        async with http.post(
            f"{gateway}/ngsi-ld/v1/subscriptions", headers=headers, json=_subscription(partner.url, None)
        ) as answer:
            assert answer.status == 201, await answer.text()
            location = answer.headers["Location"]
        async with http.get(gateway + location, headers=headers) as answer:
            assert (await answer.json())["id"] == location.rsplit("/", 1)[-1]
        async with http.get(gateway + location, headers={**headers, "Authorization": "Bearer stranger"}) as answer:
            assert answer.status == 404  # someone else's subscription does not exist for them
    entity = copy.deepcopy(air_quality_entities("region", 1, days=1)[0])
    entity["no2"]["value"] = 180.0
    await broker.batch_upsert("region", [entity])
    await eventually(
        lambda: any(n["data"][0]["no2"]["value"] == 180.0 for n in partner.received),
        "the partner to be notified of the rise",
        timeout=10,
    )
    for notification in partner.received:
        for data in notification["data"]:
            # every granted attribute (location coarsened), never temperature
            assert set(data) - {"id", "type", "@context", "wasDerivedFrom"} == {"no2", "pm25", "location"}
            lon, lat = data["location"]["value"]["coordinates"]
            assert (lon, lat) == (round(lon, 2), round(lat, 2))


async def test_a_subscription_cannot_send_to_an_endpoint_not_allowed(world: Any) -> None:
    gateway, _, _, _, store = world
    headers = {"Authorization": "Bearer schools", "NGSILD-Tenant": "region"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{gateway}/ngsi-ld/v1/subscriptions",
            headers=headers,
            json=_subscription("http://127.0.0.1:1/internal-admin", ["no2"]),
        ) as answer:
            assert answer.status == 403


async def test_a_revoked_agreement_stops_the_notifications(world: Any) -> None:
    gateway, broker, partner, grants, store = world
    headers = {"Authorization": "Bearer schools", "NGSILD-Tenant": "region"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{gateway}/ngsi-ld/v1/subscriptions", headers=headers, json=_subscription(partner.url, ["no2"])
        ) as answer:
            assert answer.status == 201
            subscription_id = answer.headers["Location"].rsplit("/", 1)[-1]
    grants.rows = [row for row in grants.rows if row[5] is not SCHOOL_GRANT]  # the region revokes it
    entity = copy.deepcopy(air_quality_entities("region", 1, days=1)[0])
    entity["no2"]["value"] = 250.0
    await broker.batch_upsert("region", [entity])
    await eventually(lambda: store.get(subscription_id) is None, "the subscription to be removed", timeout=10)
    await asyncio.sleep(0.2)
    assert not any(d["no2"]["value"] == 250.0 for n in partner.received for d in n["data"])
