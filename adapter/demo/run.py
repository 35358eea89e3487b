"""The demo: the whole chain on one machine, on embedded defaults.

Starts a real Mosquitto (Debian's binary, on a free port), the embedded NGSI-LD broker,
and the adapter (MQTT consumers, webhooks, outbox, broker writer, served contexts); then a
simulated fleet of about a hundred devices of three collectivities publishes ChirpStack
and The Things Stack uplinks, plus a few bad inputs. When every accepted entity is in the
broker it prints a summary read back from the broker, and stops everything.

Then it shows provenance: the collectivities' logs are signed, the RDF index catches up, and
one value read from the broker is verified against its record, the signed log and the device
chain; a SPARQL query counts the uplinks and gateways per collectivity.

Last, the sharing use case (``adapter.demo.sharing``): the real Keycloak and the gateway; the
city's school-ventilation service is notified of a region station's NO2 rise, filtered to the
agreement.

What a run leaves in its work folder can be inspected afterwards: the broker's SQLite file
(``<workdir>/broker.sqlite``, for ``ngsild-adapter broker --db`` and curl) and the adapter's
state (``<workdir>/adapter``: logs, dead letters, RDF index) with the logs' signing keys beside
it (``<workdir>/adapter/keys``), so that ``verify``, ``provenance status`` and ``deadletter
list`` given ``--state-dir <workdir>/adapter`` read it with the keys that signed it. The keys are
the demo's own, never the configured ``key_dir``'s; each run empties the folder and starts new
logs with new keys (a log must not be signed with the key of another log of the same name).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
from aiohttp import web

from adapter.app import AdapterService
from adapter.config import AdapterConfig
from adapter.demo.fleet import build_fleet, fleet_registry, uplinks
from adapter.demo.mosquitto import MosquittoBroker
from adapter.demo.network import free_port
from adapter.demo.samples import read_sample
from adapter.demo.sharing import SharingReport, run_sharing
from adapter.exceptions import ConfigError
from adapter.mapping.profile import load_profiles
from adapter.ngsild.broker import create_broker_app
from adapter.ngsild.context_server import broker_context
from adapter.pipeline import PipelineResult
from adapter.provenance.integrity.keys import key_directory
from adapter.provenance.runtime import ProvenanceRuntime
from adapter.provenance.verify import verification_lines

__all__ = ["DemoReport", "VerifiedValue", "run_demo"]

HOST = "127.0.0.1"
_LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
#: Bundled bad inputs sent with the fleet, to show what the dead-letter store keeps.
_BAD_SAMPLES = ("14-chirpstack-unknown-device.json", "15-chirpstack-malformed-json.json")


@dataclass(frozen=True, slots=True)
class VerifiedValue:
    """The value the demo verified, with what ``verify`` needs to check it again later."""

    tenant: str
    entity_id: str
    attribute: str
    observed_at: str
    value: Any
    record: int


@dataclass
class DemoReport:
    published: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    entities: dict[str, dict[str, int]] = field(default_factory=dict)  # tenant -> type -> count
    dead_letters: dict[str, int] = field(default_factory=dict)
    sample: dict[str, Any] | None = None
    sample_history: int = 0
    seconds: float = 0.0
    broker_db: Path | None = None
    context: str = ""
    logs: dict[str, str] = field(default_factory=dict)  # tenant -> signed tree head (first lines)
    verification: list[str] = field(default_factory=list)
    verified: VerifiedValue | None = None
    state_dir: Path | None = None  # the adapter's state, its signing keys in state_dir/keys
    uplinks_per_gateway: list[tuple[str, int, int]] = field(default_factory=list)  # graph, gateways, uplinks
    sharing: SharingReport | None = None


async def run_demo(
    config: AdapterConfig,
    workdir: Path,
    *,
    rounds: int = 5,
    progress: Callable[[str], None] = lambda line: None,
    sharing: bool = True,
) -> DemoReport:
    """Run the demo in ``workdir`` (emptied first) and return what the broker holds.

    Raises ``ConfigError`` before anything starts when ``workdir`` lies inside a Git work
    tree: the demo's signing keys are kept there, and keys are refused in a repository."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    state_dir = workdir / "adapter"
    report = DemoReport(broker_db=workdir / "broker.sqlite", state_dir=state_dir)
    keys = state_dir / "keys"  # where `--state-dir` looks for a run's own keys (adapter.cli._state)
    try:  # the first key now: a refused folder stops the demo before anything runs
        key_directory(keys, config.provenance.log_origin)(next(iter(config.collectivities)))
    except ConfigError as exc:
        raise ConfigError(f"{exc}; give the demo a --workdir outside any repository") from exc
    started = time.monotonic()
    mosquitto = MosquittoBroker(workdir)
    mosquitto.start()
    broker_port, http_port = free_port(), free_port()
    contexts_url = f"http://{HOST}:{http_port}/contexts"
    # Offline, like an Orion-LD inside a public body's network: it fetches only the adapter's
    # served contexts, so a request naming an upstream context fails here as it would there.
    broker = web.AppRunner(
        create_broker_app(db_path=report.broker_db, reachable_contexts=[contexts_url + "/"]), access_log=None
    )
    await broker.setup()
    await web.TCPSite(broker, HOST, broker_port).start()
    fleet = build_fleet()
    # One Mosquitto stands in for every network server here: only the connections the fleet
    # uses are opened, or two TTS connections would both receive the same topics.
    used = {device.connection for device in fleet}
    demo_config = dataclasses.replace(
        config,
        state_dir=state_dir,
        devices={**config.devices, **fleet_registry(fleet)},
        connections=tuple(
            dataclasses.replace(c, host=HOST, port=mosquitto.port) if c.transport == "mqtt" else c
            for c in config.connections
            if c.name in used
        ),
        broker=dataclasses.replace(config.broker, url=f"http://{HOST}:{broker_port}"),
        contexts_url=contexts_url,
        provenance=dataclasses.replace(config.provenance, key_dir=keys),
    )
    try:

        def count(result: PipelineResult) -> None:
            report.outcomes[result.status] += 1

        async with AdapterService(demo_config, http_port=http_port, emit=count) as service:
            # A message published before the adapter's subscription exists would not be kept.
            await service.subscribed(timeout_s=30)
            events = list(uplinks(fleet, rounds * len(fleet)))
            report.published = await _publish(events, demo_config, mosquitto.port, http_port, progress, report)
            await _wait(service, report, progress)
            report.dead_letters = service.pipeline.dead_letters.counts() if service.pipeline else {}
            await _read_back(report, f"http://{HOST}:{broker_port}", demo_config)
            assert service.provenance is not None
            await _provenance(service.provenance, report, progress)
            if sharing:

                async def publish(event: Any) -> None:
                    await _publish_one(event, mosquitto.port, http_port)

                report.sharing = await run_sharing(
                    demo_config, f"http://{HOST}:{broker_port}", fleet, publish, progress
                )
    finally:
        await broker.cleanup()
        mosquitto.stop()
    report.seconds = time.monotonic() - started
    return report


