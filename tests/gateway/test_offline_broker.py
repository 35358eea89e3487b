"""Against a broker that cannot reach the internet, every request names the served contexts.

A broker inside a public body's network downloads each ``@context`` URL it is named and cannot
reach GitHub or w3id. The embedded broker stands in for it here in its offline mode
(``reachable_contexts``): it downloads only from the adapter's ``/contexts`` and answers any
other context 503 LdContextNotAvailable, as Orion-LD does when a download fails (reference
note, section 4). With ``contexts_url`` set, the gateway's reads, temporal reads and
subscriptions, and the provenance verifier's reads, work; without it they fail as they would
against Orion-LD.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapter.access.log import AccessLog
from adapter.access.model import Action
from adapter.demo.network import free_port
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.gateway.subscriptions import SubscriptionStore
from adapter.mapping.profile import load_profiles
from adapter.ngsild.broker import create_broker_app
from adapter.ngsild.broker.jsonld import link_header
from adapter.ngsild.client import NgsiLdClient, NgsiLdError
from adapter.ngsild.context_server import broker_context, broker_contexts, context_routes
from adapter.provenance.runtime import entity_contexts, read_broker
from tests.gateway.support import (
    AQ_CONTEXT,
    CONTEXTS,
    StaticTokens,
    TableOfGrants,
    air_quality_entities,
    local_endpoints,
)
from tests.gateway.test_enforcement import GRANTS, SCHOOL_GRANT, TOKENS
from tests.gateway.test_subscriptions import Partner, _subscription
from tests.support import REPO, eventually

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
HEADERS = {"Authorization": "Bearer schools", "NGSILD-Tenant": "region"}


@dataclass
class OfflineWorld:
    broker_url: str
    contexts_url: str  # the adapter's /contexts, the only place the broker may download from
    session: aiohttp.ClientSession
    partner: Partner
    log: AccessLog
    store: SubscriptionStore

    async def gateway(self, contexts_url: str | None) -> TestServer:
        grants = TableOfGrants(
            [
                *GRANTS.rows,
                ("ville", "partner-platform", Action.SUBSCRIBE, "region", "AirQualityObserved", SCHOOL_GRANT),
            ]
        )
        port = free_port()
        context = GatewayContext(
            StaticTokens(TOKENS).validate,
            grants,
            self.broker_url,
            self.session,
            CONTEXTS,
            self.log,
            subscriptions=self.store,
            public_url=f"http://127.0.0.1:{port}",
            endpoints=local_endpoints(self.partner.url),
            contexts_url=contexts_url,
        )
        server = TestServer(create_gateway_app(context), host="127.0.0.1", port=port)
        await server.start_server()
        return server


@pytest.fixture
async def offline() -> AsyncIterator[OfflineWorld]:
    contexts_app = web.Application()
    contexts_app.add_routes(context_routes())
    contexts = TestServer(contexts_app, host="127.0.0.1")
    await contexts.start_server()
    contexts_url = str(contexts.make_url("/contexts"))
    broker = TestServer(create_broker_app(reachable_contexts=[contexts_url + "/"]), host="127.0.0.1")
    await broker.start_server()
    partner = Partner()
    await partner.start()
    log, store = AccessLog(":memory:"), SubscriptionStore(":memory:")
    try:
        async with aiohttp.ClientSession() as session:
            world = OfflineWorld(str(broker.make_url("")).rstrip("/"), contexts_url, session, partner, log, store)
            client = NgsiLdClient(world.broker_url, session)
            for entity in air_quality_entities("region", 2, days=2):
                # the pipeline's writes name the served copies (Pipeline.contexts_url)
                entity["@context"] = broker_context(entity["@context"], contexts_url)
                await client.batch_upsert("region", [entity])
            yield world
    finally:
        store.close()
        log.close()
        await partner.stop()
        await broker.close()
        await contexts.close()


async def test_the_offline_broker_refuses_an_upstream_context_as_orion_ld_does(offline: OfflineWorld) -> None:
    async with offline.session.get(
        f"{offline.broker_url}/ngsi-ld/v1/entities",
        params={"type": "AirQualityObserved"},
        headers={"NGSILD-Tenant": "region", "Link": link_header(AQ_CONTEXT)},
    ) as answer:
        assert answer.status == 503
        assert await answer.json() == {
            "type": ERRORS + "LdContextNotAvailable",
            "title": "Unable to download context",
            "detail": AQ_CONTEXT,
        }
    served = broker_context(AQ_CONTEXT, offline.contexts_url)
    async with offline.session.get(
        f"{offline.broker_url}/ngsi-ld/v1/entities",
        params={"type": "AirQualityObserved", "options": "keyValues", "attrs": "no2"},
        headers={"NGSILD-Tenant": "region", "Link": link_header(served)},
    ) as answer:
        assert answer.status == 200
        assert sorted(e["no2"] for e in await answer.json()) == [1.0, 11.0]


async def test_gateway_reads_and_history_work_against_an_offline_broker(offline: OfflineWorld) -> None:
    gateway = await offline.gateway(offline.contexts_url)
    try:
        async with offline.session.get(
            gateway.make_url("/ngsi-ld/v1/entities"),
            headers=HEADERS,
            params={"type": "AirQualityObserved", "attrs": "no2"},
        ) as answer:
            assert answer.status == 200, await answer.text()
            current = await answer.json()
            # partners are still answered with the official context, never the served copy
            assert answer.headers["Link"] == link_header(AQ_CONTEXT)
        async with offline.session.get(
            gateway.make_url("/ngsi-ld/v1/temporal/entities"),
            headers=HEADERS,
            params={"type": "AirQualityObserved", "attrs": "no2"},
        ) as answer:
            assert answer.status == 200, await answer.text()
            history = await answer.json()
    finally:
        await gateway.close()
    assert sorted(e["no2"]["value"] for e in current) == [1.0, 11.0]
    assert sorted(len(e["no2"]) for e in history) == [2, 2]


async def test_gateway_subscriptions_work_against_an_offline_broker(offline: OfflineWorld) -> None:
    gateway = await offline.gateway(offline.contexts_url)
    try:
        async with offline.session.post(
            gateway.make_url("/ngsi-ld/v1/subscriptions"),
            headers=HEADERS,
            json=_subscription(offline.partner.url, ["no2"]),
        ) as answer:
            assert answer.status == 201, await answer.text()
        entity = copy.deepcopy(air_quality_entities("region", 1, days=1)[0])
        entity["no2"]["value"] = 180.0
        entity["@context"] = broker_context(entity["@context"], offline.contexts_url)
        await NgsiLdClient(offline.broker_url, offline.session).batch_upsert("region", [entity])
        await eventually(
            lambda: any(d["no2"]["value"] == 180.0 for n in offline.partner.received for d in n["data"]),
            "the partner to be notified through an offline broker",
            timeout=10,
        )
    finally:
        await gateway.close()


async def test_without_contexts_url_the_gateway_fails_as_against_orion_ld(offline: OfflineWorld) -> None:
    gateway = await offline.gateway(None)
    try:
        for path in ("/ngsi-ld/v1/entities", "/ngsi-ld/v1/temporal/entities"):
            async with offline.session.get(
                gateway.make_url(path), headers=HEADERS, params={"type": "AirQualityObserved", "attrs": "no2"}
            ) as answer:
                assert answer.status == 502
                assert "the broker answered 503" in (await answer.json())["detail"]
        async with offline.session.post(
            gateway.make_url("/ngsi-ld/v1/subscriptions"),
            headers=HEADERS,
            json=_subscription(offline.partner.url, ["no2"]),
        ) as answer:
            assert answer.status == 502
    finally:
        await gateway.close()


async def test_the_provenance_verifier_reads_an_offline_broker_through_the_served_contexts(
    offline: OfflineWorld,
) -> None:
    client = NgsiLdClient(offline.broker_url, offline.session)
    upstream = entity_contexts(load_profiles(REPO / "models"))
    entity = air_quality_entities("region", 1, days=1)[0]
    observed = datetime.fromisoformat(entity["no2"]["observedAt"].replace("Z", "+00:00"))
    args: tuple[Any, ...] = ("region", entity["id"], "no2", observed)

    found = await read_broker(client, broker_contexts(upstream, offline.contexts_url), *args)

    assert found is not None and found.attribute is not None and found.attribute["value"] == 0.0
    with pytest.raises(NgsiLdError):
        await read_broker(client, upstream, *args)
