"""The ingest pipeline end to end (no network): from an LNS event to entities or a dead letter.

Each bad input of the issue has a test here that checks the exact dead-letter reason, that
the input is kept whole, and that the pipeline goes on with the next event.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from adapter.config import load_config
from adapter.mapping.entities import DeviceRecord
from adapter.mapping.profile import load_profiles
from adapter.pipeline import Pipeline
from adapter.uplink import Location, Origin
from tests.support import FIXTURES, REPO, body_bytes, demo_event, demo_pipeline, entity, pipeline_with_test_codec

CONFIG = load_config(None)
VILLE = CONFIG.connection("ville-chirpstack").origin
EAU = CONFIG.connection("eau-chirpstack").origin
METROPOLE = CONFIG.connection("metropole-tts").origin


def run(pipeline: Pipeline, name: str, mutate: Any = None) -> Any:
    spec = demo_event(name)
    body = copy.deepcopy(spec["body"])
    if mutate is not None:
        mutate(body)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    origin = CONFIG.connection(spec["connection"]).origin
    return pipeline.process(raw, lns=spec["lns"], origin=origin, topic=spec.get("topic"), event=spec.get("event"))


@pytest.fixture
def pipeline(tmp_path: Path) -> Any:
    p = demo_pipeline(tmp_path)
    yield p
    p.close()


# --- what comes out of a good uplink -------------------------------------------------------


def test_air_quality_uplink_becomes_air_quality_and_device_entities(pipeline: Pipeline) -> None:
    result = run(pipeline, "01-chirpstack-air-quality")
    assert result.status == "mapped"
    aq = entity(result, "AirQualityObserved")
    assert aq["id"] == "urn:ngsi-ld:AirQualityObserved:ville:70b3d57ed0001a01"
    assert aq["temperature"] == {
        "type": "Property",
        "value": 11.2,
        "unitCode": "CEL",
        "observedAt": "2026-11-20T08:15:30.123Z",
    }
    # the values link to the raw uplink of their provenance record (docs/provenance.md)
    assert aq["wasDerivedFrom"] == {
        "type": "Relationship",
        "object": "urn:ngsild-adapter:ville:uplink:0",
        "observedAt": "2026-11-20T08:15:30.123Z",
    }
    assert aq["relativeHumidity"]["value"] == 0.74 and aq["relativeHumidity"]["unitCode"] == "C62"
    assert (aq["no2"]["value"], aq["o3"]["value"], aq["pm10"]["value"], aq["pm25"]["value"]) == (38.5, 54.2, 22.1, 13.7)
    assert aq["pm25"]["unitCode"] == "GQ"
    assert aq["dateObserved"]["value"] == {"@type": "DateTime", "@value": "2026-11-20T08:15:30.123Z"}
    # location from the device registry, not from a gateway
    assert aq["location"]["value"] == {"type": "Point", "coordinates": [-1.6794, 48.1109]}
    assert aq["refDevice"] == {"type": "Relationship", "object": "urn:ngsi-ld:Device:ville:70b3d57ed0001a01"}
    device = entity(result, "Device")
    assert device["rssi"]["value"] == -87  # the best of the two gateways
    assert device["controlledProperty"]["value"] == ["airPollution", "temperature", "humidity"]
    assert result.decoded.codec.name == "builtin:cayenne_lpp"
    assert result.profile.name == "air-quality-outdoor" and len(result.profile.digest) == 64


def test_same_device_in_two_collectivities_gives_two_entity_ids(pipeline: Pipeline) -> None:
    spec = demo_event("01-chirpstack-air-quality")
    raw = body_bytes(spec)
    a = pipeline.process(raw, lns="chirpstack", origin=VILLE, topic=spec["topic"])
    b = pipeline.process(raw, lns="chirpstack", origin=Origin("metropole", "other-lns"), topic=spec["topic"])
    assert entity(a, "AirQualityObserved")["id"].split(":")[3] == "ville"
    assert entity(b, "AirQualityObserved")["id"].split(":")[3] == "metropole"


def test_javascript_codec_identity_is_kept_with_the_values(pipeline: Pipeline) -> None:
    result = run(pipeline, "03-chirpstack-webhook-water-meter")
    assert result.decoded.codec.name == "water-meter-pulse.js"
    digest = __import__("hashlib").sha256((REPO / "models/codecs/water-meter-pulse.js").read_bytes()).hexdigest()
    assert result.decoded.codec.digest == digest
    water = entity(result, "WaterConsumptionObserved")
    assert water["waterConsumption"]["value"] == 123456 and water["waterConsumption"]["unitCode"] == "LTR"


def test_privacy_rules_apply_before_mapping(pipeline: Pipeline) -> None:
    water = run(pipeline, "03-chirpstack-webhook-water-meter")
    assert "instant_flow_lph" not in water.decoded.data or "drop:instant_flow_lph" in water.privacy_applied
    assert all("instant_flow" not in json.dumps(e) for e in water.entities)
    school = run(pipeline, "02-tts-school-climate")
    assert entity(school, "IndoorEnvironmentObserved")["peopleCount"]["value"] == 20  # 23 coarsened to 5s
    assert "coarsen:generic_4:5" in school.privacy_applied


def test_status_event_updates_the_device_battery_and_margin(pipeline: Pipeline) -> None:
    result = run(pipeline, "11-chirpstack-parking-status")
    assert result.status == "device_status"
    (device,) = result.entities
    assert device["batteryLevel"]["value"] == 0.635
    assert device["linkMargin"]["value"] == 12


def test_other_events_are_counted_not_rejected(pipeline: Pipeline) -> None:
    result = run(pipeline, "12-chirpstack-streetlight-join")
    assert result.status == "other"
    assert pipeline.counters["event:join"] == 1
    assert pipeline.dead_letters.counts() == {}


def test_noise_period_comes_from_the_decoded_object(pipeline: Pipeline) -> None:
    noise = entity(run(pipeline, "07-tts-noise-decoded-by-lns"), "NoiseLevelObserved")
    assert noise["dateObservedFrom"]["value"]["@value"] == "2026-11-20T08:30:00.500Z"
    assert noise["dateObservedTo"]["value"]["@value"] == "2026-11-20T08:45:00.500Z"
    assert noise["LAeq"] == {
        "type": "Property",
        "value": 62.4,
        "unitCode": "2N",
        "observedAt": "2026-11-20T08:45:00.500Z",
    }
    assert noise["wasDerivedFrom"]["object"] == "urn:ngsild-adapter:metropole:uplink:0"


# --- duplicates, meter indexes, ranges -----------------------------------------------------


def test_duplicate_uplink_is_processed_once_even_after_a_restart(tmp_path: Path) -> None:
    first = demo_pipeline(tmp_path)
    assert run(first, "01-chirpstack-air-quality").status == "mapped"
    assert run(first, "10-chirpstack-air-quality-retry-duplicate").status == "duplicate"
    first.close()
    second = demo_pipeline(tmp_path)  # same state folder: a restarted adapter
    assert run(second, "01-chirpstack-air-quality").status == "duplicate"
    second.close()


def test_same_frame_counter_with_another_payload_is_not_a_duplicate(pipeline: Pipeline) -> None:
    run(pipeline, "01-chirpstack-air-quality")
    other = run(
        pipeline,
        "01-chirpstack-air-quality",
        lambda b: b.update(data=base64.b64encode(bytes.fromhex("016700e2")).decode()),
    )
    assert other.status == "mapped"


def test_water_index_going_down_is_rejected_then_accepted_with_a_meter_change(pipeline: Pipeline) -> None:
    assert run(pipeline, "03-chirpstack-webhook-water-meter").status == "mapped"
    assert run(pipeline, "04-chirpstack-webhook-water-meter-leak").status == "mapped"
    down = run(pipeline, "13-chirpstack-water-meter-index-goes-down")
    assert down.status == "rejected" and down.reason == "meter_index_decrease"
    assert "120000" in down.detail and "123789" in down.detail

    def meter_changed(body: dict[str, Any]) -> None:
        payload = bytearray(base64.b64decode(body["data"]))
        payload[4] |= 4  # the meter-change flag
        body["data"] = base64.b64encode(bytes(payload)).decode()
        body["fCnt"] += 1

    swapped = run(pipeline, "13-chirpstack-water-meter-index-goes-down", meter_changed)
    assert swapped.status == "mapped"
    assert entity(swapped, "WaterConsumptionObserved")["waterConsumption"]["value"] == 120000


def test_out_of_range_value_is_kept_and_flagged(pipeline: Pipeline) -> None:
    result = run(pipeline, "16-chirpstack-air-quality-out-of-range")
    assert result.status == "mapped"
    temperature = entity(result, "AirQualityObserved")["temperature"]
    assert temperature["value"] == 95.1
    assert temperature["qualityFlag"] == {"type": "Property", "value": "outOfRange"}
    assert temperature["validRange"]["value"] == [-40.0, 60.0]
    assert pipeline.counters["out_of_range"] == 1


# --- bad input: one dead letter each, with its specific reason -----------------------------


def _reject(
    pipeline: Pipeline,
    body: bytes,
    reason: str,
    *,
    lns: str = "chirpstack",
    origin: Origin = VILLE,
    topic: str | None = None,
    event: str | None = "up",
) -> Any:
    before = pipeline.counters[f"rejected:{reason}"]
    result = pipeline.process(body, lns=lns, origin=origin, topic=topic, event=event)
    assert (result.status, result.reason) == ("rejected", reason), result.detail
    letter = pipeline.dead_letters.get(result.dead_letter_id)
    assert letter is not None and letter.body == body and letter.reason == reason
    assert letter.connection == origin.lns_id and letter.tenant == origin.tenant
    assert pipeline.counters[f"rejected:{reason}"] == before + 1
    return result


def _air_quality(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(demo_event("01-chirpstack-air-quality")["body"])
    body.update(changes)
    return body


def test_malformed_json(pipeline: Pipeline) -> None:
    _reject(pipeline, b'{"deviceInfo": ', "malformed_json")


def test_invalid_utf8(pipeline: Pipeline) -> None:
    _reject(pipeline, b'{"deviceInfo": "\xff\xfe"}', "invalid_utf8")


def test_unknown_message_format(pipeline: Pipeline) -> None:
    tts_body = (FIXTURES / "tts" / "uplink_message.json").read_bytes()
    _reject(pipeline, tts_body, "unknown_format", event=None)


def test_bad_base64(pipeline: Pipeline) -> None:
    _reject(pipeline, json.dumps(_air_quality(data="AWcA4Q!!")).encode(), "bad_base64")


def test_empty_payload_without_decoded_object(pipeline: Pipeline) -> None:
    body = _air_quality()
    del body["data"]
    _reject(pipeline, json.dumps(body).encode(), "empty_payload")


def test_mac_only_uplink_on_fport_0_is_counted_not_dead_lettered(pipeline: Pipeline) -> None:
    body = _air_quality(fPort=0)
    del body["data"]
    letters = pipeline.dead_letters.counts()

    result = pipeline.process(json.dumps(body).encode(), lns="chirpstack", origin=VILLE, event="up")

    assert result.status == "other" and result.event is not None and result.event.f_port == 0
    assert pipeline.counters["mac_only"] == 1 and pipeline.dead_letters.counts() == letters


def test_oversize_payload(pipeline: Pipeline) -> None:
    _reject(
        pipeline, json.dumps(_air_quality(data=base64.b64encode(bytes(300)).decode())).encode(), "payload_too_large"
    )


def test_unknown_device(pipeline: Pipeline) -> None:
    spec = demo_event("14-chirpstack-unknown-device")
    result = _reject(pipeline, body_bytes(spec), "unknown_device", topic=spec["topic"], event=None)
    assert "a84041000181c9f2" in result.detail and "unknown-vendor-profile" in result.detail


def test_timestamp_far_in_the_future(pipeline: Pipeline) -> None:
    _reject(pipeline, json.dumps(_air_quality(time="2026-12-25T00:00:00Z")).encode(), "future_timestamp")


def test_topic_that_names_another_device(pipeline: Pipeline) -> None:
    topic = demo_event("01-chirpstack-air-quality")["topic"].replace("70b3d57ed0001a01", "70b3d57ed0009999")
    _reject(pipeline, json.dumps(_air_quality()).encode(), "topic_mismatch", topic=topic, event=None)


def test_infinite_value_from_the_network_servers_decoder(pipeline: Pipeline) -> None:
    body = json.loads(body_bytes(demo_event("07-tts-noise-decoded-by-lns")))
    raw = json.dumps(body).replace('"laeq": 62.4', '"laeq": 1e999').encode()
    _reject(pipeline, raw, "non_finite_value", lns="tts", origin=METROPOLE, event=None)


@pytest.mark.parametrize("value", [2**53, -(2**60), 2**64 - 1])
def test_integer_the_provenance_record_cannot_carry_exactly(pipeline: Pipeline, value: int) -> None:
    body = json.loads(body_bytes(demo_event("07-tts-noise-decoded-by-lns")))
    body["uplink_message"]["decoded_payload"]["laeq"] = value
    result = _reject(pipeline, json.dumps(body).encode(), "not_canonical", lns="tts", origin=METROPOLE, event=None)
    assert str(value) in result.detail
    assert pipeline.ledger is not None and pipeline.ledger.size("metropole") == 0
    assert pipeline.outbox is not None and pipeline.outbox.depth() == 0
    assert run(pipeline, "07-tts-noise-decoded-by-lns").status == "mapped"  # nothing half-stored blocks it


def test_value_of_the_wrong_type(pipeline: Pipeline) -> None:
    body = json.loads(body_bytes(demo_event("07-tts-noise-decoded-by-lns")))
    body["uplink_message"]["decoded_payload"]["laeq"] = "loud"
    _reject(pipeline, json.dumps(body).encode(), "bad_value", lns="tts", origin=METROPOLE, event=None)


def test_codec_that_returns_errors(pipeline: Pipeline) -> None:
    body = copy.deepcopy(demo_event("03-chirpstack-webhook-water-meter")["body"])
    body["data"] = base64.b64encode(bytes(3)).decode()  # the codec wants 8 bytes
    result = _reject(pipeline, json.dumps(body).encode(), "codec_errors", origin=EAU)
    assert "expected 8 bytes, got 3" in result.detail


def test_the_pipeline_goes_on_after_each_rejection(pipeline: Pipeline) -> None:
    _reject(pipeline, b"{not json", "malformed_json")
    assert run(pipeline, "01-chirpstack-air-quality").status == "mapped"


# --- codecs that misbehave, through a profile of the project's test codecs -----------------


def _profile_with_codec(tmp_path: Path, codec: str) -> Pipeline:
    return pipeline_with_test_codec(tmp_path, codec, "calls")


def test_codec_timeout_goes_to_dead_letters_and_the_codec_recovers(tmp_path: Path) -> None:
    pipeline = _profile_with_codec(tmp_path, "ngsild_test_infinite_loop.js")
    try:
        _reject(pipeline, json.dumps(_air_quality(data=base64.b64encode(b"\xff").decode())).encode(), "codec_timeout")
        assert run(pipeline, "01-chirpstack-air-quality").status == "mapped"
    finally:
        pipeline.close()


def test_codec_that_throws_goes_to_dead_letters(tmp_path: Path) -> None:
    pipeline = _profile_with_codec(tmp_path, "ngsild_test_throws.js")
    try:
        result = _reject(pipeline, json.dumps(_air_quality()).encode(), "codec_error")
        assert "RangeError: unsupported fPort 2" in result.detail
    finally:
        pipeline.close()


# --- replay ----------------------------------------------------------------------------------


def test_unknown_device_replayed_once_a_profile_matches(tmp_path: Path) -> None:
    pipeline = demo_pipeline(tmp_path)
    rejected = run(pipeline, "14-chirpstack-unknown-device")
    assert rejected.reason == "unknown_device"
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    text = (models / "air-quality-outdoor.yaml").read_text()
    (models / "air-quality-outdoor.yaml").write_text(
        text.replace("[aq-sensor-lpp,", "[unknown-vendor-profile, aq-sensor-lpp,")
    )
    pipeline.profiles = load_profiles(models)
    letter = pipeline.dead_letters.get(rejected.dead_letter_id)
    replayed = pipeline.replay(letter)
    # A profile alone is not enough: an AirQualityObserved needs a location, which this
    # device has in no registry. The replay says so and the letter stays open.
    assert (replayed.status, replayed.reason) == ("rejected", "schema_invalid")
    assert 'location" is a required property' in replayed.detail
    assert pipeline.dead_letters.get(rejected.dead_letter_id).attempts == 2
    pipeline.devices = {
        **pipeline.devices,
        "a84041000181c9f2": DeviceRecord("a84041000181c9f2", location=Location(48.11, -1.68)),
    }
    replayed = pipeline.replay(letter)
    assert replayed.status == "mapped"
    assert entity(replayed, "AirQualityObserved")["temperature"]["value"] == -4.1
    assert pipeline.dead_letters.get(rejected.dead_letter_id).status == "replayed"
    assert pipeline.dead_letters.counts() == {}
    pipeline.close()


# --- registry data stays in its collectivity -----------------------------------------------

AIR_QUALITY_EUI = "70b3d57ed0001a01"
PARKING_EUI = "70b3d57ed0005e05"
NOISE_EUI = "70b3d57ed0006f06"


def _bind(pipeline: Pipeline, eui: str, tenant: str) -> DeviceRecord:
    """Register ``eui`` to ``tenant``, with a name and a location of that collectivity's own."""
    record = DeviceRecord(eui, name=f"registered by {tenant}", location=Location(45.0, 5.0), tenant=tenant)
    pipeline.devices = {**pipeline.devices, eui: record}
    return record


