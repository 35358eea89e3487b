"""End-to-end throughput of the adapter: MQTT in, NGSI-LD batch upserts out.

Starts a real Mosquitto on 127.0.0.1, the adapter as its own process (``ngsild-adapter
listen``), and a sink it delivers to; publishes N uplinks of the simulated fleet (about a
hundred devices of three collectivities: ChirpStack JSON and protobuf, The Things Stack,
and ChirpStack webhooks) and waits until the sink has acknowledged every entity.

    .venv/bin/python benchmarks/end_to_end.py                  # 50,000 uplinks, as fast as possible
    .venv/bin/python benchmarks/end_to_end.py --rate 1000 --n 20000   # fixed rate: latency
    .venv/bin/python benchmarks/end_to_end.py --broker embedded       # the embedded broker as sink

The default sink (``counting_sink.py``) answers like Orion-LD and only counts, so that the
adapter is measured rather than a broker. Prints: uplinks/s sustained (first publish to
last acknowledgement), adapter CPU seconds per 1,000 uplinks, adapter peak RSS, and the
latency from publication to broker acknowledgement (p50, p99).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import paho.mqtt.client as mqtt
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from adapter.demo.fleet import FleetDevice, build_fleet, uplinks  # noqa: E402
from adapter.demo.mosquitto import MosquittoBroker  # noqa: E402
from adapter.demo.network import free_port  # noqa: E402
from counting_sink import CountingSink  # noqa: E402

HOST = "127.0.0.1"


def config_toml(devices: list[FleetDevice], *, mqtt_port: int, broker_url: str, state_dir: Path) -> str:
    lines = [
        "[adapter]",
        f'models = "{REPO / "models"}"',
        f'state_dir = "{state_dir}"',
        "",
        "[broker]",
        f'url = "{broker_url}"',
        "",
        "[outbox]",
        "max_depth = 500000",
        "",
    ]
    for tenant in ("ville", "region", "eau"):
        lines += ["[[collectivity]]", f'tenant = "{tenant}"', f'name = "{tenant}"', ""]
    for name, tenant, lns in (("ville-chirpstack", "ville", "chirpstack"), ("region-tts", "region", "tts")):
        lines += [
            "[[connection]]",
            f'name = "{name}"',
            f'collectivity = "{tenant}"',
            f'lns = "{lns}"',
            'transport = "mqtt"',
            f'host = "{HOST}"',
            f"port = {mqtt_port}",
            "",
        ]
    lines += [
        "[[connection]]",
        'name = "eau-chirpstack"',
        'collectivity = "eau"',
        'lns = "chirpstack"',
        'transport = "webhook"',
        "allow_unauthenticated = true  # benchmark on 127.0.0.1",
        "",
    ]
    for d in devices:
        lines += [
            "[[device]]",
            f'dev_eui = "{d.dev_eui}"',
            f"location = {{ latitude = {d.location.latitude}, longitude = {d.location.longitude} }}",
        ]
        if d.kind == "parking":
            lines.append(f'attributes = {{ refParkingSite = "urn:ngsi-ld:OnStreetParking:{d.tenant}:zone-1" }}')
        lines.append("")
    return "\n".join(lines)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit(f"nothing listens on {HOST}:{port} after {timeout_s} s")


async def start_sink(kind: str, port: int, workdir: Path) -> tuple[web.AppRunner, CountingSink | None]:
    if kind == "embedded":
        from adapter.ngsild.broker import create_broker_app

        app, sink = create_broker_app(db_path=workdir / "broker.sqlite"), None
    else:
        sink = CountingSink()
        app = sink.app()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    return runner, sink


async def run(n: int, rate: float | None, broker: str) -> None:
    with tempfile.TemporaryDirectory(prefix="ngsild-e2e-") as tmp:
        workdir = Path(tmp)
        mosquitto = MosquittoBroker(workdir)
        mosquitto.start()
        devices = build_fleet()
        sink_port, http_port = free_port(), free_port()
        runner, sink = await start_sink(broker, sink_port, workdir)
        config = workdir / "adapter.toml"
        config.write_text(
            config_toml(
                devices, mqtt_port=mosquitto.port, broker_url=f"http://{HOST}:{sink_port}", state_dir=workdir / "state"
            )
        )
        # E2E_PROFILE=FILE: run the adapter under cProfile (it then stops after the N events)
        profile = os.environ.get("E2E_PROFILE")
        profiler = [sys.executable, "-m", "cProfile", "-o", profile] if profile else []
        adapter = subprocess.Popen(
            [
                *profiler,
                str(REPO / ".venv" / "bin" / "ngsild-adapter"),
                "--log-level",
                "warning",
                "listen",
                "--config",
                str(config),
                "--quiet",
                "--http-port",
                str(http_port),
                *(["--max-events", str(n)] if profile else []),
            ],
        )
        try:
            await wait_port(http_port)
            await asyncio.sleep(1.0)  # MQTT subscriptions in place
            cpu_before = cpu_seconds(adapter.pid)
            published, started = await publish(devices, n, rate, mosquitto.port, http_port)
            expected = 2 * n  # every fleet uplink gives its observation entity and the Device entity
            deadline = time.monotonic() + max(120.0, n / 500)
            while (sink.entities if sink else 0) < expected and time.monotonic() < deadline:
                if sink is None:
                    break
                await asyncio.sleep(0.05)
            if sink is None:
                await wait_drained(workdir / "state" / "state.sqlite", deadline)
            finished = sink.last_at if sink and sink.last_at else time.time()
            cpu = cpu_seconds(adapter.pid) - cpu_before
            rss = peak_rss_mb(adapter.pid)
        finally:
            if not profile:
                adapter.terminate()
            adapter.wait(timeout=60)
            await runner.cleanup()
            mosquitto.stop()
        elapsed = finished - started
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; sink: {broker}")
        print(f"uplinks published: {published}" + (f" at {rate:g}/s" if rate else " as fast as possible"))
        if sink is not None:
            print(f"entities acknowledged: {sink.entities} of {expected} in {sink.batches} batches")
        print(
            f"sustained: {published / elapsed:,.0f} uplinks/s (first publish to last acknowledgement, {elapsed:.1f} s)"
        )
        print(f"adapter CPU: {cpu / published * 1000:.2f} s per 1,000 uplinks; peak RSS {rss:.0f} MB")
        if sink is not None and sink.latencies_s:
            lat = sorted(sink.latencies_s)
            p50 = statistics.median(lat) * 1000
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
            print(
                f"latency publish -> broker acknowledgement: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lat[-1] * 1000:.0f} ms"
            )


async def wait_drained(state_db: Path, deadline: float) -> None:
    import sqlite3

    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        try:
            with sqlite3.connect(state_db) as db:
                if db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0:
                    return
        except sqlite3.Error:
            continue


async def publish(
    devices: list[FleetDevice], n: int, rate: float | None, mqtt_port: int, http_port: int
) -> tuple[int, float]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-publisher")
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    client.connect(HOST, mqtt_port)
    client.loop_start()
    started = time.time()
    posts: list[asyncio.Task[None]] = []
    async with aiohttp.ClientSession() as session:
        for i, event in enumerate(uplinks(devices, n)):
            if rate:
                delay = started + i / rate - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if event.topic is None:
                posts.append(asyncio.create_task(_post(session, http_port, event.connection, event.body)))
            else:
                client.publish(event.topic, event.body, qos=1)
            if i % 500 == 0:
                await asyncio.sleep(0)
        await asyncio.gather(*posts)
    while client.want_write():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    client.loop_stop()
    client.disconnect()
    return n, started


async def _post(session: aiohttp.ClientSession, port: int, connection: str, body: bytes) -> None:
    async with session.post(f"http://{HOST}:{port}/webhooks/{connection}?event=up", data=body) as answer:
        await answer.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="uplinks to publish (default 50,000)")
    parser.add_argument("--rate", type=float, default=None, help="uplinks per second (default: as fast as possible)")
    parser.add_argument(
        "--broker",
        choices=("sink", "embedded"),
        default="sink",
        help="deliver to the counting sink (default) or to the embedded NGSI-LD broker",
    )
    args = parser.parse_args()
    asyncio.run(run(args.n, args.rate, args.broker))


if __name__ == "__main__":
    main()
