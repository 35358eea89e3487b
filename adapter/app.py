"""Assembly: builds the pipeline from a configuration and runs the jobs the CLI offers.

Kept apart from ``cli.py`` so that tests and other front ends use the same assembly.

Every pipeline built here queues its entities in an outbox that shares the state's SQLite
file and connection (see ``adapter.outbox``); ``listen`` runs the broker writer
(``adapter.delivery``) beside the transports, so ingest and delivery are decoupled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapter import resources
from adapter.codecs import CodecRegistry
from adapter.config import AdapterConfig, validate_for_start
from adapter.deadletter import DeadLetter, DeadLetterStore
from adapter.delivery import ENTITY_REASONS, BrokerWriter
from adapter.demo.samples import load_samples, sample_origin
from adapter.exceptions import ConfigError
from adapter.gateway.local import ServiceGuard
from adapter.gateway.provenance import provenance_routes
from adapter.gateway.sparql import SparqlLimits, sparql_routes
from adapter.gateway.transparency import transparency_routes
from adapter.httpserver import serving
from adapter.mapping.entities import DeviceRecord
from adapter.mapping.profile import ProfileSet, load_profiles
from adapter.mapping.schemas import SchemaRegistry
from adapter.metrics import CONTENT_TYPE, render_outbox_metrics, render_provenance_metrics
from adapter.ngsild.client import NgsiLdClient
from adapter.ngsild.context_server import broker_contexts, context_routes
from adapter.outbox import Outbox, UplinkRef, latest_observation
from adapter.pipeline import Pipeline, PipelineResult
from adapter.provenance.indexer import RdfIndexer
from adapter.provenance.pseudonyms import PseudonymKeys
from adapter.provenance.integrity.keys import ephemeral_keys, key_directory
from adapter.provenance.ledger import ProvenanceLedger
from adapter.provenance.runtime import ProvenanceRuntime, entity_contexts, open_store
from adapter.provenance.store import RdfStore, RdfStoreError
from adapter.registry import RegistryImporter, RegistryStore, open_clients, registry_devices, store_path
from adapter.state import PipelineState
from adapter.uplink import Origin

__all__ = [
    "DEMO_EVENTS",
    "AdapterService",
    "build_pipeline",
    "listen",
    "open_provenance",
    "provenance_http_routes",
    "replay_dead_letters",
    "run_samples",
    "serve",
    "standalone_provenance",
]

log = logging.getLogger(__name__)

DEMO_EVENTS = resources.demo_events_dir()


def build_pipeline(config: AdapterConfig, state_dir: Path | None) -> Pipeline:
    """A pipeline over the configured profiles, queuing its entities in an outbox.

    ``state_dir=None`` keeps state, outbox and dead letters in memory.
    """
    profiles = load_profiles(config.models_dir)
    settings = config.provenance
    if state_dir is None:
        state, letters = PipelineState(":memory:"), DeadLetterStore(":memory:")
        signers = ephemeral_keys(settings.log_origin)
    else:
        state = PipelineState(state_dir / "state.sqlite")
        letters = DeadLetterStore(state_dir / "deadletters.sqlite")
        signers = key_directory(settings.key_dir, settings.log_origin)
    retention = timedelta(days=settings.payload_retention_days) if settings.payload_retention_days else None
    ledger = ProvenanceLedger(
        state.connection, signers, tenants=list(config.collectivities), payload_retention=retention
    )
    state.on_rollback(ledger.forget_cached)
    return Pipeline(
        profiles=profiles,
        codecs=CodecRegistry(),
        state=state,
        dead_letters=letters,
        devices=registry_devices(config, state_dir),  # [[device]] entries and the last good imports
        schemas=SchemaRegistry.for_models(config.models_dir),  # the user's schemas, then the shipped ones
        limits=config.limits,
        pseudonym_key=config.pseudonym_key,
        outbox=Outbox.sharing(state, max_depth=config.outbox_max_depth),
        contexts_url=config.contexts_url,
        ledger=ledger,
    )


def rdf_indexer(config: AdapterConfig, ledger: ProvenanceLedger, db: Any, store: RdfStore) -> RdfIndexer:
    """The RDF indexer of the configured store: records, receipts and the gateway's accesses."""
    settings = config.provenance
    access_log = settings.access_log or Path(config.state_dir) / "gateway" / "access.sqlite"
    tenants = list(config.collectivities)
    pseudonyms = PseudonymKeys(settings.key_dir / "pseudonyms", tenants, settings.pseudonym_rotations)
    return RdfIndexer(
        ledger,
        db,
        store,
        batch=settings.index_batch,
        personal=settings.personal_attributes,
        access_log=access_log,
        tenants=tenants,
        pseudonyms=pseudonyms,
    )