def _nothing_stored(pipeline: Pipeline, tenant: str) -> None:
    assert pipeline.ledger is not None and pipeline.outbox is not None
    assert pipeline.ledger.size(tenant) == 0, f"a provenance record was logged in {tenant}"
    assert pipeline.outbox.depth() == 0, "entities were queued for the broker"
    assert pipeline.counters["mapped"] == 0 and pipeline.counters["duplicate"] == 0


def test_uplink_of_a_device_registered_elsewhere_is_a_dead_letter(pipeline: Pipeline) -> None:
    _bind(pipeline, AIR_QUALITY_EUI, "ville")
    body = body_bytes(demo_event("01-chirpstack-air-quality"))

    refused = _reject(pipeline, body, "device_collectivity_mismatch", origin=EAU)

    assert "'ville'" in refused.detail and "'eau'" in refused.detail and AIR_QUALITY_EUI in refused.detail
    assert refused.entities == ()
    _nothing_stored(pipeline, "eau")
    # The same uplink on its own collectivity's connection is accepted, with the registry's data,
    # and is not a duplicate of the refused one.
    accepted = pipeline.process(body, lns="chirpstack", origin=VILLE, event="up")
    assert accepted.status == "mapped"
    assert entity(accepted, "Device")["name"]["value"] == "registered by ville"
    assert entity(accepted, "AirQualityObserved")["location"]["value"]["coordinates"] == [5.0, 45.0]


