"""Device profiles are checked when loaded: a mistake names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.exceptions import ConfigError
from adapter.mapping.profile import load_profile, load_profiles
from adapter.mapping.units import convert
from tests.support import REPO

GOOD = """
profile: t
match: {device_profiles: [x]}
codec: {builtin: cayenne_lpp}
entities:
  - type: AirQualityObserved
    id: "urn:ngsi-ld:AirQualityObserved:{tenant}:{dev_eui}"
    context: https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld
    attributes:
      no2: {field: analog_in_3, unit: GQ}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def test_a_good_profile_loads(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD))
    assert profile.name == "t"
    assert profile.entities[0].attributes[0].unit == "GQ"
    assert len(profile.digest) == 64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("match: {device_profiles: [x]}", "match: {}"), "match needs at least one of"),
        (("builtin: cayenne_lpp", "builtin: base64_magic"), "unknown built-in codec 'base64_magic'"),
        (("{builtin: cayenne_lpp}", "{javascript: missing.js}"), "missing.js does not exist"),
        (("unit: GQ", "unit: FURLONG"), "unknown UN/CEFACT unit code 'FURLONG'"),
        (("unit: GQ", "unit: GQ, from_unit: CEL"), "cannot convert"),
        ((":{tenant}:{dev_eui}", ":{dev_eui}"), "must be a urn:ngsi-ld: URN using {tenant} and {dev_eui}"),
        (("no2: {field", "no2: {colour: 3, field"), "unknown key"),
        (("profile: t", "profile: t\nsurprise: 1"), "surprise: unknown key"),
        (("unit: GQ", "unit: GQ, cumulative: true"), "cumulative attribute needs 'meter_change_field'"),
        (("unit: GQ", "unit: GQ, range: [5, 1]"), "must be [min, max]"),
        (("profile: t\n", "profile: t\nmatch: [\n"), "not valid YAML"),
    ],
)
def test_profile_mistakes_are_reported_with_file_and_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        profile = load_profile(path)
        # a unit pair of different dimensions is caught when converting a value
        convert(
            1.0, profile.entities[0].attributes[0].from_unit or "GQ", profile.entities[0].attributes[0].unit or "GQ"
        )
    assert message in str(caught.value)
    assert str(path) in str(caught.value) or "cannot convert" in message


def test_shipped_profiles_all_load_and_names_are_unique() -> None:
    profiles = load_profiles(REPO / "models")
    assert len(profiles) == 8


def test_most_specific_match_wins(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(
        GOOD.replace("profile: t", "profile: by-eui").replace(
            "match: {device_profiles: [x]}", "match: {dev_euis: [70B3D57ED0001A01]}"
        )
    )
    profiles = load_profiles(tmp_path)

    class Seen:
        dev_eui, device_profile, application_id, tags = "70b3d57ed0001a01", "x", "app", {}

    assert profiles.find(Seen()).name == "by-eui"
    Seen.dev_eui = "70b3d57ed0009999"
    assert profiles.find(Seen()).name == "t"
    Seen.device_profile = "y"
    assert profiles.find(Seen()) is None


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (21.5, "CEL", "KEL", 294.65),
        (57.5, "P1", "C62", 0.575),
        (1013.2, "A97", "PAL", 101320.0),
        (48213570, "WHR", "KWH", 48213.57),
        (36, "KMH", "MTS", 10.0),
        (212, "FAH", "CEL", 100.0),
    ],
)
def test_unit_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert convert(value, source, target) == pytest.approx(expected)
