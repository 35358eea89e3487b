"""``check``'s profile-set checks: each finding names the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

from adapter.mapping.checks import Finding, check_profiles, unchecked_codecs
from adapter.mapping.profile import load_profiles
from adapter.mapping.schemas import SchemaRegistry
from tests.support import REPO

CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"


def profile(
    name: str,
    *,
    match: str = "device_profiles: [aq]",
    entity: str = "",
    codec: str = "{builtin: cayenne_lpp}",
    field: str = "temperature_1",
    context: str = CONTEXT,
    location: str = "location: device",
) -> str:
    return f"""profile: {name}
match: {{{match}}}
codec: {codec}
entities:
  - type: AirQualityObserved
    id: "urn:ngsi-ld:AirQualityObserved:{{tenant}}:{{dev_eui}}"
    context: {context}
    times: [dateObserved]
    {location}
    attributes:
      temperature: {{field: {field}, unit: CEL}}
{entity}"""


def findings(tmp_path: Path, **files: str) -> list[Finding]:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    return check_profiles(load_profiles(tmp_path), SchemaRegistry())


def only(found: list[Finding], key: str) -> Finding:
    matching = [f for f in found if f.key == key]
    assert len(matching) == 1, found
    return matching[0]


def test_the_shipped_profiles_have_no_finding() -> None:
    profiles = load_profiles(REPO / "models")
    assert check_profiles(profiles, SchemaRegistry()) == []
    assert "water-meter" in unchecked_codecs(profiles) and "air-quality-outdoor" not in unchecked_codecs(profiles)


def test_a_context_without_a_local_copy(tmp_path: Path) -> None:
    found = only(findings(tmp_path, a=profile("a", context="https://example.org/ctx.jsonld")), "entities[0].context")
    assert found.level == "error" and "no local copy" in found.message and "contexts/index.json" in found.fix
    assert found.file == tmp_path / "a.yaml"


def test_two_entities_with_one_id_pattern(tmp_path: Path) -> None:
    twin = f"""  - type: AirQualityObserved
    id: "urn:ngsi-ld:AirQualityObserved:{{tenant}}:{{dev_eui}}"
    context: {CONTEXT}
    location: device
    attributes:
      o3: {{field: analog_in_4, unit: GQ}}
"""
    found = only(findings(tmp_path, a=profile("a", entity=twin)), "entities[1].id")
    assert found.level == "error" and "entities[0]" in found.message


def test_one_id_pattern_for_two_types_across_profiles(tmp_path: Path) -> None:
    other = profile("b", match="device_profiles: [other]").replace("type: AirQualityObserved", "type: WeatherObserved")
    other = other.replace(CONTEXT, CONTEXT.replace("Environment", "Weather"))
    found = only(findings(tmp_path, a=profile("a"), b=other), "entities[0].id")
    assert found.file == tmp_path / "b.yaml" and "a.yaml" in found.message and "WeatherObserved" in found.fix


def test_two_profiles_equally_specific_for_the_same_devices_the_first_file_wins(tmp_path: Path) -> None:
    found = only(findings(tmp_path, a=profile("first"), b=profile("second", match="device_profiles: [aq, x]")), "match")
    assert found.level == "error" and found.file == tmp_path / "b.yaml"
    assert "first wins, being first by file name" in found.message and "second never applies" in found.message


def test_a_more_specific_profile_wins_and_is_a_warning(tmp_path: Path) -> None:
    by_eui = profile("one-device", match="dev_euis: [70b3d57ed0001a01]")
    found = only(findings(tmp_path, a=profile("fleet"), b=by_eui), "match")
    assert found.level == "warning" and found.file == tmp_path / "a.yaml"
    assert "one-device wins for them, matching by its dev_euis" in found.message


def test_disjoint_matches_are_no_finding(tmp_path: Path) -> None:
    assert (
        findings(tmp_path, a=profile("a", match="tags: {kind: aq}"), b=profile("b", match="tags: {kind: noise}")) == []
    )


def test_a_static_value_of_the_wrong_type(tmp_path: Path) -> None:
    text = profile("a").replace("    attributes:", "    static: {typeofLocation: 3}\n    attributes:")
    found = only(findings(tmp_path, a=text), "entities[0].static.typeofLocation")
    assert found.level == "error" and "AirQualityObserved schema" in found.message


def test_a_type_that_must_be_located_without_a_location_source(tmp_path: Path) -> None:
    found = only(findings(tmp_path, a=profile("a", location="")), "entities[0].location")
    assert found.level == "error" and "requires a location" in found.message and "location: device" in found.fix


def test_a_field_the_cayenne_codec_never_outputs(tmp_path: Path) -> None:
    found = only(findings(tmp_path, a=profile("a", field="temprature_1")), "entities[0].attributes.temperature.field")
    assert found.level == "warning" and "'temprature_1'" in found.message
    assert findings(tmp_path, a=profile("a", field="gps_3.latitude")) == []
    assert [f.key for f in findings(tmp_path, a=profile("a", field="gps_3"))] == [
        "entities[0].attributes.temperature.field"
    ]


def test_a_codec_without_declared_outputs_is_not_checked_but_named(tmp_path: Path) -> None:
    found = findings(tmp_path, a=profile("a", codec="{builtin: lns_decoded}", field="whatever"))
    assert found == []
    assert unchecked_codecs(load_profiles(tmp_path)) == ["a"]