@pytest.mark.parametrize(
    "spelling", ["70B3D57ED0001A01", "70-b3-d5-7e-d0-00-1a-01", "70:B3:D5:7E:D0:00:1A:01", " 70b3d57ed0001a01 "]
)
def test_no_spelling_of_the_eui_escapes_the_registry_binding(pipeline: Pipeline, spelling: str) -> None:
    _bind(pipeline, AIR_QUALITY_EUI, "ville")
    body = _air_quality()
    body["deviceInfo"]["devEui"] = spelling
    _reject(pipeline, json.dumps(body).encode(), "device_collectivity_mismatch", origin=EAU)
    _nothing_stored(pipeline, "eau")


def test_the_binding_holds_under_another_application_and_device_name(pipeline: Pipeline) -> None:
    _bind(pipeline, AIR_QUALITY_EUI, "ville")
    body = _air_quality()
    body["deviceInfo"].update(
        applicationId="00000000-0000-0000-0000-000000000000",
        deviceName="not-the-registered-one",
        tenantId="11111111-1111-1111-1111-111111111111",
    )
    _reject(pipeline, json.dumps(body).encode(), "device_collectivity_mismatch", origin=EAU)


def test_tts_uplink_of_a_device_registered_elsewhere_is_a_dead_letter(pipeline: Pipeline) -> None:
    _bind(pipeline, NOISE_EUI, "region")
    spec = demo_event("07-tts-noise-decoded-by-lns")
    _reject(
        pipeline,
        body_bytes(spec),
        "device_collectivity_mismatch",
        lns="tts",
        origin=METROPOLE,
        topic=spec["topic"],
        event=None,
    )
    _nothing_stored(pipeline, "metropole")


