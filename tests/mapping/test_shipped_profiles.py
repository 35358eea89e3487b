"""Every shipped device profile produces entities that validate against the official Smart
Data Models schema of their type, and expand to the official vocabulary IRIs offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyld import jsonld

from adapter.mapping.profile import load_profiles
from adapter.mapping.schemas import SchemaRegistry, to_key_values
from adapter.ngsild.contexts import document_loader
from tests.support import DEMO_EVENTS, REPO, body_bytes, demo_event, demo_pipeline, reference_validator

PROFILES = load_profiles(REPO / "models")

#: One bundled sample uplink per shipped profile.
SAMPLE_OF_PROFILE = {
    "air-quality-outdoor": "01-chirpstack-air-quality",
    "school-indoor-climate": "02-tts-school-climate",
    "water-meter": "03-chirpstack-webhook-water-meter",
    "weather-station": "05-tts-weather-station",
    "parking-spot": "06-chirpstack-parking-occupied",
    "noise-level": "07-tts-noise-decoded-by-lns",
    "streetlight": "08-chirpstack-streetlight",
    "energy-meter": "09-tts-energy-meter",
}

#: The full IRI one attribute of each type must expand to (the official SDM vocabulary).
EXPECTED_IRI = {
    "AirQualityObserved": "https://smartdatamodels.org/dataModel.Environment/no2",
    "IndoorEnvironmentObserved": "https://smartdatamodels.org/dataModel.Environment/co2",
    "WaterConsumptionObserved": "https://smartdatamodels.org/dataModel.WaterConsumption/waterConsumption",
    "WeatherObserved": "https://smartdatamodels.org/dataModel.Weather/windSpeed",
    "ParkingSpot": "https://smartdatamodels.org/dataModel.Parking/refParkingSite",
    "NoiseLevelObserved": "https://smartdatamodels.org/dataModel.Environment/LAeq",
    "Streetlight": "https://smartdatamodels.org/dataModel.Streetlighting/powerState",
    "ACMeasurement": "https://smartdatamodels.org/dataModel.Energy/totalActiveEnergyImport",
    "Device": "https://smartdatamodels.org/dataModel.Device/batteryLevel",
}


def test_the_eight_required_device_types_are_shipped() -> None:
    types = {e.type for p in PROFILES for e in p.entities}
    assert types == {
        "AirQualityObserved",
        "IndoorEnvironmentObserved",
        "WaterConsumptionObserved",
        "WeatherObserved",
        "ParkingSpot",
        "NoiseLevelObserved",
        "Streetlight",
        "ACMeasurement",
    }
    assert set(SAMPLE_OF_PROFILE) == {p.name for p in PROFILES}


@pytest.mark.parametrize("profile_name", sorted(SAMPLE_OF_PROFILE))
def test_profile_entities_validate_against_the_official_schema(profile_name: str, tmp_path: Path) -> None:
    spec = demo_event(SAMPLE_OF_PROFILE[profile_name])
    pipeline = demo_pipeline(tmp_path)
    pipeline.schemas = None  # the pipeline's own check is switched off: this test checks on its own
    result = pipeline.process(
        body_bytes(spec),
        lns=spec["lns"],
        origin=pipeline_origin(spec),
        topic=spec.get("topic"),
        event=spec.get("event"),
    )
    assert result.status == "mapped", result.detail
    assert result.profile is not None and result.profile.name == profile_name
    types = [e["type"] for e in result.entities]
    assert "Device" in types and len(types) == 2
    for entity in result.entities:
        errors = list(reference_validator(entity["type"]).iter_errors(to_key_values(entity)))
        assert errors == [], f"{entity['type']}: {[e.message for e in errors]}"
        assert SchemaRegistry().errors(entity) == []


@pytest.mark.parametrize("entity_type", SchemaRegistry().known_types())
def test_adapter_validator_agrees_with_the_reference_on_the_official_examples(entity_type: str) -> None:
    example = json.loads((REPO / "models" / "sdm" / entity_type / "example-normalized.jsonld").read_text())
    reference = sorted(
        "/".join(map(str, e.absolute_path))
        for e in reference_validator(entity_type).iter_errors(to_key_values(example))
    )
    ours = sorted(message.split(":", 1)[0] for message in SchemaRegistry().errors(example))
    assert ours == reference
    # the two known defects of the official examples are found (see models/sdm/README.md)
    if entity_type == "AirQualityObserved":
        assert {"tsp", "windDirection"} <= set(ours)
    if entity_type == "ACMeasurement":
        assert ours == ["dateObserved"]


@pytest.mark.parametrize("profile_name", sorted(SAMPLE_OF_PROFILE))
def test_profile_entities_expand_to_official_iris_without_network(profile_name: str) -> None:
    spec = demo_event(SAMPLE_OF_PROFILE[profile_name])
    pipeline = demo_pipeline()
    result = pipeline.process(
        body_bytes(spec),
        lns=spec["lns"],
        origin=pipeline_origin(spec),
        topic=spec.get("topic"),
        event=spec.get("event"),
    )
    assert result.status == "mapped", result.detail
    for entity in result.entities:
        expanded = jsonld.expand(entity, {"documentLoader": document_loader()})[0]
        expected = EXPECTED_IRI[entity["type"]]
        if entity["type"] == "Device" and "batteryLevel" not in entity:
            expected = "https://smartdatamodels.org/dataModel.Device/controlledProperty"
        assert expected in expanded, sorted(expanded)
        assert expanded["@type"][0].startswith("https://smartdatamodels.org/")
        for name, attr in entity.items():
            if isinstance(attr, dict) and "unitCode" in attr:
                assert "https://uri.etsi.org/ngsi-ld/unitCode" in _attribute(expanded, name, entity)


def _attribute(expanded: dict, name: str, entity: dict) -> dict:
    for iri, values in expanded.items():
        if iri.endswith("/" + name) or iri.endswith("#" + name):
            return values[0]
    raise AssertionError(f"{name} not found in expanded {entity['type']}")


def pipeline_origin(spec: dict):  # type: ignore[no-untyped-def]
    from adapter.config import load_config

    return load_config(None).connection(spec["connection"]).origin


def test_unknown_context_url_is_refused_not_fetched() -> None:
    entity = {"@context": "https://example.org/not-local.jsonld", "id": "urn:x", "type": "T"}
    with pytest.raises(jsonld.JsonLdError) as caught:
        jsonld.expand(entity, {"documentLoader": document_loader()})
    assert "no local copy of JSON-LD context https://example.org/not-local.jsonld" in str(caught.value.__cause__)


def test_demo_events_folder_holds_one_sample_per_profile() -> None:
    names = {p.stem for p in DEMO_EVENTS.glob("*.json")}
    assert set(SAMPLE_OF_PROFILE.values()) <= names
