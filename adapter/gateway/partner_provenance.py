"""What of the provenance API a partner gets through the gateway.

The lineage and the verification of one value go to whoever may read that value: a raw grant
on its entity type (``read`` or ``queryHistory``) that lets the attribute through uncoarsened,
within the grant's time window (and area, checked at the broker). The lineage then loses the
device's names at the network server unless the principal may read the collectivity's personal
graph. Whole records (``/uplinks/{n}``, ``/record``, a device's chain) hold every value of an
uplink and those names: they go only to principals whose agreements open the personal graph
(``PolicySet.sparql_dataset``), such as the collectivity's own data admins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapter.access.model import Grant
from adapter.access.policies import observation_window

__all__ = ["RECORD_REFUSAL", "value_refusal", "without_personal_fields"]

#: the device's names at the network server, as the lineage's ``uplink.device`` carries them
_PERSONAL_DEVICE_FIELDS = ("deviceId", "application")

RECORD_REFUSAL = (
    "a whole provenance record holds every value of its uplink and the device's names: it is for principals "
    "whose agreements open the collectivity's personal graph; ask for the lineage or the verification of a "
    "value you may read (/provenance/{tenant}/lineage or /verify)"
)


def value_refusal(grant: Grant, attribute: str, observed_at: datetime) -> str | None:
    """Why ``grant`` does not let its holder see the provenance of one value (None: it does)."""
    if grant.aggregation is not None:
        return (f"agreement {grant.agreement} grants aggregated indicators only: the provenance of one value "
                "shows that sensor's value")
    if (grant.attributes is not None and attribute not in grant.attributes) or attribute in grant.removed:
        return f"agreement {grant.agreement} does not grant attribute {attribute}"
    if attribute in dict(grant.coarsened):
        return f"agreement {grant.agreement} coarsens {attribute}: its provenance would show the exact value"
    if (grant.not_before is not None and observed_at < grant.not_before) or (
            grant.not_after is not None and observed_at > grant.not_after):
        window = observation_window(grant.not_before, grant.not_after)
        return f"agreement {grant.agreement} covers observations {window} only"
    return None


def without_personal_fields(lineage: dict[str, Any]) -> dict[str, Any]:
    """The lineage without the device's names at the network server."""
    uplink = lineage.get("uplink")
    if isinstance(uplink, dict) and isinstance(uplink.get("device"), dict):
        uplink["device"] = {k: v for k, v in uplink["device"].items() if k not in _PERSONAL_DEVICE_FIELDS}
    return lineage