async def open_provenance(
    config: AdapterConfig,
    ledger: ProvenanceLedger,
    db: Any,
    profiles: ProfileSet,
    session: aiohttp.ClientSession,
    broker: NgsiLdClient | None,
) -> ProvenanceRuntime:
    """The provenance runtime of a process: the configured RDF store and its indexer."""
    store = open_store(config, session)
    indexer = rdf_indexer(config, ledger, db, store)
    return ProvenanceRuntime(
        ledger,
        store=store,
        indexer=indexer,
        broker=broker,
        contexts=broker_contexts(entity_contexts(profiles), config.contexts_url),
    )


@contextlib.asynccontextmanager
async def standalone_provenance(
    config: AdapterConfig, *, with_store: bool = True, with_broker: bool = True
) -> AsyncIterator[ProvenanceRuntime]:
    """The provenance of the configured state directory, for a process other than the adapter
    (``serve``, ``verify``, ``provenance ...``). It reads the same SQLite file; an embedded RDF
    store can only be opened while the adapter is not running (then ``store`` is None)."""
    state = PipelineState(config.state_dir / "state.sqlite")
    ledger = ProvenanceLedger(state.connection, key_directory(config.provenance.key_dir, config.provenance.log_origin))
    async with aiohttp.ClientSession() as session:
        broker = None
        if with_broker and config.broker.url:
            broker = NgsiLdClient.from_settings(config.broker, session)
        store = indexer = None
        if with_store:
            try:
                store = open_store(config, session)
                indexer = rdf_indexer(config, ledger, state.connection, store)
            except RdfStoreError as exc:
                log.warning("RDF index not available (%s): is the adapter running with the embedded store?", exc)
        profiles = load_profiles(config.models_dir)
        runtime = ProvenanceRuntime(
            ledger,
            store=store,
            indexer=indexer,
            broker=broker,
            contexts=broker_contexts(entity_contexts(profiles), config.contexts_url),
        )
        try:
            yield runtime
        finally:
            await runtime.close()
            state.close()


async def serve(config: AdapterConfig, *, host: str, port: int) -> None:
    """The HTTP surface alone (contexts, provenance, logs, keys, SPARQL, and ``/metrics`` with
    the index lag), indexing and signing in the background, until cancelled."""
    validate_for_start(config, "serve")  # an unset secret variable stops the start, before anything runs
    async with standalone_provenance(config) as runtime:
        tasks = [asyncio.create_task(runtime.run_checkpoints(config.provenance.checkpoint_interval_s))]
        if runtime.indexer is not None:
            tasks.append(asyncio.create_task(runtime.indexer.run()))

        async def metrics(request: web.Request) -> web.Response:
            ledger, indexer = runtime.ledger, runtime.indexer
            body = render_provenance_metrics(
                {t: ledger.size(t) for t in ledger.tenants()},
                indexer.lag() if indexer is not None else None,
                quarantined=indexer.quarantined() if indexer is not None else None,
            )
            return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

        app = web.Application()
        app.add_routes([*context_routes(), *provenance_http_routes(runtime, config, metrics=metrics)])
        try:
            async with serving(app, host=host, port=port, limits=config.http) as server:
                log.info("provenance served on %s", server.url)
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def provenance_http_routes(
    runtime: ProvenanceRuntime,
    config: AdapterConfig,
    *,
    metrics: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None,
) -> list[web.RouteDef]:
    """``/sparql``, the provenance API, the logs and the published keys (README: HTTP surface),
    and ``/metrics`` served by ``metrics`` when given.

    The logs and keys are public (digests and signatures only); the paths that answer with
    values, and ``/metrics`` (tenants, counts, index lag), require the service token of
    ``[provenance] service_token_env`` (``adapter.gateway.local.ServiceGuard``). Raises
    ``ConfigError`` when that variable is named but not set."""
    settings = config.provenance
    guard = ServiceGuard.from_settings(settings)
    data = list(provenance_routes(runtime))
    if runtime.store is not None:
        limits = SparqlLimits(timeout_s=settings.query_timeout_s, max_results=settings.query_max_results)
        data += sparql_routes(runtime.store, limits=limits)
    if metrics is not None:
        data.append(web.get("/metrics", metrics))
    return [*transparency_routes(runtime.ledger), *guard.protect(data)]


