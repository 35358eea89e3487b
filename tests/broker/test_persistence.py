"""Persistence: with a database file, everything survives a restart of the broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.ngsild.broker import create_broker_app

TENANT = {"NGSILD-Tenant": "eau"}


@asynccontextmanager
async def broker(db_path: Path | None) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_broker_app(db_path=db_path), host="127.0.0.1")) as client:
        yield client


def meter(number: int, volume: float, observed: str) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:WaterMeter:{number}",
        "type": "WaterMeter",
        "volume": {"type": "Property", "value": volume, "observedAt": observed},
    }


async def test_entities_history_tenants_and_subscriptions_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "broker.db"
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def notify(request: web.Request) -> web.Response:
        await received.put(await request.json())
        return web.Response(status=204)

    endpoint = web.Application()
    endpoint.router.add_post("/notify", notify)
    async with TestServer(endpoint, host="127.0.0.1") as receiver:
        async with broker(db) as client:
            for volume, observed in [(1.0, "2026-11-20T00:00:00Z"), (2.0, "2026-11-20T01:00:00Z")]:
                await client.post(
                    "/ngsi-ld/v1/entityOperations/upsert",
                    headers=TENANT,
                    json=[meter(2, volume, observed), meter(1, volume, observed)],
                )
            created = await client.post(
                "/ngsi-ld/v1/subscriptions",
                headers=TENANT,
                json={
                    "type": "Subscription",
                    "entities": [{"type": "WaterMeter"}],
                    "q": "volume>2",
                    "notification": {"endpoint": {"uri": str(receiver.make_url("/notify"))}},
                },
            )
            assert created.status == 201

        async with broker(db) as client:
            entities = await (
                await client.get(
                    "/ngsi-ld/v1/entities", headers=TENANT, params={"type": "WaterMeter", "options": "keyValues"}
                )
            ).json()
            history = await (
                await client.get(
                    "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WaterMeter:1",
                    headers=TENANT,
                    params={"options": "temporalValues"},
                )
            ).json()
            subscriptions = await (await client.get("/ngsi-ld/v1/subscriptions", headers=TENANT)).json()
            await client.post(
                "/ngsi-ld/v1/entityOperations/upsert", headers=TENANT, json=[meter(1, 3.0, "2026-11-20T02:00:00Z")]
            )
            notification = await asyncio.wait_for(received.get(), timeout=5)

    assert entities == [
        {"id": "urn:ngsi-ld:WaterMeter:2", "type": "WaterMeter", "volume": 2.0},
        {"id": "urn:ngsi-ld:WaterMeter:1", "type": "WaterMeter", "volume": 2.0},
    ]
    assert history["volume"]["values"] == [[1.0, "2026-11-20T00:00:00.000Z"], [2.0, "2026-11-20T01:00:00.000Z"]]
    assert [s["q"] for s in subscriptions] == ["volume>2"]
    assert [e["volume"]["value"] for e in notification["data"]] == [3.0]


async def test_without_a_file_a_new_broker_starts_empty(tmp_path: Path) -> None:
    async with broker(None) as client:
        await client.post("/ngsi-ld/v1/entities", json={"id": "urn:ngsi-ld:Thing:1", "type": "Thing"})
    async with broker(None) as client:
        found = await (await client.get("/ngsi-ld/v1/entities", params={"type": "Thing"})).json()

    assert found == []


async def test_the_database_file_is_an_sqlite_wal_database(tmp_path: Path) -> None:
    db = tmp_path / "data" / "broker.db"
    async with broker(db) as client:
        await client.post("/ngsi-ld/v1/entities", json={"id": "urn:ngsi-ld:Thing:1", "type": "Thing"})

    wal = tmp_path / "data" / "broker.db-wal"
    assert db.read_bytes().startswith(b"SQLite format 3\x00")
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed into the file on stop
