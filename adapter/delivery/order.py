"""The writer's order of delivery: per tenant, the next observation of each entity not in flight.

An entity never appears twice in one batch, and its next observation waits for the answer to
the previous one; pending observations of an entity leave in observation order (``observedAt``,
then queue order). See ``adapter.delivery.writer`` for why.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from adapter.config import BrokerSettings
from adapter.outbox import PendingItem

__all__ = ["Batch", "TenantQueue"]


@dataclass(frozen=True, slots=True)
class Batch:
    tenant: str
    entries: tuple[PendingItem, ...]


@dataclass
class TenantQueue:
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
