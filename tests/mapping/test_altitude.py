"""The profile's ``altitude`` option: a location's third coordinate kept, dropped or set apart.

Some NGSI-LD brokers refuse a GeoJSON Point with an altitude; the option lets a profile write a
2D Point, with the altitude as its own Property (metres) when wanted.
"""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.exceptions import ConfigError
from adapter.mapping.entities import DeviceRecord, build_device_entity, build_entities
from adapter.mapping.profile import AltitudeSpec, DeviceProfile, load_profile
from adapter.uplink import DeviceStatus, Location, Origin, Uplink

PROFILE = """
profile: air
match: {device_profiles: [x]}
codec: {builtin: cayenne_lpp}
device: {category: [sensor], controlled_property: [temperature]}
entities:
  - type: AirQualityObserved
    id: "urn:ngsi-ld:AirQualityObserved:{tenant}:{dev_eui}"
    context: https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld
    location: device
    attributes:
      temperature: {field: temperature_1, unit: CEL}
"""
AT = datetime(2026, 11, 20, 8, 15, 30, tzinfo=UTC)
SCHOOL_ROOF = Location(latitude=48.1032, longitude=-1.6721, altitude=38.5)


def profile(tmp_path: Path, altitude: str | None = None, text: str = PROFILE) -> DeviceProfile:
    path = tmp_path / "air.yaml"
    path.write_text(text if altitude is None else f"{text}altitude: {altitude!r}\n")
    return load_profile(path)


def uplink(location: Location | None) -> Uplink:
    return Uplink(
        origin=Origin(tenant="ville", lns_id="cs"),
        lns="chirpstack",
        dev_eui="70b3d57ed0001a01",
        device_id="aq-1",
        application_id="air",
        f_cnt=1,
        f_port=2,
        payload=b"\x01",
        received_at=AT,
        location=location,
    )


def entities(p: DeviceProfile, location: Location | None) -> tuple[dict[str, Any], ...]:
    return build_entities(uplink(location), {"temperature_1": 21.5}, p, None, AT).entities


def test_by_default_the_altitude_stays_the_third_coordinate(tmp_path: Path) -> None:
    observed, device = entities(profile(tmp_path), SCHOOL_ROOF)

    for entity in (observed, device):
        assert entity["location"]["value"] == {"type": "Point", "coordinates": [-1.6721, 48.1032, 38.5]}
        assert "altitude" not in entity
    assert profile(tmp_path).altitude == AltitudeSpec("keep") == profile(tmp_path, "keep").altitude


def test_drop_writes_a_2d_point(tmp_path: Path) -> None:
    observed, device = entities(profile(tmp_path, "drop"), SCHOOL_ROOF)

    for entity in (observed, device):
        assert entity["location"]["value"] == {"type": "Point", "coordinates": [-1.6721, 48.1032]}
        assert "altitude" not in entity


def test_property_writes_a_2d_point_and_the_altitude_in_metres(tmp_path: Path) -> None:
    p = profile(tmp_path, "property:elevation")
    observed, device = entities(p, SCHOOL_ROOF)

    assert p.altitude == AltitudeSpec("property", "elevation")
    for entity in (observed, device):
        assert entity["location"]["value"] == {"type": "Point", "coordinates": [-1.6721, 48.1032]}
        assert entity["elevation"] == {"type": "Property", "value": 38.5, "unitCode": "MTR"}


def test_no_altitude_no_property(tmp_path: Path) -> None:
    observed, device = entities(profile(tmp_path, "property:elevation"), Location(48.1032, -1.6721))

    for entity in (observed, device):
        assert entity["location"]["value"]["coordinates"] == [-1.6721, 48.1032]
        assert "elevation" not in entity


def test_a_gps_fix_from_the_codec_and_a_registry_location_follow_the_option(tmp_path: Path) -> None:
    text = PROFILE.replace("location: device", "location: field:gps_1")
    p = profile(tmp_path, "property:elevation", text)
    data = {"temperature_1": 21.5, "gps_1": {"latitude": 48.11, "longitude": -1.68, "altitude": 61}}
    registry = DeviceRecord(dev_eui="70b3d57ed0001a01", location=SCHOOL_ROOF)

    observed, device = build_entities(uplink(None), data, p, registry, AT).entities

    assert observed["location"]["value"]["coordinates"] == [-1.68, 48.11]
    assert observed["elevation"]["value"] == 61.0
    assert device["location"]["value"]["coordinates"] == [-1.6721, 48.1032]
    assert device["elevation"]["value"] == 38.5


def test_the_device_entity_of_a_status_report_follows_the_option(tmp_path: Path) -> None:
    status = DeviceStatus(
        origin=Origin(tenant="ville", lns_id="cs"),
        lns="chirpstack",
        dev_eui="70b3d57ed0001a01",
        device_id="aq-1",
        application_id="air",
        received_at=AT,
        battery_level=80.0,
        external_power=False,
        margin=7,
    )
    registry = DeviceRecord(dev_eui="70b3d57ed0001a01", location=SCHOOL_ROOF)

    device = build_device_entity(status, profile(tmp_path, "drop"), registry, None, AT)

    assert device["location"]["value"]["coordinates"] == [-1.6721, 48.1032]


@pytest.mark.parametrize(
    ("altitude", "message"),
    [
        ("metres", "must be keep, drop or property:<name>, not 'metres'"),
        ("property:", "'' is not a valid NGSI-LD attribute name"),
        ("property:height above sea", "'height above sea' is not a valid NGSI-LD attribute name"),
        ("property:location", "'location' is a name every entity has already"),
        ("property:temperature", "'temperature' is already an attribute of the AirQualityObserved entity"),
        ("property:rssi", "'rssi' is already an attribute of the Device entity"),
    ],
)
def test_a_bad_option_is_refused_when_the_profile_loads(tmp_path: Path, altitude: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        profile(tmp_path, altitude)

    assert message in str(caught.value)
    assert str(tmp_path / "air.yaml") in str(caught.value) and "altitude" in str(caught.value)


def test_an_option_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "air.yaml"
    path.write_text(PROFILE + "altitude: {property: elevation}\n")

    with pytest.raises(ConfigError, match="altitude: must be a string"):
        load_profile(path)


@settings(derandomize=True, database=None, max_examples=100, deadline=None)
@given(
    latitude=st.floats(-90, 90),
    longitude=st.floats(-180, 180),
    altitude=st.none() | st.floats(-500, 9000),
    spec=st.sampled_from([AltitudeSpec("keep"), AltitudeSpec("drop"), AltitudeSpec("property", "elevation")]),
)
def test_the_point_is_2d_unless_kept_and_a_property_carries_the_altitude_exactly(
    latitude: float, longitude: float, altitude: float | None, spec: AltitudeSpec
) -> None:
    p = dataclasses.replace(_PROFILE, altitude=spec)

    for entity in entities(p, Location(latitude, longitude, altitude)):
        coordinates = entity["location"]["value"]["coordinates"]
        assert coordinates[:2] == [longitude, latitude]
        assert len(coordinates) == (3 if spec.mode == "keep" and altitude is not None else 2)
        carried = entity.get("elevation", {}).get("value")
        assert carried == (altitude if spec.mode == "property" else None)


def _loaded_once() -> DeviceProfile:
    with tempfile.TemporaryDirectory() as folder:
        return profile(Path(folder))


_PROFILE = _loaded_once()
