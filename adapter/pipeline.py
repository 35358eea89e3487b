"""The ingest pipeline: one network-server event in, NGSI-LD entities (or a dead letter) out.

    parse (sources) -> dedup -> profile -> decode (codecs) -> privacy -> map -> check -> entities
                                                                   -> provenance record (ledger)

Synchronous and free of I/O apart from the SQLite state and dead-letter files, so the same
code serves the MQTT and webhook listeners, the CLI and the benchmarks. Every rejection
becomes a dead letter with its reason; nothing raises past ``process`` but ``OutboxFull``.

With an ``outbox`` (sharing the state's connection: ``Outbox.sharing(state)``), the entities of
an accepted event are queued for the broker in the same SQLite transaction that marks the
uplink seen and records its meter indexes: either the uplink is seen and its entities are
queued, or neither (``adapter.outbox`` explains why). With a ``ledger``, the event's
provenance record (``adapter.provenance``) is logged in that transaction too, and each entity
gets its ``wasDerivedFrom`` link to it before it is queued. When the outbox is full, ``OutboxFull``
propagates and nothing is recorded, so the transport can push back and the network server
sends the uplink again later.

Registry data is bound to its collectivity: a ``[[device]]`` entry that names a collectivity
gives its name, location and attributes only to events of that collectivity's connections
(``Origin.tenant``). An uplink or status event of that device arriving on another
collectivity's connection is refused (``device_collectivity_mismatch``, before the dedup check,
so it is never stored in that tenant nor counted as a duplicate): it would otherwise be stored
in the wrong tenant, under the first collectivity's registered name and location. The lookup
is by the parsers' normalised EUI, so no spelling of the EUI (case, dashes, colons) escapes
it. An entry without a collectivity applies on every connection, as configured.

``process_many`` takes a burst of events (the MQTT messages already received) through the same
steps inside ONE SQLite transaction (group commit, see ``adapter.state``): each event keeps its
own outcome (mapped, duplicate, rejected as a dead letter, or the exception that stopped it,
with nothing of it stored), an uplink repeated inside the burst is recognised as a duplicate,
and nothing of the burst is durable until ``process_many`` returns. The caller acknowledges
the events it returned a ``PipelineResult`` for, and only then.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapter.codecs import CodecRegistry
from adapter.codecs.base import CodecInput, DecodeResult
from adapter.deadletter import DeadLetter, DeadLetterStore
from adapter.exceptions import CodecError, ForeignDevice, MappingError, RejectedInput, UnknownDevice
from adapter.mapping.entities import (
    CumulativeValue,
    DeviceDirectory,
    DeviceRecord,
    build_device_entity,
    build_entities,
    observation_time,
)
from adapter.mapping.profile import DeviceProfile, ProfileSet
from adapter.mapping.schemas import SchemaRegistry
from adapter.ngsild.context_server import served_context_urls
from adapter.outbox import Outbox, UplinkRef
from adapter.privacy import apply_privacy
from adapter.provenance.integrity.canonical import CanonicalizationError
from adapter.provenance.ledger import ProvenanceLedger
from adapter.provenance.record import Step, build_record, link_entities
from adapter.sources import DEFAULT_LIMITS, ParseLimits, get_parser
from adapter.state import PipelineState
from adapter.uplink import DeviceStatus, Event, Origin, OtherEvent, Uplink

__all__ = ["Pipeline", "PipelineResult", "RawEvent"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """What became of one event.

    ``status`` is ``mapped`` (entities ready for the broker), ``device_status`` (a Device
    update from a status event), ``duplicate``, ``other`` (join, ack, a MAC-only uplink on fPort 0... counted) or
    ``rejected`` (then ``reason``, ``detail`` and ``dead_letter_id`` are set).
    """

    status: str
    entities: tuple[dict[str, Any], ...] = ()
    event: Event | None = None
    profile: DeviceProfile | None = None
    decoded: DecodeResult | None = None
    privacy_applied: tuple[str, ...] = ()
    observed_at: datetime | None = None
    observed_at_source: str | None = None
    out_of_range: tuple[tuple[str, str], ...] = ()  # (entity id, attribute) of each flagged value
    reason: str | None = None
    detail: str | None = None
    dead_letter_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        if self.status == "rejected":
            return {
                "status": self.status,
                "reason": self.reason,
                "detail": self.detail,
                "dead_letter_id": self.dead_letter_id,
            }
        out: dict[str, Any] = {"status": self.status, "entities": list(self.entities)}
        if self.decoded is not None:
            out["codec"] = self.decoded.codec.to_json()
            out["warnings"] = list(self.decoded.warnings)
        if self.profile is not None:
            out["profile"] = {"name": self.profile.name, "sha256": self.profile.digest}
        if self.out_of_range:
            out["out_of_range"] = [{"entity": e, "attribute": a} for e, a in self.out_of_range]
        if self.privacy_applied:
            out["privacy"] = list(self.privacy_applied)
        return out


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One event as a transport received it (the arguments of ``Pipeline.process``)."""

    body: bytes
    lns: str
    origin: Origin
    topic: str | None = None
    event: str | None = None


