"""Gateway ids and EUIs, fPort 0 and event kinds as an operator sees them: ``ngsild-adapter
parse`` output, and the gateways of the provenance record."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from click.testing import CliRunner

from adapter.cli import main
from adapter.provenance.record import build_record
from adapter.sources.tts import TTSParser
from adapter.uplink import Origin, Uplink
from tests.support import FIXTURES

runner = CliRunner()


def parse(*args: str, input: str | None = None) -> dict[str, Any]:
    result = runner.invoke(main, ["parse", *args], input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record: dict[str, Any] = json.loads(result.output)
    return record


def test_tts_gateways_keep_their_id_with_the_eui_beside_it() -> None:
    record = parse("--lns", "tts", str(FIXTURES / "tts" / "uplink_three_gateways_location.json"))

    assert (record["event"], record["lns_event"]) == ("up", "up")
    assert [(g["id"], g["eui"]) for g in record["gateways"]] == [
        ("ecole-jules-ferry-toit", "b827ebfffe61a2c3"),
        ("rennes-hotel-de-ville", "0016c001f153a14c"),
        ("packetbroker", "a84041ffff1f2e3d"),
    ]


def test_chirpstack_gateway_id_is_its_eui() -> None:
    record = parse("--lns", "chirpstack", "--event", "up", str(FIXTURES / "chirpstack" / "up_two_gateways.json"))

    assert [(g["id"], g["eui"]) for g in record["gateways"]] == [
        ("0016c001f153a14c", "0016c001f153a14c"),
        ("7076ff0056081234", "7076ff0056081234"),
    ]


def test_a_mac_command_only_uplink_prints_fport_zero() -> None:
    event = json.loads((FIXTURES / "chirpstack" / "up_two_gateways.json").read_text()) | {"fPort": 0, "data": ""}

    record = parse("--lns", "chirpstack", "--event", "up", "-", input=json.dumps(event))

    assert (record["f_port"], record["payload_hex"]) == (0, None)


def test_a_downlink_acknowledgement_is_an_ack_with_the_topic_kind_kept() -> None:
    topic = "v3/city-air-quality@metropole/devices/aq-rue-de-la-paix/down/ack"

    record = parse("--lns", "tts", "--topic", topic, str(FIXTURES / "tts" / "downlink_ack.json"))

    assert (record["event"], record["lns_event"]) == ("ack", "down/ack")


def test_the_provenance_record_keeps_the_gateway_id_and_eui() -> None:
    uplink = TTSParser().parse(
        (FIXTURES / "tts" / "uplink_three_gateways_location.json").read_bytes(),
        origin=Origin(tenant="metropole", lns_id="tts-cloud"),
        now=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )
    assert isinstance(uplink, Uplink)

    record = build_record(uplink, [], observed_at=uplink.received_at, steps=[])

    assert record["gateways"] == [
        {"id": "ecole-jules-ferry-toit", "eui": "b827ebfffe61a2c3", "rssi": -96, "snr": 7.25},
        {"id": "rennes-hotel-de-ville", "eui": "0016c001f153a14c", "rssi": -113, "snr": -2.75},
        {"id": "packetbroker", "eui": "a84041ffff1f2e3d", "rssi": -119, "snr": -12.5},
    ]
