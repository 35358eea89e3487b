"""Delivery to the NGSI-LD broker: the writer that empties the outbox with batch upserts
(``writer``: batches, answers, retries, dead letters, receipts), the order it keeps per entity
(``order``), and late observations sent to the history only (``late``)."""

from adapter.delivery.writer import (
    BROKER_REFUSED,
    BROKER_UNCONFIRMED,
    ENTITY_REASONS,
    LATE_NOT_WRITTEN,
    BrokerWriter,
    DeliveryReceipts,
)

__all__ = [
    "BROKER_REFUSED",
    "BROKER_UNCONFIRMED",
    "ENTITY_REASONS",
    "LATE_NOT_WRITTEN",
    "BrokerWriter",
    "DeliveryReceipts",
]
