"""Temporal reads go to ``[broker] temporal_url`` when it is set (Mintaka beside Orion-LD, which
answers temporal queries 501), everything else to the broker: the adapter's client and the
gateway's upstream requests alike. Two recording servers on 127.0.0.1 stand for Orion-LD and Mintaka."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from adapter.config import BrokerSettings
from adapter.gateway import upstream
from adapter.ngsild.client import NgsiLdClient, encode_entity


@dataclass
class Recorder:
    name: str
    paths: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(f"{request.method} {request.path}")
        if request.path.startswith("/ngsi-ld/v1/temporal/") and request.method == "GET":
            return web.json_response({"id": "urn:ngsi-ld:X:1", "type": "X", "answeredBy": self.name})
        if request.path.startswith("/ngsi-ld/v1/temporal/"):
            return web.Response(status=204)
        return web.json_response({"id": "urn:ngsi-ld:X:1", "type": "X", "answeredBy": self.name})


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Recorder, str, Recorder, str]]:
    runners, out = [], []
    for name in ("orion", "mintaka"):
        recorder = Recorder(name)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recorder.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        runners.append(runner)
        out += [recorder, f"http://127.0.0.1:{port}"]
    yield out[0], out[1], out[2], out[3]
    for runner in runners:
        await runner.cleanup()


async def test_the_client_reads_history_from_temporal_url_and_writes_to_the_broker(servers) -> None:
    orion, orion_url, mintaka, mintaka_url = servers
    settings = BrokerSettings(url=orion_url, temporal_url=mintaka_url)
    async with aiohttp.ClientSession() as session:
        client = NgsiLdClient.from_settings(settings, session)
        history = await client.get_temporal("ville", "urn:ngsi-ld:X:1", last_n=1)
        current = await client.get_entity("ville", "urn:ngsi-ld:X:1")
        await client.add_temporal_attributes(
            "ville",
            "urn:ngsi-ld:X:1",
            encode_entity({"no2": [{"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}]}),
        )
    assert history is not None and history["answeredBy"] == "mintaka"
    assert current is not None and current["answeredBy"] == "orion"
    assert mintaka.paths == ["GET /ngsi-ld/v1/temporal/entities/urn:ngsi-ld:X:1"]
    assert orion.paths == [
        "GET /ngsi-ld/v1/entities/urn:ngsi-ld:X:1",
        "POST /ngsi-ld/v1/temporal/entities/urn:ngsi-ld:X:1/attrs",
    ]


async def test_without_temporal_url_everything_goes_to_the_broker(servers) -> None:
    orion, orion_url, mintaka, _ = servers
    async with aiohttp.ClientSession() as session:
        client = NgsiLdClient.from_settings(BrokerSettings(url=orion_url), session)
        await client.get_temporal("ville", "urn:ngsi-ld:X:1")
    assert orion.paths == ["GET /ngsi-ld/v1/temporal/entities/urn:ngsi-ld:X:1"] and mintaka.paths == []


@pytest.mark.parametrize(
    ("built", "to_mintaka"),
    [
        (upstream.Upstream("GET", ("ngsi-ld", "v1", "temporal", "entities")), True),
        (upstream.Upstream("GET", ("ngsi-ld", "v1", "temporal", "entities", "urn:ngsi-ld:X:1")), True),
        (upstream.Upstream("GET", ("ngsi-ld", "v1", "entities")), False),
        (upstream.Upstream("POST", ("ngsi-ld", "v1", "subscriptions")), False),
        (upstream.Upstream("POST", ("ngsi-ld", "v1", "temporal", "entities", "urn:ngsi-ld:X:1", "attrs")), False),
    ],
)
async def test_the_gateway_sends_temporal_reads_to_temporal_base(
    servers, built: upstream.Upstream, to_mintaka: bool
) -> None:
    orion, orion_url, mintaka, mintaka_url = servers
    async with aiohttp.ClientSession() as session:
        answer = await upstream.send(session, orion_url, built, temporal_base=mintaka_url)
    assert answer.status in (200, 204)
    assert (len(mintaka.paths), len(orion.paths)) == ((1, 0) if to_mintaka else (0, 1))
