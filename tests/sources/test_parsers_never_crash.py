"""No input raises anything but ``EventError`` out of a parser (property-based, deterministic).

For each parser and marshaler: arbitrary bytes, and real fixtures mutated (a value replaced by
any JSON value, including huge numbers, lone surrogates and deep nesting; a key removed; the
serialised body cut, a byte flipped or inserted); and gateway metadata of any shape (the
members each network server may send, with realistic or arbitrary values, or missing). The
outcome is always a parsed event or an ``EventError`` whose reason is in ``REASONS``. An
accepted uplink is also well-formed: what the rest of the pipeline relies on (a 16-digit EUI,
32-bit counters, fPort 0 rather than none, UTC times, gateway ids fit for an IRI).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.exceptions import REASONS, EventError
from adapter.sources.chirpstack import EVENT_MESSAGES, ChirpStackParser
from adapter.sources.tts import TTSParser
from adapter.uplink import EVENT_KINDS, DeviceStatus, Event, Origin, OtherEvent, Uplink
from tests.sources.mutations import damaged, mutated, values

FIXTURES = Path(__file__).parent.parent / "fixtures"
ORIGIN = Origin(tenant="city", lns_id="fuzz")
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CHIRPSTACK, TTS = ChirpStackParser(), TTSParser()

# ChirpStack fixtures with their event type (the name says it, except the uplinks)
CS_EVENTS = {path.stem: json.loads(path.read_text()) for path in sorted((FIXTURES / "chirpstack").glob("*.json"))}
CS_TYPES = {name: "up" if name.startswith("up") else name for name in CS_EVENTS}
TTS_MESSAGES = [json.loads(path.read_text()) for path in sorted((FIXTURES / "tts").glob("*.json"))]

FUZZ = settings(
    derandomize=True, database=None, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def protobuf_events(draw: st.DrawFn) -> tuple[bytes, str]:
    name = draw(st.sampled_from(sorted(CS_EVENTS)))
    binary = json_format.ParseDict(CS_EVENTS[name], EVENT_MESSAGES[CS_TYPES[name]]()).SerializeToString()
    return damaged(draw, binary), CS_TYPES[name]


def outcome(parse: Any) -> Event | EventError:
    """The parsed event, or its EventError; anything else raised fails the test."""
    try:
        event: Event = parse()
    except EventError as exc:
        assert exc.reason in REASONS
        return exc
    assert isinstance(event, Uplink | DeviceStatus | OtherEvent)
    if isinstance(event, Uplink | DeviceStatus):
        assert len(event.dev_eui) == 16 and set(event.dev_eui) <= set("0123456789abcdef")
        offset = event.received_at.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
    if isinstance(event, Uplink):
        assert 0 <= event.f_cnt < 2**32 and type(event.f_port) is int and 0 <= event.f_port < 2**32
        assert len(event.payload) <= 256
        for gateway in event.gateways:
            assert _GATEWAY_ID.fullmatch(gateway.gateway_id) or _EUI.fullmatch(gateway.gateway_id)
            assert gateway.eui is None or _EUI.fullmatch(gateway.eui)
            assert gateway.rssi is None or isinstance(gateway.rssi, float)
        json.dumps(event.to_json())  # the parse output is plain JSON
    if isinstance(event, OtherEvent):
        assert event.event in EVENT_KINDS and event.lns_event
    return event


_EUI = re.compile(r"[0-9a-f]{16}")
_GATEWAY_ID = re.compile(r"[a-z0-9](?:-?[a-z0-9]){2,35}")


topics = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/70b3d57ed0001a01/event/up",
            "application/x/device/70b3d57ed0001a01/event/status",
            "application/x/device/y/event/nope",
            "v3/app@t/devices/d/up",
            "v3/app/devices/dev/up",
            "v3/a/devices/b/location/solved",
            "",
            "//",
            "\x00",
        ]
    ),
    st.text(max_size=30),
)
event_names = st.one_of(
    st.none(), st.sampled_from(["up", "status", "join", "uplink_message", "down-ack"]), st.text(max_size=10)
)


@FUZZ
@given(body=st.binary(max_size=600), topic=topics, event=event_names)
def test_chirpstack_arbitrary_bytes(body: bytes, topic: str | None, event: str | None) -> None:
    outcome(lambda: CHIRPSTACK.parse(body, origin=ORIGIN, topic=topic, event=event, now=NOW))


@FUZZ
@given(body=mutated(list(CS_EVENTS.values())), event=st.sampled_from(sorted(set(CS_TYPES.values()))) | st.none())
def test_chirpstack_mutated_json_fixtures(body: bytes, event: str | None) -> None:
    outcome(lambda: CHIRPSTACK.parse(body, origin=ORIGIN, event=event, now=NOW))


@FUZZ
@given(case=protobuf_events())
def test_chirpstack_mutated_protobuf_fixtures(case: tuple[bytes, str]) -> None:
    body, event = case
    outcome(lambda: CHIRPSTACK.parse(body, origin=ORIGIN, event=event, now=NOW))


@FUZZ
@given(body=st.binary(max_size=600), topic=topics, event=event_names)
def test_tts_arbitrary_bytes(body: bytes, topic: str | None, event: str | None) -> None:
    outcome(lambda: TTS.parse(body, origin=ORIGIN, topic=topic, event=event, now=NOW))


@FUZZ
@given(body=mutated(TTS_MESSAGES))
def test_tts_mutated_fixtures(body: bytes) -> None:
    outcome(lambda: TTS.parse(body, origin=ORIGIN, now=NOW))


def test_the_mutations_reach_every_outcome() -> None:
    """The strategies are not vacuous: they give accepted events and several reasons."""
    seen: set[str] = set()

    @settings(derandomize=True, database=None, max_examples=300, deadline=None)
    @given(body=mutated(TTS_MESSAGES))
    def collect(body: bytes) -> None:
        result = outcome(lambda: TTS.parse(body, origin=ORIGIN, now=NOW))
        seen.add(result.reason if isinstance(result, EventError) else "parsed")

    collect()
    assert "parsed" in seen and len(seen) >= 4, seen


# --- gateway metadata of any shape -----------------------------------------------------------


def _good_or_bad(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """A value a network server writes, two times in three; one it would not write otherwise."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(bad))


