"""Through a real Mosquitto: a body too deep (or of a device of another collectivity) becomes a
dead letter and its message is acknowledged, so the broker never delivers it again.

Before the bound, Python's ``json`` raised ``RecursionError`` on such a body: the handler
failed, the message stayed unacknowledged, and it came back at every reconnection. The check
that it is acknowledged needs no sleep: after reconnecting with the same persistent session,
the broker resends unacknowledged messages before any newer one, so once a message published
after the reconnection is processed, a redelivery would already have been seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from adapter.app import build_pipeline
from adapter.config import AdapterConfig, Connection, load_config
from adapter.mapping.entities import DeviceRecord
from adapter.pipeline import Pipeline, PipelineResult, RawEvent
from adapter.sources.mqtt import consume_mqtt
from adapter.uplink import Location, Origin
from tests.support import NOW, body_bytes, demo_event, eventually

pytestmark = pytest.mark.integration

WAIT_S = 20.0


@dataclasses.dataclass
class Seen:
    """The pipeline behind ``consume_mqtt``, recording every body it was handed (both entry points)."""

    pipeline: Pipeline
    bodies: list[bytes] = dataclasses.field(default_factory=list)
    results: dict[bytes, list[PipelineResult]] = dataclasses.field(default_factory=dict)

    def handle(
        self, body: bytes, *, lns: str, origin: Origin, topic: str | None = None, event: str | None = None
    ) -> PipelineResult:
        result = self.pipeline.process(body, lns=lns, origin=origin, topic=topic, event=event)
        self._keep(body, result)
        return result

    def handle_many(
        self, messages: list[tuple[bytes, str | None]], *, lns: str, origin: Origin
    ) -> Sequence[PipelineResult | Exception]:
        outcomes = self.pipeline.process_many([RawEvent(body, lns, origin, topic) for body, topic in messages])
        for (body, _), outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, PipelineResult):
                self._keep(body, outcome)
        return outcomes

    def _keep(self, body: bytes, result: PipelineResult) -> None:
        self.bodies.append(body)
        self.results.setdefault(body, []).append(result)


@pytest.fixture
def config() -> AdapterConfig:
    return load_config(None)


@pytest.fixture
def seen(config: AdapterConfig, tmp_path: Path) -> Iterator[Seen]:
    pipeline = build_pipeline(config, tmp_path)
    pipeline.clock = lambda: NOW
    try:
        yield Seen(pipeline)
    finally:
        pipeline.close()


@contextlib.asynccontextmanager
async def consuming(connection: Connection, seen: Seen, burst: bool) -> AsyncIterator[None]:
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        consume_mqtt(
            connection,
            seen.handle,
            stop=stop,
            ready=ready,
            reconnect_delay_s=0.1,
            max_reconnect_delay_s=0.5,
            handle_many=seen.handle_many if burst else None,
        )
    )
    try:
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({waiter, task}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        assert waiter in done, "consume_mqtt did not subscribe"
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


async def publish(address: tuple[str, int], messages: list[tuple[str, bytes]]) -> None:
    host, port = address
    async with aiomqtt.Client(host, port, identifier=f"test-publisher-{uuid.uuid4().hex[:8]}") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


def message(name: str, **changes: Any) -> tuple[str, bytes]:
    spec = demo_event(name)
    body = spec["body"]
    if changes:
        body = {**body, **changes}
    return spec["topic"], body_bytes({"body": body})


async def assert_acknowledged_once(
    address: tuple[str, int], connection: Connection, seen: Seen, burst: bool, refused: bytes, reason: str
) -> None:
    """``refused`` was handled once, as a dead letter with ``reason``, and is not delivered again."""
    first_marker = message("08-chirpstack-streetlight")
    async with consuming(connection, seen, burst):
        await publish(address, [(demo_event("01-chirpstack-air-quality")["topic"], refused), first_marker])
        await eventually(lambda: first_marker[1] in seen.results, "the message after the refused one", WAIT_S)
    handled = seen.results.get(refused, [])
    assert [r.reason for r in handled] == [reason], "the refused message did not become one dead letter"
    letter = seen.pipeline.dead_letters.get(handled[0].dead_letter_id or -1)
    assert letter is not None and letter.body == refused

    second_marker = message("08-chirpstack-streetlight", fCnt=99_999)
    async with consuming(connection, seen, burst):  # the same persistent session
        await publish(address, [second_marker])
        await eventually(lambda: second_marker[1] in seen.results, "a message published after reconnecting", WAIT_S)
    assert seen.bodies.count(refused) == 1, "the refused message was delivered again: it had not been acknowledged"


def ville(config: AdapterConfig, address: tuple[str, int]) -> Connection:
    host, port = address
    return dataclasses.replace(
        config.connection("ville-chirpstack"), host=host, port=port, client_id=f"test-bounded-{uuid.uuid4().hex[:8]}"
    )


@pytest.mark.parametrize("burst", [False, True], ids=["one-by-one", "group-commit"])
async def test_too_deep_body_is_a_dead_letter_and_acknowledged(
    mosquitto: tuple[str, int], config: AdapterConfig, seen: Seen, burst: bool
) -> None:
    deep = b'{"deviceInfo": ' + b"[" * 200_000 + b"]" * 50_000
    await assert_acknowledged_once(mosquitto, ville(config, mosquitto), seen, burst, deep, "body_too_deep")


async def test_too_large_body_is_a_dead_letter_and_acknowledged(
    mosquitto: tuple[str, int], config: AdapterConfig, seen: Seen
) -> None:
    large = b"{" + b" " * config.limits.max_body_bytes + b"}"
    await assert_acknowledged_once(mosquitto, ville(config, mosquitto), seen, True, large, "body_too_large")


async def test_uplink_of_a_device_of_another_collectivity_is_a_dead_letter_and_acknowledged(
    mosquitto: tuple[str, int], config: AdapterConfig, seen: Seen
) -> None:
    eui = "70b3d57ed0001a01"
    seen.pipeline.devices = {
        eui: DeviceRecord(eui, name="metropole's", location=Location(45.7, 4.8), tenant="metropole")
    }
    _, uplink = message("01-chirpstack-air-quality")
    await assert_acknowledged_once(
        mosquitto, ville(config, mosquitto), seen, True, uplink, "device_collectivity_mismatch"
    )
    assert seen.pipeline.ledger is not None and seen.pipeline.ledger.size("ville") == 0
