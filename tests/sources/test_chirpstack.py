"""ChirpStack v4 events -> normalised records, with both marshalers, and every rejection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from adapter.exceptions import ConfigError, EventError
from adapter.sources import DEFAULT_LIMITS, PARSERS, ParseLimits, get_parser
from adapter.sources.chirpstack import EVENT_KINDS, EVENT_MESSAGES, ChirpStackParser
from adapter.uplink import EVENT_KINDS as EVENT_KIND_NAMES
from adapter.uplink import (
    DataRate,
    DeviceStatus,
    GatewayReception,
    Location,
    Origin,
    OtherEvent,
    Uplink,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "chirpstack"
ORIGIN = Origin(tenant="city", lns_id="chirpstack-main")
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

AIR_QUALITY_APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
SCHOOL_APP = "a3d0c1b2-7e6f-4c5d-9b8a-1f2e3d4c5b6a"
TENANT_ID = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242"
AIR_QUALITY_EUI = "70b3d57ed0001a01"
SCHOOL_EUI = "70b3d57ed0002b02"
LPP_22_5_C_57_5_PCT = bytes.fromhex("016700e1026873")
AIR_QUALITY_TAGS = {"site": "rue-de-la-paix", "kind": "air-quality"}

parser = ChirpStackParser()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def body(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def as_json(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def as_protobuf(event: dict[str, Any], event_type: str) -> bytes:
    """What the protobuf marshaler sends for the same event."""
    binary: bytes = json_format.ParseDict(event, EVENT_MESSAGES[event_type]()).SerializeToString()
    return binary


def topic(event: str, dev_eui: str = AIR_QUALITY_EUI, application: str = AIR_QUALITY_APP) -> str:
    return f"application/{application}/device/{dev_eui}/event/{event}"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def rejected(reason: str, data: bytes, **kwargs: Any) -> EventError:
    kwargs.setdefault("now", NOW)
    with pytest.raises(EventError) as caught:
        parser.parse(data, origin=ORIGIN, **kwargs)
    assert caught.value.reason == reason, caught.value.detail
    return caught.value


# --- uplinks -------------------------------------------------------------------------------


def test_uplink_heard_by_two_located_gateways() -> None:
    uplink = parser.parse(body("up_two_gateways"), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert uplink == Uplink(
        origin=ORIGIN,
        lns="chirpstack",
        dev_eui=AIR_QUALITY_EUI,
        device_id="aq-rue-de-la-paix",
        application_id=AIR_QUALITY_APP,
        f_cnt=1234,
        f_port=2,
        payload=LPP_22_5_C_57_5_PCT,
        received_at=at("2026-11-20T08:15:30.123456+00:00"),
        device_time=None,
        gateways=(
            GatewayReception(
                gateway_id="0016c001f153a14c",
                eui="0016c001f153a14c",
                rssi=-87.0,
                snr=9.5,
                channel=2,
                location=Location(latitude=48.1113, longitude=-1.68, altitude=61.5),
                received_at=at("2026-11-20T08:15:30.110567+00:00"),
            ),
            GatewayReception(
                gateway_id="7076ff0056081234",
                eui="7076ff0056081234",
                rssi=-112.0,
                snr=-6.25,
                channel=2,
                location=Location(latitude=48.1205, longitude=-1.6512, altitude=44.0),
                received_at=at("2026-11-20T08:15:30.115002+00:00"),
            ),
        ),
        data_rate=DataRate(modulation="LORA", spreading_factor=7, bandwidth=125000, coding_rate="4/5"),
        frequency=868500000,
        confirmed=False,
        decoded=None,
        location=None,
        device_profile="aq-sensor-lpp",
        tags=AIR_QUALITY_TAGS,
        lns_tenant=TENANT_ID,
        event_id="6f1f2c3e-1b4a-4d2e-9a7b-2f0c8e5d4a11",
    )
    assert str(uplink.data_rate) == "SF7BW125"


def test_uplink_without_locations_first_frame_and_channel_zero() -> None:
    uplink = parser.parse(body("up_no_location"), origin=ORIGIN, topic=topic("up", SCHOOL_EUI, SCHOOL_APP), now=NOW)

    assert uplink == Uplink(
        origin=ORIGIN,
        lns="chirpstack",
        dev_eui=SCHOOL_EUI,
        device_id="ecole-jules-ferry-salle-12",
        application_id=SCHOOL_APP,
        f_cnt=0,
        f_port=2,
        payload=bytes.fromhex("016700d502685a"),
        received_at=at("2026-11-20T08:20:05.004001+00:00"),
        gateways=(
            # ChirpStack leaves channel 0 out of rxInfo: it is still channel 0.
            GatewayReception(
                gateway_id="0016c001f153a14c",
                eui="0016c001f153a14c",
                rssi=-104.0,
                snr=1.75,
                channel=0,
                location=None,
                received_at=at("2026-11-20T08:20:04.998877+00:00"),
            ),
            GatewayReception(
                gateway_id="b827ebfffe61a2c3",
                eui="b827ebfffe61a2c3",
                rssi=-118.0,
                snr=-11.5,
                channel=5,
                location=None,
                received_at=at("2026-11-20T08:20:05.001122+00:00"),
            ),
        ),
        data_rate=DataRate(modulation="LORA", spreading_factor=9, bandwidth=125000, coding_rate="4/5"),
        frequency=868100000,
        confirmed=False,
        decoded=None,
        location=None,
        device_profile="school-climate-lpp",
        tags={},
        lns_tenant=TENANT_ID,
        event_id="0b9d7e12-5c3f-4a8b-8e21-7d6c5b4a3f20",
    )
    assert str(uplink.data_rate) == "SF9BW125"


def test_confirmed_uplink_decoded_by_chirpstack_three_gateways() -> None:
    uplink = parser.parse(body("up_confirmed_decoded"), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert uplink == Uplink(
        origin=ORIGIN,
        lns="chirpstack",
        dev_eui=AIR_QUALITY_EUI,
        device_id="aq-rue-de-la-paix",
        application_id=AIR_QUALITY_APP,
        f_cnt=1235,
        f_port=2,
        payload=LPP_22_5_C_57_5_PCT,
        # ChirpStack writes "+00:00" rather than "Z"
        received_at=at("2026-11-20T08:25:30.500000+00:00"),
        gateways=(
            GatewayReception(
                gateway_id="0016c001f153a14c",
                eui="0016c001f153a14c",
                rssi=-85.0,
                snr=10.25,
                channel=6,
                location=Location(latitude=48.1113, longitude=-1.68, altitude=61.5, source="CONFIG"),
                received_at=at("2026-11-20T08:25:30.480123+00:00"),
            ),
            GatewayReception(
                gateway_id="7076ff0056081234",
                eui="7076ff0056081234",
                rssi=-109.0,
                snr=-3.5,
                channel=6,
                location=None,
                received_at=at("2026-11-20T08:25:30.485000+00:00"),
            ),
            GatewayReception(
                gateway_id="b827ebfffe61a2c3",
                eui="b827ebfffe61a2c3",
                rssi=-119.0,
                snr=-14.0,
                channel=6,
                location=Location(latitude=48.1032, longitude=-1.6721, altitude=38.0, source="GPS"),
                received_at=at("2026-11-20T08:25:30.492500+00:00"),
            ),
        ),
        data_rate=DataRate(modulation="LORA", spreading_factor=7, bandwidth=125000, coding_rate="4/5"),
        frequency=867700000,
        confirmed=True,
        decoded={"temperatureSensor": {"1": 22.5}, "humiditySensor": {"2": 57.5}},
        location=None,
        device_profile="aq-sensor-lpp",
        tags=AIR_QUALITY_TAGS,
        lns_tenant=TENANT_ID,
        event_id="c4e5f6a7-8b9c-4d0e-a1f2-3b4c5d6e7f80",
    )


def test_http_integration_gives_the_event_type_as_a_parameter() -> None:
    uplink = parser.parse(body("up_two_gateways"), origin=ORIGIN, event="up", now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.f_cnt == 1234


def test_up_and_status_are_recognised_from_a_json_body_alone() -> None:
    assert isinstance(parser.parse(body("up_two_gateways"), origin=ORIGIN, now=NOW), Uplink)
    assert isinstance(parser.parse(body("status"), origin=ORIGIN, now=NOW), DeviceStatus)


def test_empty_payload_without_decoded_object_is_left_to_the_pipeline() -> None:
    event = load("up_two_gateways")
    event["data"] = ""

    uplink = parser.parse(as_json(event), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.payload == b""
    assert uplink.decoded is None


def test_mac_command_only_uplink_has_fport_zero() -> None:
    # what ChirpStack sends for a frame of MAC commands only: fPort 0 and empty data
    event = load("up_two_gateways") | {"fPort": 0, "data": ""}

    from_json = parser.parse(as_json(event), origin=ORIGIN, topic=topic("up"), now=NOW)
    # the binary marshaler leaves the zero out
    from_protobuf = parser.parse(as_protobuf(event, "up"), origin=ORIGIN, topic=topic("up"), now=NOW)

    for uplink in (from_json, from_protobuf):
        assert isinstance(uplink, Uplink)
        assert (uplink.f_port, uplink.payload) == (0, b"")
        assert uplink.to_json()["f_port"] == 0


def test_absent_fport_is_zero() -> None:
    event = load("up_two_gateways")
    del event["fPort"], event["data"]

    uplink = parser.parse(as_json(event), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.f_port == 0


def test_a_gateway_id_that_is_not_an_eui_is_kept_as_its_id_without_eui() -> None:
    event = load("up_two_gateways")
    event["rxInfo"][0]["gatewayId"] = "rennes-hotel-de-ville"
    event["rxInfo"][1]["gatewayId"] = "7076FF0056081234"

    uplink = parser.parse(as_json(event), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert [(g.gateway_id, g.eui) for g in uplink.gateways] == [
        ("rennes-hotel-de-ville", None),
        ("7076ff0056081234", "7076ff0056081234"),
    ]


@pytest.mark.parametrize("gateway_id", ["", "gw <1>", "a" * 37, "x/../y", "-gw"])
def test_a_gateway_id_that_is_neither_an_eui_nor_a_name_is_refused(gateway_id: str) -> None:
    event = load("up_two_gateways")
    event["rxInfo"][0]["gatewayId"] = gateway_id

    error = rejected("missing_field", as_json(event), topic=topic("up"))
    assert "rxInfo.gatewayId" in error.detail


def test_received_at_falls_back_to_the_first_network_server_time() -> None:
    event = load("up_two_gateways")
    del event["time"]

    uplink = parser.parse(as_json(event), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.received_at == at("2026-11-20T08:15:30.110567+00:00")


def test_gateway_time_is_used_when_the_network_server_time_is_absent() -> None:
    event = load("up_two_gateways")
    del event["rxInfo"][0]["nsTime"]
    event["rxInfo"][1]["gwTime"] = "2026-11-21T08:15:30Z"  # a gateway clock a day ahead
    del event["rxInfo"][1]["nsTime"]

    uplink = parser.parse(as_json(event), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.gateways[0].received_at == at("2026-11-20T08:15:30.101234+00:00")
    assert uplink.gateways[1].received_at is None


@pytest.mark.parametrize(
    ("modulation", "data_rate"),
    [
        (
            {"fsk": {"frequencyDeviation": 25000, "datarate": 50000}},
            DataRate(modulation="FSK", bit_rate=50000),
        ),
        (
            {"lrFhss": {"operatingChannelWidth": 137000, "codeRate": "CR_1_3", "gridSteps": 52}},
            DataRate(modulation="LR_FHSS", bandwidth=137000, coding_rate="1/3"),
        ),
        (
            {"lora": {"bandwidth": 125000, "spreadingFactor": 12, "codeRate": "CR_LI_4_8"}},
            DataRate(modulation="LORA", spreading_factor=12, bandwidth=125000, coding_rate="4/8LI"),
        ),
        (
            {"lora": {"bandwidth": 250000, "spreadingFactor": 7, "codeRateLegacy": "4/5"}},
            DataRate(modulation="LORA", spreading_factor=7, bandwidth=250000, coding_rate="4/5"),
        ),
    ],
)
def test_data_rate_of_every_modulation(modulation: dict[str, Any], data_rate: DataRate) -> None:
    event = load("up_two_gateways")
    event["txInfo"]["modulation"] = modulation

    uplink = parser.parse(as_json(event), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.data_rate == data_rate


# --- both marshalers give the same record ---------------------------------------------------


@pytest.mark.parametrize("name", ["up_two_gateways", "up_no_location", "up_confirmed_decoded"])
def test_protobuf_uplink_equals_json_uplink(name: str) -> None:
    event = load(name)
    mqtt_topic = topic("up", event["deviceInfo"]["devEui"], event["deviceInfo"]["applicationId"])

    from_json = parser.parse(as_json(event), origin=ORIGIN, topic=mqtt_topic, now=NOW)
    from_protobuf = parser.parse(as_protobuf(event, "up"), origin=ORIGIN, topic=mqtt_topic, now=NOW)

    assert from_protobuf == from_json


@pytest.mark.parametrize("name", ["status", "join", "ack", "txack", "log", "location"])
def test_protobuf_event_equals_json_event(name: str) -> None:
    event = load(name)

    from_json = parser.parse(as_json(event), origin=ORIGIN, topic=topic(name), now=NOW)
    from_protobuf = parser.parse(as_protobuf(event, name), origin=ORIGIN, topic=topic(name), now=NOW)

    assert from_protobuf == from_json


def test_protobuf_keeps_frame_counter_zero_and_port_zero() -> None:
    event = load("up_no_location")
    event["fPort"] = 0
    del event["data"]
    binary = as_protobuf(event, "up")

    uplink = parser.parse(binary, origin=ORIGIN, topic=topic("up", SCHOOL_EUI, SCHOOL_APP), now=NOW)

    assert isinstance(uplink, Uplink)
    assert (uplink.f_cnt, uplink.f_port, uplink.payload) == (0, 0, b"")


def test_protobuf_integration_event() -> None:
    event = {
        "deduplicationId": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
        "time": "2026-11-20T08:15:32Z",
        "deviceInfo": load("join")["deviceInfo"],
        "integrationName": "loracloud",
        "eventType": "geolocation",
        "object": {"latitude": 48.1117, "longitude": -1.6801},
    }

    from_protobuf = parser.parse(as_protobuf(event, "integration"), origin=ORIGIN, topic=topic("integration"), now=NOW)
    from_json = parser.parse(as_json(event), origin=ORIGIN, event="integration", now=NOW)

    assert (
        from_protobuf
        == from_json
        == OtherEvent(
            origin=ORIGIN,
            lns="chirpstack",
            event="integration",
            lns_event="integration",
            dev_eui=AIR_QUALITY_EUI,
            received_at=at("2026-11-20T08:15:32+00:00"),
        )
    )


# --- status and other events ---------------------------------------------------------------


def test_status_event() -> None:
    status = parser.parse(body("status"), origin=ORIGIN, topic=topic("status"), now=NOW)

    assert status == DeviceStatus(
        origin=ORIGIN,
        lns="chirpstack",
        dev_eui=AIR_QUALITY_EUI,
        device_id="aq-rue-de-la-paix",
        application_id=AIR_QUALITY_APP,
        received_at=at("2026-11-20T08:15:30.223344+00:00"),
        battery_level=87.5,
        external_power=False,
        margin=7,
        device_profile="aq-sensor-lpp",
        tags=AIR_QUALITY_TAGS,
    )


@pytest.mark.parametrize(
    ("changes", "battery_level", "external_power"),
    [
        ({"externalPowerSource": True, "batteryLevel": 0}, None, True),
        ({"batteryLevelUnavailable": True, "batteryLevel": 0}, None, False),
        ({"batteryLevel": 0}, 0.0, False),
    ],
)
def test_status_battery_level(changes: dict[str, Any], battery_level: float | None, external_power: bool) -> None:
    event = load("status") | changes

    for data in (as_json(event), as_protobuf(event, "status")):
        status = parser.parse(data, origin=ORIGIN, topic=topic("status"), now=NOW)

        assert isinstance(status, DeviceStatus)
        assert (status.battery_level, status.external_power) == (battery_level, external_power)


def test_status_margin_zero_is_left_out_by_protobuf() -> None:
    event = load("status") | {"margin": 0}

    status = parser.parse(as_protobuf(event, "status"), origin=ORIGIN, topic=topic("status"), now=NOW)

    assert isinstance(status, DeviceStatus)
    assert status.margin == 0


@pytest.mark.parametrize(
    ("name", "kind", "received_at"),
    [
        ("join", "join", "2026-11-20T07:58:12.345678+00:00"),
        ("ack", "ack", "2026-11-20T08:30:01.250000+00:00"),
        # the gateway's acknowledgement of a transmission: the downlink was sent
        ("txack", "sent", "2026-11-20T08:29:59.100000+00:00"),
        ("log", "log", "2026-11-20T08:15:30.130000+00:00"),
        ("location", "location", "2026-11-20T08:15:31+00:00"),
    ],
)
def test_other_events_are_counted(name: str, kind: str, received_at: str) -> None:
    event = parser.parse(body(name), origin=ORIGIN, topic=topic(name), now=NOW)

    assert event == OtherEvent(
        origin=ORIGIN,
        lns="chirpstack",
        event=kind,
        lns_event=name,
        dev_eui=AIR_QUALITY_EUI,
        received_at=at(received_at),
    )
    assert kind in EVENT_KIND_NAMES
    assert (event.to_json()["event"], event.to_json()["lns_event"]) == (kind, name)


def test_an_ack_without_acknowledgement_is_a_nack() -> None:
    event = load("ack") | {"acknowledged": False}

    from_json = parser.parse(as_json(event), origin=ORIGIN, topic=topic("ack"), now=NOW)
    # the binary marshaler leaves the false out
    from_protobuf = parser.parse(as_protobuf(event, "ack"), origin=ORIGIN, topic=topic("ack"), now=NOW)

    for parsed in (from_json, from_protobuf):
        assert isinstance(parsed, OtherEvent)
        assert (parsed.event, parsed.lns_event) == ("nack", "ack")


def test_every_event_type_has_a_plain_kind() -> None:
    assert set(EVENT_KINDS) == set(EVENT_MESSAGES)
    assert set(EVENT_KINDS.values()) <= set(EVENT_KIND_NAMES)


def test_other_event_given_by_the_http_event_parameter() -> None:
    event = parser.parse(body("join"), origin=ORIGIN, event="join", now=NOW)

    assert isinstance(event, OtherEvent)
    assert event.event == "join"


# --- rejections ----------------------------------------------------------------------------


def test_malformed_json() -> None:
    rejected("malformed_json", b'{"deviceInfo": {"devEui": "70b3d57ed0001a01"', topic=topic("up"))


def test_json_constants_are_not_json() -> None:
    rejected("malformed_json", b'{"batteryLevel": NaN}', topic=topic("status"))


def test_invalid_utf8() -> None:
    rejected("invalid_utf8", b'{"deviceInfo": {"deviceName": "\xff\xfe"}}', topic=topic("up"))


def test_json_that_is_not_an_object() -> None:
    rejected("unknown_format", b'[{"deviceInfo": {}}]', topic=topic("up"))


def test_a_tts_message_is_not_a_chirpstack_event() -> None:
    tts = (FIXTURES.parent / "tts" / "uplink_message.json").read_bytes()

    rejected("unknown_format", tts)


def test_json_event_that_is_neither_up_nor_status_needs_its_type() -> None:
    rejected("unknown_format", body("join"))


def test_protobuf_needs_its_event_type() -> None:
    rejected("unknown_format", as_protobuf(load("up_two_gateways"), "up"))


def test_unknown_event_name() -> None:
    rejected("unknown_format", body("up_two_gateways"), topic=topic("uplink"))
    rejected("unknown_format", body("up_two_gateways"), event="uplink")


def test_topic_that_is_not_a_chirpstack_event_topic() -> None:
    rejected(
        "unknown_format",
        body("up_two_gateways"),
        topic="v3/city-air-quality@metropole/devices/aq/up",
    )


def test_topic_and_event_parameter_disagree() -> None:
    rejected("topic_mismatch", body("up_two_gateways"), topic=topic("up"), event="status")


def test_topic_names_another_device() -> None:
    rejected("topic_mismatch", body("up_two_gateways"), topic=topic("up", dev_eui=SCHOOL_EUI))


def test_topic_names_another_application() -> None:
    rejected("topic_mismatch", body("up_two_gateways"), topic=topic("up", application=SCHOOL_APP))


def test_topic_device_eui_in_upper_case_is_the_same_device() -> None:
    uplink = parser.parse(body("up_two_gateways"), origin=ORIGIN, topic=topic("up", AIR_QUALITY_EUI.upper()), now=NOW)

    assert isinstance(uplink, Uplink)


def test_missing_dev_eui() -> None:
    event = load("up_two_gateways")
    del event["deviceInfo"]["devEui"]

    rejected("missing_field", as_json(event), topic=topic("up"))
    rejected("missing_field", as_protobuf(event, "up"), topic=topic("up"))


def test_dev_eui_that_is_not_an_eui() -> None:
    event = load("up_two_gateways")
    event["deviceInfo"]["devEui"] = "AgICAgICAgI="  # v3 wrote the EUI as base64 bytes

    rejected("missing_field", as_json(event), event="up")


def test_uplink_without_any_timestamp() -> None:
    event = load("up_two_gateways")
    del event["time"]
    for rx in event["rxInfo"]:
        del rx["nsTime"]

    rejected("missing_field", as_json(event), topic=topic("up"))


def test_bad_base64() -> None:
    event = load("up_two_gateways") | {"data": "AWcA4QJo*w=="}

    rejected("bad_base64", as_json(event), topic=topic("up"))


def test_payload_larger_than_the_limit() -> None:
    rejected(
        "payload_too_large",
        body("up_two_gateways"),
        topic=topic("up"),
        limits=ParseLimits(max_payload_bytes=4),
    )


def test_body_larger_than_the_limit() -> None:
    binary = as_protobuf(load("up_two_gateways"), "up")

    rejected("body_too_large", binary, topic=topic("up"), limits=ParseLimits(max_body_bytes=64))
    rejected(
        "body_too_large",
        body("up_two_gateways"),
        topic=topic("up"),
        limits=ParseLimits(max_body_bytes=64),
    )


def test_timestamp_a_day_in_the_future() -> None:
    rejected("future_timestamp", body("up_two_gateways"), topic=topic("up"), now=NOW - timedelta(days=1))


def test_unparsable_timestamp() -> None:
    event = load("up_two_gateways") | {"time": "20/11/2026 08:15"}

    rejected("bad_timestamp", as_json(event), topic=topic("up"))


def test_protobuf_garbage() -> None:
    error = rejected("invalid_protobuf", b"\x0a\xff\xff\xff\xff\x0f garbage", topic=topic("up"))

    assert isinstance(error.__cause__, Exception)


def test_protobuf_object_that_json_cannot_carry() -> None:
    message = EVENT_MESSAGES["up"]()
    json_format.ParseDict(load("up_two_gateways"), message)
    message.object.update({"temperature": float("nan")})

    rejected("invalid_protobuf", message.SerializeToString(), topic=topic("up"))


def test_wrong_field_type() -> None:
    event = load("up_two_gateways") | {"fCnt": "1234"}

    rejected("missing_field", as_json(event), topic=topic("up"))


# --- subscriptions and registry ------------------------------------------------------------


def test_mqtt_subscriptions() -> None:
    assert parser.mqtt_subscriptions(None) == ["application/+/device/+/event/+"]
    assert parser.mqtt_subscriptions(AIR_QUALITY_APP) == [f"application/{AIR_QUALITY_APP}/device/+/event/+"]


def test_registry() -> None:
    assert sorted(PARSERS) == ["chirpstack", "tts"]
    assert get_parser("chirpstack").name == "chirpstack"
    assert isinstance(get_parser("chirpstack"), ChirpStackParser)
    assert ParseLimits() == DEFAULT_LIMITS
    with pytest.raises(ConfigError, match="loriot"):
        get_parser("loriot")
