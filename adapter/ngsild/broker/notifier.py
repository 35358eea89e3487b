"""Notification delivery: bounded queues, a few worker tasks, timeouts, recorded outcomes.

Writes only hand a (subscription, entities) job to ``submit``, which never blocks: when a
queue is full the notification is dropped and counted as a failure, the way a saturated
broker sheds load instead of slowing its writers. Rendering the entities (compaction with
the subscription's context, format) happens in the worker, off the write path. Jobs of one
subscription always go to the same worker, so its notifications arrive in write order.

Each notification is ``POST <uri>?subscriptionId=<id>`` with the NGSI-LD Notification body
and Orion-LD's headers (reference note, section 7); its outcome updates the subscription's
``timesSent``/``timesFailed``/``lastSuccess``/``lastFailure``, in memory and in the store.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

import aiohttp

from adapter.ngsild.broker.datetimes import now
from adapter.ngsild.broker.jsonld import link_header
from adapter.ngsild.broker.render import render_entity
from adapter.ngsild.broker.store import Store, StoredEntity, dumps
from adapter.ngsild.broker.subscriptions import Subscription

__all__ = ["FORWARDED_HEADERS", "Notifier"]

FORWARDED_HEADERS = ("X-Auth-Token", "Authorization")
USER_AGENT = "ngsild-adapter-embedded-broker"
_FORMAT_HEADER = {"normalized": "Normalized", "keyValues": "Simplified", "concise": "Concise"}

log = logging.getLogger(__name__)

_Job = tuple[Subscription, list[StoredEntity], Mapping[str, str]]


class Notifier:
    """Delivers notifications from ``workers`` tasks, each with a queue of ``queue_size`` jobs."""

    def __init__(self, store: Store, *, workers: int = 4, queue_size: int = 1000, timeout_s: float = 5.0) -> None:
        self._store = store
        self._queues: list[asyncio.Queue[_Job]] = [asyncio.Queue(queue_size) for _ in range(workers)]
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._tasks = [asyncio.create_task(self._work(queue)) for queue in self._queues]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def drain(self) -> None:
        """Waits until every submitted notification has been attempted."""
        for queue in self._queues:
            await queue.join()

    def submit(self, sub: Subscription, entities: list[StoredEntity], forwarded: Mapping[str, str]) -> None:
        queue = self._queues[zlib.crc32(sub.id.encode()) % len(self._queues)]
        try:
            queue.put_nowait((sub, entities, forwarded))
        except asyncio.QueueFull:
            log.warning("notification queue full: dropped a notification of %s", sub.id)
            self._record(sub, ok=False)

    async def _work(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            sub, entities, forwarded = await queue.get()
            try:
                await self._deliver(sub, entities, forwarded)
            except Exception:  # noqa: BLE001 - a worker must survive any one bad notification
                log.exception("notification of %s failed", sub.id)
                self._record(sub, ok=False)
            finally:
                queue.task_done()

    async def _deliver(self, sub: Subscription, entities: list[StoredEntity], forwarded: Mapping[str, str]) -> None:
        assert self._session is not None
        fmt = sub.format
        accept = sub.endpoint.get("accept", "application/json")
        data = [
            render_entity(
                e,
                sub.context,
                fmt=fmt,
                attrs=sub.attributes,
                sys_attrs=bool(sub.fields["notification"].get("sysAttrs")),
            )
            for e in entities
        ]
        body: dict[str, Any] = {
            "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
            "type": "Notification",
            "subscriptionId": sub.id,
            "notifiedAt": now(),
            "data": data,
        }
        headers = {"Content-Type": accept, "User-Agent": USER_AGENT, "Ngsild-Attribute-Format": _FORMAT_HEADER[fmt]}
        if accept == "application/ld+json":
            body["@context"] = sub.context.body_context()
        else:
            headers["Link"] = link_header(sub.link)
        if sub.tenant:
            headers["NGSILD-Tenant"] = sub.tenant
        headers.update(forwarded)
        uri = sub.endpoint["uri"]
        url = f"{uri}{'&' if '?' in uri else '?'}subscriptionId={sub.id}"
        try:
            async with self._session.post(url, data=dumps(body).encode(), headers=headers) as response:
                await response.read()
                ok = 200 <= response.status < 300
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.info("notification of %s to %s failed: %s", sub.id, uri, exc)
            ok = False
        self._record(sub, ok=ok)

    def _record(self, sub: Subscription, *, ok: bool) -> None:
        moment = now()
        status = sub.status
        status["timesSent"] = status.get("timesSent", 0) + 1
        status["lastNotification"] = moment
        if ok:
            status["lastSuccess"] = moment
        else:
            status["timesFailed"] = status.get("timesFailed", 0) + 1
            status["lastFailure"] = moment
        self._store.save_subscription_status(sub.tenant, sub.id, status)
