"""Back-pressure: a full outbox is never a lost uplink.

The webhook answers 503 with ``Retry-After`` and stores nothing; over MQTT the message is not
acknowledged, so the broker sends it again once the outbox has room. The MQTT test runs the
whole ``listen`` assembly: real Mosquitto, the pipeline, the outbox and the writer, against the
fake NGSI-LD broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiomqtt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapter.app import build_pipeline, listen
from adapter.config import AdapterConfig, load_config
from adapter.pipeline import PipelineResult
from adapter.sources import get_parser
from adapter.sources.mqtt import client_identifier
from adapter.sources.webhook import FULL_RETRY_AFTER_S, create_webhook_app
from tests.delivery.fake_broker import FakeBroker
from tests.delivery.support import FAST, HOST, eventually, unused_port
from tests.support import body_bytes, demo_event

CONFIG = load_config(None, env={})
AIR_QUALITY = "urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01"


async def test_webhook_answers_503_with_retry_after_when_the_outbox_is_full(tmp_path: Path) -> None:
    pipeline = build_pipeline(CONFIG, tmp_path)
    assert pipeline.outbox is not None
    pipeline.outbox.max_depth = 1  # a water-meter uplink makes two entities
    spec = demo_event("03-chirpstack-webhook-water-meter")
    app = create_webhook_app(CONFIG, pipeline.process)
    try:
        async with TestClient(TestServer(app, host=HOST)) as client:
            refused = await client.post("/webhooks/eau-chirpstack?event=up", data=body_bytes(spec))
            assert refused.status == 503
            assert refused.headers["Retry-After"] == str(FULL_RETRY_AFTER_S)
            assert refused.content_type == "application/problem+json"
            assert (await refused.json())["status"] == 503
            assert pipeline.outbox.depth() == 0

            pipeline.outbox.max_depth = 10  # the writer made room
            accepted = await client.post("/webhooks/eau-chirpstack?event=up", data=body_bytes(spec))
            assert accepted.status == 200 and (await accepted.json())["status"] == "mapped"
            assert pipeline.outbox.depth() == 2
    finally:
        pipeline.close()


def uplink(f_cnt: int, minute: int) -> tuple[str, bytes]:
    spec = demo_event("01-chirpstack-air-quality")
    body = copy.deepcopy(spec["body"])
    body["fCnt"] = f_cnt
    body["time"] = f"2026-11-20T09:{minute:02d}:00Z"
    for rx in body["rxInfo"]:
        rx["nsTime"] = body["time"]
    return spec["topic"], json.dumps(body).encode()


async def create_session(config: AdapterConfig, address: tuple[str, int]) -> None:
    """Open the consumer's persistent session, so that what is published before it connects waits."""
    connection = config.connection("ville-chirpstack")
    topics = get_parser(connection.lns).mqtt_subscriptions(connection.application)
    async with aiomqtt.Client(
        *address,
        identifier=client_identifier(connection),
        clean_session=False,
        protocol=aiomqtt.ProtocolVersion.V311,
    ) as client:
        await client.subscribe([(topic, 1) for topic in topics])


@contextlib.asynccontextmanager
async def listening(config: AdapterConfig, webhook_port: int) -> AsyncIterator[list[PipelineResult]]:
    results: list[PipelineResult] = []
    task = asyncio.create_task(listen(config, http_port=webhook_port, max_events=None, emit=results.append))
    try:
        yield results
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.integration
async def test_listen_pushes_back_on_mqtt_while_the_outbox_is_full_and_loses_nothing(
    tmp_path: Path, mosquitto: tuple[str, int], fake: FakeBroker, broker_url: str
) -> None:
    host, port = mosquitto
    mqtt = dataclasses.replace(
        CONFIG.connection("ville-chirpstack"), host=host, port=port, client_id=f"test-bp-{uuid.uuid4().hex[:8]}"
    )
    config = dataclasses.replace(
        CONFIG,
        state_dir=tmp_path,
        connections=(mqtt, CONFIG.connection("eau-chirpstack")),
        broker=dataclasses.replace(FAST, url=broker_url),
        outbox_max_depth=2,
    )
    await create_session(config, mosquitto)
    fake.fail_with = 503  # the NGSI-LD broker is down: the first uplink's two entities fill the outbox
    webhook_port = unused_port()
    async with listening(config, webhook_port) as results:
        async with aiomqtt.Client(host, port, identifier=f"test-lns-{uuid.uuid4().hex[:8]}") as lns:
            for message in (uplink(5001, 1), uplink(5002, 2)):
                await lns.publish(*message, qos=1)
        await eventually(lambda: len(results) == 1 and fake.requests >= 2, "the first uplink, then failed writes")
        await asyncio.sleep(0.2)
        assert len(results) == 1  # the second uplink waits, unacknowledged, at the MQTT broker

        fake.fail_with = None  # the broker is back: the outbox drains, the second uplink comes again
        await eventually(lambda: len(fake.observations(AIR_QUALITY, "no2", "ville")) == 2, "both uplinks delivered")

        async with aiohttp.ClientSession() as session:
            spec = demo_event("03-chirpstack-webhook-water-meter")
            answer = await session.post(
                f"http://{HOST}:{webhook_port}/webhooks/eau-chirpstack?event=up", data=body_bytes(spec)
            )
            assert answer.status == 200
        await eventually(lambda: any(t == "eau" for t, _ in fake.entities), "the webhook's entities delivered")

    assert [r.status for r in results] == ["mapped", "mapped", "mapped"]
    history = fake.history[("ville", AIR_QUALITY)]
    assert [e["no2"]["observedAt"] for e in history] == ["2026-11-20T09:01:00Z", "2026-11-20T09:02:00Z"]
    assert fake.violations == []
