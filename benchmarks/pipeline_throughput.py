"""Throughput of the ingest pipeline alone: uplinks/s parsed, decoded, mapped and validated.

No network, no broker: the raw LNS event bytes go through the pipeline in a loop on one thread
(one core), each event in its own transaction (``Pipeline.process``, burst 1: the webhook path)
or 100 per transaction (``Pipeline.process_many``, burst 100: the MQTT path, group commit). Every uplink has a new frame counter, so none is a duplicate, and the
dedup state is written to an SQLite file as in production.

    .venv/bin/python benchmarks/pipeline_throughput.py [--n 3000]

Prints one line per case: the codec, whether SDM schema validation and the provenance record
(canonical record, device chain, Merkle log leaf, in the same transaction) are on, uplinks/s
and microseconds per uplink; then, per codec, the ratio of the rate with provenance to the rate
without (the target is at least 0.8).
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapter.app import build_pipeline  # noqa: E402
from adapter.config import load_config  # noqa: E402
from adapter.mapping.schemas import SchemaRegistry  # noqa: E402
from adapter.pipeline import PipelineResult, RawEvent  # noqa: E402

EVENTS = Path(__file__).resolve().parents[1] / "adapter" / "demo" / "events"


def bodies(sample: str, n: int, payload_for: object) -> list[bytes]:
    spec = json.loads((EVENTS / sample).read_text())
    out = []
    for i in range(n):
        body = copy.deepcopy(spec["body"])
        body["fCnt"] = 100_000 + i
        body["data"] = base64.b64encode(payload_for(i)).decode()  # type: ignore[operator]
        out.append(json.dumps(body).encode())
    return out


def measure(
    label: str, sample: str, payload_for: object, n: int, validate: bool, provenance: bool, burst: int
) -> float:
    config = load_config(None)
    spec = json.loads((EVENTS / sample).read_text())
    origin = config.connection(spec["connection"]).origin
    raws = bodies(sample, n + 200, payload_for)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = build_pipeline(config, Path(tmp))
        if not validate:
            pipeline.schemas = None
        else:
            pipeline.schemas = SchemaRegistry()
        if not provenance:
            pipeline.ledger = None
        for raw in raws[:200]:  # warm-up: codec load, schema compilation
            pipeline.process(raw, lns="chirpstack", origin=origin, topic=spec.get("topic"), event=spec.get("event"))
        start = time.perf_counter()
        if burst == 1:
            for raw in raws[200:]:
                result = pipeline.process(
                    raw, lns="chirpstack", origin=origin, topic=spec.get("topic"), event=spec.get("event")
                )
                assert result.status == "mapped", result.detail
        else:
            events = [RawEvent(raw, "chirpstack", origin, spec.get("topic"), spec.get("event")) for raw in raws[200:]]
            for first in range(0, len(events), burst):
                for outcome in pipeline.process_many(events[first : first + burst]):
                    assert isinstance(outcome, PipelineResult) and outcome.status == "mapped", outcome
        elapsed = time.perf_counter() - start
        pipeline.close()
    print(
        f"{label:<42} burst {burst:>3}  validation {'on ' if validate else 'off'} provenance {'on ' if provenance else 'off'}  "
        f"{n / elapsed:8.0f} uplinks/s  {elapsed / n * 1e6:8.1f} µs/uplink"
    )
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="uplinks per case (default 3000)")
    n = parser.parse_args().n
    lpp = lambda i: bytes.fromhex("01670070026894") + struct.pack(">BBh", 3, 2, 3000 + i % 500)  # noqa: E731
    water = lambda i: struct.pack(">IBHB", 100_000 + i, 0, 40, 90)  # noqa: E731
    cases = (
        ("built-in codec (Cayenne LPP, air quality)", "01-chirpstack-air-quality.json", lpp),
        ("JavaScript codec (water meter, TTN form)", "03-chirpstack-webhook-water-meter.json", water),
    )
    ratios = []
    for label, sample, payload in cases:
        for burst in (1, 100):
            with_provenance = measure(label, sample, payload, n, True, True, burst)
            without = measure(label, sample, payload, n, True, False, burst)
            ratios.append((label, burst, with_provenance / without))
        measure(label, sample, payload, n, False, True, 1)
    for label, burst, ratio in ratios:
        print(f"{label:<42} burst {burst:>3}  rate with provenance / without: {ratio:.2f}")


if __name__ == "__main__":
    main()
