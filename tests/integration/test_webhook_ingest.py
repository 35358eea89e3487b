"""Webhook ingest end to end: ChirpStack HTTP integration and TTS webhooks over real HTTP.

The aiohttp application is served on a real socket (``aiohttp.test_utils.TestServer``)
and fed the events the network servers send; the real pipeline turns them into entities
or dead letters, and the answers say what happened.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf import json_format

from adapter.app import build_pipeline
from adapter.config import AdapterConfig, Connection, load_config
from adapter.pipeline import Pipeline, PipelineResult
from adapter.sources.chirpstack import EVENT_MESSAGES
from adapter.sources.webhook import create_webhook_app
from adapter.uplink import Origin
from tests.support import FIXTURES, NOW, body_bytes, demo_event

pytestmark = pytest.mark.integration

CHIRPSTACK = "/webhooks/eau-chirpstack"
TTS = "/webhooks/metropole-tts-webhook"
PROBLEM_JSON = "application/problem+json"
TOKEN = "dev-only-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclasses.dataclass
class Recorder:
    """The ``handle`` of ``adapter.app.listen``, recording what each call was given."""

    pipeline: Pipeline
    fail: bool = False
    calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __call__(
        self, body: bytes, *, lns: str, origin: Origin, topic: str | None = None, event: str | None = None
    ) -> PipelineResult:
        self.calls.append({"body": body, "lns": lns, "origin": origin, "topic": topic, "event": event})
        if self.fail:
            raise RuntimeError("simulated failure behind the handler")
        return self.pipeline.process(body, lns=lns, origin=origin, topic=topic, event=event)


@pytest.fixture
def config() -> AdapterConfig:
    """The demo configuration plus a TTS webhook connection for the "metropole" collectivity."""
    base = load_config(None)
    tts = Connection(
        name="metropole-tts-webhook",
        collectivity="metropole",
        lns="tts",
        transport="webhook",
        webhook_token_env="METROPOLE_WEBHOOK_TOKEN",
        webhook_token=TOKEN,
    )
    unset = Connection(
        name="region-tts-webhook",
        collectivity="metropole",
        lns="tts",
        transport="webhook",
        webhook_token_env="REGION_WEBHOOK_TOKEN",
    )
    return dataclasses.replace(base, connections=(*base.connections, tts, unset))


@pytest.fixture
def recorder(config: AdapterConfig, tmp_path: Path) -> Iterator[Recorder]:
    pipeline = build_pipeline(config, tmp_path)
    pipeline.clock = lambda: NOW
    try:
        yield Recorder(pipeline)
    finally:
        pipeline.close()


@pytest.fixture
async def client(config: AdapterConfig, recorder: Recorder) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_webhook_app(config, recorder))) as test_client:
        yield test_client


def fixture_body(lns: str, name: str) -> bytes:
    return (FIXTURES / lns / f"{name}.json").read_bytes()


def as_protobuf(body: bytes, event_type: str) -> bytes:
    return json_format.ParseDict(json.loads(body), EVENT_MESSAGES[event_type]()).SerializeToString()


async def test_chirpstack_uplink_becomes_entities_of_the_connection_tenant(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    spec = demo_event("03")
    response = await client.post(
        CHIRPSTACK, params={"event": "up"}, data=body_bytes(spec), headers={"Content-Type": "application/json"}
    )

    assert response.status == 200
    answer = await response.json()
    assert answer["status"] == "mapped"
    assert "urn:ngsi-ld:WaterConsumptionObserved:eau:70b3d57ed0003c03" in answer["entities"]
    (call,) = recorder.calls
    assert (call["lns"], call["origin"], call["event"], call["topic"]) == (
        "chirpstack",
        Origin("eau", "eau-chirpstack"),
        "up",
        None,
    )


async def test_chirpstack_protobuf_marshaler_as_octet_stream(client: TestClient[Any, Any], recorder: Recorder) -> None:
    binary = as_protobuf(fixture_body("chirpstack", "up_two_gateways"), "up")
    response = await client.post(
        CHIRPSTACK, params={"event": "up"}, data=binary, headers={"Content-Type": "application/octet-stream"}
    )

    assert response.status == 200
    answer = await response.json()
    assert answer == {
        "status": "mapped",
        "entities": [
            "urn:ngsi-ld:AirQualityObserved:eau:70b3d57ed0001a01",
            "urn:ngsi-ld:Device:eau:70b3d57ed0001a01",
        ],
    }
    assert recorder.calls[0]["body"] == binary


async def test_chirpstack_status_and_join_events(client: TestClient[Any, Any], recorder: Recorder) -> None:
    status = await client.post(CHIRPSTACK, params={"event": "status"}, data=fixture_body("chirpstack", "status"))
    join = await client.post(CHIRPSTACK, params={"event": "join"}, data=fixture_body("chirpstack", "join"))

    assert status.status == 200
    assert await status.json() == {"status": "device_status", "entities": ["urn:ngsi-ld:Device:eau:70b3d57ed0001a01"]}
    assert join.status == 200
    assert await join.json() == {"status": "other", "entities": []}
    assert [c["event"] for c in recorder.calls] == ["status", "join"]
    assert recorder.pipeline.counters["event:join"] == 1


async def test_tts_uplink_webhook_with_and_without_message_type(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    uplink = body_bytes(demo_event("02"))
    typed = await client.post(TTS, params={"type": "uplink_message"}, data=uplink, headers=AUTH)
    untyped = await client.post(TTS, data=uplink, headers=AUTH)

    assert typed.status == 200
    assert await typed.json() == {
        "status": "mapped",
        "entities": [
            "urn:ngsi-ld:IndoorEnvironmentObserved:metropole:70b3d57ed0002b02",
            "urn:ngsi-ld:Device:metropole:70b3d57ed0002b02",
        ],
    }
    assert untyped.status == 200
    assert await untyped.json() == {"status": "duplicate", "entities": []}
    assert [(c["lns"], c["origin"].tenant, c["event"]) for c in recorder.calls] == [
        ("tts", "metropole", "uplink_message"),
        ("tts", "metropole", None),
    ]


async def test_malformed_json_is_answered_200_and_kept_as_a_dead_letter(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    body = body_bytes(demo_event("15"))
    response = await client.post(CHIRPSTACK, params={"event": "up"}, data=body)

    assert response.status == 200
    answer = await response.json()
    assert answer["status"] == "rejected"
    assert answer["reason"] == "malformed_json"
    letter = recorder.pipeline.dead_letters.get(answer["dead_letter_id"])
    assert letter is not None
    assert (letter.body, letter.reason, letter.connection, letter.tenant, letter.event) == (
        body,
        "malformed_json",
        "eau-chirpstack",
        "eau",
        "up",
    )


@pytest.mark.parametrize("name", ["no-such-connection", "ville-chirpstack"])
async def test_unknown_or_non_webhook_connection_is_404(
    client: TestClient[Any, Any], recorder: Recorder, name: str
) -> None:
    response = await client.post(f"/webhooks/{name}", params={"event": "up"}, data=body_bytes(demo_event("03")))

    assert response.status == 404
    assert response.content_type == PROBLEM_JSON
    problem = await response.json()
    assert problem["title"] == "Not Found"
    assert name in problem["detail"]
    assert set(problem) >= {"type", "title", "detail"}
    assert recorder.calls == []


async def test_oversize_body_is_413_without_calling_the_pipeline(
    client: TestClient[Any, Any], recorder: Recorder, config: AdapterConfig
) -> None:
    too_big = b"{" + b" " * config.limits.max_body_bytes + b"}"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 64 * 1024):
            yield too_big[start : start + 64 * 1024]

    declared = await client.post(CHIRPSTACK, params={"event": "up"}, data=too_big)
    chunked = await client.post(CHIRPSTACK, params={"event": "up"}, data=chunks())

    assert config.limits.max_body_bytes == 256 * 1024
    for response in (declared, chunked):
        assert response.status == 413
        assert response.content_type == PROBLEM_JSON
        problem = await response.json()
        assert problem["status"] == 413
        assert str(config.limits.max_body_bytes) in problem["detail"]
    assert recorder.calls == []


async def test_body_at_the_limit_is_accepted(
    client: TestClient[Any, Any], recorder: Recorder, config: AdapterConfig
) -> None:
    body = body_bytes(demo_event("03"))
    padded = body + b" " * (config.limits.max_body_bytes - len(body))

    response = await client.post(CHIRPSTACK, params={"event": "up"}, data=padded)

    assert response.status == 200
    assert (await response.json())["status"] == "mapped"


async def test_handler_failure_is_500_so_that_the_sender_retries(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    recorder.fail = True
    response = await client.post(CHIRPSTACK, params={"event": "up"}, data=body_bytes(demo_event("03")))

    assert response.status == 500
    assert response.content_type == PROBLEM_JSON
    assert (await response.json())["title"] == "Internal Server Error"
    assert recorder.pipeline.dead_letters.counts() == {}


async def test_healthz(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}],
)
async def test_webhook_without_the_right_bearer_token_is_refused(
    client: TestClient[Any, Any], recorder: Recorder, headers: dict[str, str]
) -> None:
    answer = await client.post(TTS, data=fixture_body("tts", "uplink_message"), headers=headers)
    assert answer.status == 401
    assert answer.headers["Content-Type"].startswith(PROBLEM_JSON)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Bearer <token>" in (await answer.json())["detail"]
    assert recorder.calls == []


async def test_webhook_whose_token_variable_is_unset_refuses_everything(
    client: TestClient[Any, Any], recorder: Recorder
) -> None:
    answer = await client.post("/webhooks/region-tts-webhook", data=fixture_body("tts", "uplink_message"), headers=AUTH)
    assert answer.status == 503
    assert recorder.calls == []


def test_a_webhook_connection_must_choose_a_token_or_say_it_has_none(tmp_path: Path) -> None:
    from adapter.exceptions import ConfigError

    path = tmp_path / "adapter.toml"
    path.write_text(
        '[[collectivity]]\ntenant = "eau"\nname = "Eau"\n'
        '[[connection]]\nname = "eau-hook"\ncollectivity = "eau"\nlns = "chirpstack"\ntransport = "webhook"\n'
    )
    with pytest.raises(ConfigError, match="a webhook needs token_env"):
        load_config(path, env={})
    path.write_text(path.read_text() + 'token_env = "EAU_TOKEN"\n')
    assert load_config(path, env={"EAU_TOKEN": "t"}).connection("eau-hook").webhook_token == "t"
