"""MQTT over TLS against the real Mosquitto: client certificates, server verification, passwords.

Each test makes its own CA, server and client certificates (``certificates.Authority``),
starts a Mosquitto with a TLS listener on 127.0.0.1 (``tls_mosquitto``) and runs
``consume_mqtt`` from a configuration file loaded by ``load_config`` (paths relative to it).
Publishers, standing for the network server, use the broker's anonymous plaintext listener.
A refused handshake must give one error line saying what to check, no traceback, retries
with backoff, and never a session with the broker (its log is read to check the last).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from adapter.app import build_pipeline
from adapter.config import Connection, load_config
from adapter.demo.mosquitto import MosquittoBroker, TlsListener
from adapter.exceptions import ConfigError
from adapter.pipeline import Pipeline, PipelineResult
from adapter.sources.mqtt import consume_mqtt
from adapter.sources.mqtt_tls import MqttTlsError
from adapter.uplink import Origin
from tests.integration.certificates import Authority, Issued
from tests.support import NOW, body_bytes, demo_event, eventually

pytestmark = pytest.mark.integration

WAIT_S = 10.0
FAST = {"reconnect_delay_s": 0.05, "max_reconnect_delay_s": 0.2}
StartBroker = Callable[[TlsListener], MosquittoBroker]


@dataclass
class Pki:
    """The broker's CA, another CA nobody trusts, and what they issued."""

    folder: Path
    ca: Authority
    stranger: Authority
    server: Issued
    client: Issued  # CN adapter-ville, signed by the broker's CA

    def listener(self, **options: Any) -> TlsListener:  # noqa: ANN401
        return TlsListener(self.ca.ca_file, self.server.cert_file, self.server.key_file, **options)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    folder = tmp_path / "pki"
    folder.mkdir()
    ca, stranger = Authority(folder, "broker"), Authority(folder, "stranger")
    return Pki(folder, ca, stranger, ca.server(), ca.client("adapter-ville"))


@dataclass
class Received:
    """``consume_mqtt``'s handler: each body through the demo pipeline."""

    pipeline: Pipeline
    results: list[PipelineResult] = field(default_factory=list)

    def __call__(
        self, body: bytes, *, lns: str, origin: Origin, topic: str | None = None, event: str | None = None
    ) -> PipelineResult:
        result = self.pipeline.process(body, lns=lns, origin=origin, topic=topic, event=event)
        self.results.append(result)
        return result


@pytest.fixture
def received(tmp_path: Path) -> Iterator[Received]:
    pipeline = build_pipeline(load_config(None), tmp_path / "state")
    pipeline.clock = lambda: NOW
    try:
        yield Received(pipeline)
    finally:
        pipeline.close()


def connection(tmp_path: Path, address: tuple[str, int], keys: str, env: Mapping[str, str] | None = None) -> Connection:
    """The ``ville-chirpstack`` connection of a configuration file in ``tmp_path`` (file paths
    in ``keys`` are relative to it, e.g. ``pki/broker-ca.pem``)."""
    host, port = address
    path = tmp_path / "adapter.toml"
    path.write_text(
        f"""
[[collectivity]]
tenant = "ville"
name = "Ville"

[[connection]]
name = "ville-chirpstack"
collectivity = "ville"
lns = "chirpstack"
host = "{host}"
port = {port}
client_id = "test-tls-{uuid.uuid4().hex[:8]}"
{keys}
""",
        encoding="utf-8",
    )
    return load_config(path, env=env or {}).connection("ville-chirpstack")


def client_keys(pki: Pki, issued: Issued | None = None, ca: Authority | None = None) -> str:
    cert = issued or pki.client
    return (
        f'tls = true\nca_file = "pki/{(ca or pki.ca).ca_file.name}"\n'
        f'cert_file = "pki/{cert.cert_file.name}"\nkey_file = "pki/{cert.key_file.name}"\n'
    )


