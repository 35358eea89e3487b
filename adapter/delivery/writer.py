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

Late observations
    An observation older than the latest one delivered of one of its attributes (a requeued or
    delayed uplink; the outbox keeps that time per (tenant, entity, attribute),
    ``Outbox.latest_delivered``, across restarts) must not move the current value back in
    time: it is not upserted but
    added to the entity's history (``POST /temporal/entities/{id}/attrs``, its attributes that
    carry an ``observedAt``). A broker that does not implement it (Orion-LD answers 501; 405
    and 404 are read the same) writes nothing: the observation becomes a dead letter
    ``late_observation_not_written``, kept whole, that ``deadletter replay`` queues again.
    An observation as old as the latest one (the same one sent again) is upserted.

What an answer does
    Every broker's answer is read into a fate per entity (``adapter.ngsild.outcomes``: the
    shapes of Orion-LD, Scorpio, Stellio and the spec's BatchOperationResult).
    Delivered (a 201, a 204, or named in ``success`` with no error): its item leaves the outbox.
    Refused (an error entry with a 4xx status or none, in a 207 or in Scorpio's 400/409 with
    ``errors``): it goes to the dead-letter store (reason ``broker_refused``, the broker's own
    ProblemDetails for that entity as detail, the entity as body) and leaves the outbox.
    Retry (an error entry with a 5xx): it stays and is retried; after ``MAX_ENTITY_FAILURES``
    such answers in a row (a 500 tied to its content would hold its entity's newer
    observations for ever) it is sent alone, and a 5xx then makes it ``broker_unconfirmed``.
    Unknown (the answer cannot be matched to it: named nowhere in a 207, an entry without an
    id or with an id not in the batch, an unknown shape, a 4xx whose reasons do not cover it,
    a batch refused whole without per-entity reasons): it is never counted delivered; it is
    sent again *alone*, since a one-entity answer is unambiguous and upserts are idempotent
    (reading it back could not tell this observation from an earlier one). If that answer
    is still unreadable, it becomes a dead letter ``broker_unconfirmed`` holding what the
    broker said. So one bad entity does not take the others of its batch with it.
    Anything else (5xx, 408, 429, timeout, refused or dropped connection, a redirect (never
    followed: a POST would be replayed as a GET), and 4xx that point at the deployment rather
    than the data: 401, 403, 404..., and statuses outside the API):
    the entities stay in the outbox and
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
    With ``receipts`` (the provenance ledger), every answered request leaves a receipt: when it
    was sent and answered, the broker, its status, and the provenance records whose entities it
    delivered or that ended as dead letters with it (``docs/provenance.md``, the delivery
    activity). An entity whose outcome a batch's answer left unknown is in the receipt of the
    request that sent it alone, not in the batch's: each receipt holds final outcomes only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from adapter import __version__
from adapter.config import BrokerSettings
from adapter.deadletter import DeadLetterStore
from adapter.ngsild.client import (
    BrokerRejectedBatch,
    EntityOutcome,
    Fate,
    NgsiLdClient,
    NgsiLdError,
    ProblemDetails,
    batch_size,
    encode_entity,
)
from adapter.delivery.late import history_fragment, late_problem, newer_delivered
from adapter.delivery.order import Batch, TenantQueue
from adapter.outbox import Outbox, OutboxItem, PendingItem

__all__ = [
    "BROKER_REFUSED",
    "BROKER_UNCONFIRMED",
    "ENTITY_REASONS",
    "LATE_NOT_WRITTEN",
    "BrokerWriter",
    "DeliveryReceipts",
]

log = logging.getLogger(__name__)


class DeliveryReceipts(Protocol):
    """Where the writer reports each batch the broker answered (``ProvenanceLedger``)."""

    def record_delivery(
        self,
        tenant: str,
        *,
        started_at: str,
        ended_at: str,
        broker: str,
        status: int,
        software: str,
        records: Sequence[int],
        refused: Sequence[dict[str, Any]] = (),
    ) -> int: ...