async def _publish(
    events: list[Any],
    config: AdapterConfig,
    mqtt_port: int,
    http_port: int,
    progress: Callable[[str], None],
    report: DemoReport,
) -> int:
    from adapter.app import DEMO_EVENTS

    bad = [read_sample((DEMO_EVENTS / name).read_bytes(), name) for name in _BAD_SAMPLES]
    published = 0
    async with aiomqtt.Client(HOST, mqtt_port, identifier="demo-fleet") as client, aiohttp.ClientSession() as http:
        for i, event in enumerate(events):
            if event.topic is None:
                url = f"http://{HOST}:{http_port}/webhooks/{event.connection}?event={event.event}"
                async with http.post(url, data=event.body) as answer:
                    await answer.read()
            else:
                await client.publish(event.topic, event.body, qos=1)
            published += 1
            if i % 100 == 99:
                progress(f"published {published} uplinks, processed {sum(report.outcomes.values())}")
        for sample in bad:
            assert sample is not None and sample.topic is not None  # bundled MQTT samples
            await client.publish(sample.topic, sample.body, qos=1)
            published += 1
    return published


async def _publish_one(event: Any, mqtt_port: int, http_port: int) -> None:
    """One uplink, as its network server sends it (MQTT, or a webhook post)."""
    if event.topic is None:
        async with aiohttp.ClientSession() as http:
            url = f"http://{HOST}:{http_port}/webhooks/{event.connection}?event={event.event}"
            async with http.post(url, data=event.body) as answer:
                await answer.read()
        return
    async with aiomqtt.Client(HOST, mqtt_port, identifier="demo-station") as client:
        await client.publish(event.topic, event.body, qos=1)


