"""Authorised NGSI-LD queries per second through the sharing gateway, with p50/p99 latency.

    .venv/bin/python benchmarks/gateway.py [--seconds 20] [--concurrency 16] [--rate R]

Three processes, as in production: the embedded NGSI-LD broker (``ngsild-adapter broker``)
holding the region's air-quality entities, the gateway (``ngsild-adapter gateway``) with the
agreements of ``compose/policies/``, and this load generator, which also serves the token
issuer's JWKS (a stand-in for Keycloak's realm: an RSA key, fetched once by the gateway and
cached). Every request carries a signed RS256 token of the city's school-ventilation client
and asks for the region's AirQualityObserved (``--limit`` entities a page, 20 by default): the gateway validates the
token, decides from the agreements, narrows the query, reads the broker, filters the answer
and records the access. ``--rate`` sends at a fixed rate instead of as fast as
``--concurrency`` clients allow (latency at a given load). On Linux a second line gives the
CPU each process used during the measurement (one core = 100 %), which shows the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
import jwt  # noqa: E402
from aiohttp import web  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from adapter.demo.network import free_port  # noqa: E402
from adapter.ngsild.client import NgsiLdClient  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin" / "ngsild-adapter"
SAMPLE = REPO / "adapter" / "demo" / "events" / "01-chirpstack-air-quality.json"


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


async def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _entities(n: int) -> list[dict]:
    from tests.gateway.support import air_quality_entities

    return air_quality_entities("region", n, days=1)


async def main_async(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="ngsild-gateway-bench-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    jwks = {
        "keys": [
            {"kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256", "n": _b64(numbers.n), "e": _b64(numbers.e)}
        ]
    }
    issuer_port, broker_port, gateway_port = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{issuer_port}/realms/ville"

    app = web.Application()
    app.router.add_get("/realms/ville/protocol/openid-connect/certs", lambda r: web.json_response(jwks))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", issuer_port).start()

    (work / "adapter.toml").write_text(f"""
[adapter]
models = "{REPO / "models"}"
state_dir = "{work / "state"}"
[[collectivity]]
tenant = "ville"
name = "Ville"
[[collectivity]]
tenant = "region"
name = "Region"
[[collectivity]]
tenant = "eau"
name = "Eau"
[[collectivity]]
tenant = "metropole"
name = "Metropole"
[gateway]
host = "127.0.0.1"
port = {gateway_port}
broker_url = "http://127.0.0.1:{broker_port}"
policies = "{REPO / "compose" / "policies"}"
[[gateway.issuer]]
issuer = "{issuer}"
organization = "ville"
jwks_url = "{issuer}/protocol/openid-connect/certs"
""")
    broker = subprocess.Popen(
        [str(BIN), "broker", "--port", str(broker_port), "--db", str(work / "broker.sqlite")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateway = subprocess.Popen(
        [str(BIN), "gateway", "--config", str(work / "adapter.toml")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        await _wait_port(broker_port)
        await _wait_port(gateway_port)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            client = NgsiLdClient(f"http://127.0.0.1:{broker_port}", session)
            entities = _entities(args.sensors)
            for first in range(0, len(entities), 100):
                await client.batch_upsert("region", entities[first : first + 100])
            now = int(time.time())
            token = jwt.encode(
                {
                    "iss": issuer,
                    "sub": "service-account-ecole-ventilation",
                    "aud": ["ngsild-gateway"],
                    "azp": "ecole-ventilation",
                    "organization": "ville",
                    "roles": ["partner-platform"],
                    "exp": now + 3600,
                    "iat": now,
                },
                key,
                algorithm="RS256",
                headers={"kid": "bench"},
            )
            url = f"http://127.0.0.1:{gateway_port}/ngsi-ld/v1/entities"
            headers = {
                "Authorization": f"Bearer {token}",
                "NGSILD-Tenant": "region",
                "NGSILD-Purpose": "ventilation-control",
            }
            params = {"type": "AirQualityObserved", "limit": str(args.limit)}
            async with session.get(url, params=params, headers=headers) as answer:
                body = await answer.json()
                assert answer.status == 200 and len(body) == args.limit, (answer.status, body)
            latencies: list[float] = []
            errors = 0
            deadline = time.monotonic() + args.seconds

            async def one() -> None:
                nonlocal errors
                started = time.perf_counter()
                async with session.get(url, params=params, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

            processes = {"broker": broker.pid, "gateway": gateway.pid, "load generator": os.getpid()}
            cpu_before = {name: _cpu_seconds(pid) for name, pid in processes.items()}
            started = time.monotonic()
            if args.rate:
                tasks = []
                interval = 1 / args.rate
                next_at = time.monotonic()
                while time.monotonic() < deadline:
                    tasks.append(asyncio.create_task(one()))
                    next_at += interval
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                await asyncio.gather(*tasks)
            else:

                async def worker() -> None:
                    while time.monotonic() < deadline:
                        await one()

                await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            elapsed = time.monotonic() - started
            cpu_after = {name: _cpu_seconds(pid) for name, pid in processes.items()}
            latencies.sort()
            mode = f"at {args.rate:.0f} req/s offered" if args.rate else f"{args.concurrency} concurrent clients"
            print(
                f"{len(latencies):,} authorised queries in {elapsed:.1f} s ({mode}): {len(latencies) / elapsed:,.0f} req/s, "
                f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, "
                f"{errors} errors"
            )
            shares = [
                f"{name} {100 * (cpu_after[name] - before) / elapsed:.0f} %"
                for name, before in cpu_before.items()
                if before is not None and cpu_after[name] is not None
            ]
            if shares:
                print(f"CPU during the measurement ({os.cpu_count()} cores): {', '.join(shares)}")
    finally:
        gateway.terminate()
        broker.terminate()
        gateway.wait(timeout=10)
        broker.wait(timeout=10)
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=None, help="requests per second (open loop)")
    parser.add_argument("--sensors", type=int, default=100, help="air-quality entities of the region")
    parser.add_argument("--limit", type=int, default=20, help="entities per page (default 20)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