def test_status_event_of_a_device_registered_elsewhere_is_a_dead_letter(pipeline: Pipeline) -> None:
    _bind(pipeline, PARKING_EUI, "metropole")
    spec = demo_event("11-chirpstack-parking-status")
    _reject(pipeline, body_bytes(spec), "device_collectivity_mismatch", topic=spec["topic"], event=None)
    _nothing_stored(pipeline, "ville")
    assert pipeline.counters["event:status"] == 1


def test_registry_entry_without_a_collectivity_applies_on_every_connection(pipeline: Pipeline) -> None:
    pipeline.devices = {
        **pipeline.devices,
        AIR_QUALITY_EUI: DeviceRecord(AIR_QUALITY_EUI, name="shared", location=Location(45.0, 5.0)),
    }
    body = body_bytes(demo_event("01-chirpstack-air-quality"))
    result = pipeline.process(body, lns="chirpstack", origin=EAU, event="up")
    assert result.status == "mapped"
    assert entity(result, "Device")["name"]["value"] == "shared"


def test_refused_foreign_device_stays_refused_on_replay_until_the_registry_says_otherwise(pipeline: Pipeline) -> None:
    _bind(pipeline, AIR_QUALITY_EUI, "ville")
    refused = _reject(
        pipeline, body_bytes(demo_event("01-chirpstack-air-quality")), "device_collectivity_mismatch", origin=EAU
    )
    letter = pipeline.dead_letters.get(refused.dead_letter_id)
    assert letter is not None
    again = pipeline.replay(letter)
    assert (again.status, again.reason) == ("rejected", "device_collectivity_mismatch")
    _nothing_stored(pipeline, "eau")
    _bind(pipeline, AIR_QUALITY_EUI, "eau")  # the operator moved the device to that collectivity
    replayed = pipeline.replay(letter)
    assert replayed.status == "mapped"
    assert entity(replayed, "Device")["id"] == f"urn:ngsi-ld:Device:eau:{AIR_QUALITY_EUI}"


