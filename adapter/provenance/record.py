"""The provenance record of one accepted event: what came in, what was done, what went out.

The record is plain JSON (format in docs/provenance.md) so that anyone can recompute its digest
from its RFC 8785 canonical form, in any language, years later. It is built here from what the
pipeline already has; the ledger (``adapter.provenance.ledger``) adds the device-chain link and
logs it.

What goes in ``attributes``: the attributes that carry an ``observedAt``, i.e. the values this
event produced. Static attributes (a device's name, its category, a ``refDevice``) come from
the device registry and the profile, whose digest the record names; repeating them in every
record would only grow the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import Any

from adapter import __version__
from adapter.mapping.entities import iso
from adapter.uplink import DeviceStatus, Uplink

__all__ = [
    "FORMAT_VERSION",
    "LINK_ATTRIBUTE",
    "SOFTWARE",
    "Step",
    "attribute_fingerprint",
    "build_record",
    "link_entities",
    "timestamp",
    "uplink_iri",
]

FORMAT_VERSION = 1
SOFTWARE = "ngsild-adapter"
#: the attribute that links an entity's values to their raw uplink (``prov:wasDerivedFrom``)
LINK_ATTRIBUTE = "wasDerivedFrom"
_ENTITY_KEYS = frozenset(("id", "type", "@context", "wasDerivedFrom"))


def timestamp(moment: datetime) -> str:
    """A step or reception time: UTC, microseconds, ``Z``."""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def uplink_iri(tenant: str, index: int) -> str:
    """The raw uplink of record ``index`` in ``tenant``'s log, as a ``prov:Entity``."""
    return f"urn:ngsild-adapter:{tenant}:uplink:{index}"


@dataclass(frozen=True, slots=True)
class Step:
    """One processing step as the record states it: ``name`` plus what identifies how it ran."""

    name: str  # decode, privacy, map
    started: datetime
    ended: datetime
    details: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            **self.details,
            "startedAt": timestamp(self.started),
            "endedAt": timestamp(self.ended),
        }


def _plain_number(value: Any) -> Any:
    """An integral float as an int: the same number, and the canonical form's cheapest path."""
    if type(value) is float and value.is_integer() and -(2**53) < value < 2**53:
        return int(value)
    return value


def attribute_fingerprint(attribute: Mapping[str, Any], observed_at: str) -> dict[str, Any] | None:
    """What the record keeps of an attribute as sent (None: not an observation of this event).

    The verifier applies the same function to the attribute read back from the broker, so the
    comparison is exact: value (or object), unit, and observation time when it is not the record's.
    """
    attribute_time = attribute.get("observedAt")
    if attribute_time is None:
        return None
    kept: dict[str, Any] = (
        {"object": attribute["object"]} if "object" in attribute else {"value": _plain_number(attribute.get("value"))}
    )
    unit = attribute.get("unitCode")
    if unit is not None:
        kept["unitCode"] = unit
    if attribute_time != observed_at:
        kept["observedAt"] = attribute_time
    return kept


def _entity_part(entity: Mapping[str, Any], observed_at: str) -> dict[str, Any]:
    attributes = {}
    for name, attribute in entity.items():
        if name in _ENTITY_KEYS or type(attribute) is not dict:
            continue
        kept = attribute_fingerprint(attribute, observed_at)
        if kept is not None:
            attributes[name] = kept
    context = entity.get("@context")
    return {
        "id": entity["id"],
        "type": entity["type"],
        "@context": list(context) if isinstance(context, (list, tuple)) else context,
        "attributes": attributes,
    }


def build_record(
    event: Uplink | DeviceStatus,
    entities: Sequence[Mapping[str, Any]],
    *,
    observed_at: datetime,
    steps: Iterable[Step],
) -> dict[str, Any]:
    """The record of ``event`` without its chain link (``ProvenanceLedger.record`` adds it)."""
    observed = iso(observed_at)
    record: dict[str, Any] = {
        "recordType": "uplink" if isinstance(event, Uplink) else "status",
        "formatVersion": FORMAT_VERSION,
        "tenant": event.origin.tenant,
        "adapter": {"software": SOFTWARE, "version": __version__},
        "device": {"devEui": event.dev_eui, "deviceId": event.device_id, "application": event.application_id},
        "lns": {"kind": event.lns, "connection": event.origin.lns_id},
        "steps": [step.to_json() for step in steps],
        "observedAt": observed,
        "entities": [_entity_part(entity, observed) for entity in entities],
    }
    if isinstance(event, Uplink):
        record["uplink"] = {
            "payloadSha256": sha256(event.payload).hexdigest(),
            "size": len(event.payload),
            "fCnt": event.f_cnt,
            "fPort": event.f_port,
            "receivedAt": timestamp(event.received_at),
        }
        # ``id`` is the network server's gateway id, ``eui`` its EUI when known (None otherwise).
        record["gateways"] = [
            {"id": g.gateway_id, "eui": g.eui, "rssi": _plain_number(g.rssi), "snr": _plain_number(g.snr)}
            for g in event.gateways
        ]
    else:
        record["uplink"] = {"receivedAt": timestamp(event.received_at)}
        record["gateways"] = []
    return record


def link_entities(entities: Sequence[dict[str, Any]], iri: str, observed_at: datetime) -> None:
    """Give each entity its ``wasDerivedFrom`` link to the raw uplink ``iri``, observed when
    its values were: the link of a value is the link instance with the value's ``observedAt``
    (in the temporal history too). One link per entity rather than per attribute keeps the
    entities, the outbox and the broker's history lean."""
    link = {"type": "Relationship", "object": iri, "observedAt": iso(observed_at)}
    for entity in entities:
        entity[LINK_ATTRIBUTE] = link