_EUIS = _good_or_bad(["0016C001F153A14C", "0016c001f153a14c", "00-16-c0-01-f1-53-a1-4c"], ["A84041", "", "zz" * 8])
_IDS = _good_or_bad(
    ["rennes-hotel-de-ville", "packetbroker", "eui-7076ff0056081234", "0016c001f153a14c"],
    ["gw", "GW-1", "a" * 37, "gw <1>", "", "gw--1"],
)
_TIMES = _good_or_bad(
    ["2026-11-20T08:15:30.110567123Z", "2026-11-20T08:15:30+01:00"], ["2027-01-01T00:00:00Z", "yesterday", ""]
)
_NUMBERS = st.one_of(st.integers(-200, 20), st.floats(allow_nan=False, allow_infinity=False))
_LOCATIONS = st.fixed_dictionaries(
    {},
    optional={
        "latitude": st.floats(-100, 100) | values,
        "longitude": st.floats(-200, 200) | values,
        "altitude": _NUMBERS | values,
        "source": st.sampled_from(["SOURCE_REGISTRY", "SOURCE_GPS"]) | values,
    },
)


def _member(realistic: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A member's value: mostly one a network server writes (good or bad), one time in five anything."""
    return st.one_of(realistic, realistic, realistic, realistic, values)


# The id is always there (absent members of real events: the mutation tests above), the rest may be.
_TTS_GATEWAY = st.fixed_dictionaries(
    {
        "gateway_ids": _member(st.fixed_dictionaries({"gateway_id": _member(_IDS)}, optional={"eui": _member(_EUIS)})),
    },
    optional={
        "packet_broker": _member(
            st.fixed_dictionaries(
                {},
                optional={
                    "forwarder_gateway_eui": _member(_EUIS),
                    "forwarder_gateway_id": _member(_IDS),
                    "forwarder_net_id": st.just("000013"),
                    "message_id": st.text(max_size=8),
                },
            )
        ),
        "rssi": _member(_NUMBERS),
        "channel_rssi": _member(_NUMBERS),
        "snr": _member(_NUMBERS),
        "channel_index": _member(st.integers(-1, 2**33)),
        "location": _member(_LOCATIONS),
        "time": _member(_TIMES),
        "received_at": _member(_TIMES),
    },
)
_CHIRPSTACK_GATEWAY = st.fixed_dictionaries(
    {"gatewayId": _member(_IDS | _EUIS)},
    optional={
        "rssi": _member(_NUMBERS),
        "snr": _member(_NUMBERS),
        "channel": _member(st.integers(-1, 2**33)),
        "location": _member(_LOCATIONS),
        "nsTime": _member(_TIMES),
        "gwTime": _member(_TIMES),
        "crcStatus": st.just("CRC_OK"),
    },
)
_UPLINKS = {
    "tts": [m for m in TTS_MESSAGES if "uplink_message" in m],
    "chirpstack": [e for name, e in CS_EVENTS.items() if CS_TYPES[name] == "up"],
}


@FUZZ
@given(message=st.sampled_from(_UPLINKS["tts"]), gateways=_member(st.lists(_member(_TTS_GATEWAY), max_size=4)))
def test_tts_any_gateway_metadata(message: dict[str, Any], gateways: Any) -> None:
    body = json.dumps({**message, "uplink_message": {**message["uplink_message"], "rx_metadata": gateways}})
    outcome(lambda: TTS.parse(body.encode(), origin=ORIGIN, now=NOW))


def _chirpstack_body(event: dict[str, Any], gateways: Any, binary: bool) -> bytes | None:
    changed = {**event, "rxInfo": gateways}
    if not binary:
        return json.dumps(changed).encode()
    try:  # only what the protobuf message can hold reaches the binary marshaler
        return json_format.ParseDict(changed, EVENT_MESSAGES["up"]()).SerializeToString()
    except (json_format.ParseError, ValueError, TypeError):
        return None


_CHIRPSTACK_GATEWAYS = _member(st.lists(_member(_CHIRPSTACK_GATEWAY), max_size=4))


@FUZZ
@given(event=st.sampled_from(_UPLINKS["chirpstack"]), gateways=_CHIRPSTACK_GATEWAYS, binary=st.booleans())
def test_chirpstack_any_gateway_metadata(event: dict[str, Any], gateways: Any, binary: bool) -> None:
    body = _chirpstack_body(event, gateways, binary)
    if body is not None:
        outcome(lambda: CHIRPSTACK.parse(body, origin=ORIGIN, event="up", now=NOW))


def test_the_gateway_strategies_reach_accepted_uplinks_and_refusals() -> None:
    """Not vacuous: some shapes give uplinks with gateways (with and without EUI), some refusals."""
    seen: set[str] = set()

    def note(lns: str, result: Event | EventError) -> None:
        if isinstance(result, Uplink):
            seen.update(f"{lns}:{'eui' if g.eui else 'no eui'}" for g in result.gateways)
        else:
            seen.add(result.reason if isinstance(result, EventError) else "other")

    @settings(derandomize=True, database=None, max_examples=200, deadline=None)
    @given(message=st.sampled_from(_UPLINKS["tts"]), gateways=st.lists(_TTS_GATEWAY, min_size=1, max_size=3))
    def tts(message: dict[str, Any], gateways: Any) -> None:
        body = json.dumps({**message, "uplink_message": {**message["uplink_message"], "rx_metadata": gateways}})
        note("tts", outcome(lambda: TTS.parse(body.encode(), origin=ORIGIN, now=NOW)))

    @settings(derandomize=True, database=None, max_examples=200, deadline=None)
    @given(
        event=st.sampled_from(_UPLINKS["chirpstack"]),
        gateways=st.lists(_CHIRPSTACK_GATEWAY, min_size=1, max_size=3),
        binary=st.booleans(),
    )
    def chirpstack(event: dict[str, Any], gateways: Any, binary: bool) -> None:
        body = _chirpstack_body(event, gateways, binary)
        if body is not None:
            note("chirpstack", outcome(lambda: CHIRPSTACK.parse(body, origin=ORIGIN, event="up", now=NOW)))

    tts()
    chirpstack()
    assert {"tts:eui", "tts:no eui", "chirpstack:eui", "chirpstack:no eui", "missing_field"} <= seen, seen
