"""Reading the instants NGSI-LD answers carry (``observedAt``, ``createdAt``...): an ISO 8601
date-time with a time zone, or nothing (shared by the gateway's answer filter and the cells'
series; the embedded broker, its own product, has its own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["aware_instant"]


def aware_instant(text: Any) -> datetime | None:
    """``text`` as a timezone-aware datetime, or None when it is not one (not a string, not ISO
    8601, or without a time zone: such a value says nothing about when)."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