async def _wait(service: AdapterService, report: DemoReport, progress: Callable[[str], None]) -> None:
    deadline = time.monotonic() + 120
    while sum(report.outcomes.values()) < report.published and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    progress(f"processed {sum(report.outcomes.values())} events; delivering to the broker...")
    if not await service.drained(timeout_s=120):
        raise RuntimeError("the outbox did not drain within 120 s; is the broker answering?")
    progress("every accepted entity is in the broker")


_UPLINKS_PER_GATEWAY = """
PREFIX nga: <https://w3id.org/ngsild-adapter/ns#>
SELECT ?graph (COUNT(DISTINCT ?gateway) AS ?gateways) (COUNT(DISTINCT ?uplink) AS ?uplinks) WHERE {
  GRAPH ?graph { ?uplink nga:reception ?reception . ?reception nga:gateway ?gateway }
} GROUP BY ?graph ORDER BY ?graph
"""


async def _provenance(runtime: ProvenanceRuntime, report: DemoReport, progress: Callable[[str], None]) -> None:
    """Sign the logs, bring the RDF index up to date, verify the sample value, query SPARQL."""
    progress("signing the logs and indexing provenance...")
    signed = runtime.ledger.sign_checkpoints()
    report.logs = {tenant: " / ".join(note.decode().split("\n")[:2]) for tenant, note in signed.items()}
    if runtime.indexer is not None:
        await runtime.indexer.catch_up()
    if report.sample is not None:
        no2 = report.sample.get("no2", {})
        observed = datetime.fromisoformat(str(no2.get("observedAt", "")).replace("Z", "+00:00"))
        result = await runtime.verify("ville", report.sample["id"], "no2", observed)
        report.verification = list(verification_lines(result))
        if result.holds and result.record is not None:
            report.verified = VerifiedValue(
                "ville", report.sample["id"], "no2", str(no2["observedAt"]), no2.get("value"), result.record
            )
    if runtime.store is not None:
        rows = await runtime.store.select(_UPLINKS_PER_GATEWAY)
        report.uplinks_per_gateway = [(str(r["graph"]), int(str(r["gateways"])), int(str(r["uplinks"]))) for r in rows]


async def _read_back(report: DemoReport, broker_url: str, config: AdapterConfig) -> None:
    """Count what the broker holds per tenant and type, and fetch one entity with its history."""
    types = sorted({(e.type, e.context) for p in load_profiles(config.models_dir) for e in p.entities})
    types.append(
        ("Device", "https://raw.githubusercontent.com/smart-data-models/dataModel.Device/master/context.jsonld")
    )
    async with aiohttp.ClientSession() as http:
        for tenant in sorted(config.collectivities):
            counts = {}
            for entity_type, context in types:
                async with http.get(
                    f"{broker_url}/ngsi-ld/v1/entities",
                    params={"type": entity_type, "count": "true", "limit": "1"},
                    headers={
                        "NGSILD-Tenant": tenant,
                        "Link": _LINK.format(broker_context(context, config.contexts_url)),
                    },
                ) as answer:
                    if answer.status == 200 and int(answer.headers.get("NGSILD-Results-Count", "0")):
                        counts[entity_type] = int(answer.headers["NGSILD-Results-Count"])
            if counts:
                report.entities[tenant] = counts
        context = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
        report.context = context
        headers = {"NGSILD-Tenant": "ville", "Link": _LINK.format(broker_context(context, config.contexts_url))}
        async with http.get(
            f"{broker_url}/ngsi-ld/v1/entities", params={"type": "AirQualityObserved", "limit": "1"}, headers=headers
        ) as answer:
            found = await answer.json() if answer.status == 200 else []
        if found:
            report.sample = found[0]
            async with http.get(
                f"{broker_url}/ngsi-ld/v1/temporal/entities/{found[0]['id']}", params={"attrs": "no2"}, headers=headers
            ) as answer:
                history = await answer.json() if answer.status == 200 else {}
            no2 = history.get("no2", [])
            report.sample_history = len(no2) if isinstance(no2, list) else 1