@dataclass
class Pipeline:
    profiles: ProfileSet
    codecs: CodecRegistry
    state: PipelineState
    dead_letters: DeadLetterStore
    devices: Mapping[str, DeviceRecord] = field(default_factory=dict)
    schemas: SchemaRegistry | None = field(default_factory=SchemaRegistry)
    limits: ParseLimits = DEFAULT_LIMITS
    pseudonym_key: bytes | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    counters: Counter[str] = field(default_factory=Counter)
    outbox: Outbox | None = None
    contexts_url: str | None = None  # entities name the adapter's served copies of their contexts
    ledger: ProvenanceLedger | None = None  # provenance records, in the state's SQLite connection

    def process(
        self,
        body: bytes,
        *,
        lns: str,
        origin: Origin,
        topic: str | None = None,
        event: str | None = None,
    ) -> PipelineResult:
        """Parse and process one raw event; a rejection is stored as a dead letter."""
        self.counters["received"] += 1
        parsed: Event | None = None
        try:
            parsed = get_parser(lns).parse(
                body, origin=origin, topic=topic, event=event, limits=self.limits, now=self.clock()
            )
            return self.process_event(parsed)
        except RejectedInput as exc:
            dev_eui = getattr(parsed, "dev_eui", None)
            letter = self.dead_letters.add(
                connection=origin.lns_id,
                lns=lns,
                tenant=origin.tenant,
                body=body,
                reason=exc.reason,
                detail=exc.detail,
                topic=topic,
                event=event,
                dev_eui=dev_eui,
            )
            self.counters[f"rejected:{exc.reason}"] += 1
            log.warning("rejected event from %s (dead letter %d): %s", origin.lns_id, letter, exc)
            return PipelineResult("rejected", event=parsed, reason=exc.reason, detail=exc.detail, dead_letter_id=letter)

    def process_many(self, events: Sequence[RawEvent]) -> list[PipelineResult | Exception]:
        """Process a burst of events in one transaction (group commit); one outcome per event.

        An outcome is the ``PipelineResult`` of ``process``, or the exception that stopped the
        event (``OutboxFull``, a broken resource, a bug): nothing of that event is stored, so it
        must not be acknowledged. Everything returned as a result is committed when this
        returns. If the commit itself fails (or SQLite ends the transaction on its own), every
        outcome is that exception: nothing of the burst may be acknowledged (dead letters
        already filed for some of its events may then be filed again when they come back).
        """
        if not events:
            return []
        outcomes: list[PipelineResult | Exception] = []
        process = self.process
        state = self.state
        try:
            with state.batch():
                for raw in events:
                    try:
                        outcomes.append(
                            process(raw.body, lns=raw.lns, origin=raw.origin, topic=raw.topic, event=raw.event)
                        )
                    except Exception as exc:
                        if not state.batch_intact:
                            raise
                        outcomes.append(exc)
        except Exception as exc:
            log.error("a burst of %d events could not be committed: %s", len(events), exc)
            return [exc] * len(events)
        return outcomes

    def replay(self, letter: DeadLetter) -> PipelineResult:
        """Process a dead letter again; on success it is marked replayed, else its reason is updated.

        The replay does not create a second dead letter for the same input.
        """
        origin = Origin(tenant=letter.tenant, lns_id=letter.connection)
        try:
            parsed = get_parser(letter.lns).parse(
                letter.body, origin=origin, topic=letter.topic, event=letter.event, limits=self.limits, now=self.clock()
            )
            result = self.process_event(parsed)
        except RejectedInput as exc:
            self.dead_letters.record_failed_replay(letter.id, exc.reason, exc.detail)
            self.counters[f"replay_rejected:{exc.reason}"] += 1
            return PipelineResult("rejected", reason=exc.reason, detail=exc.detail, dead_letter_id=letter.id)
        self.dead_letters.mark_replayed(letter.id)
        self.counters["replayed"] += 1
        return result

    def close(self) -> None:
        self.codecs.close()
        if self.outbox is not None:
            self.outbox.close()
        self.state.close()
        self.dead_letters.close()

    def process_event(self, event: Event) -> PipelineResult:
        """Process an already parsed event; raises ``RejectedInput`` (``process`` stores it)."""
        if isinstance(event, Uplink):
            return self._uplink(event)
        if isinstance(event, DeviceStatus):
            return self._status(event)
        assert isinstance(event, OtherEvent)
        self.counters[f"event:{event.event}"] += 1
        return PipelineResult("other", event=event)

    def _registered(self, event: Uplink | DeviceStatus) -> DeviceRecord | None:
        """The registry entry of the event's device, refused if a hand-typed entry gives it to
        another collectivity (an imported entry only ever speaks for its own: ``DeviceDirectory``)."""
        if isinstance(self.devices, DeviceDirectory):
            record = self.devices.for_event(event.origin.tenant, event.dev_eui)
        else:
            record = self.devices.get(event.dev_eui)
        if record is not None and record.tenant is not None and record.tenant != event.origin.tenant:
            raise ForeignDevice(
                f"device {event.dev_eui} is registered to collectivity {record.tenant!r}; this event came "
                f"on connection {event.origin.lns_id!r} of {event.origin.tenant!r}"
            )
        return record

    def _uplink(self, uplink: Uplink) -> PipelineResult:
        device = self._registered(uplink)
        key = uplink.dedup_key
        if self.state.seen(key):
            self.counters["duplicate"] += 1
            return PipelineResult("duplicate", event=uplink)
        if uplink.f_port == 0 and not uplink.payload and uplink.decoded is None:
            # fPort 0 carries MAC commands only, for the network server: no reading, nothing lost.
            self.counters["mac_only"] += 1
            return PipelineResult("other", event=uplink)
        profile = self.profiles.find(uplink)
        if profile is None:
            raise UnknownDevice(
                f"no device profile matches device {uplink.dev_eui} (LNS profile {uplink.device_profile!r}, "
                f"application {uplink.application_id!r}, tags {dict(uplink.tags)})"
            )
        if not uplink.payload and uplink.decoded is None:
            raise RejectedInput("empty_payload", f"uplink fCnt {uplink.f_cnt} of {uplink.dev_eui} carries no payload")
        clock = self.clock
        decode_started = clock()
        decoded = self.codecs.get(profile.codec).decode(
            CodecInput(
                payload=uplink.payload,
                f_port=uplink.f_port,
                received_at=uplink.received_at,
                variables=dict(uplink.tags),
                lns_decoded=uplink.decoded,
            )
        )
        if decoded.errors:
            raise CodecError("codec_errors", f"{decoded.codec.name}: {'; '.join(decoded.errors)}")
        decode_ended = clock()
        data, applied = apply_privacy(decoded.data, profile.privacy, key=self.pseudonym_key)
        privacy_ended = clock()
        observed_at, source = observation_time(uplink, data, profile)
        mapped = build_entities(uplink, data, profile, device, observed_at)
        self._check_schemas(mapped.entities, mapped.out_of_range)
        index_updates = self._meter_index_updates(mapped.cumulative, data, profile, observed_at)
        indexes = [(c.entity_id, c.attribute, c.value) for c in index_updates]
        record = None
        if self.ledger is not None:
            steps = (
                Step(
                    "decode",
                    decode_started,
                    decode_ended,
                    {"codec": decoded.codec.name, "codecSha256": decoded.codec.digest},
                ),
                Step("privacy", decode_ended, privacy_ended, {"rules": list(applied)}),
                Step("map", privacy_ended, clock(), {"profile": profile.name, "profileSha256": profile.digest}),
            )
            record = build_record(uplink, mapped.entities, observed_at=observed_at, steps=steps)
        with self.state.transaction():
            self.state.accept(key, indexes, observed_at)
            self._record_and_queue(uplink, mapped.entities, record, observed_at)
        self.counters["mapped"] += 1
        self.counters["entities"] += len(mapped.entities)
        self.counters["codec_warnings"] += len(decoded.warnings)
        self.counters["out_of_range"] += len(mapped.out_of_range)
        return PipelineResult(
            "mapped", mapped.entities, uplink, profile, decoded, applied, observed_at, source, mapped.out_of_range
        )

    def _status(self, status: DeviceStatus) -> PipelineResult:
        self.counters["event:status"] += 1
        device = self._registered(status)
        profile = self.profiles.find(status)
        if profile is None or profile.device is None:
            raise UnknownDevice(f"status of device {status.dev_eui}: no device profile with a Device entity matches")
        map_started = self.clock()
        entity = build_device_entity(status, profile, device, None, status.received_at)
        self._check_schemas((entity,), ())
        record = None
        if self.ledger is not None:
            step = Step("map", map_started, self.clock(), {"profile": profile.name, "profileSha256": profile.digest})
            record = build_record(status, (entity,), observed_at=status.received_at, steps=(step,))
        with self.state.transaction():
            self._record_and_queue(status, (entity,), record, status.received_at)
        return PipelineResult("device_status", (entity,), status, profile, observed_at=status.received_at)

    def _record_and_queue(
        self,
        event: Uplink | DeviceStatus,
        entities: tuple[dict[str, Any], ...],
        record: dict[str, Any] | None,
        observed_at: datetime,
    ) -> None:
        """Log the event's provenance record, link its entities to it, and queue them (inside
        the state's transaction: all of it commits with the dedup mark, or none)."""
        index = None
        if record is not None and self.ledger is not None:
            try:
                ref = self.ledger.record(record, payload=event.payload if isinstance(event, Uplink) else None)
            except CanonicalizationError as exc:  # raised before the ledger wrote anything
                # A value the input brought (an LNS-decoded 2**60, a codec's lone surrogate):
                # the event is refused, rather than logged rounded or stopping the pipeline.
                raise MappingError("not_canonical", f"the provenance record cannot be logged: {exc}") from exc
            link_entities(entities, ref.iri, observed_at)
            index = ref.index
        # After the record: it names the contexts by their canonical URLs, whatever copy the broker reads.
        self._serve_contexts(entities)
        if self.outbox is not None:
            self.outbox.put(event.origin.tenant, entities, observed_at=observed_at, source=UplinkRef.of(event, index))

    def _serve_contexts(self, entities: tuple[dict[str, Any], ...]) -> None:
        if self.contexts_url is None:
            return
        for entity in entities:
            entity["@context"] = served_context_urls(entity["@context"], self.contexts_url)

    def _check_schemas(self, entities: tuple[dict[str, Any], ...], out_of_range: tuple[tuple[str, str], ...]) -> None:
        if self.schemas is None:
            return
        none: frozenset[str] = frozenset()
        for entity in entities:
            # A value flagged out of range is kept on purpose; its schema bound is the same finding.
            skip = frozenset(a for entity_id, a in out_of_range if entity_id == entity["id"]) if out_of_range else none
            errors = self.schemas.errors(entity, skip=skip)
            if errors:
                raise MappingError("schema_invalid", f"{entity['type']} {entity['id']}: {'; '.join(errors)}")

    def _meter_index_updates(
        self,
        cumulative: tuple[CumulativeValue, ...],
        data: Mapping[str, Any],
        profile: DeviceProfile,
        observed_at: datetime,
    ) -> list[CumulativeValue]:
        """The meter indexes to remember once the uplink is accepted; raises if one went down.

        Compared in time order: a late (older) reading must not exceed the newer index either.
        A meter-change event (a truthy ``meter_change_field``) starts the index afresh.
        """
        meter_changed = bool(profile.meter_change_field and data.get(profile.meter_change_field))
        if meter_changed and cumulative:
            self.counters["meter_change"] += 1
        updates = []
        for c in cumulative:
            last = self.state.last_index(c.entity_id, c.attribute)
            if last is not None and not meter_changed:
                last_value, last_at = last
                if (observed_at >= last_at and c.value < last_value) or (
                    observed_at < last_at and c.value > last_value
                ):
                    raise MappingError(
                        "meter_index_decrease",
                        f"{c.entity_id} {c.attribute}: {c.value:g} at {observed_at.isoformat()} against "
                        f"{last_value:g} at {last_at.isoformat()}, without a meter-change event "
                        f"({profile.meter_change_field})",
                    )
            if last is None or observed_at >= last[1] or meter_changed:
                updates.append(c)
        return updates
