"""The README's first command: the whole chain on embedded defaults, checked from the broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import load_config
from adapter.demo.fleet import FLEET_PLAN
from adapter.demo.run import run_demo

pytestmark = pytest.mark.integration


async def test_demo_delivers_the_fleet_to_the_embedded_broker(tmp_path: Path) -> None:
    lines: list[str] = []
    report = await run_demo(load_config(None), tmp_path / "demo", rounds=2, progress=lines.append)
    devices = sum(count for *_, count, _ in FLEET_PLAN)
    assert report.published == 2 * devices + 2  # and the two bad samples
    assert report.outcomes == {"mapped": 2 * devices + 1, "rejected": 2}  # + the NO2 rise of the sharing part
    assert report.dead_letters == {"malformed_json": 1, "unknown_device": 1}
    expected: dict[str, dict[str, int]] = {}
    kinds = {
        "air-quality": "AirQualityObserved",
        "school-climate": "IndoorEnvironmentObserved",
        "parking": "ParkingSpot",
        "streetlight": "Streetlight",
        "noise": "NoiseLevelObserved",
        "weather": "WeatherObserved",
        "energy": "ACMeasurement",
        "water": "WaterConsumptionObserved",
    }
    for tenant, _, _, kind, count, _ in FLEET_PLAN:
        per_type = expected.setdefault(tenant, {})
        per_type[kinds[kind]] = per_type.get(kinds[kind], 0) + count
        per_type["Device"] = per_type.get("Device", 0) + count
    assert report.entities == expected
    assert report.sample is not None and report.sample["type"] == "AirQualityObserved"
    assert report.sample["temperature"]["unitCode"] == "CEL"
    assert report.sample_history == 2  # both observations of the device reached the history
    assert report.broker_db is not None and report.broker_db.is_file()
    assert "every accepted entity is in the broker" in lines
    # provenance: the sample value verified against its signed record
    assert report.verification and "HOLDS" in report.verification[0]
    assert {graph.rsplit(":", 1)[-1] for graph, _, _ in report.uplinks_per_gateway} == {"ville", "region", "eau"}
    # sharing: the NO2 rise reached the school ventilation through Keycloak and the gateway
    assert report.sharing is not None and not report.sharing.skipped, report.sharing
    (station,) = report.sharing.notification["data"]  # type: ignore[index]
    assert station["no2"]["value"] > 100 and "refDevice" not in station and "typeofLocation" not in station
    assert report.sharing.refused.startswith("403")
