"""The Things Stack v3 messages -> normalised records, and every rejection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapter.exceptions import EventError
from adapter.sources import get_parser
from adapter.sources._common import ParseLimits
from adapter.sources.tts import EVENT_KINDS, MESSAGE_EVENTS, TTSParser
from adapter.uplink import EVENT_KINDS as EVENT_KIND_NAMES
from adapter.uplink import DataRate, GatewayReception, Location, Origin, OtherEvent, Uplink

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tts"
ORIGIN = Origin(tenant="city", lns_id="tts-cloud")
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

AIR_QUALITY_EUI = "70b3d57ed0001a01"
SCHOOL_EUI = "70b3d57ed0002b02"
LPP_22_5_C_57_5_PCT = bytes.fromhex("016700e1026873")

parser = TTSParser()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def body(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def as_json(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def topic(kind: str, device: str = "aq-rue-de-la-paix", application: str = "city-air-quality@metropole") -> str:
    return f"v3/{application}/devices/{device}/{kind}"


SCHOOL_TOPIC = topic("up", "ecole-jules-ferry-salle-12", "school-climate@metropole")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def rejected(reason: str, data: bytes, **kwargs: Any) -> EventError:
    kwargs.setdefault("now", NOW)
    with pytest.raises(EventError) as caught:
        parser.parse(data, origin=ORIGIN, **kwargs)
    assert caught.value.reason == reason, caught.value.detail
    return caught.value


# --- uplinks -------------------------------------------------------------------------------


def test_uplink_decoded_by_tts_two_gateways_without_location() -> None:
    uplink = parser.parse(body("uplink_message"), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert uplink == Uplink(
        origin=ORIGIN,
        lns="tts",
        dev_eui=AIR_QUALITY_EUI,
        device_id="aq-rue-de-la-paix",
        application_id="city-air-quality",
        f_cnt=1234,
        f_port=2,
        payload=LPP_22_5_C_57_5_PCT,
        # the Network Server's receive time, not the Application Server's
        received_at=at("2026-11-20T08:15:30.123456+00:00"),
        device_time=None,
        gateways=(
            GatewayReception(
                gateway_id="rennes-hotel-de-ville",
                eui="0016c001f153a14c",
                rssi=-87.0,
                snr=9.5,
                channel=2,
                location=None,
                received_at=at("2026-11-20T08:15:30.110567+00:00"),
            ),
            GatewayReception(
                gateway_id="eui-7076ff0056081234",
                eui="7076ff0056081234",
                rssi=-112.0,
                snr=-6.25,
                channel=2,
                location=None,
                received_at=at("2026-11-20T08:15:30.115002+00:00"),
            ),
        ),
        data_rate=DataRate(modulation="LORA", spreading_factor=7, bandwidth=125000, coding_rate="4/5"),
        frequency=868500000,
        confirmed=False,
        decoded={"temperature_1": 22.5, "relative_humidity_2": 57.5},
        location=None,
        device_profile=None,
        tags={},
        lns_tenant="metropole",
        event_id="as:up:01JD4Q3KA2X9Z7W5V3T1R8P6N4",
    )
    assert str(uplink.data_rate) == "SF7BW125"


def test_confirmed_uplink_three_gateways_with_device_and_gateway_locations() -> None:
    uplink = parser.parse(body("uplink_three_gateways_location"), origin=ORIGIN, topic=SCHOOL_TOPIC, now=NOW)

    assert uplink == Uplink(
        origin=ORIGIN,
        lns="tts",
        dev_eui=SCHOOL_EUI,
        device_id="ecole-jules-ferry-salle-12",
        application_id="school-climate",
        # f_cnt 0 is left out of the JSON
        f_cnt=0,
        f_port=2,
        payload=bytes.fromhex("016700d502685a"),
        received_at=at("2026-11-20T08:20:05.004001+00:00"),
        gateways=(
            # channel_index 0 is left out of the JSON too
            GatewayReception(
                gateway_id="ecole-jules-ferry-toit",
                eui="b827ebfffe61a2c3",
                rssi=-96.0,
                snr=7.25,
                channel=0,
                location=Location(latitude=48.1032, longitude=-1.6721, altitude=38.0, source="SOURCE_REGISTRY"),
                received_at=at("2026-11-20T08:20:04.998877+00:00"),
            ),
            GatewayReception(
                gateway_id="rennes-hotel-de-ville",
                eui="0016c001f153a14c",
                rssi=-113.0,
                snr=-2.75,
                channel=0,
                location=Location(latitude=48.1113, longitude=-1.68, altitude=61.5, source="SOURCE_REGISTRY"),
                received_at=at("2026-11-20T08:20:05.001122+00:00"),
            ),
            # relayed by Packet Broker: The Things Stack's id is "packetbroker", the EUI is
            # the forwarding network's gateway's; no location
            GatewayReception(
                gateway_id="packetbroker",
                eui="a84041ffff1f2e3d",
                rssi=-119.0,
                snr=-12.5,
                channel=5,
                location=None,
                received_at=at("2026-11-20T08:20:05.010203+00:00"),
            ),
        ),
        data_rate=DataRate(modulation="LORA", spreading_factor=9, bandwidth=125000, coding_rate="4/5"),
        frequency=868100000,
        confirmed=True,
        decoded=None,
        location=Location(latitude=48.10351, longitude=-1.67284, altitude=35.0, source="SOURCE_REGISTRY"),
        device_profile="acme-sensors/school-climate-v2",
        tags={"building": "ecole-jules-ferry", "room": "salle-12"},
        lns_tenant="metropole",
        event_id="as:up:01JD4QF0Q1R2S3T4V5W6X7Y8Z9",
    )


@pytest.mark.parametrize("event", [None, "uplink_message", "uplink-message", "up"])
def test_webhook_without_topic(event: str | None) -> None:
    uplink = parser.parse(body("uplink_message"), origin=ORIGIN, event=event, now=NOW)

    assert isinstance(uplink, Uplink)
    # without a topic the tenant comes from network_ids
    assert uplink.lns_tenant == "metropole"


def test_open_source_topic_without_tenant() -> None:
    message = load("uplink_message")
    del message["uplink_message"]["network_ids"]

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=topic("up", application="city-air-quality"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.lns_tenant is None


def test_tenant_in_the_topic_wins_over_network_ids() -> None:
    message = load("uplink_message")
    message["uplink_message"]["network_ids"]["tenant_id"] = "ttn"

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.lns_tenant == "metropole"


def test_mac_command_only_uplink_has_fport_zero() -> None:
    # The Network Server forwards an FPort 0 frame with neither f_port (a zero value, left
    # out of the JSON) nor frm_payload; the empty payload is left to the pipeline.
    message = load("uplink_message")
    up = message["uplink_message"]
    del up["frm_payload"], up["decoded_payload"], up["f_port"]

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert (uplink.payload, uplink.decoded, uplink.f_port) == (b"", None, 0)
    assert uplink.to_json()["f_port"] == 0


def test_packet_broker_gateway_without_forwarder_eui() -> None:
    message = load("uplink_three_gateways_location")
    relayed = message["uplink_message"]["rx_metadata"][2]
    del relayed["packet_broker"]["forwarder_gateway_eui"]

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=SCHOOL_TOPIC, now=NOW)

    assert isinstance(uplink, Uplink)
    assert (uplink.gateways[2].gateway_id, uplink.gateways[2].eui) == ("packetbroker", None)


def test_the_gateway_id_is_kept_and_the_eui_beside_it_in_the_parse_output() -> None:
    uplink = parser.parse(body("uplink_three_gateways_location"), origin=ORIGIN, topic=SCHOOL_TOPIC, now=NOW)

    assert [(g["id"], g["eui"]) for g in uplink.to_json()["gateways"]] == [
        ("ecole-jules-ferry-toit", "b827ebfffe61a2c3"),
        ("rennes-hotel-de-ville", "0016c001f153a14c"),
        ("packetbroker", "a84041ffff1f2e3d"),
    ]


@pytest.mark.parametrize(
    "gateway_ids",
    [
        {"eui": "0016C001F153A14C"},  # The Things Stack always sets gateway_id
        {"gateway_id": "Rennes Hotel de Ville"},
        {"gateway_id": "gw"},  # 3 characters at least
        {"gateway_id": "a" * 37},  # 36 at most
        {"gateway_id": "gw--1"},
        {"gateway_id": "gw-1", "eui": "not-an-eui"},
        {"gateway_id": 7},
    ],
)
def test_gateway_ids_that_the_things_stack_would_not_write_are_refused(gateway_ids: dict[str, Any]) -> None:
    message = load("uplink_message")
    message["uplink_message"]["rx_metadata"][0]["gateway_ids"] = gateway_ids

    error = rejected("missing_field", as_json(message), topic=topic("up"))
    assert "gateway_id" in error.detail or "eui" in error.detail


def test_a_bad_forwarder_gateway_eui_is_refused() -> None:
    message = load("uplink_three_gateways_location")
    message["uplink_message"]["rx_metadata"][2]["packet_broker"]["forwarder_gateway_eui"] = "A84041"

    error = rejected("missing_field", as_json(message), topic=SCHOOL_TOPIC)
    assert "forwarder_gateway_eui" in error.detail


def test_received_at_falls_back_to_the_application_server_time() -> None:
    message = load("uplink_message")
    del message["uplink_message"]["received_at"]

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.received_at == at("2026-11-20T08:15:30.234567+00:00")


def test_gateway_time_is_used_when_the_server_time_is_absent() -> None:
    message = load("uplink_message")
    rx = message["uplink_message"]["rx_metadata"]
    del rx[0]["received_at"]
    del rx[1]["received_at"]
    rx[1]["time"] = "2027-01-01T00:00:00Z"  # a gateway without GPS and with a wrong clock

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.gateways[0].received_at == at("2026-11-20T08:15:30.101234+00:00")
    assert uplink.gateways[1].received_at is None


def test_channel_rssi_stands_in_for_a_missing_rssi() -> None:
    message = load("uplink_message")
    del message["uplink_message"]["rx_metadata"][0]["rssi"]

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.gateways[0].rssi == -87.0


def test_older_releases_put_the_coding_rate_in_settings() -> None:
    message = load("uplink_message")
    settings = message["uplink_message"]["settings"]
    del settings["data_rate"]["lora"]["coding_rate"]
    settings["coding_rate"] = "4/6"

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.data_rate == DataRate(modulation="LORA", spreading_factor=7, bandwidth=125000, coding_rate="4/6")


@pytest.mark.parametrize(
    ("data_rate", "expected"),
    [
        ({"fsk": {"bit_rate": 50000}}, DataRate(modulation="FSK", bit_rate=50000)),
        (
            {
                "lrfhss": {
                    "modulation_type": 0,
                    "operating_channel_width": 137000,
                    "coding_rate": "1/3",
                }
            },
            DataRate(modulation="LR_FHSS", bandwidth=137000, coding_rate="1/3"),
        ),
    ],
)
def test_data_rate_of_other_modulations(data_rate: dict[str, Any], expected: DataRate) -> None:
    message = load("uplink_message")
    message["uplink_message"]["settings"]["data_rate"] = data_rate

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.data_rate == expected


def test_device_location_other_than_user() -> None:
    message = load("uplink_message")
    message["uplink_message"]["locations"] = {
        "frm-payload": {"latitude": 48.11, "longitude": -1.68, "source": "SOURCE_GPS"}
    }

    uplink = parser.parse(as_json(message), origin=ORIGIN, topic=topic("up"), now=NOW)

    assert isinstance(uplink, Uplink)
    assert uplink.location == Location(latitude=48.11, longitude=-1.68, altitude=None, source="SOURCE_GPS")


# --- other messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "plain", "device", "application", "dev_eui", "received_at"),
    [
        (
            "join_accept",
            "join",
            "join",
            "aq-rue-de-la-paix",
            "city-air-quality@metropole",
            AIR_QUALITY_EUI,
            "2026-11-20T07:58:12.456789+00:00",
        ),
        (
            "downlink_ack",
            "down/ack",
            "ack",
            "aq-rue-de-la-paix",
            "city-air-quality@metropole",
            AIR_QUALITY_EUI,
            "2026-11-20T08:30:01.250000+00:00",
        ),
        (
            "location_solved",
            "location/solved",
            "location",
            "ecole-jules-ferry-salle-12",
            "school-climate@metropole",
            SCHOOL_EUI,
            "2026-11-20T08:20:06.500000+00:00",
        ),
    ],
)
def test_other_messages_are_counted(
    name: str, kind: str, plain: str, device: str, application: str, dev_eui: str, received_at: str
) -> None:
    expected = OtherEvent(
        origin=ORIGIN,
        lns="tts",
        event=plain,
        lns_event=kind,
        dev_eui=dev_eui,
        received_at=at(received_at),
    )

    assert parser.parse(body(name), origin=ORIGIN, topic=topic(kind, device, application), now=NOW) == expected
    assert parser.parse(body(name), origin=ORIGIN, event=name, now=NOW) == expected
    assert parser.parse(body(name), origin=ORIGIN, now=NOW) == expected


def test_downlink_failed_without_received_at_or_eui() -> None:
    message = {
        "end_device_ids": {
            "device_id": "aq-rue-de-la-paix",
            "application_ids": {"application_id": "city-air-quality"},
        },
        "correlation_ids": ["as:downlink:01JD4R0A1B2C3D4E5F6G7H8J9K"],
        "downlink_failed": {
            "downlink": {"f_port": 10, "frm_payload": "AQ8=", "priority": "NORMAL"},
            "error": {
                "namespace": "pkg/networkserver",
                "name": "application_downlink_too_long",
                "code": 3,
            },
        },
    }

    event = parser.parse(as_json(message), origin=ORIGIN, topic=topic("down/failed"), now=NOW)

    assert event == OtherEvent(
        origin=ORIGIN, lns="tts", event="failed", lns_event="down/failed", dev_eui=None, received_at=None
    )
    assert (event.to_json()["event"], event.to_json()["lns_event"]) == ("failed", "down/failed")


def test_every_message_type_has_a_topic_kind() -> None:
    assert MESSAGE_EVENTS["uplink_normalized"] == "up/normalized"
    normalized = load("join_accept")
    normalized["uplink_normalized"] = normalized.pop("join_accept")

    event = parser.parse(as_json(normalized), origin=ORIGIN, event="normalized_uplink", now=NOW)

    assert isinstance(event, OtherEvent)
    assert (event.event, event.lns_event) == ("normalized", "up/normalized")


def test_every_topic_kind_has_a_plain_kind() -> None:
    # The Things Stack's application topics (pkg/applicationserver/io/mqtt/topics), less the
    # two the application publishes (down/push, down/replace)
    assert (
        set(EVENT_KINDS)
        == set(MESSAGE_EVENTS.values())
        == {
            "up",
            "up/normalized",
            "join",
            "down/queued",
            "down/sent",
            "down/ack",
            "down/nack",
            "down/failed",
            "down/invalidated",
            "location/solved",
            "service/data",
        }
    )
    assert set(EVENT_KINDS.values()) <= set(EVENT_KIND_NAMES)
    assert EVENT_KINDS["down/ack"] == "ack" and EVENT_KINDS["down/nack"] == "nack"


# --- rejections ----------------------------------------------------------------------------


def test_malformed_json() -> None:
    rejected("malformed_json", b'{"end_device_ids": {', topic=topic("up"))


def test_invalid_utf8() -> None:
    rejected("invalid_utf8", b'{"end_device_ids": {"device_id": "\xc3\x28"}}', topic=topic("up"))


def test_json_that_is_not_an_object() -> None:
    rejected("unknown_format", b'"uplink_message"', topic=topic("up"))


def test_a_chirpstack_event_is_not_a_tts_message() -> None:
    chirpstack = (FIXTURES.parent / "chirpstack" / "up_two_gateways.json").read_bytes()

    rejected("unknown_format", chirpstack)


def test_unknown_message_type() -> None:
    rejected("unknown_format", body("uplink_message"), event="uplink")
    rejected("unknown_format", body("uplink_message"), topic=topic("down/push"))


def test_topic_that_is_not_a_tts_topic() -> None:
    rejected(
        "unknown_format",
        body("uplink_message"),
        topic=f"application/x/device/{AIR_QUALITY_EUI}/event/up",
    )


def test_topic_kind_and_body_disagree() -> None:
    rejected("topic_mismatch", body("join_accept"), topic=topic("up"))
    rejected("topic_mismatch", body("join_accept"), event="uplink_message")


def test_topic_names_another_device() -> None:
    rejected(
        "topic_mismatch",
        body("uplink_message"),
        topic=topic("up", device="ecole-jules-ferry-salle-12"),
    )


def test_topic_names_another_application() -> None:
    rejected(
        "topic_mismatch",
        body("uplink_message"),
        topic=topic("up", application="school-climate@metropole"),
    )


def test_abp_device_without_dev_eui() -> None:
    message = load("uplink_message")
    del message["end_device_ids"]["dev_eui"]

    rejected("missing_field", as_json(message), topic=topic("up"))


def test_bad_base64() -> None:
    message = load("uplink_message")
    message["uplink_message"]["frm_payload"] = "not base64!"

    rejected("bad_base64", as_json(message), topic=topic("up"))


def test_payload_larger_than_the_limit() -> None:
    rejected(
        "payload_too_large",
        body("uplink_message"),
        topic=topic("up"),
        limits=ParseLimits(max_payload_bytes=4),
    )


def test_timestamp_a_day_in_the_future() -> None:
    rejected("future_timestamp", body("uplink_message"), topic=topic("up"), now=NOW - timedelta(days=1))


def test_unparsable_timestamp() -> None:
    message = load("uplink_message")
    message["uplink_message"]["received_at"] = "yesterday"

    rejected("bad_timestamp", as_json(message), topic=topic("up"))


def test_frequency_that_is_not_a_number() -> None:
    message = load("uplink_message")
    message["uplink_message"]["settings"]["frequency"] = "868.5 MHz"

    rejected("missing_field", as_json(message), topic=topic("up"))


def test_uplink_without_any_receive_time() -> None:
    message = load("uplink_message")
    del message["received_at"], message["uplink_message"]["received_at"]

    rejected("missing_field", as_json(message), topic=topic("up"))


# --- subscriptions and registry ------------------------------------------------------------


def test_mqtt_subscriptions() -> None:
    assert parser.mqtt_subscriptions(None) == ["v3/+/devices/+/#"]
    assert parser.mqtt_subscriptions("city-air-quality@metropole") == ["v3/city-air-quality@metropole/devices/+/#"]


def test_registry() -> None:
    assert isinstance(get_parser("tts"), TTSParser)
    assert get_parser("tts").name == "tts"
