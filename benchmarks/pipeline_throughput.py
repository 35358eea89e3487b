"""Throughput of the ingest pipeline alone: uplinks/s parsed, decoded, mapped and validated.

No network, no broker: the raw LNS event bytes go through ``Pipeline.process`` in a loop on
one thread (one core). Every uplink has a new frame counter, so none is a duplicate, and the
dedup state is written to an SQLite file as in production.

    .venv/bin/python benchmarks/pipeline_throughput.py [--n 3000]

Prints one line per case: the codec, whether SDM schema validation is on, uplinks/s and
microseconds per uplink.
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


def measure(label: str, sample: str, payload_for: object, n: int, validate: bool) -> None:
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
        for raw in raws[:200]:  # warm-up: codec load, schema compilation
            pipeline.process(raw, lns="chirpstack", origin=origin, topic=spec.get("topic"), event=spec.get("event"))
        start = time.perf_counter()
        for raw in raws[200:]:
            result = pipeline.process(raw, lns="chirpstack", origin=origin, topic=spec.get("topic"), event=spec.get("event"))
            assert result.status == "mapped", result.detail
        elapsed = time.perf_counter() - start
        pipeline.close()
    print(f"{label:<42} schema validation {'on ' if validate else 'off'}  "
          f"{n / elapsed:8.0f} uplinks/s  {elapsed / n * 1e6:8.1f} µs/uplink")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="uplinks per case (default 3000)")
    n = parser.parse_args().n
    lpp = lambda i: bytes.fromhex("01670070026894") + struct.pack(">BBh", 3, 2, 3000 + i % 500)  # noqa: E731
    water = lambda i: struct.pack(">IBHB", 100_000 + i, 0, 40, 90)  # noqa: E731
    for validate in (True, False):
        measure("built-in codec (Cayenne LPP, air quality)", "01-chirpstack-air-quality.json", lpp, n, validate)
        measure("JavaScript codec (water meter, TTN form)", "03-chirpstack-webhook-water-meter.json", water, n, validate)


if __name__ == "__main__":
    main()
