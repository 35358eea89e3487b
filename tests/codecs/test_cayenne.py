"""Cayenne LPP: every standard type decodes to the values of the reference examples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapter.codecs.base import CodecInput
from adapter.codecs.cayenne import CAYENNE_TYPES, CayenneLPPCodec, decode_cayenne_lpp
from adapter.exceptions import CodecError


@pytest.mark.parametrize(
    ("hex_payload", "expected"),
    [
        ("016700e1026873", {"temperature_1": 22.5, "relative_humidity_2": 57.5}),
        ("0367ffd7", {"temperature_3": -4.1}),
        ("0000ff0101fe", {"digital_in_0": 255, "digital_out_1": 254}),
        ("0202fffe0303270f", {"analog_in_2": -0.02, "analog_out_3": 99.99}),
        ("0565012c", {"luminosity_5": 300}),
        ("066601", {"presence_6": 1}),
        ("067104d2fb2e0000", {"accelerometer_6": {"x": 1.234, "y": -1.234, "z": 0.0}}),
        ("0773275d", {"barometric_pressure_7": 1007.7}),
        ("0886ffce00320000", {"gyrometer_8": {"x": -0.5, "y": 0.5, "z": 0.0}}),
        ("018806765ff2960a0003e8", {"gps_1": {"latitude": 42.3519, "longitude": -87.9094, "altitude": 10.0}}),
        ("09740e10", {"voltage_9": 36.0}),
        ("0a7503e8", {"current_10": 1.0}),
        ("0b76000003e8", {"frequency_11": 1000}),
        ("0c7864", {"percentage_12": 100}),
        ("0d79ff9c", {"altitude_13": -100}),
        ("0e7a0003e8", {"load_14": 1.0}),
        ("0f7d01f4", {"concentration_15": 500}),
        ("1080012c", {"power_16": 300}),
        ("11820000c350", {"distance_17": 50.0}),
        ("1283000f4240", {"energy_18": 1000.0}),
        ("138400b4", {"direction_19": 180}),
        ("148568000000", {"unixtime_20": 1744830464}),
        ("1587ff8000", {"colour_21": {"r": 255, "g": 128, "b": 0}}),
        ("168e01", {"switch_22": 1}),
        ("1964000000ff", {"generic_25": 255}),
    ],
)
def test_decodes_each_type(hex_payload: str, expected: dict[str, object]) -> None:
    assert decode_cayenne_lpp(bytes.fromhex(hex_payload)) == expected


def test_every_type_in_the_table_is_covered_by_a_case() -> None:
    covered = {
        0,
        1,
        2,
        3,
        100,
        101,
        102,
        103,
        104,
        113,
        115,
        116,
        117,
        118,
        120,
        121,
        122,
        125,
        128,
        130,
        131,
        132,
        133,
        134,
        135,
        136,
        142,
    }
    assert set(CAYENNE_TYPES) == covered


@pytest.mark.parametrize(
    ("hex_payload", "message"),
    [
        ("0167", "needs 2 bytes, 0 left"),
        ("01", "truncated entry header at byte 0"),
        ("01ff00", "unknown type 255 on channel 1"),
        ("016700e10268", "relative_humidity on channel 2 needs 1 bytes"),
    ],
)
def test_bad_payloads_are_codec_errors(hex_payload: str, message: str) -> None:
    with pytest.raises(CodecError) as caught:
        decode_cayenne_lpp(bytes.fromhex(hex_payload))
    assert caught.value.reason == "codec_error"
    assert message in caught.value.detail


def test_codec_identity_names_the_builtin_and_digests_its_code() -> None:
    codec = CayenneLPPCodec()
    result = codec.decode(CodecInput(payload=bytes.fromhex("016700e1"), f_port=2, received_at=datetime.now(UTC)))
    assert result.codec.name == "builtin:cayenne_lpp"
    assert len(result.codec.digest) == 64
    assert result.data == {"temperature_1": 22.5}
    with pytest.raises(CodecError, match="empty payload"):
        codec.decode(CodecInput(payload=b"", f_port=2, received_at=datetime.now(UTC)))
