"""The broker writer: empties the outbox into the NGSI-LD broker with batch upserts.

Batches
    One batch holds entities of one tenant (``NGSILD-Tenant``) and closes when it reaches
    ``batch_max_entities`` (at most 1,000) or would reach ``batch_max_bytes`` (the body stays
    strictly under 1 MiB): Orion-LD's limits. A batch that is not full leaves once its oldest
    entity has waited ``batch_delay_s`` in the outbox, so a backlog leaves at once and live
    traffic waits a few milliseconds for companions. Up to ``max_in_flight`` batches are sent
    at the same time, across tenants or within one.

Order per entity
    An entity never appears twice in one batch, and its next observation is not sent before
    the previous one was answered: the broker's temporal history (TRoE) records each upsert
    as it arrives, so observation N+1 overtaking N would be recorded out of order, and update
    semantics would leave N's older values as the current ones. Pending observations of an
    entity are sent in observation order (``observedAt``, then queue order). After an
    outage, an entity with many observations waiting goes out one observation per batch, in
    consecutive batches, so every observation reaches the history.

What an answer does
    201 or 204: every entity was written; its items leave the outbox (``delivered``).
    207: read entity by entity. An entity in ``errors`` with a 4xx status (or none) is refused:
    it goes to the dead-letter store (reason ``broker_refused``, the broker's ProblemDetails as
    detail, the entity as body) and leaves the outbox; one with a 5xx stays and is retried.
    The others are delivered.
    A batch refused whole (400, 413, 415, 422: the entities are at fault) is never sent again:
    each of its entities becomes a dead letter with the broker's ProblemDetails.
    Anything else (5xx, 408, 429, timeout, refused or dropped connection, and 4xx that point at
    the deployment rather than the data: 401, 403, 404...): the entities stay in the outbox and
    no batch leaves until a capped exponential backoff with jitter has passed
    (``retry_initial_s`` doubling up to ``retry_max_s``, each delay drawn in [d/2, d]); then a
    single batch probes the broker, and the others follow once one succeeds.
    An entity too large for any batch is refused the same way without being sent (a 413 problem).
    A dead letter is filed before its item leaves the outbox: a crash in between files it twice,
    never zero times.

Crashes
    Items leave the outbox only after the broker's answer. After a crash or a cancellation,
    the next writer sends again whatever is still there; upserts are idempotent, so an entity
    written just before the crash is written a second time with the same values (the temporal
    history may then hold that instance twice).

The writer reads the outbox's new items when woken (``wake()``, after each ``put`` in this
process) and at least every ``poll_s`` (items queued by another process, such as
``deadletter replay``). It must be the only one taking items out of its outbox.

Receipts
    With ``receipts`` (the provenance ledger), every answered batch leaves a receipt: when it
    was sent and answered, the broker, its status, and the provenance records whose entities it
    delivered or the broker refused (``docs/provenance.md``, the delivery activity).
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from adapter import __version__
from adapter.config import BrokerSettings
from adapter.deadletter import DeadLetterStore
from adapter.ngsild.client import (
    BatchOutcome,
    BrokerRejectedBatch,
    NgsiLdClient,
    NgsiLdError,
    ProblemDetails,
    batch_size,
)
from adapter.outbox import Outbox, OutboxItem, PendingItem

__all__ = ["BROKER_REFUSED", "BrokerWriter", "DeliveryReceipts"]

log = logging.getLogger(__name__)


class DeliveryReceipts(Protocol):
    """Where the writer reports each batch the broker answered (``ProvenanceLedger``)."""

    def record_delivery(
        self, tenant: str, *, started_at: str, ended_at: str, broker: str, status: int, software: str,
        records: Sequence[int], refused: Sequence[dict[str, Any]] = (),
    ) -> int: ...


def _instant(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


#: dead-letter reason of an entity the broker refused
BROKER_REFUSED = "broker_refused"
_LOAD_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class _Batch:
    tenant: str
    entries: tuple[PendingItem, ...]


@dataclass
class _TenantQueue:
    """One tenant's pending observations, and the next one of each entity not in flight.

    Every step is O(log n) in the number of entities, so a large backlog does not make each
    wake-up of the writer scan it whole.
    """

    observations: dict[str, list[PendingItem]] = field(default_factory=dict)  # entity id -> observation order
    ready: dict[str, PendingItem] = field(default_factory=dict)  # entity id -> its next observation
    ready_bytes: int = 0
    in_flight: set[str] = field(default_factory=set)
    _order: list[tuple[int, str]] = field(default_factory=list)  # heap of (seq, entity id); stale entries skipped

    def add(self, item: PendingItem) -> None:
        bisect.insort(self.observations.setdefault(item.entity_id, []), item, key=lambda i: (i.observed_us, i.seq))
        if item.entity_id not in self.in_flight:
            self._update_ready(item.entity_id)

    def first(self) -> PendingItem | None:
        """The ready observation queued first (the batch's oldest entity)."""
        while self._order:
            seq, entity_id = self._order[0]
            head = self.ready.get(entity_id)
            if head is not None and head.seq == seq:
                return head
            heapq.heappop(self._order)
        return None

    def full(self, limits: BrokerSettings) -> bool:
        """Whether the ready observations fill a batch (so it should leave without waiting)."""
        return (
            len(self.ready) >= limits.batch_max_entities
            or 1 + self.ready_bytes + len(self.ready) >= limits.batch_max_bytes
        )

    def take(self, limits: BrokerSettings) -> list[PendingItem]:
        """Ready observations in queue order, up to the limits; their entities are then in flight."""
        size, taken = 1, list[PendingItem]()  # the body so far: "[" then each entity with its "," or "]"
        while len(taken) < limits.batch_max_entities and (head := self.first()) is not None:
            if size + head.size + 1 >= limits.batch_max_bytes:
                break
            heapq.heappop(self._order)
            del self.ready[head.entity_id]
            self.ready_bytes -= head.size
            self.in_flight.add(head.entity_id)
            taken.append(head)
            size += head.size + 1
        return taken

    def settle(self, entries: Iterable[PendingItem], gone: set[int]) -> None:
        """The batch of ``entries`` was answered; the ``gone`` ones left the outbox."""
        for entry in entries:
            self.in_flight.discard(entry.entity_id)
            queue = self.observations.get(entry.entity_id, [])
            if entry.seq in gone:
                queue[:] = [q for q in queue if q.seq != entry.seq]
            if not queue:
                self.observations.pop(entry.entity_id, None)
            self._update_ready(entry.entity_id)

    @property
    def empty(self) -> bool:
        return not self.observations and not self.in_flight

    def _update_ready(self, entity_id: str) -> None:
        old = self.ready.pop(entity_id, None)
        if old is not None:
            self.ready_bytes -= old.size
        queue = self.observations.get(entity_id)
        if queue:
            head = queue[0]
            self.ready[entity_id] = head
            self.ready_bytes += head.size
            if old is None or old.seq != head.seq:
                heapq.heappush(self._order, (head.seq, entity_id))


class BrokerWriter:
    """Delivers the outbox to the broker until cancelled.

    Usage::

        writer = BrokerWriter(outbox, NgsiLdClient(url, session), dead_letters, config.broker)
        task = asyncio.create_task(writer.run())
        ...
        outbox.put(...); writer.wake()

    Parameters:
        outbox: the queue to empty (this writer must be its only reader).
        client: the broker's NGSI-LD API.
        dead_letters: where refused entities go.
        settings: batch limits, delay, parallelism and retry delays.
        poll_s: the longest time between two reads of the outbox.
        clock: seconds since 1970, the same clock as the outbox's.
        jitter: a random number in [0, 1) for each retry delay.
    """

    def __init__(
        self,
        outbox: Outbox,
        client: NgsiLdClient,
        dead_letters: DeadLetterStore,
        settings: BrokerSettings,
        *,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        receipts: DeliveryReceipts | None = None,
    ) -> None:
        self._outbox = outbox
        self._receipts = receipts
        self._client = client
        self._dead_letters = dead_letters
        self._settings = settings
        self._poll_s = poll_s
        self._clock = clock
        self._jitter = jitter
        self._tenants: dict[str, _TenantQueue] = {}
        self._last_seq = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._failures = 0
        self._resume_at = 0.0
        self._backoff_since = 0.0

    def wake(self) -> None:
        """Have the writer read the outbox now (call it after queuing entities)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; a batch in flight when cancelled stays in the outbox."""
        try:
            while True:
                self._wake.clear()
                self._read_outbox()
                now = self._clock()
                self._dispatch(now)
                await self._wait(self._next_wakeup(now))
        finally:
            for task in self._in_flight:
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _read_outbox(self) -> None:
        while True:
            items = self._outbox.pending(after=self._last_seq, limit=_LOAD_CHUNK)
            for item in items:
                self._last_seq = item.seq
                if batch_size([item.size]) >= self._settings.batch_max_bytes:
                    self._refuse_oversize(item)
                else:
                    self._tenants.setdefault(item.tenant, _TenantQueue()).add(item)
            if len(items) < _LOAD_CHUNK:
                return

    def _dispatch(self, now: float) -> None:
        if now < self._resume_at:
            return
        while len(self._in_flight) < self._max_in_flight():
            batch = self._next_batch(now)
            if batch is None:
                return
            self._in_flight.add(asyncio.create_task(self._send(batch)))

    def _next_batch(self, now: float) -> _Batch | None:
        """The batch of the tenant whose due observations were queued first, if any is due."""
        chosen: tuple[str, _TenantQueue, int] | None = None
        for tenant, queue in self._tenants.items():
            head = queue.first()
            if head is None or not (queue.full(self._settings) or head.queued_at + self._settings.batch_delay_s <= now):
                continue
            if chosen is None or head.seq < chosen[2]:
                chosen = (tenant, queue, head.seq)
        if chosen is None:
            return None
        tenant, queue, _ = chosen
        return _Batch(tenant, tuple(queue.take(self._settings)))

    def _next_wakeup(self, now: float) -> float:
        """Seconds until the next batch falls due, the backoff ends, or the next poll."""
        wakeup = now + self._poll_s
        if now < self._resume_at:
            wakeup = min(wakeup, self._resume_at)
        elif len(self._in_flight) < self._max_in_flight():
            for queue in self._tenants.values():
                head = queue.first()
                if head is not None:
                    wakeup = min(wakeup, head.queued_at + self._settings.batch_delay_s)
        return max(wakeup - now, 0.0)

    def _max_in_flight(self) -> int:
        # While the broker fails, one batch probes it; the others wait in the outbox.
        return 1 if self._failures else self._settings.max_in_flight

    async def _wait(self, timeout: float) -> None:
        waiter = asyncio.create_task(self._wake.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, *self._in_flight}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        for task in done & self._in_flight:
            self._in_flight.discard(task)
            task.result()  # a bug or a broken outbox/dead-letter file ends the writer

    async def _send(self, batch: _Batch) -> None:
        gone: set[int] = set()
        try:
            items = self._outbox.load([e.seq for e in batch.entries])
            gone = {e.seq for e in batch.entries} - {i.seq for i in items}  # taken out by someone else
            if items:
                gone |= await self._upsert(batch.tenant, items)
        finally:
            queue = self._tenants[batch.tenant]
            queue.settle(batch.entries, gone)
            if queue.empty:
                del self._tenants[batch.tenant]
            self._wake.set()

    async def _upsert(self, tenant: str, items: list[OutboxItem]) -> set[int]:
        """Send one batch and act on the answer; returns the items that left the outbox."""
        sent_at = self._clock()
        try:
            outcome = await self._client.batch_upsert_encoded(
                tenant, [i.entity_json for i in items], [i.entity_id for i in items]
            )
        except BrokerRejectedBatch as exc:
            log.error("broker refused a batch of %d %s entities whole: %s", len(items), tenant, exc)
            whole = exc.problem or ProblemDetails("about:blank", str(exc), exc.status)
            return self._finish(items, {i.seq: whole for i in items})
        except NgsiLdError as exc:
            self._retry_later(len(items), tenant, exc, sent_at)
            return set()
        refused, transient = _read_outcome(items, outcome)
        if self._receipts is not None:
            self._receipt(tenant, sent_at, outcome.status, [i for i in items if i.seq not in transient], refused)
        gone = self._finish([i for i in items if i.seq not in transient], refused)
        if transient:
            self._retry_later(len(transient), tenant, f"{len(transient)} entities failed with a 5xx", sent_at)
        elif self._failures:
            log.info("broker writes succeed again")
            self._failures, self._resume_at = 0, 0.0
        return gone

    def _receipt(
        self, tenant: str, sent_at: float, status: int, items: list[OutboxItem], refused: dict[int, ProblemDetails]
    ) -> None:
        """Keep the provenance of a delivery: before the items leave the outbox, so that a crash
        in between yields a second receipt when they are sent again, never none."""
        assert self._receipts is not None
        records = [i.source.record for i in items if i.seq not in refused and i.source.record is not None]
        rejected = [
            {"record": i.source.record, "entity": i.entity_id, "detail": refused[i.seq].title}
            for i in items if i.seq in refused and i.source.record is not None
        ]
        if records or rejected:
            self._receipts.record_delivery(
                tenant, started_at=_instant(sent_at), ended_at=_instant(self._clock()), broker=self._client.base_url,
                status=status, software=__version__, records=records, refused=rejected,
            )

    def _finish(self, items: list[OutboxItem], refused: dict[int, ProblemDetails]) -> set[int]:
        """File the refused items as dead letters, then take every item of ``items`` out."""
        for item in items:
            if item.seq in refused:
                self._dead_letter(item, refused[item.seq])
        self._outbox.complete(
            delivered=[i.seq for i in items if i.seq not in refused], refused=[i.seq for i in items if i.seq in refused]
        )
        return {i.seq for i in items}

    def _dead_letter(self, item: OutboxItem, problem: ProblemDetails) -> None:
        letter = self._dead_letters.add(
            connection=item.source.connection, lns=item.source.lns, tenant=item.tenant,
            body=item.entity_json.encode("utf-8"), reason=BROKER_REFUSED,
            detail=json.dumps(problem.to_json(), ensure_ascii=False), event=item.source.event,
            dev_eui=item.source.dev_eui,
        )
        log.warning(
            "broker refused %s (tenant %s): %s %s; dead letter %d",
            item.entity_id, item.tenant, problem.status, problem.title, letter,
        )

    def _refuse_oversize(self, pending: PendingItem) -> None:
        for item in self._outbox.load([pending.seq]):
            self._dead_letter(item, ProblemDetails(
                type="https://uri.etsi.org/ngsi-ld/errors/BadRequestData", title="Entity too large for a batch",
                status=413, detail=f"{item.entity_id}: {pending.size} bytes, while a batch must stay under "
                f"{self._settings.batch_max_bytes} bytes",
            ))
        self._outbox.complete(refused=[pending.seq])

    def _retry_later(self, count: int, tenant: str, why: NgsiLdError | str, sent_at: float) -> None:
        self._outbox.note_retried(count)
        # Batches sent before the backoff started fail for the same cause: one step for all.
        if sent_at >= self._backoff_since:
            self._failures += 1
            self._backoff_since = self._clock()
        ceiling = min(self._settings.retry_max_s, self._settings.retry_initial_s * 2 ** min(self._failures - 1, 32))
        delay = ceiling * (0.5 + self._jitter() / 2)
        self._resume_at = max(self._resume_at, self._clock() + delay)
        log.warning(
            "broker write failed (%s); %d %s entities stay in the outbox, next attempt in %.2f s",
            why, count, tenant, self._resume_at - self._clock(),
        )


def _read_outcome(items: list[OutboxItem], outcome: BatchOutcome) -> tuple[dict[int, ProblemDetails], set[int]]:
    """Which items the broker refused (with why) and which failed for a passing reason (5xx)."""
    errors = {e.entity_id: e.problem for e in outcome.errors}
    refused: dict[int, ProblemDetails] = {}
    transient: set[int] = set()
    for item in items:
        problem = errors.pop(item.entity_id, None)
        if problem is None:
            continue
        if problem.status is not None and problem.status >= 500:
            transient.add(item.seq)
        else:
            refused[item.seq] = problem
    if errors:
        log.warning("broker reported errors for entities not in the batch: %s", sorted(errors))
    return refused, transient
