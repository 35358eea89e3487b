"""The broker object: everything one running broker holds, hung off its aiohttp application.

Store, context cache, rendering memo, compiled subscriptions and notifier live here and nowhere else, so
two brokers in one process (tests start many) share nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from adapter.ngsild.broker.entities import Change
from adapter.ngsild.broker.errors import BrokerError
from adapter.ngsild.broker.jsonld import ContextResolver, DocumentLoader, HttpContextLoader
from adapter.ngsild.broker.notifier import Notifier
from adapter.ngsild.broker.render import Renderings
from adapter.ngsild.broker.store import Store
from adapter.ngsild.broker.subscriptions import SubscriptionRegistry, compile_subscription

__all__ = ["Broker"]

log = logging.getLogger(__name__)

CHECKPOINT_POLL_S = 0.05


class Broker:
    """One broker: ``start`` loads subscriptions and starts delivery, ``stop`` releases all."""

    def __init__(
        self,
        db_path: Path | None,
        context_loader: DocumentLoader | None,
        reachable_contexts: Sequence[str] | None = None,
    ) -> None:
        self.store = Store(db_path)
        self._http_loader: HttpContextLoader | None = None
        if context_loader is None:
            self._http_loader = context_loader = HttpContextLoader(reachable=reachable_contexts)
        self.contexts = ContextResolver(context_loader)
        self.renderings = Renderings()
        self.subscriptions = SubscriptionRegistry()
        self.notifier = Notifier(self.store)
        self._stopping = asyncio.Event()
        self._checkpoints: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.notifier.start()
        if self.store.checkpoints:
            self._checkpoints = asyncio.create_task(self._checkpoint_regularly())
        for tenant, stored, status in self.store.subscriptions():
            fields = stored["fields"]
            try:
                context = await self.contexts.resolve(stored["@context"])
            except BrokerError as exc:
                log.warning(
                    "subscription %s: its @context is not available (%s); using the core context", fields["id"], exc
                )
                context = self.contexts.core
            try:
                compiled = compile_subscription(
                    tenant,
                    fields,
                    context,
                    stored["link"],
                    stored["createdAt"],
                    stored["modifiedAt"],
                    status,
                )
            except BrokerError as exc:  # e.g. a q an older version accepted: kept in the file, never run
                log.warning("subscription %s is not loaded: %s", fields["id"], exc)
                continue
            self.subscriptions.add(compiled)

    async def stop(self) -> None:
        self._stopping.set()
        if self._checkpoints is not None:
            await self._checkpoints
        await self.notifier.stop()
        if self._http_loader is not None:
            await self._http_loader.close()
        self.store.close()

    def publish(self, tenant: str, changes: Sequence[Change], forwarded: Mapping[str, str]) -> None:
        """Queues one notification per subscription that selects some of ``changes``."""
        for sub, entities in self.subscriptions.match(tenant, changes):
            self.notifier.submit(sub, entities, forwarded)

    async def _checkpoint_regularly(self) -> None:
        # Soon after each commit, while the next request is still being parsed: the WAL only
        # restarts from its beginning when a checkpoint has caught up before the next write.
        # The loop finishes a running checkpoint before stop() closes the database.
        checkpointed = 0
        while not self._stopping.is_set():
            if self.store.commits == checkpointed:
                try:
                    await asyncio.wait_for(self._stopping.wait(), CHECKPOINT_POLL_S)
                except TimeoutError:
                    pass
                continue
            checkpointed = self.store.commits
            await asyncio.to_thread(self.store.checkpoint)