def run_samples(
    config: AdapterConfig, state_dir: Path, *, echo: Callable[[Any], None], events: Path = DEMO_EVENTS
) -> dict[str, Any]:
    """Process every bundled sample event, give each result to ``echo``, and return a summary.

    The sample files' format is ``adapter.demo.samples``'s. Raises ``SampleError`` for a file
    not in it, ``ConfigError`` for a sample whose connection the configuration does not have
    (before anything is processed).
    """
    samples = list(load_samples(events))
    origins = [sample_origin(config, sample, name) for name, sample in samples]
    pipeline = build_pipeline(config, state_dir)
    outcomes: Counter[str] = Counter()
    try:
        for (name, sample), origin in zip(samples, origins, strict=True):
            result = pipeline.process(
                sample.body, lns=sample.lns, origin=origin, topic=sample.topic, event=sample.event
            )
            outcomes[result.status] += 1
            echo({"sample": name, **result.to_json()})
        return {
            "samples": len(samples),
            "outcomes": dict(outcomes),
            "counters": dict(sorted(pipeline.counters.items())),
            "dead_letters": pipeline.dead_letters.counts(),
        }
    finally:
        pipeline.close()


def replay_dead_letters(
    config: AdapterConfig, *, ids: Iterable[int], reason: str | None, emit: Callable[[PipelineResult], None]
) -> list[str]:
    """Replay dead letters through a fresh pipeline; returns the status of each.

    An entity the broker refused (``broker_refused``) is not an LNS event: it is queued in the
    outbox again as it is (status ``requeued``), for when the cause was fixed on the broker's side.
    A running ``listen`` delivers it. Raises ``OutboxFull`` when the outbox has no room.
    """
    pipeline = build_pipeline(config, config.state_dir)
    store = pipeline.dead_letters
    letters = [store.get(i) for i in ids] if ids else store.list(reason=reason, limit=10_000)
    statuses = []
    try:
        for letter in letters:
            if letter is None or letter.status != "open":
                continue
            if letter.reason in ENTITY_REASONS and pipeline.outbox is not None:
                result = _queue_again(pipeline.outbox, store, letter)
            else:
                result = pipeline.replay(letter)
            statuses.append(result.status)
            emit(result)
    finally:
        pipeline.close()
    return statuses


def _queue_again(outbox: Outbox, store: DeadLetterStore, letter: DeadLetter) -> PipelineResult:
    entity = json.loads(letter.body)
    observed_at = latest_observation(entity) or datetime.fromisoformat(letter.stored_at)
    source = UplinkRef(letter.connection, letter.lns, letter.event or "up", letter.dev_eui)
    outbox.put(letter.tenant, [entity], observed_at=observed_at, source=source)
    store.mark_replayed(letter.id)
    return PipelineResult("requeued", (entity,))


