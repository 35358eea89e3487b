"""Helpers of the delivery tests: entities as the pipeline makes them, waiting, running a writer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from adapter.config import BrokerSettings
from adapter.demo.network import free_port
from adapter.deadletter import DeadLetterStore
from adapter.delivery import BrokerWriter
from adapter.ngsild.client import NgsiLdClient
from adapter.outbox import Outbox, UplinkRef
from tests.support import eventually  # noqa: F401  (re-exported for the delivery tests)

HOST = "127.0.0.1"
WAIT_S = 5.0
CONTEXT = [
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld",
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
]
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SOURCE = UplinkRef("ville-chirpstack", "chirpstack", "up", "70b3d57ed0001a01", 1)
#: quick limits for tests: the real defaults wait seconds between retries
FAST = BrokerSettings(batch_delay_s=0.01, retry_initial_s=0.02, retry_max_s=0.1, request_timeout_s=1.0)


def make_entity(n: int, at: datetime = T0, value: float = 1.0, *, pad: int = 0) -> dict[str, Any]:
    """An AirQualityObserved entity as the pipeline makes it (normalized, with its @context)."""
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:AirQualityObserved:ville:{n:016x}",
        "type": "AirQualityObserved",
        "no2": {"type": "Property", "value": value, "unitCode": "GQ", "observedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "@context": CONTEXT,
    }
    if pad:
        entity["description"] = {"type": "Property", "value": "x" * pad}
    return entity


def queue(outbox: Outbox, entities: list[dict[str, Any]], *, tenant: str = "ville", at: datetime = T0) -> list[int]:
    return outbox.put(tenant, entities, observed_at=at, source=SOURCE)


def observation(n: int, k: int) -> tuple[dict[str, Any], datetime]:
    """Observation ``k`` of entity ``n``: its value is ``k``, a minute after observation k-1."""
    at = T0 + timedelta(minutes=k)
    return make_entity(n, at, float(k)), at


unused_port = free_port


@contextlib.asynccontextmanager
async def running(writer: BrokerWriter) -> AsyncIterator[asyncio.Task[None]]:
    """Run the writer for the block, then cancel it as a shutdown would."""
    task = asyncio.create_task(writer.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def writer_for(
    outbox: Outbox,
    url: str,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
    settings: BrokerSettings = FAST,
    **options: Any,
) -> BrokerWriter:
    client = NgsiLdClient(url, session, timeout_s=settings.request_timeout_s)
    return BrokerWriter(outbox, client, dead_letters, settings, **options)
