"""Shared fixtures: a real Mosquitto broker for the integration tests, a real Keycloak, and the
provenance world.

The MQTT tests run against the real broker rather than a fake, because what they check
(QoS 1 redelivery, persistent sessions, reconnection after a broker restart) is broker
behaviour. ``adapter.demo.mosquitto`` runs it; a broker that cannot start fails the test
(it is installed by ``make setup``), it is never skipped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from adapter.demo.keycloak import KeycloakError, KeycloakServer
from adapter.demo.mosquitto import MosquittoBroker, MosquittoError, TlsListener

if TYPE_CHECKING:
    from tests.provenance_e2e.support import World

__all__ = ["MosquittoBroker"]


@pytest.fixture(scope="session", autouse=True)
def provenance_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Log signing keys of the whole run in a temporary folder, never in the user's data dir
    (subprocesses inherit it through the environment)."""
    folder = tmp_path_factory.mktemp("keys")
    previous = os.environ.get("NGSILD_ADAPTER_PROVENANCE_KEY_DIR")
    os.environ["NGSILD_ADAPTER_PROVENANCE_KEY_DIR"] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            del os.environ["NGSILD_ADAPTER_PROVENANCE_KEY_DIR"]
        else:
            os.environ["NGSILD_ADAPTER_PROVENANCE_KEY_DIR"] = previous


def _started(broker_dir: Path, tls: TlsListener | None = None) -> MosquittoBroker:
    try:
        broker = MosquittoBroker(broker_dir, tls)
        broker.start()
    except MosquittoError as exc:
        pytest.fail(str(exc), pytrace=False)
    return broker


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """One broker for the whole session: ``(host, port)``."""
    broker = _started(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker.address
    finally:
        broker.stop()


@pytest.fixture
def restartable_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A broker of the test's own, started, that the test may ``stop()`` and ``start()`` again."""
    broker = _started(tmp_path_factory.mktemp("mosquitto-restartable"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def tls_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[TlsListener], MosquittoBroker]]:
    """Start brokers of the test's own with a TLS listener (``tls_address``) beside the anonymous
    plaintext one (``address``, for publishers); all are stopped when the test ends."""
    brokers: list[MosquittoBroker] = []

    def start(tls: TlsListener) -> MosquittoBroker:
        brokers.append(_started(tmp_path_factory.mktemp("mosquitto-tls"), tls))
        return brokers[-1]

    try:
        yield start
    finally:
        for broker in brokers:
            broker.stop()


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """One Keycloak for the whole run, with the realms ``ville``, ``region`` and ``eau``."""
    try:
        server = KeycloakServer(tmp_path_factory.mktemp("keycloak"))
        server.start()
    except KeycloakError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The provenance world (``tests/provenance_e2e/support.py``), built once per run on first
    use; each test takes its own copy (``World.copy``) to read or tamper with."""
    from tests.provenance_e2e.support import build_world  # the whole adapter: only when a test asks

    return asyncio.run(build_world(tmp_path_factory.mktemp("world") / "w"))
