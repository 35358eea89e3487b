"""The project's HTTP servers run with the limits: ``listen``'s port (webhooks), ``serve`` and
``ngsild-adapter broker``; and the webhooks answer bounded bodies as their contract says.

Each server is started as its command starts it, on a free port, with small timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapter.app import build_pipeline, serve
from adapter.config import AdapterConfig, load_config
from adapter.demo.network import free_port
from adapter.exceptions import ConfigError
from adapter.httpserver import ServerLimits
from adapter.mapping.entities import DeviceRecord
from adapter.ngsild.broker import run_broker
from adapter.pipeline import Pipeline
from adapter.sources.webhook import serve_webhooks, webhook_limits
from adapter.uplink import Location
from tests.http_limits.support import GENEROUS_S, SMALL, raw_client, wait_listening
from tests.support import NOW, body_bytes, demo_event

SMALL_LIMITS = ServerLimits(header_timeout_s=SMALL, body_timeout_s=SMALL, keepalive_timeout_s=GENEROUS_S)
HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHo"
WEBHOOK = "/webhooks/eau-chirpstack?event=up"  # the demo's unauthenticated webhook (collectivity "eau")


@contextlib.asynccontextmanager
async def running(server: Coroutine[Any, Any, None], port: int) -> AsyncIterator[None]:
    task = asyncio.create_task(server)
    try:
        await wait_listening(port, task)
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def config(tmp_path: Path) -> AdapterConfig:
    return dataclasses.replace(load_config(None), state_dir=tmp_path / "state", http=SMALL_LIMITS)


@pytest.fixture
def pipeline(config: AdapterConfig, tmp_path: Path) -> Iterator[Pipeline]:
    p = build_pipeline(config, tmp_path / "pipeline")
    p.clock = lambda: NOW
    try:
        yield p
    finally:
        p.close()


def post(path: str, body: bytes, *, length: int | None = None) -> bytes:
    declared = len(body) if length is None else length
    return f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {declared}\r\n\r\n".encode() + body


async def test_listen_http_port_cuts_off_a_half_head(config: AdapterConfig, pipeline: Pipeline) -> None:
    port = free_port()
    async with running(serve_webhooks(config, pipeline.process, host="127.0.0.1", port=port), port):
        async with raw_client(port) as client:
            await client.send(HALF_HEAD)
            answer = await client.until_closed()
    assert answer.status == 408


async def test_webhook_body_sent_too_slowly_is_a_408_problem_and_nothing_is_processed(
    config: AdapterConfig, pipeline: Pipeline
) -> None:
    port = free_port()
    async with running(serve_webhooks(config, pipeline.process, host="127.0.0.1", port=port), port):
        async with raw_client(port) as client:
            await client.send(post(WEBHOOK, b'{"deviceInfo": ', length=2000))
            answer = await client.until_closed()
    assert answer.status == 408
    problem = json.loads(answer.body)
    assert problem["status"] == 408 and "did not arrive" in problem["detail"]
    assert pipeline.counters["received"] == 0 and pipeline.dead_letters.counts() == {}


async def test_webhook_declared_body_over_the_parsers_limit_is_413_before_reading(
    config: AdapterConfig, pipeline: Pipeline
) -> None:
    assert webhook_limits(config).max_body_bytes == config.limits.max_body_bytes == 256 * 1024
    port = free_port()
    async with running(serve_webhooks(config, pipeline.process, host="127.0.0.1", port=port), port):
        async with raw_client(port) as client:
            await client.send(post(WEBHOOK, b"", length=config.limits.max_body_bytes + 1))  # no body follows
            answer = await client.until_closed()
    assert answer.status == 413
    assert str(config.limits.max_body_bytes) in json.loads(answer.body)["detail"]
    assert pipeline.counters["received"] == 0


async def test_webhook_too_deep_body_is_a_200_dead_letter(config: AdapterConfig, pipeline: Pipeline) -> None:
    port = free_port()
    deep = b'{"deviceInfo": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    async with running(serve_webhooks(config, pipeline.process, host="127.0.0.1", port=port), port):
        async with raw_client(port) as client:
            await client.send(post(WEBHOOK, deep))
            head, body = await client.response()
    assert head.startswith(b"HTTP/1.1 200")
    answer = json.loads(body)
    assert (answer["status"], answer["reason"]) == ("rejected", "body_too_deep")
    letter = pipeline.dead_letters.get(answer["dead_letter_id"])
    assert letter is not None and letter.body == deep and letter.tenant == "eau"


async def test_webhook_uplink_of_a_device_of_another_collectivity_is_a_200_dead_letter(
    config: AdapterConfig, pipeline: Pipeline
) -> None:
    eui = "70b3d57ed0001a01"
    pipeline.devices = {eui: DeviceRecord(eui, name="ville's station", location=Location(48.1, -1.6), tenant="ville")}
    port = free_port()
    async with running(serve_webhooks(config, pipeline.process, host="127.0.0.1", port=port), port):
        async with raw_client(port) as client:
            await client.send(post(WEBHOOK, body_bytes(demo_event("01-chirpstack-air-quality"))))
            head, body = await client.response()
    answer = json.loads(body)
    assert head.startswith(b"HTTP/1.1 200")
    assert (answer["status"], answer["reason"]) == ("rejected", "device_collectivity_mismatch")
    assert pipeline.outbox is not None and pipeline.outbox.depth() == 0


async def test_embedded_broker_cuts_off_a_half_head() -> None:
    port = free_port()
    async with running(run_broker("127.0.0.1", port, None, limits=SMALL_LIMITS), port):
        async with raw_client(port) as client:
            await client.send(b"GET /ngsi-ld/v1/entities HTTP/1.1\r\nHo")
            answer = await client.until_closed()
    assert answer.status == 408


async def test_provenance_serve_cuts_off_a_half_head(config: AdapterConfig) -> None:
    port = free_port()
    async with running(serve(config, host="127.0.0.1", port=port), port):
        async with raw_client(port) as client:
            await client.send(b"GET /logs/ville/checkpoint HTTP/1.1\r\nHo")
            answer = await client.until_closed()
    assert answer.status == 408


def test_http_limits_come_from_the_configuration(tmp_path: Path) -> None:
    path = tmp_path / "adapter.toml"
    path.write_text(
        '[[collectivity]]\ntenant = "ville"\nname = "Ville"\n[http]\nheader_timeout_s = 2.5\nmax_headers = 50\n'
    )
    loaded = load_config(path, env={"NGSILD_ADAPTER_HTTP_BODY_TIMEOUT_S": "7"})
    assert loaded.http == ServerLimits(header_timeout_s=2.5, body_timeout_s=7.0, max_headers=50)
    path.write_text('[[collectivity]]\ntenant = "ville"\nname = "Ville"\n[http]\nheader_timeout = 2\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(path, env={})
    path.write_text('[[collectivity]]\ntenant = "ville"\nname = "Ville"\n[http]\nbody_timeout_s = 0\n')
    with pytest.raises(ConfigError, match="body_timeout_s"):
        load_config(path, env={})