def _instant(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


#: dead-letter reason of an entity the broker refused
BROKER_REFUSED = "broker_refused"
#: dead-letter reason of an entity sent alone whose answer still does not say it was written
BROKER_UNCONFIRMED = "broker_unconfirmed"
#: dead-letter reason of a late observation the broker cannot add to the entity's history
LATE_NOT_WRITTEN = "late_observation_not_written"
#: dead letters that hold an entity as sent (``deadletter replay`` queues them in the outbox again)
ENTITY_REASONS = frozenset({BROKER_REFUSED, BROKER_UNCONFIRMED, LATE_NOT_WRITTEN})
_LOAD_CHUNK = 10_000
#: answers in a row that fail one entity with its own 5xx before it is sent alone, then dead-lettered
MAX_ENTITY_FAILURES = 5


@dataclass(frozen=True, slots=True)
class _Answer:
    """A broker answer to one upsert request: its status, when it was sent, a fate per item (seq)."""

    status: int
    sent_at: float
    outcomes: dict[int, EntityOutcome]


@dataclass(frozen=True, slots=True)
class _Failed:
    """An upsert request the broker did not answer usefully (unavailable, deployment error)."""

    error: NgsiLdError
    sent_at: float


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
        self._tenants: dict[str, TenantQueue] = {}
        self._entity_failures: dict[int, int] = {}  # outbox seq -> answers in a row that failed it with a 5xx
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
                    self._tenants.setdefault(item.tenant, TenantQueue()).add(item)
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

    def _next_batch(self, now: float) -> Batch | None:
        """The batch of the tenant whose due observations were queued first, if any is due."""
        chosen: tuple[str, TenantQueue, int] | None = None
        for tenant, queue in self._tenants.items():
            head = queue.first()
            if head is None or not (queue.full(self._settings) or head.queued_at + self._settings.batch_delay_s <= now):
                continue
            if chosen is None or head.seq < chosen[2]:
                chosen = (tenant, queue, head.seq)
        if chosen is None:
            return None
        tenant, queue, _ = chosen
        return Batch(tenant, tuple(queue.take(self._settings)))

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

    async def _send(self, batch: Batch) -> None:
        gone: set[int] = set()
        try:
            items = self._outbox.load([e.seq for e in batch.entries])
            gone = {e.seq for e in batch.entries} - {i.seq for i in items}  # taken out by someone else
            if items:
                latest = self._outbox.latest_delivered(batch.tenant, [i.entity_id for i in items])
                newer = {i.seq: n for i in items if (n := newer_delivered(i, latest.get(i.entity_id, {}))) is not None}
                current = [i for i in items if i.seq not in newer] if newer else items
                if current:
                    gone |= await self._upsert(batch.tenant, current)
                if newer:
                    gone |= await self._write_late(batch.tenant, [i for i in items if i.seq in newer], newer)
        finally:
            queue = self._tenants[batch.tenant]
            queue.settle(batch.entries, gone)
            if queue.empty:
                del self._tenants[batch.tenant]
            self._wake.set()

    async def _upsert(self, tenant: str, items: list[OutboxItem]) -> set[int]:
        """Send one batch and act on the answer; returns the items that left the outbox.

        Entities whose outcome the answer leaves unknown are sent again, each alone, before
        anything is concluded about them (``_resolve_alone``).
        """
        answer = await self._ask(tenant, items)
        if isinstance(answer, _Failed):
            self._retry_later(len(items), tenant, answer.error, answer.sent_at)
            return set()
        alone = len(items) == 1
        self._count_entity_failures(answer, items)
        # An entity the broker keeps failing with a 5xx of its own (a database error tied to its
        # content) is sent alone like an unknown one; alone, it ends as a dead letter.
        unknown = [i for i in items if answer.outcomes[i.seq].fate is Fate.UNKNOWN or self._persistent(i.seq)]
        if unknown and not alone:
            log.warning(
                "the broker's HTTP %d to a batch of %d %s entities does not say what became of %d (%s); "
                "sending each of them again alone",
                answer.status,
                len(items),
                tenant,
                len(unknown),
                answer.outcomes[unknown[0].seq].why,
            )
        gone = self._conclude(tenant, answer, items, final=alone)
        resent = {i.seq for i in unknown} if not alone else set()
        transient = sum(answer.outcomes[i.seq].fate is Fate.RETRY and i.seq not in resent for i in items)
        failure: NgsiLdError | str | None = f"{transient} entities failed with a 5xx" if transient else None
        if unknown and not alone:
            left, more, error = await self._resolve_alone(tenant, unknown)
            gone |= left
            transient += more
            failure = error or failure
        if transient:
            self._retry_later(transient, tenant, failure or "entities failed", answer.sent_at)
        elif self._failures:
            log.info("broker writes succeed again")
            self._failures, self._resume_at = 0, 0.0
        return gone

    async def _ask(self, tenant: str, items: list[OutboxItem]) -> _Answer | _Failed:
        """One batch upsert, read into an outcome per item (or the error that prevented an answer)."""
        sent_at = self._clock()
        try:
            outcome = await self._client.batch_upsert_encoded(
                tenant, [i.entity_json for i in items], [i.entity_id for i in items]
            )
        except BrokerRejectedBatch as exc:
            problem = exc.problem or ProblemDetails("about:blank", str(exc), exc.status)
            if len(items) == 1:  # alone, a refusal of the batch is a refusal of the entity
                fates = {items[0].seq: EntityOutcome(items[0].entity_id, Fate.REFUSED, problem)}
            else:
                log.error("broker refused a batch of %d %s entities whole: %s", len(items), tenant, exc)
                why = "the batch was refused whole, without a reason per entity"
                fates = {i.seq: EntityOutcome(i.entity_id, Fate.UNKNOWN, problem, why) for i in items}
            return _Answer(exc.status or 400, sent_at, fates)
        except NgsiLdError as exc:
            return _Failed(exc, sent_at)
        if outcome.strays:
            log.warning(
                "the broker's HTTP %d to a batch of %d %s entities holds %d entries naming none of them: %s",
                outcome.status,
                len(items),
                tenant,
                len(outcome.strays),
                "; ".join(outcome.strays[:3]),
            )
        by_id = {o.entity_id: o for o in outcome.outcomes}
        return _Answer(outcome.status, sent_at, {i.seq: by_id[i.entity_id] for i in items})

    async def _resolve_alone(self, tenant: str, items: list[OutboxItem]) -> tuple[set[int], int, NgsiLdError | None]:
        """Send each item alone (a one-entity answer is unambiguous; upserts are idempotent).

        Returns the items that left the outbox, how many must be retried later, and the last
        error that kept one from being answered. At most ``max_in_flight`` requests at a time.
        """
        gate = asyncio.Semaphore(self._settings.max_in_flight)
        gone: set[int] = set()
        transient = 0
        error: NgsiLdError | None = None

        async def one(item: OutboxItem) -> None:
            nonlocal transient, error
            async with gate:
                answer = await self._ask(tenant, [item])
            if isinstance(answer, _Failed):
                transient, error = transient + 1, answer.error
                return
            gone.update(self._conclude(tenant, answer, [item], final=True))
            transient += answer.outcomes[item.seq].fate is Fate.RETRY

        await asyncio.gather(*(one(item) for item in items))
        return gone, transient, error

    async def _write_late(self, tenant: str, items: list[OutboxItem], newer: dict[int, int]) -> set[int]:
        """Send observations older than their entity's latest delivered one to its history only.

        An upsert would move the current value back in time; ``POST /temporal/entities/{id}/attrs``
        adds them to the history and leaves the current value alone. A broker that does not
        implement it (Orion-LD answers 501) gets nothing written: each observation becomes a
        dead letter ``late_observation_not_written``, kept whole for a replay.
        """
        gate = asyncio.Semaphore(self._settings.max_in_flight)
        gone: set[int] = set()
        transient: list[NgsiLdError] = []

        async def one(item: OutboxItem) -> None:
            sent_at = self._clock()
            try:
                async with gate:
                    outcome = await self._client.add_temporal_attributes(
                        tenant, item.entity_id, encode_entity(history_fragment(item.entity))
                    )
            except NgsiLdError as exc:
                transient.append(exc)
                return
            refused: dict[int, tuple[str, ProblemDetails]] = {}
            if not outcome.supported:
                refused[item.seq] = (
                    LATE_NOT_WRITTEN,
                    late_problem(outcome.status, outcome.problem, item, newer[item.seq]),
                )
            elif outcome.fate is Fate.REFUSED:
                assert outcome.problem is not None
                refused[item.seq] = (BROKER_REFUSED, outcome.problem)
            if self._receipts is not None:
                self._receipt(tenant, sent_at, outcome.status, [item], {s: p for s, (_, p) in refused.items()})
            gone.update(self._finish([item], refused))

        log.info(
            "%d late %s observations (older than their entity's current value) go to the history", len(items), tenant
        )
        await asyncio.gather(*(one(item) for item in items))
        if transient:
            self._retry_later(len(transient), tenant, transient[-1], self._clock())
        return gone

    def _conclude(self, tenant: str, answer: _Answer, items: list[OutboxItem], *, final: bool) -> set[int]:
        """Act on what the answer confirmed; with ``final``, an unknown outcome is concluded too:
        a dead letter (``broker_unconfirmed``), never a delivery. Returns the items taken out."""
        refused: dict[int, tuple[str, ProblemDetails]] = {}
        delivered: list[OutboxItem] = []
        for item in items:
            outcome = answer.outcomes[item.seq]
            if outcome.fate is Fate.DELIVERED:
                delivered.append(item)
            elif outcome.fate is Fate.REFUSED:
                assert outcome.problem is not None
                refused[item.seq] = (BROKER_REFUSED, outcome.problem)
            elif outcome.fate is Fate.UNKNOWN and final:
                refused[item.seq] = (BROKER_UNCONFIRMED, _unconfirmed(answer.status, outcome))
            elif outcome.fate is Fate.RETRY and final and self._persistent(item.seq):
                refused[item.seq] = (BROKER_UNCONFIRMED, _unconfirmed(answer.status, outcome))
        done = [*delivered, *(i for i in items if i.seq in refused)]
        if self._receipts is not None:
            self._receipt(tenant, answer.sent_at, answer.status, done, {s: p for s, (_, p) in refused.items()})
        return self._finish(done, refused)

    def _count_entity_failures(self, answer: _Answer, items: list[OutboxItem]) -> None:
        """Count, per item, the answers in a row that failed it with a 5xx of its own."""
        for item in items:
            if answer.outcomes[item.seq].fate is Fate.RETRY:
                self._entity_failures[item.seq] = self._entity_failures.get(item.seq, 0) + 1
            else:
                self._entity_failures.pop(item.seq, None)

    def _persistent(self, seq: int) -> bool:
        return self._entity_failures.get(seq, 0) >= MAX_ENTITY_FAILURES

    def _receipt(
        self, tenant: str, sent_at: float, status: int, items: list[OutboxItem], refused: dict[int, ProblemDetails]
    ) -> None:
        """Keep the provenance of a delivery: before the items leave the outbox, so that a crash
        in between yields a second receipt when they are sent again, never none."""
        assert self._receipts is not None
        records = [i.source.record for i in items if i.seq not in refused and i.source.record is not None]
        rejected = [
            {"record": i.source.record, "entity": i.entity_id, "detail": refused[i.seq].title}
            for i in items
            if i.seq in refused and i.source.record is not None
        ]
        if records or rejected:
            self._receipts.record_delivery(
                tenant,
                started_at=_instant(sent_at),
                ended_at=_instant(self._clock()),
                broker=self._client.base_url,
                status=status,
                software=__version__,
                records=records,
                refused=rejected,
            )

    def _finish(self, items: list[OutboxItem], refused: dict[int, tuple[str, ProblemDetails]]) -> set[int]:
        """File the refused items as dead letters, then take every item of ``items`` out."""
        for item in items:
            self._entity_failures.pop(item.seq, None)
            if item.seq in refused:
                self._dead_letter(item, *refused[item.seq])
        self._outbox.complete(
            delivered=[i.seq for i in items if i.seq not in refused], refused=[i.seq for i in items if i.seq in refused]
        )
        return {i.seq for i in items}

    def _dead_letter(self, item: OutboxItem, reason: str, problem: ProblemDetails) -> None:
        letter = self._dead_letters.add(
            connection=item.source.connection,
            lns=item.source.lns,
            tenant=item.tenant,
            body=item.entity_json.encode("utf-8"),
            reason=reason,
            detail=json.dumps(problem.to_json(), ensure_ascii=False),
            event=item.source.event,
            dev_eui=item.source.dev_eui,
        )
        log.warning(
            "%s %s (tenant %s): %s %s; dead letter %d",
            "broker refused" if reason == BROKER_REFUSED else reason,
            item.entity_id,
            item.tenant,
            problem.status,
            problem.title,
            letter,
        )

    def _refuse_oversize(self, pending: PendingItem) -> None:
        for item in self._outbox.load([pending.seq]):
            self._dead_letter(
                item,
                BROKER_REFUSED,
                ProblemDetails(
                    type="https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
                    title="Entity too large for a batch",
                    status=413,
                    detail=f"{item.entity_id}: {pending.size} bytes, while a batch must stay under "
                    f"{self._settings.batch_max_bytes} bytes",
                ),
            )
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
            why,
            count,
            tenant,
            self._resume_at - self._clock(),
        )


def _unconfirmed(status: int, outcome: EntityOutcome) -> ProblemDetails:
    """The dead-letter detail of an entity no answer confirmed: what the broker last said."""
    extra = {"answer": outcome.problem.to_json()} if outcome.problem is not None else {}
    return ProblemDetails(
        type="about:blank",
        title="the broker's answer does not confirm this entity",
        status=status,
        detail=outcome.why,
        extra=extra,
    )