@contextlib.asynccontextmanager
async def consuming(conn: Connection, handle: Received) -> AsyncIterator[asyncio.Event]:
    """Run ``consume_mqtt`` for the block; yields its ``ready`` event; it must stop cleanly."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(consume_mqtt(conn, handle, stop=stop, ready=ready, **FAST))
    try:
        yield ready
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)  # raises what the consumer raised, if anything


async def wait_ready(ready: asyncio.Event) -> None:
    await asyncio.wait_for(ready.wait(), WAIT_S)


async def publish(address: tuple[str, int], topic: str, payload: bytes) -> None:
    host, port = address
    async with aiomqtt.Client(host, port, identifier=f"test-lns-{uuid.uuid4().hex[:8]}") as client:
        await client.publish(topic, payload, qos=1)


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("adapter.sources.mqtt")]


def sessions(broker: MosquittoBroker, conn: Connection) -> int:
    """How many times the broker accepted a CONNECT from the connection's client identifier."""
    assert conn.client_id is not None
    text = broker.log_file.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if "New client connected" in line and conn.client_id in line)


async def refused(caplog: pytest.LogCaptureFixture, conn: Connection, handle: Received) -> list[str]:
    """Run the consumer until it has failed three times (it retries); the error messages."""
    with caplog.at_level(logging.DEBUG, logger="adapter.sources.mqtt"):
        async with consuming(conn, handle) as ready:
            await eventually(lambda: len(errors(caplog)) >= 3, "three failed attempts", timeout=WAIT_S)
            assert not ready.is_set()
    found = errors(caplog)
    assert all(r.exc_info is None for r in found), "a refused handshake is a line, not a traceback"
    assert len({r.getMessage().split("reconnecting in")[0] for r in found}) == 1, "the same error each attempt"
    return [r.getMessage() for r in found]


async def test_an_uplink_arrives_over_tls_with_a_client_certificate_as_its_user(
    tmp_path: Path, pki: Pki, tls_mosquitto: StartBroker, received: Received
) -> None:
    broker = tls_mosquitto(pki.listener(use_identity_as_username=True))
    conn = connection(tmp_path, broker.tls_address, client_keys(pki))
    spec = demo_event("01-chirpstack-air-quality")
    async with consuming(conn, received) as ready:
        await wait_ready(ready)
        await publish(broker.address, spec["topic"], body_bytes(spec))
        await eventually(lambda: len(received.results) == 1, "the uplink sent over TLS")
    result = received.results[0]
    assert result.entities, result
    assert {e["type"] for e in result.entities} >= {"AirQualityObserved"}
    log = broker.log_file.read_text(errors="replace")
    # the broker logged the client in under its certificate's CN, on the TLS listener
    assert f"as {conn.client_id} " in log and "u'adapter-ville'" in log


