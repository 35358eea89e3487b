"""Provenance in a running process: the ledger, the RDF index and its store, signed tree heads,
and the verifier, assembled from the configuration.

``AdapterService`` (the adapter) and ``ngsild-adapter serve`` hold one ``ProvenanceRuntime``;
the HTTP routes (``adapter.gateway``) and the CLI call into it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from adapter.config import AdapterConfig
from adapter.mapping.entities import DEVICE_CONTEXT, iso
from adapter.mapping.profile import ProfileSet
from adapter.ngsild.client import NgsiLdClient, NgsiLdError
from adapter.provenance.indexer import RdfIndexer
from adapter.provenance.integrity.note import NoteVerifier
from adapter.provenance.ledger import ProvenanceLedger, UnknownTenant
from adapter.provenance.pseudonyms import MissingPseudonymKey
from adapter.provenance.rdf import ProvenanceRecordError, verification_triples
from adapter.provenance.store import OxigraphStore, RdfStore, RdfStoreError, RemoteSparqlStore
from adapter.provenance.verify import (
    PROV_WAS_DERIVED_FROM,
    BrokerValue,
    Check,
    LocalEvidence,
    Verification,
    broker_value_from,
    newest_observation,
    verify_value,
)

__all__ = ["ProvenanceRuntime", "entity_contexts", "open_store", "read_broker"]

log = logging.getLogger(__name__)
_MS = timedelta(milliseconds=1)


def entity_contexts(profiles: ProfileSet) -> dict[str, str]:
    """The Smart Data Models context of each entity type the profiles make (for reading back)."""
    contexts = {"Device": DEVICE_CONTEXT}
    for profile in profiles:
        for spec in profile.entities:
            contexts.setdefault(spec.type, spec.context)
    return contexts


def open_store(config: AdapterConfig, session: aiohttp.ClientSession | None) -> RdfStore:
    """The configured RDF store: embedded in ``<state_dir>/rdf``, or a SPARQL 1.1 server."""
    settings = config.provenance
    if settings.store == "sparql":
        if session is None:
            raise ValueError("a remote SPARQL store needs an HTTP session")
        assert settings.sparql_query_url and settings.sparql_update_url
        return RemoteSparqlStore(
            settings.sparql_query_url,
            settings.sparql_update_url,
            settings.sparql_store_url or settings.sparql_update_url,
            session,
        )
    return OxigraphStore(Path(config.state_dir) / "rdf")


async def read_broker(
    client: NgsiLdClient,
    contexts: Mapping[str, str],
    tenant: str,
    entity_id: str,
    attribute: str,
    observed_at: datetime,
) -> BrokerValue | None:
    """The attribute and the entity's link observed at ``observed_at``: from the temporal API,
    or from the current entity when the history does not hold it or the broker has no temporal
    API (Orion-LD without Mintaka). ``contexts`` gives the Smart Data Models context of each
    entity type, to read short names.

    When neither holds the value but the current entity already has a newer one, the value
    cannot be read yet, which says nothing against it: the answer is ``pending`` with the
    reason (a history written with a delay, as Mintaka reads Orion-LD's TRoE database behind
    it; or no temporal API to read a superseded value from)."""
    entity_type = entity_id.split(":")[2] if entity_id.count(":") >= 3 else None
    context = contexts.get(entity_type or "")
    attrs = [attribute, PROV_WAS_DERIVED_FROM]
    observed = iso(observed_at)
    history: str | None = None  # why the history could not be read, None when it answered
    try:
        # one millisecond on each side: brokers read ``between`` differently (the spec and the
        # embedded broker [timeAt, endTimeAt), Mintaka both ends excluded, Scorpio both
        # included); the instant itself is picked from the answer
        temporal = await client.get_temporal(
            tenant,
            entity_id,
            context=context,
            attrs=attrs,
            timerel="between",
            time_at=iso(observed_at - _MS),
            end_time_at=iso(observed_at + _MS),
        )
        found = broker_value_from(temporal, attribute, observed)
        if found is not None and found.attribute is not None:
            return found
    except NgsiLdError as exc:
        log.debug("temporal retrieval of %s failed (%s); reading the current entity", entity_id, exc)
        history = str(exc)
    current = await client.get_entity(tenant, entity_id, context=context, attrs=attrs)
    found = broker_value_from(current, attribute, observed)
    if found is not None and found.attribute is not None:
        return found
    newer = newest_observation(current, attribute)
    if newer is None or newer <= observed_at:
        return found
    if history is None:
        why = (
            f"the broker's history does not hold {attribute} of {entity_id} observed at {observed} (yet), "
            f"while the entity already has one observed at {iso(newer)}: a broker may write its history "
            "with a delay (Mintaka reads Orion-LD's TRoE database behind it); verify again later, and if it "
            "stays absent the history lost it"
        )
    else:
        why = (
            f"the entity has a newer {attribute} (observed at {iso(newer)}) and the broker's temporal API "
            f"could not be read ({history}): give the value read to check it"
        )
    return BrokerValue(None, None, pending=why)


class ProvenanceRuntime:
    """What a process serving provenance holds.

    ``broker`` (optional) is read by the verifier when no value is given; ``store`` and
    ``indexer`` are None when the process has no RDF index (the index check is then skipped).
    """

    def __init__(
        self,
        ledger: ProvenanceLedger,
        *,
        store: RdfStore | None,
        indexer: RdfIndexer | None,
        contexts: Mapping[str, str],
        broker: NgsiLdClient | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.indexer = indexer
        self.contexts = contexts
        self.broker = broker

    def public_key(self, tenant: str) -> NoteVerifier | None:
        """The published verifier key of ``tenant``'s log."""
        try:
            return self.ledger.log(tenant).verifier
        except UnknownTenant:
            return None

    async def verify(
        self,
        tenant: str,
        entity_id: str,
        attribute: str,
        observed_at: datetime,
        *,
        value: str | None = None,
        record: int | None = None,
    ) -> Verification:
        evidence = LocalEvidence(
            self.ledger,
            self.public_key,
            broker=self.read_broker if self.broker is not None else None,
            index=self.check_index if self.store is not None else None,
        )
        return await verify_value(evidence, tenant, entity_id, attribute, observed_at, value=value, record=record)

    async def read_broker(
        self, tenant: str, entity_id: str, attribute: str, observed_at: datetime
    ) -> BrokerValue | None:
        """The attribute and the entity's link observed at ``observed_at`` (``read_broker``)."""
        assert self.broker is not None
        return await read_broker(self.broker, self.contexts, tenant, entity_id, attribute, observed_at)

    async def check_index(self, tenant: str, index: int, record: dict[str, Any]) -> Check:
        """Whether the RDF index holds exactly the quads of this record, pseudonyms included:
        they are recomputed with the collectivity's pseudonym key, and without it the check
        says it cannot be made (it never passes unchecked)."""
        assert self.store is not None
        if self.indexer is None:
            return Check("index", "failed", "this process has no pseudonym keys to recompute the record's quads with")
        try:
            expected_by_graph = verification_triples(
                record, index, pseudonyms=self.indexer.pseudonyms, personal=self.indexer.personal
            )
        except MissingPseudonymKey as exc:
            return Check("index", "failed", f"the record's quads cannot be recomputed: {exc}")
        except ProvenanceRecordError as exc:
            return Check("index", "failed", f"the record does not yield index quads: {exc}")
        subjects = sorted({s.strip("<>") for quads in expected_by_graph.values() for s, _, _ in quads})
        missing: set[tuple[str, str, str]] = set()
        extra: set[tuple[str, str, str]] = set()
        held_any = False
        own = f"<urn:ngsild-adapter:{tenant}:uplink:{index}"
        try:
            for graph, expected in expected_by_graph.items():
                held = await self.store.quads(subjects, graph)
                # the record's own nodes (a pseudonym is held as soon as another record names it)
                held_any = held_any or any(s == f"{own}>" or s.startswith(f"{own}:") for s, _, _ in held)
                missing |= expected - held
                extra |= held - expected
        except RdfStoreError as exc:
            return Check("index", "pending", f"the RDF index could not be read: {exc}")
        if not held_any and self.indexer.position(tenant) <= index:
            return Check(
                "index", "pending", f"record {index} is not indexed yet (the index catches up off the hot path)"
            )
        if missing or extra:
            sample = sorted(missing)[:1] + sorted(extra)[:1]
            return Check(
                "index",
                "failed",
                f"the RDF index differs from the record: {len(missing)} quad(s) missing, "
                f"{len(extra)} not from the record or in the wrong graph "
                f"(e.g. {' '.join(sample[0])})",
            )
        count = sum(map(len, expected_by_graph.values()))
        return Check(
            "index",
            "ok",
            f"the RDF index holds the record's {count} quads, each in its graph, and nothing else about it",
        )

    async def sign_checkpoints(self) -> None:
        signed = self.ledger.sign_checkpoints()
        for tenant, note in signed.items():
            log.debug("signed tree head of %s: %s", tenant, note.split(b"\n")[1:3])

    async def run_checkpoints(self, interval_s: float) -> None:
        """Sign the grown logs every ``interval_s`` and forget raw payloads past their retention."""
        while True:
            await self.sign_checkpoints()
            pruned = self.ledger.prune_payloads()
            if pruned:
                log.info("forgot %d raw payloads past their retention", pruned)
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        if self.indexer is not None:
            self.indexer.close()
        if self.store is not None:
            await self.store.close()
