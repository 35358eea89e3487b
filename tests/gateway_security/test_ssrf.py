"""API7, server-side request forgery: a subscription cannot make the gateway call anything but
an allowed partner endpoint (parsed, compared on its components, resolved to public addresses
unless allowed), and a notification never follows a redirect (``adapter.gateway.endpoints``
has the unit tests; here, the same through the gateway's subscription route)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.gateway.support import air_quality_entities, local_endpoints
from tests.gateway_security.support import as_, attacked, subscribing, subscription
from tests.support import eventually


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:1/admin",
        "http://localhost:9/notify",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/notify",
        "http://0x7f.1:9/notify",
        "http://2130706433:9/notify",
        "http://127.1:9/notify",
        "http://127.0.0.1:9@evil.example/notify",
        "http://127.0.0.1:9/notify/../../admin",
        "http://127.0.0.1:9/notifyx",
        "http://127.0.0.1:9/%2e%2e/admin",
        "file:///etc/passwd",
        "gopher://127.0.0.1:9/",
        "http://127.0.0.1:9/notify#x",
        "http://10.0.0.1/notify",
        "https://partner.example.evil.com/notify",
        "http://127.0.0.1:99999/notify",
    ],
)
async def test_a_subscription_to_an_endpoint_not_allowed_is_refused(tmp_path: Path, uri: str) -> None:
    async with attacked(tmp_path, **subscribing(endpoints=local_endpoints("http://127.0.0.1:9/notify/"))) as world:
        answer = await world.http.post(
            "/ngsi-ld/v1/subscriptions", headers=as_("schools"), json=subscription(endpoint=uri)
        )
        assert answer.status in (400, 403), (uri, answer.status)


@pytest.fixture
async def redirector() -> AsyncIterator[tuple[str, list[str], str, list[str]]]:
    """A partner endpoint that answers 307 towards an internal service, and that service."""
    partner_hits: list[str] = []
    internal_hits: list[str] = []

    async def internal(request: web.Request) -> web.Response:
        internal_hits.append(request.path)
        return web.Response(status=204)

    internal_app = web.Application()
    internal_app.router.add_route("*", "/{tail:.*}", internal)
    async with TestServer(internal_app, host="127.0.0.1") as internal_server:
        target = str(internal_server.make_url("/ngsi-ld/v1/entityOperations/upsert"))

        async def partner(request: web.Request) -> web.Response:
            partner_hits.append(request.path)
            raise web.HTTPTemporaryRedirect(target)

        partner_app = web.Application()
        partner_app.router.add_post("/notify", partner)
        async with TestServer(partner_app, host="127.0.0.1") as partner_server:
            yield str(partner_server.make_url("/notify")), partner_hits, target, internal_hits


async def test_a_notification_never_follows_a_redirect(tmp_path: Path, redirector: Any) -> None:
    endpoint, partner_hits, _, internal_hits = redirector
    async with attacked(tmp_path, **subscribing(endpoints=local_endpoints(endpoint), public_url="auto")) as world:
        made = await world.http.post(
            "/ngsi-ld/v1/subscriptions",
            headers=as_("schools"),
            json=subscription(endpoint=endpoint, watchedAttributes=["no2"]),
        )
        assert made.status == 201, await made.text()
        entity = copy.deepcopy(air_quality_entities("region", 1, days=1)[0])
        entity["no2"]["value"] = 99.0
        await world.broker.batch_upsert("region", [entity])
        await eventually(lambda: bool(partner_hits), "the partner to be notified", timeout=10)
    assert internal_hits == []  # the 307 towards the broker's batch upsert was not followed