# --- no input stops the pipeline -------------------------------------------------------------

DEMO_NAMES = [path.stem for path in sorted((REPO / "adapter" / "demo" / "events").glob("*.json"))]
OUTCOMES = {"mapped", "device_status", "duplicate", "other", "rejected"}


def test_mutated_demo_events_become_results_or_dead_letters_never_exceptions(tmp_path: Path) -> None:
    """Every stage after the parser too (registry, codecs, mapping, schemas, provenance, outbox)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from adapter.exceptions import REASONS
    from tests.sources.mutations import mutated

    specs = [demo_event(name) for name in DEMO_NAMES]
    by_lns = {
        lns: [s["body"] for s in specs if s["lns"] == lns and isinstance(s["body"], dict)]
        for lns in ("chirpstack", "tts")
    }
    pipeline = demo_pipeline(tmp_path)
    pipeline.devices = {
        **pipeline.devices,
        AIR_QUALITY_EUI: DeviceRecord(AIR_QUALITY_EUI, location=Location(45.0, 5.0), tenant="ville"),
    }
    seen: set[str] = set()

    @settings(
        derandomize=True, database=None, max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(lns=st.sampled_from(["chirpstack", "tts"]), data=st.data(), origin=st.sampled_from([VILLE, EAU, METROPOLE]))
    def one(lns: str, data: st.DataObject, origin: Origin) -> None:
        body = data.draw(mutated(by_lns[lns]))
        result = pipeline.process(body, lns=lns, origin=origin, event="up" if lns == "chirpstack" else None)
        assert result.status in OUTCOMES
        if result.status == "rejected":
            assert result.reason in REASONS and result.dead_letter_id is not None
            assert pipeline.dead_letters.get(result.dead_letter_id) is not None
        seen.add(result.reason or result.status)

    try:
        one()
    finally:
        pipeline.close()
    assert "mapped" in seen and "device_collectivity_mismatch" in seen and len(seen) >= 6, seen
