"""The verifier: does this value, as read from the broker, hold up against its provenance?

Given a value (tenant, entity id, attribute, observedAt, and the value itself or the broker to
read it from), the verifier finds its record and checks, each as a named ``Check``:

``record``      the value's record exists (found through the entity's ``wasDerivedFrom`` link
                observed with the value, or given by number);
``value``       the value equals what the record says was sent (value or object, unit, time);
``digest``      the record's canonical form (RFC 8785) hashes to the log's leaf at its index;
``signature``   the latest signed tree head is signed by the collectivity's published key;
``inclusion``   the leaf is in that tree (RFC 9162 inclusion proof against its root);
``chain``       the device's previous record hashes to this record's ``prev`` and the next
                record's ``prev`` is this record's digest (a deleted, changed or reordered
                record breaks it); frame-counter gaps are reported as warnings (radio or
                network losses, not tampering);
``index``       the RDF index holds exactly the quads this record yields, in the graph each
                belongs to (``pending`` while the indexer catches up). Its pseudonyms are
                recomputed with the collectivity's pseudonym key for the record's reception
                day (``adapter.provenance.pseudonyms``): without that key the check fails and
                names the missing file, it never passes unchecked.

A check is ``ok``, ``failed``, ``warning`` (holds, with a remark) or ``pending`` (cannot be
decided yet: not signed or not indexed yet, or the broker does not show the value yet because
its history lags behind its current entities, ``BrokerValue.pending``). The value holds when no check failed and none is
pending. The verifier reads through ``Evidence``; ``LocalEvidence`` reads the adapter's own
files. What the verifier trusts is the collectivity's public key and nothing else: a forged
record, leaf, tree head or chain link each fails a check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any, Protocol

from adapter.mapping.entities import iso
from adapter.ngsild.history import TemporalAnswerError, TemporalAttribute, parse_temporal_entity
from adapter.ngsild.instants import aware_instant
from adapter.provenance.integrity import IntegrityError
from adapter.provenance.integrity.canonical import CanonicalizationError, canonicalize
from adapter.provenance.integrity.checkpoint import open_checkpoint
from adapter.provenance.integrity.merkle import leaf_hash, verify_inclusion
from adapter.provenance.integrity.note import NoteVerifier
from adapter.provenance.ledger import ProvenanceLedger, UnknownTenant
from adapter.provenance.record import LINK_ATTRIBUTE, attribute_fingerprint

__all__ = [
    "BrokerValue",
    "Check",
    "Evidence",
    "LocalEvidence",
    "Verification",
    "broker_value_from",
    "newest_observation",
    "parse_uplink_iri",
    "verify_value",
]

PROV_WAS_DERIVED_FROM = "http://www.w3.org/ns/prov#wasDerivedFrom"
_UPLINK_IRI = re.compile(r"urn:ngsild-adapter:([a-z0-9][a-z0-9_-]{0,49}):uplink:([0-9]{1,18})")


def parse_uplink_iri(iri: str) -> tuple[str, int] | None:
    """``(tenant, record index)`` of an uplink IRI (docs/provenance.md), None if it is not one."""
    match = _UPLINK_IRI.fullmatch(iri)
    return None if match is None else (match.group(1), int(match.group(2)))


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok, failed, warning, pending
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail}


@dataclass
class Verification:
    """The outcome: every check, in order, and whether the value holds."""

    tenant: str
    entity_id: str
    attribute: str
    observed_at: str
    record: int | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return bool(self.checks) and all(c.status in ("ok", "warning") for c in self.checks)

    def add(self, name: str, status: str, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    def to_json(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "tenant": self.tenant,
            "entity": self.entity_id,
            "attribute": self.attribute,
            "observedAt": self.observed_at,
            "record": self.record,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True, slots=True)
class BrokerValue:
    """An attribute as the broker holds it at one observation time, with its entity's link.

    ``pending`` says why the broker shows no value at that instant although it may still come:
    its history does not hold the instance (yet) while the entity already has a newer value (a
    broker that writes its history with a delay, as Mintaka reading Orion-LD's TRoE database),
    or it has no temporal API to read a superseded value from. The verifier then answers
    ``pending``, never ``failed``: nothing shows the value was changed."""

    attribute: dict[str, Any] | None
    link: str | None
    pending: str | None = None


class Evidence(Protocol):
    """What the verifier reads. Every method answers None when the thing does not exist."""

    async def record_text(self, tenant: str, index: int) -> str | None: ...

    async def chain_record_text(self, tenant: str, dev_eui: str, seq: int) -> str | None: ...

    async def chain_length(self, tenant: str, dev_eui: str) -> int: ...

    async def leaf(self, tenant: str, index: int) -> bytes | None: ...

    async def signed_checkpoint(self, tenant: str) -> bytes | None: ...

    async def inclusion_proof(self, tenant: str, index: int, size: int) -> list[bytes]: ...

    async def verifier_key(self, tenant: str) -> NoteVerifier | None: ...

    async def broker_value(
        self, tenant: str, entity_id: str, attribute: str, observed_at: datetime
    ) -> BrokerValue | None: ...

    async def index_check(self, tenant: str, index: int, record: dict[str, Any]) -> Check | None: ...


def _digest(text: str) -> bytes:
    return sha256(canonicalize(json.loads(text), keys_are_strings=True)).digest()


def _value_of(text: str) -> Any:
    """A value typed on a command line: JSON when it parses ("38.5", "true", '"ok"'), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


async def verify_value(
    evidence: Evidence,
    tenant: str,
    entity_id: str,
    attribute: str,
    observed_at: datetime,
    *,
    value: str | None = None,
    record: int | None = None,
) -> Verification:
    """Check the value of ``attribute`` of ``entity_id`` observed at ``observed_at``.

    ``value``: the value as the caller read it (JSON or plain text); without it the broker is
    asked. ``record``: the record number, when known; without it the entity's link tells.
    """
    observed = iso(observed_at)
    result = Verification(tenant, entity_id, attribute, observed)
    broker: BrokerValue | None = None
    if value is None or record is None:
        broker = await evidence.broker_value(tenant, entity_id, attribute, observed_at)
    if record is None:
        target = parse_uplink_iri(broker.link) if broker is not None and broker.link else None
        if broker is not None and broker.attribute is None and broker.pending:
            result.add("record", "pending", f"the record cannot be found from the broker yet: {broker.pending}")
            return result
        if target is None or target[0] != tenant:
            why = (
                "the broker has no such value"
                if broker is None or broker.attribute is None
                else (
                    f"the entity has no {LINK_ATTRIBUTE} link observed at {observed}"
                    if not broker.link
                    else f"its {LINK_ATTRIBUTE} link {broker.link!r} names no record of {tenant}"
                )
            )
            result.add("record", "failed", f"no provenance record found: {why}")
            return result
        record = target[1]
    result.record = record
    text = await evidence.record_text(tenant, record)
    if text is None:
        result.add("record", "failed", f"record {record} of {tenant} is missing (deleted?)")
        return result
    try:
        body: dict[str, Any] = json.loads(text)
        digest = _digest(text)
    except (ValueError, CanonicalizationError) as exc:
        result.add("record", "failed", f"record {record} of {tenant} is not a valid record: {exc}")
        return result
    result.add(
        "record",
        "ok",
        f"record {record} of {tenant} ({body.get('recordType')}, device {body.get('device', {}).get('devEui')})",
    )
    _check_value(result, body, entity_id, attribute, observed, value, broker)
    await _check_log(result, evidence, tenant, record, digest)
    await _check_chain(result, evidence, tenant, body, digest)
    index = await evidence.index_check(tenant, record, body)
    if index is not None:
        result.checks.append(index)
    return result


def _check_value(
    result: Verification,
    record: dict[str, Any],
    entity_id: str,
    attribute: str,
    observed: str,
    value: str | None,
    broker: BrokerValue | None,
) -> None:
    entity = next((e for e in record.get("entities", ()) if e.get("id") == entity_id), None)
    recorded = None if entity is None else entity.get("attributes", {}).get(attribute)
    if recorded is None:
        result.add("value", "failed", f"record {result.record} holds no {attribute} of {entity_id}")
        return
    recorded_time = recorded.get("observedAt", record.get("observedAt"))
    if recorded_time != observed:
        result.add(
            "value", "failed", f"record {result.record} has {attribute} observed at {recorded_time}, not {observed}"
        )
        return
    if value is not None:
        given = attribute_fingerprint({"value": _value_of(value), "observedAt": observed}, observed)
        assert given is not None
        same = given.get("value") == recorded.get("value", recorded.get("object"))
        source = "the value given"
    elif broker is not None and broker.attribute is not None:
        read = attribute_fingerprint({**broker.attribute, "observedAt": observed}, observed)
        same = read == {k: v for k, v in recorded.items() if k != "observedAt"}
        given = read
        source = "the broker's value"
    elif broker is not None and broker.pending:
        result.add("value", "pending", broker.pending)
        return
    else:
        result.add("value", "failed", f"the broker holds no {attribute} of {entity_id} observed at {observed}")
        return
    if same:
        result.add("value", "ok", f"{source} equals the recorded {json.dumps(recorded, sort_keys=True)}")
    else:
        result.add(
            "value",
            "failed",
            f"{source} {json.dumps(given, sort_keys=True)} differs from the recorded "
            f"{json.dumps(recorded, sort_keys=True)}",
        )


async def _check_log(result: Verification, evidence: Evidence, tenant: str, index: int, digest: bytes) -> None:
    leaf = await evidence.leaf(tenant, index)
    if leaf is None:
        result.add("digest", "failed", f"the log of {tenant} has no leaf {index}")
    elif leaf != digest:
        result.add("digest", "failed", f"the record hashes to {digest.hex()}, the log's leaf {index} is {leaf.hex()}")
    else:
        result.add("digest", "ok", f"the record's SHA-256 {digest.hex()} is leaf {index} of the log")
    note = await evidence.signed_checkpoint(tenant)
    key = await evidence.verifier_key(tenant)
    if key is None:
        result.add("signature", "failed", f"no published key for {tenant}")
        return
    if note is None:
        result.add("signature", "pending", f"no signed tree head of {tenant} yet")
        return
    try:
        checkpoint = open_checkpoint(note, key.name, [key])
    except IntegrityError as exc:
        result.add("signature", "failed", f"the signed tree head does not verify with {key.name}'s key: {exc}")
        return
    result.add("signature", "ok", f"tree head of size {checkpoint.size} signed by {key.name} (key {key.key_id.hex()})")
    if index >= checkpoint.size:
        result.add(
            "inclusion", "pending", f"leaf {index} is newer than the last signed tree head (size {checkpoint.size})"
        )
        return
    try:
        proof = await evidence.inclusion_proof(tenant, index, checkpoint.size)
        verify_inclusion(leaf_hash(digest), index, checkpoint.size, proof, checkpoint.root_hash)
    except (IntegrityError, LookupError, ValueError) as exc:
        result.add(
            "inclusion", "failed", f"the record is not leaf {index} of the signed tree of size {checkpoint.size}: {exc}"
        )
        return
    result.add(
        "inclusion",
        "ok",
        f"leaf {index} is in the signed tree of size {checkpoint.size} (root {checkpoint.root_hash.hex()})",
    )


async def _check_chain(
    result: Verification, evidence: Evidence, tenant: str, record: dict[str, Any], digest: bytes
) -> None:
    chain = record.get("chain") or {}
    dev_eui = record.get("device", {}).get("devEui")
    seq, prev = chain.get("seq"), chain.get("prev")
    if not isinstance(seq, int) or not isinstance(dev_eui, str):
        result.add("chain", "failed", "the record has no chain position")
        return
    problems: list[str] = []
    remarks: list[str] = []
    if seq == 0:
        if prev is not None:
            problems.append("the device's first record names a predecessor")
    else:
        before = await evidence.chain_record_text(tenant, dev_eui, seq - 1)
        if before is None:
            problems.append(f"record {seq - 1} of device {dev_eui}'s chain is missing")
        elif _digest(before).hex() != prev:
            problems.append(f"record {seq - 1} of device {dev_eui}'s chain does not hash to this record's prev")
        else:
            remarks += _frame_counter_remarks(json.loads(before), record)
    after = await evidence.chain_record_text(tenant, dev_eui, seq + 1)
    if after is not None:
        if (json.loads(after).get("chain") or {}).get("prev") != digest.hex():
            problems.append(f"record {seq + 1} of device {dev_eui}'s chain does not name this record as prev")
    elif await evidence.chain_length(tenant, dev_eui) > seq + 1:
        problems.append(f"record {seq + 1} of device {dev_eui}'s chain is missing")
    if problems:
        result.add("chain", "failed", "; ".join(problems))
    elif remarks:
        result.add("chain", "warning", f"chain position {seq} of device {dev_eui} holds; " + "; ".join(remarks))
    else:
        result.add("chain", "ok", f"chain position {seq} of device {dev_eui} links to its neighbours")


def _frame_counter_remarks(before: dict[str, Any], record: dict[str, Any]) -> list[str]:
    previous = (before.get("uplink") or {}).get("fCnt")
    current = (record.get("uplink") or {}).get("fCnt")
    if not isinstance(previous, int) or not isinstance(current, int):
        return []
    if current < previous:
        return [f"frame counter went from {previous} to {current} (device reset or rejoined)"]
    if current > previous + 1:
        return [
            f"{current - previous - 1} frame(s) between fCnt {previous} and {current} never reached the adapter "
            "(radio or network loss)"
        ]
    return []


IndexCheck = Callable[[str, int, dict[str, Any]], Awaitable[Check | None]]
BrokerRead = Callable[[str, str, str, datetime], Awaitable[BrokerValue | None]]


class LocalEvidence:
    """Evidence from the adapter's own ledger, keys, broker and RDF index.

    ``keys(tenant)`` is the collectivity's *public* key; ``broker`` reads a value from the
    broker (``broker_value_reader``); ``index`` compares the RDF index with a record.
    """

    def __init__(
        self,
        ledger: ProvenanceLedger,
        keys: Callable[[str], NoteVerifier | None],
        *,
        broker: BrokerRead | None = None,
        index: IndexCheck | None = None,
    ) -> None:
        self._ledger = ledger
        self._keys = keys
        self._broker = broker
        self._index = index

    async def record_text(self, tenant: str, index: int) -> str | None:
        stored = self._ledger.get(tenant, index)
        return None if stored is None else stored.text

    async def chain_record_text(self, tenant: str, dev_eui: str, seq: int) -> str | None:
        stored = self._ledger.chain_neighbour(tenant, dev_eui, seq)
        return None if stored is None else stored.text

    async def chain_length(self, tenant: str, dev_eui: str) -> int:
        return self._ledger.chain_length(tenant, dev_eui)

    async def leaf(self, tenant: str, index: int) -> bytes | None:
        try:
            return self._ledger.log(tenant).tree.entry(index)
        except (UnknownTenant, LookupError):
            return None

    async def signed_checkpoint(self, tenant: str) -> bytes | None:
        return self._ledger.latest_checkpoint(tenant)

    async def inclusion_proof(self, tenant: str, index: int, size: int) -> list[bytes]:
        return self._ledger.log(tenant).inclusion_proof(index, size)

    async def verifier_key(self, tenant: str) -> NoteVerifier | None:
        return self._keys(tenant)

    async def broker_value(
        self, tenant: str, entity_id: str, attribute: str, observed_at: datetime
    ) -> BrokerValue | None:
        return None if self._broker is None else await self._broker(tenant, entity_id, attribute, observed_at)

    async def index_check(self, tenant: str, index: int, record: dict[str, Any]) -> Check | None:
        return None if self._index is None else await self._index(tenant, index, record)


def broker_value_from(entity: dict[str, Any] | None, attribute: str, observed: str) -> BrokerValue | None:
    """Read the attribute and the entity's link, observed at ``observed``, from a broker answer:
    a current entity, or a temporal one in any shape a broker answers (``adapter.ngsild.history``:
    instances in any order, one instance as an object or an array of one, simplified pairs).
    The link may come back as ``wasDerivedFrom`` or expanded, depending on the context the broker
    compacted with."""
    if entity is None:
        return None
    moment = aware_instant(observed)
    try:
        parsed = parse_temporal_entity(entity)
    except TemporalAnswerError:
        return BrokerValue(None, None)
    value = _instance_at(parsed.attribute(attribute), moment)
    link = _instance_at(parsed.attribute(LINK_ATTRIBUTE, PROV_WAS_DERIVED_FROM), moment)
    target = None if link is None else link.get("object")
    if isinstance(target, list):  # some brokers answer a one-element list
        target = target[0] if target else None
    return BrokerValue(value, target if isinstance(target, str) else None)


def newest_observation(entity: dict[str, Any] | None, attribute: str) -> datetime | None:
    """When the newest value of ``attribute`` the answer holds was observed (None: it holds none)."""
    if entity is None:
        return None
    try:
        found = parse_temporal_entity(entity).attribute(attribute)
    except TemporalAnswerError:
        return None
    latest = None if found is None else found.latest()
    return None if latest is None else latest.observed_at


def _instance_at(found: TemporalAttribute | None, moment: datetime | None) -> dict[str, Any] | None:
    if found is None or moment is None:
        return None
    instance = found.at(moment)
    return None if instance is None else dict(instance.members)


def verification_lines(result: Verification) -> Sequence[str]:
    """The report in plain words, one line per check (the CLI's output)."""
    marks = {"ok": "ok     ", "failed": "FAILED ", "warning": "warning", "pending": "pending"}
    head = f"{result.entity_id} {result.attribute} observed at {result.observed_at} (tenant {result.tenant}): " + (
        "HOLDS" if result.holds else "DOES NOT HOLD"
    )
    return [head, *(f"  {marks.get(c.status, c.status)}  {c.name:<9}  {c.detail}" for c in result.checks)]
