"""A small world with provenance: air-quality uplinks of two devices processed by the real
pipeline, delivered to the embedded NGSI-LD broker by the real writer, their tree heads signed.

``build_world`` makes it once in a folder; ``World.copy`` gives each test its own copy to read
or tamper with (state, keys and broker database together), and ``World.running`` starts the
broker on the copy and opens the provenance runtime the CLI and the HTTP API use.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
import json
import shutil
import struct
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from adapter.app import build_pipeline, standalone_provenance
from adapter.config import AdapterConfig, load_config
from adapter.delivery import BrokerWriter
from adapter.mapping.entities import DeviceRecord
from adapter.ngsild.client import NgsiLdClient
from adapter.provenance.runtime import ProvenanceRuntime
from adapter.provenance.verify import PROV_WAS_DERIVED_FROM, parse_uplink_iri
from adapter.uplink import Location
from tests.e2e.support import EmbeddedBroker
from tests.support import demo_event

__all__ = [
    "AQ_ENTITY",
    "DEVICES",
    "UPLINKS_PER_DEVICE",
    "World",
    "build_world",
    "no2_of",
    "observed_at_of",
    "provenance_problems",
    "record_index",
]

DEVICES = ("70b3d57ed0001a01", "70b3d57ed0001a02")
UPLINKS_PER_DEVICE = 6
AQ_ENTITY = "urn:ngsi-ld:AirQualityObserved:ville:{eui}"
_START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
_LOST_FCNT = 3  # this frame counter never reaches the adapter (a radio loss), for the chain's remark


def observed_at_of(device: int, n: int) -> datetime:
    return _START + timedelta(minutes=10 * n, seconds=device)


def no2_of(device: int, n: int) -> float:
    return (3000 + 100 * device + n) / 100


def _uplink(device: int, n: int) -> bytes:
    body = copy.deepcopy(demo_event("01-chirpstack-air-quality")["body"])
    body["deviceInfo"]["devEui"] = DEVICES[device]
    body["deviceInfo"]["deviceName"] = f"aq-{device}"
    body["fCnt"] = 100 + n
    body["time"] = observed_at_of(device, n).isoformat().replace("+00:00", "Z")
    lpp = bytes.fromhex("01670070026894") + struct.pack(">BBh", 3, 2, 3000 + 100 * device + n)
    body["data"] = base64.b64encode(lpp).decode()
    return json.dumps(body).encode()


@dataclass
class World:
    folder: Path

    @property
    def config_file(self) -> Path:
        return self.folder / "adapter.toml"

    def config(self, broker_url: str | None = None) -> AdapterConfig:
        config = load_config(None)
        config = dataclasses.replace(config, state_dir=self.folder / "state")
        provenance = dataclasses.replace(
            config.provenance, key_dir=self.folder / "keys", log_origin="test.example/logs"
        )
        broker = dataclasses.replace(config.broker, url=broker_url, batch_delay_s=0.0)
        second = DeviceRecord(
            dev_eui=DEVICES[1], name="AQ school", location=Location(48.11, -1.68), attributes={}, tenant="ville"
        )
        devices = {**config.devices, DEVICES[1]: second}
        return dataclasses.replace(config, provenance=provenance, broker=broker, devices=devices)

    def copy(self, destination: Path) -> World:
        shutil.copytree(self.folder, destination, dirs_exist_ok=False)
        (destination / "keys").chmod(0o700)
        return World(destination)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[tuple[ProvenanceRuntime, EmbeddedBroker]]:
        broker = EmbeddedBroker(self.folder / "broker.sqlite")
        await broker.start()
        try:
            async with standalone_provenance(self.config(broker.url)) as runtime:
                yield runtime, broker
        finally:
            await broker.stop()


async def build_world(folder: Path) -> World:
    """Process, deliver, sign and index the uplinks; every file ends up in ``folder``."""
    world = World(folder)
    broker = EmbeddedBroker(folder / "broker.sqlite")
    await broker.start()
    try:
        config = world.config(broker.url)
        pipeline = build_pipeline(config, config.state_dir)
        try:
            for n in range(UPLINKS_PER_DEVICE):
                for device in range(len(DEVICES)):
                    if device == 1 and n == _LOST_FCNT:
                        continue
                    origin = config.connection("ville-chirpstack").origin
                    result = pipeline.process(_uplink(device, n), lns="chirpstack", origin=origin)
                    assert result.status == "mapped", result.detail
            assert pipeline.outbox is not None and pipeline.ledger is not None
            async with aiohttp.ClientSession() as session:
                writer = BrokerWriter(
                    pipeline.outbox,
                    NgsiLdClient(broker.url, session),
                    pipeline.dead_letters,
                    config.broker,
                    receipts=pipeline.ledger,
                )
                task = asyncio.create_task(writer.run())
                try:
                    for _ in range(500):
                        if pipeline.outbox.depth() == 0:
                            break
                        await asyncio.sleep(0.01)
                    assert pipeline.outbox.depth() == 0, "the writer did not deliver everything"
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            pipeline.ledger.sign_checkpoints()
        finally:
            pipeline.close()
    finally:
        await broker.stop()
    async with world.running() as (runtime, _):
        assert runtime.indexer is not None
        await runtime.indexer.catch_up()
    return world


def record_index(runtime: ProvenanceRuntime, device: int, n: int) -> int:
    """The record number of uplink ``n`` of ``device`` (records are numbered in processing order)."""
    for stored in runtime.ledger.records("ville", 0, 1000):
        record: dict[str, Any] = stored.record
        if record["device"]["devEui"] == DEVICES[device] and record["uplink"]["fCnt"] == 100 + n:
            return stored.index
    raise LookupError(f"no record of uplink {n} of device {device}")


async def provenance_problems(
    config: AdapterConfig, reader: Any, uplinks_sent: int, types: Iterable[tuple[str, str]]
) -> list[str]:
    """After a run: every uplink has exactly one record, every record's entities are in the
    broker's history with a ``wasDerivedFrom`` link to that record (each link to the record of
    its observation time), and every record was delivered (a receipt)."""
    problems: list[str] = []
    async with standalone_provenance(config, with_store=False, with_broker=False) as runtime:
        ledger = runtime.ledger
        per_uplink: Counter[tuple[str, str, int]] = Counter()
        record_of: dict[tuple[str, str, datetime], int] = {}
        for tenant in ledger.tenants():
            for stored in ledger.records(tenant, 0, 10**9):
                record = stored.record
                if record["recordType"] == "uplink":
                    per_uplink[(tenant, record["device"]["devEui"], record["uplink"]["fCnt"])] += 1
                at = _time(record["observedAt"])
                for entity in record["entities"]:
                    key = (tenant, entity["id"], at)
                    if key in record_of:
                        problems.append(f"{entity['id']} at {at}: records {record_of[key]} and {stored.index}")
                    record_of[key] = stored.index
                if not ledger.deliveries_of(tenant, stored.index):
                    problems.append(f"record {stored.index} of {tenant}: no delivery receipt")
        problems += [f"uplink {key} recorded {n} times" for key, n in per_uplink.items() if n > 1]
        if sum(per_uplink.values()) != uplinks_sent:
            problems.append(f"{sum(per_uplink.values())} uplink records for {uplinks_sent} uplinks sent")
    linked: set[tuple[str, str, datetime]] = set()
    for tenant, entity_type in types:
        history = await reader.temporal(tenant, entity_type, options="temporalValues")
        for entity_id, entity in history.items():
            # compacted with the type's Smart Data Models context, the link keeps its full IRI
            link = entity.get("wasDerivedFrom") or entity.get(PROV_WAS_DERIVED_FROM) or {}
            for target, when in link.get("objects", []):
                key = (tenant, entity_id, _time(when))
                named = parse_uplink_iri(target)
                if named is None or named[0] != tenant or record_of.get(key) != named[1]:
                    problems.append(f"{entity_id} at {when} links to {target}, its record is {record_of.get(key)}")
                linked.add(key)
    problems += [f"{key[1]} at {key[2]}: recorded, not in the broker's history" for key in set(record_of) - linked]
    return problems


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
