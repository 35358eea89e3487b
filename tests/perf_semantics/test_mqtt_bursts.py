"""The MQTT consumer's group commit, against a real Mosquitto.

A burst of received messages goes to ``handle_many`` at once; a message is acknowledged only
if ``handle_many`` returned a result for it (that is, after the commit): one whose outcome is an
exception, or a whole burst whose call raised, is redelivered on the next connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from adapter.app import build_pipeline
from adapter.config import AdapterConfig, Connection, load_config
from adapter.pipeline import Pipeline, PipelineResult, RawEvent
from adapter.sources.mqtt import consume_mqtt
from adapter.uplink import Origin
from tests.support import NOW, body_bytes, demo_event, eventually

pytestmark = pytest.mark.integration

WAIT_S = 5.0
FAST = {"reconnect_delay_s": 0.1, "max_reconnect_delay_s": 0.5}


@dataclass
class BurstRecorder:
    """A ``handle_many`` over the real pipeline, recording each burst; can fail chosen bodies once."""

    pipeline: Pipeline
    fail_once: set[bytes] = field(default_factory=set)  # the pipeline raises on that message
    raise_once: set[bytes] = field(default_factory=set)  # the whole call raises if the burst has it
    bursts: list[list[bytes]] = field(default_factory=list)
    results: list[tuple[bytes, PipelineResult]] = field(default_factory=list)

    def __call__(self, messages: list[tuple[bytes, str | None]], *, lns: str, origin: Origin) -> list[Any]:
        bodies = [body for body, _ in messages]
        self.bursts.append(bodies)
        if self.raise_once & set(bodies):
            self.raise_once -= set(bodies)
            raise RuntimeError("simulated failure of the commit")
        failing = self.fail_once & set(bodies)
        self.fail_once -= failing
        # A message to fail goes to an LNS that does not exist: the pipeline raises on it (and
        # stores nothing of it) inside the burst's transaction, as it would on a broken resource.
        outcomes: list[Any] = self.pipeline.process_many(
            [RawEvent(b, "no-such-lns" if b in failing else lns, origin, t) for b, t in messages]
        )
        for body, outcome in zip(bodies, outcomes, strict=True):
            if isinstance(outcome, PipelineResult):
                self.results.append((body, outcome))
        return outcomes

    def handled(self, body: bytes) -> list[str]:
        return [r.status for b, r in self.results if b == body]


def single(body: bytes, **_: Any) -> PipelineResult:
    raise AssertionError("the per-message handler must not be used when handle_many is given")


@pytest.fixture
def config() -> AdapterConfig:
    return load_config(None)


@pytest.fixture
def recorder(config: AdapterConfig, tmp_path: Path) -> Any:
    pipeline = build_pipeline(config, tmp_path)
    pipeline.clock = lambda: NOW
    yield BurstRecorder(pipeline)
    pipeline.close()


def connection_for(config: AdapterConfig, address: tuple[str, int]) -> Connection:
    host, port = address
    return dataclasses.replace(
        config.connection("ville-chirpstack"), host=host, port=port, client_id=f"test-bursts-{uuid.uuid4().hex[:8]}"
    )


@contextlib.asynccontextmanager
async def consuming(connection: Connection, recorder: BurstRecorder, **options: Any) -> AsyncIterator[None]:
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        consume_mqtt(connection, single, handle_many=recorder, stop=stop, ready=ready, **(FAST | options))
    )
    try:
        await asyncio.wait_for(ready.wait(), WAIT_S)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


async def publish(address: tuple[str, int], messages: list[tuple[str, bytes]]) -> None:
    host, port = address
    async with aiomqtt.Client(host, port, identifier=f"test-publisher-{uuid.uuid4().hex[:8]}") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


def air_quality(f_cnt: int) -> tuple[str, bytes]:
    spec = demo_event("01")
    spec["body"]["fCnt"] = f_cnt
    return spec["topic"], body_bytes(spec)


async def test_queued_messages_arrive_as_bursts_and_a_repeat_inside_one_is_a_duplicate(
    mosquitto: tuple[str, int], config: AdapterConfig, recorder: BurstRecorder
) -> None:
    connection = connection_for(config, mosquitto)
    async with consuming(connection, recorder):
        pass  # the broker now keeps a session for this client
    messages = [air_quality(n) for n in range(1, 16)]
    await publish(mosquitto, [*messages, messages[3]])  # the fourth uplink comes twice
    async with consuming(connection, recorder):
        await eventually(lambda: len(recorder.results) == 16, "the 16 messages")
    assert max(len(b) for b in recorder.bursts) > 1, "queued messages should be handled in bursts"
    assert all(recorder.handled(body) == ["mapped"] for _, body in messages if body != messages[3][1])
    assert recorder.handled(messages[3][1]) == ["mapped", "duplicate"]
    async with consuming(connection, recorder):  # everything was acknowledged: nothing comes back
        await asyncio.sleep(0.3)
    assert len(recorder.results) == 16


async def test_a_failed_message_of_a_burst_is_redelivered_and_the_others_are_acknowledged(
    mosquitto: tuple[str, int], config: AdapterConfig, recorder: BurstRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    connection = connection_for(config, mosquitto)
    messages = [air_quality(n) for n in range(1, 6)]
    recorder.fail_once.add(messages[2][1])
    with caplog.at_level(logging.WARNING, logger="adapter.sources.mqtt"):
        async with consuming(connection, recorder, reconnect_delay_s=0.2):
            await publish(mosquitto, messages)
            await eventually(lambda: len(recorder.results) == 5, "the failed message to come back")
    assert [recorder.handled(body) for _, body in messages] == [["mapped"]] * 5
    assert any("not acknowledged" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    async with consuming(connection, recorder):
        await asyncio.sleep(0.3)
    assert len(recorder.results) == 5


async def test_a_burst_whose_commit_failed_is_redelivered_whole(
    mosquitto: tuple[str, int], config: AdapterConfig, recorder: BurstRecorder
) -> None:
    connection = connection_for(config, mosquitto)
    async with consuming(connection, recorder):
        pass
    messages = [air_quality(n) for n in range(1, 9)]
    await publish(mosquitto, messages)  # queued: they arrive as bursts
    recorder.raise_once.add(messages[0][1])
    async with consuming(connection, recorder, reconnect_delay_s=0.2):
        await eventually(lambda: len(recorder.results) == 8, "every message, the failed burst again")
    failed = recorder.bursts[0]
    assert messages[0][1] in failed
    # every message of the failed burst was handled once more, and only once successfully
    assert all(recorder.handled(body) == ["mapped"] for body in failed)
    assert sum(body in burst for burst in recorder.bursts for body in failed) == 2 * len(failed)