async def test_a_server_certificate_from_an_untrusted_ca_is_refused(
    tmp_path: Path, pki: Pki, tls_mosquitto: StartBroker, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    broker = tls_mosquitto(pki.listener(use_identity_as_username=True))
    conn = connection(tmp_path, broker.tls_address, client_keys(pki, ca=pki.stranger))
    messages = await refused(caplog, conn, received)
    assert "the server's certificate is not signed by a CA in ca_file" in messages[0]
    assert "CERTIFICATE_VERIFY_FAILED" in messages[0]
    assert sessions(broker, conn) == 0


async def test_no_client_certificate_is_refused_by_the_broker(
    tmp_path: Path, pki: Pki, tls_mosquitto: StartBroker, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    broker = tls_mosquitto(pki.listener(use_identity_as_username=True))
    conn = connection(tmp_path, broker.tls_address, f'tls = true\nca_file = "pki/{pki.ca.ca_file.name}"\n')
    messages = await refused(caplog, conn, received)
    assert "the broker requires a client certificate (cert_file and key_file)" in messages[0]
    assert sessions(broker, conn) == 0


async def test_a_client_certificate_from_another_ca_is_refused_by_the_broker(
    tmp_path: Path, pki: Pki, tls_mosquitto: StartBroker, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    broker = tls_mosquitto(pki.listener(use_identity_as_username=True))
    conn = connection(tmp_path, broker.tls_address, client_keys(pki, pki.stranger.client("adapter-ville")))
    messages = await refused(caplog, conn, received)
    assert "the broker does not trust the client certificate" in messages[0]
    assert sessions(broker, conn) == 0


async def test_an_expired_client_certificate_stops_the_consumer_before_connecting(
    tmp_path: Path, pki: Pki, tls_mosquitto: StartBroker, received: Received
) -> None:
    broker = tls_mosquitto(pki.listener(use_identity_as_username=True))
    conn = connection(tmp_path, broker.tls_address, client_keys(pki, pki.ca.client("adapter-ville", expired=True)))
    with pytest.raises(MqttTlsError, match=r"connection ville-chirpstack: the client certificate .* expired on"):
        await consume_mqtt(conn, received, **FAST)
    assert sessions(broker, conn) == 0


async def test_the_server_name_is_verified_and_tls_server_name_names_it(
    tmp_path: Path, pki: Pki, tls_mosquitto: StartBroker, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    server = pki.ca.server(dns_names=("mqtt.ville.test",), ips=())
    broker = tls_mosquitto(
        TlsListener(pki.ca.ca_file, server.cert_file, server.key_file, use_identity_as_username=True)
    )
    by_address = connection(tmp_path, broker.tls_address, client_keys(pki))
    messages = await refused(caplog, by_address, received)
    assert "the server's certificate does not name this address (see tls_server_name)" in messages[0]
    named = connection(tmp_path, broker.tls_address, client_keys(pki) + 'tls_server_name = "mqtt.ville.test"\n')
    async with consuming(named, received) as ready:
        await wait_ready(ready)
    assert sessions(broker, named) == 1


async def test_tls_never_falls_back_to_plaintext(
    tmp_path: Path, pki: Pki, tls_mosquitto: StartBroker, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    broker = tls_mosquitto(pki.listener(use_identity_as_username=True))
    conn = connection(tmp_path, broker.address, client_keys(pki))  # the plaintext listener
    messages = await refused(caplog, conn, received)
    assert "closed the connection during the TLS handshake (a plaintext MQTT port?)" in messages[0]
    assert sessions(broker, conn) == 0


async def test_a_password_from_the_environment_logs_in_over_tls(
    tmp_path: Path, pki: Pki, tls_mosquitto: StartBroker, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    # The Things Stack's shape: no client certificate, the application id and an API key
    api_key = "NNSXS.TESTKEY." + uuid.uuid4().hex
    broker = tls_mosquitto(pki.listener(require_certificate=False, passwords={"ville@ttn": api_key}))
    keys = (
        f'tls = true\nca_file = "pki/{pki.ca.ca_file.name}"\nusername = "ville@ttn"\npassword_env = "VILLE_TTS_KEY"\n'
    )
    conn = connection(tmp_path, broker.tls_address, keys, env={"VILLE_TTS_KEY": api_key})
    assert api_key not in repr(conn)
    spec = demo_event("01-chirpstack-air-quality")
    async with consuming(conn, received) as ready:
        await wait_ready(ready)
        await publish(broker.address, spec["topic"], body_bytes(spec))
        await eventually(lambda: len(received.results) == 1, "the uplink sent over TLS")
    assert "u'ville@ttn'" in broker.log_file.read_text(errors="replace")

    wrong = connection(tmp_path, broker.tls_address, keys, env={"VILLE_TTS_KEY": "NNSXS.WRONG"})
    messages = await refused(caplog, wrong, received)
    assert "refused the login" in messages[0]

    unset = connection(tmp_path, broker.tls_address, keys, env={})
    with pytest.raises(
        ConfigError, match="connection ville-chirpstack: password_env names VILLE_TTS_KEY, which is not set"
    ):
        await consume_mqtt(unset, received, **FAST)


async def test_certificate_files_are_read_again_at_each_reconnection(
    tmp_path: Path, pki: Pki, tls_mosquitto: StartBroker, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    broker = tls_mosquitto(pki.listener(use_identity_as_username=True))
    live = Issued(pki.folder / "live.pem", pki.folder / "live.key")  # the files the connection names
    good, expired = pki.client, pki.ca.client("adapter-ville", expired=True)

    def install(issued: Issued) -> None:
        live.cert_file.write_bytes(issued.cert_file.read_bytes())
        live.key_file.write_bytes(issued.key_file.read_bytes())

    install(good)
    conn = connection(tmp_path, broker.tls_address, client_keys(pki, live))
    with caplog.at_level(logging.INFO, logger="adapter.sources.mqtt"):
        async with consuming(conn, received) as ready:
            await wait_ready(ready)
            ready.clear()
            install(expired)  # replaced on disk while connected: used at the next connection only
            broker.stop()
            broker.start()
            await eventually(
                lambda: any("expired on" in r.getMessage() for r in errors(caplog)),
                "the expired certificate refused at reconnection",
                timeout=WAIT_S,
            )
            assert not ready.is_set()
            install(good)  # renewed: picked up without a restart
            await wait_ready(ready)
    assert sessions(broker, conn) == 2
    assert all(r.exc_info is None for r in errors(caplog))
