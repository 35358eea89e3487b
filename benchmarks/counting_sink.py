"""A minimal NGSI-LD sink that answers batch upserts the way Orion-LD does, and counts.

The end-to-end benchmark runs the adapter against this sink so that the adapter is
measured, not a broker: it parses each batch, answers ``201`` with the ids it had not
seen (Orion-LD's experimental mode), or ``204`` when every entity already existed, and
records, for every entity, how long after its ``observedAt`` it was acknowledged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

__all__ = ["CountingSink"]

UPSERT = "/ngsi-ld/v1/entityOperations/upsert"


@dataclass
class CountingSink:
    entities: int = 0
    batches: int = 0
    seen: set[tuple[str, str]] = field(default_factory=set)  # (tenant, id)
    latencies_s: list[float] = field(default_factory=list)
    first_at: float | None = None
    last_at: float | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_post(UPSERT, self._upsert)
        return app

    async def _upsert(self, request: web.Request) -> web.Response:
        tenant = request.headers.get("NGSILD-Tenant", "")
        batch = json.loads(await request.read())
        now = time.time()
        created = []
        for entity in batch:
            key = (tenant, entity["id"])
            if key not in self.seen:
                self.seen.add(key)
                created.append(entity["id"])
            observed = _observed_at(entity)
            if observed is not None and entity["type"] != "Device":
                self.latencies_s.append(now - observed)
        self.entities += len(batch)
        self.batches += 1
        self.first_at = self.first_at or now
        self.last_at = now
        if created:
            return web.json_response(created, status=201)
        return web.Response(status=204)


def _observed_at(entity: dict) -> float | None:
    for value in entity.values():
        if isinstance(value, dict) and "observedAt" in value:
            return datetime.fromisoformat(value["observedAt"].replace("Z", "+00:00")).timestamp()
    return None
