"""Prometheus text exposition of the adapter's delivery and provenance metrics.

Kept apart from the outbox so that the HTTP side (health, gateway) can serve them without
knowing how they are counted. Format: Prometheus text exposition 0.0.4; the counters are
since the process started, as Prometheus expects of a ``_total``.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapter.outbox import OutboxMetrics

__all__ = ["CONTENT_TYPE", "render_outbox_metrics", "render_provenance_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRICS = (
    ("outbox_depth", "gauge", "Entities waiting in the outbox for the NGSI-LD broker.", "depth"),
    ("outbox_max_depth", "gauge", "Entities the outbox may hold before ingest is pushed back.", "max_depth"),
    ("outbox_oldest_age_seconds", "gauge", "Time the oldest waiting entity has spent in the outbox.", "oldest_age_s"),
    ("outbox_delivered_total", "counter", "Entities the broker acknowledged.", "delivered"),
    ("outbox_retried_total", "counter", "Entity sends that failed for a passing reason and stay queued.", "retried"),
    ("outbox_refused_total", "counter", "Entities the broker refused, filed as dead letters.", "refused"),
)


def render_outbox_metrics(metrics: OutboxMetrics, *, prefix: str = "ngsild_adapter") -> str:
    """The outbox metrics as Prometheus text (``CONTENT_TYPE``)."""
    lines = []
    for name, kind, help_text, attribute in _METRICS:
        value = getattr(metrics, attribute)
        lines += [
            f"# HELP {prefix}_{name} {help_text}",
            f"# TYPE {prefix}_{name} {kind}",
            f"{prefix}_{name} {value:.3f}" if isinstance(value, float) else f"{prefix}_{name} {value}",
        ]
    return "\n".join(lines) + "\n"


def _quarantine_labels(kind: str, tenant: str) -> str:
    return f'kind="{kind}",tenant="{tenant}"' if tenant else f'kind="{kind}"'


def render_provenance_metrics(
    log_sizes: Mapping[str, int],
    index_lag: Mapping[str, int] | None,
    *,
    prefix: str = "ngsild_adapter",
    quarantined: Mapping[tuple[str, str], int] | None = None,
) -> str:
    """Per collectivity: records in the integrity log, and records not in the RDF index yet;
    and what the indexer set aside (``quarantined``: per (kind, tenant), tenant "" for the
    receipts and access rows; ``RdfIndexer.quarantined``). Tenants are configured names."""
    lines = [
        f"# HELP {prefix}_provenance_log_records Provenance records in the collectivity's integrity log.",
        f"# TYPE {prefix}_provenance_log_records gauge",
        *(f'{prefix}_provenance_log_records{{tenant="{t}"}} {n}' for t, n in sorted(log_sizes.items())),
    ]
    if index_lag is not None:
        lines += [
            f"# HELP {prefix}_provenance_index_lag_records Records logged but not yet in the RDF index.",
            f"# TYPE {prefix}_provenance_index_lag_records gauge",
            *(f'{prefix}_provenance_index_lag_records{{tenant="{t}"}} {n}' for t, n in sorted(index_lag.items())),
        ]
    if quarantined is not None:
        lines += [
            f"# HELP {prefix}_provenance_index_quarantined_records Records, delivery receipts and access rows "
            "the RDF indexer could not index and set aside (its quarantine table).",
            f"# TYPE {prefix}_provenance_index_quarantined_records gauge",
            *(
                f"{prefix}_provenance_index_quarantined_records{{{_quarantine_labels(kind, t)}}} {n}"
                for (kind, t), n in sorted(quarantined.items())
            ),
        ]
    return "\n".join(lines) + "\n"