class AdapterService:
    """The running adapter: transports in, pipeline, outbox, writer out, and its HTTP resources.

    Used by ``listen`` (the CLI), the demo and the end-to-end benchmark::

        async with AdapterService(config, http_port=8080) as service:
            await service.subscribed(timeout_s=30)  # MQTT subscriptions in place
            ...                       # events flow in
            await service.drained(timeout_s=60)     # every accepted entity delivered

    Without a ``[broker]`` url the entities wait in the outbox (and ingest is pushed back once
    it is full). The HTTP listener (``http_port``) serves the webhooks, the JSON-LD contexts
    (``/contexts/``), ``/healthz``, ``/metrics``, and provenance: ``/sparql``, ``/provenance/``,
    ``/logs/`` and ``/.well-known/jwks.json`` (``provenance_http_routes``). The RDF index is
    kept up to date and the logs' tree heads signed in background tasks.
    """

    def __init__(
        self,
        config: AdapterConfig,
        *,
        http_host: str = "127.0.0.1",
        http_port: int | None = None,
        emit: Callable[[PipelineResult], None] | None = None,
    ) -> None:
        # every variable its *_env settings name, the TLS and CA files: before anything opens,
        # all problems at once (``ngsild-adapter check`` runs the same function)
        validate_for_start(config, "listen", http=http_port is not None)
        self.config = config
        self.http_host, self.http_port = http_host, http_port
        self.emit = emit
        self.events = 0
        self.pipeline: Pipeline | None = None
        self.writer: BrokerWriter | None = None
        self.provenance: ProvenanceRuntime | None = None
        self.registry: RegistryImporter | None = None
        self._resources = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: dict[str, asyncio.Event] = {}

    def handle(
        self, body: bytes, *, lns: str, origin: Origin, topic: str | None = None, event: str | None = None
    ) -> PipelineResult:
        """The transports' entry point: one event through the pipeline into the outbox."""
        assert self.pipeline is not None
        result = self.pipeline.process(body, lns=lns, origin=origin, topic=topic, event=event)
        if self.writer is not None and result.entities:
            self.writer.wake()
        if self.provenance is not None and self.provenance.indexer is not None and result.entities:
            self.provenance.indexer.wake()
        if self.emit is not None:
            self.emit(result)
        self.events += 1
        return result

    def handle_many(
        self, messages: list[tuple[bytes, str | None]], *, lns: str, origin: Origin
    ) -> list[PipelineResult | Exception]:
        """The MQTT consumer's entry point for a burst: ``(body, topic)`` pairs of one connection,
        through the pipeline in one transaction (group commit, ``Pipeline.process_many``).

        One outcome per message: its result (committed when this returns: acknowledge it), or
        the exception that stopped it (nothing of it stored: do not acknowledge it).
        """
        from adapter.pipeline import RawEvent

        assert self.pipeline is not None
        outcomes = self.pipeline.process_many([RawEvent(body, lns, origin, topic) for body, topic in messages])
        woken = False
        for outcome in outcomes:
            if isinstance(outcome, PipelineResult):
                if not woken and outcome.entities:
                    if self.writer is not None:
                        self.writer.wake()
                    if self.provenance is not None and self.provenance.indexer is not None:
                        self.provenance.indexer.wake()
                    woken = True
                if self.emit is not None:
                    self.emit(outcome)
                self.events += 1
        return outcomes

    async def __aenter__(self) -> AdapterService:
        from adapter.sources.mqtt import consume_mqtt
        from adapter.sources.webhook import serve_webhooks

        config, broker = self.config, self.config.broker
        mqtt = [c for c in config.connections if c.transport == "mqtt"]
        if not mqtt and self.http_port is None:
            raise ConfigError("nothing to listen to: no MQTT connection configured and no HTTP port")
        pipeline = self.pipeline = build_pipeline(config, config.state_dir)
        self._resources.callback(pipeline.close)  # last: after the tasks are stopped
        session = await self._resources.enter_async_context(aiohttp.ClientSession())
        client = None
        if broker.url is None or pipeline.outbox is None:
            log.warning("no broker url configured ([broker] url): entities are kept in the outbox until there is one")
        else:
            client = NgsiLdClient.from_settings(broker, session)
            self.writer = BrokerWriter(pipeline.outbox, client, pipeline.dead_letters, broker, receipts=pipeline.ledger)
            self._tasks.append(asyncio.create_task(self.writer.run()))
            log.info("delivering to the NGSI-LD broker at %s", broker.url)
        assert pipeline.ledger is not None
        if config.provenance.index_in == "listen":
            runtime = await open_provenance(
                config, pipeline.ledger, pipeline.state.connection, pipeline.profiles, session, client
            )
            assert runtime.indexer is not None
            self._tasks.append(asyncio.create_task(runtime.indexer.run()))
        else:  # `ngsild-adapter serve` keeps the index, in its own process
            runtime = ProvenanceRuntime(
                pipeline.ledger,
                store=None,
                indexer=None,
                contexts=broker_contexts(entity_contexts(pipeline.profiles), config.contexts_url),
                broker=client,
            )
        self.provenance = runtime
        self._resources.push_async_callback(runtime.close)
        self._tasks.append(asyncio.create_task(runtime.run_checkpoints(config.provenance.checkpoint_interval_s)))
        if config.registries:  # network servers' device registries, imported every interval_s
            store = RegistryStore(store_path(config.state_dir))
            self._resources.callback(store.close)
            self.registry = RegistryImporter(
                config.registries,
                config.devices,
                store,
                open_clients(config.registries, session),
                on_change=self._devices_changed,
            )
            self._resources.push_async_callback(self.registry.close)
            self._tasks.append(asyncio.create_task(self.registry.run()))
        self._ready = {c.name: asyncio.Event() for c in mqtt}
        self._tasks += [
            asyncio.create_task(consume_mqtt(c, self.handle, handle_many=self.handle_many, ready=self._ready[c.name]))
            for c in mqtt
        ]
        if self.http_port is not None:
            routes = [*context_routes(), *provenance_http_routes(runtime, config, metrics=self._metrics)]
            self._tasks.append(
                asyncio.create_task(
                    serve_webhooks(config, self.handle, host=self.http_host, port=self.http_port, extra_routes=routes)
                )
            )
        return self

    def _devices_changed(self, devices: Mapping[str, DeviceRecord]) -> None:
        """A registry import ended: the pipeline uses the merged registry from the next event on."""
        if self.pipeline is not None:
            self.pipeline.devices = devices

    async def _metrics(self, request: web.Request) -> web.Response:
        assert self.pipeline is not None and self.pipeline.outbox is not None and self.provenance is not None
        ledger, indexer = self.provenance.ledger, self.provenance.indexer
        body = (
            render_outbox_metrics(self.pipeline.outbox.metrics())
            + render_provenance_metrics(
                {t: ledger.size(t) for t in ledger.tenants()},
                indexer.lag() if indexer is not None else None,
                quarantined=indexer.quarantined() if indexer is not None else None,
            )
        ).encode()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._resources.aclose()

    async def run_until(self, done: asyncio.Event) -> None:
        """Serve until ``done`` is set or a task fails (its error is raised)."""
        waiter = asyncio.create_task(done.wait())
        try:
            finished, _ = await asyncio.wait([*self._tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task is not waiter and task.exception():
                    raise task.exception()  # type: ignore[misc]
        finally:
            waiter.cancel()

    async def subscribed(self, *, timeout_s: float) -> None:
        """Wait until every MQTT connection has its subscriptions in place (raises on timeout)."""
        async with asyncio.timeout(timeout_s):
            for ready in self._ready.values():
                await ready.wait()

    async def drained(self, *, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Wait until the outbox is empty (every accepted entity delivered or dead-lettered)."""
        assert self.pipeline is not None and self.pipeline.outbox is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.pipeline.outbox.depth() > 0:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(poll_s)
        return True


async def listen(
    config: AdapterConfig,
    *,
    http_port: int | None,
    http_host: str = "127.0.0.1",
    max_events: int | None,
    emit: Callable[[PipelineResult], None],
) -> None:
    """Ingest from every configured connection until cancelled (or ``max_events`` events),
    and deliver the outbox to the configured broker meanwhile."""
    done = asyncio.Event()

    def counted(result: PipelineResult) -> None:
        emit(result)
        if max_events is not None and service.events + 1 >= max_events:
            done.set()

    service = AdapterService(config, http_host=http_host, http_port=http_port, emit=counted)
    async with service:
        await service.run_until(done)
