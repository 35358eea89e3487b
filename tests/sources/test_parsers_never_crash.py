"""No input raises anything but ``EventError`` out of a parser (property-based, deterministic).

For each parser and marshaler: arbitrary bytes, and real fixtures mutated (a value replaced by
any JSON value, including huge numbers, lone surrogates and deep nesting; a key removed; the
serialised body cut, a byte flipped or inserted). The outcome is always a parsed event or an
``EventError`` whose reason is in ``REASONS``. An accepted uplink is also well-formed: what
the rest of the pipeline relies on (a 16-digit EUI, 32-bit counters, UTC times).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.exceptions import REASONS, EventError
from adapter.sources.chirpstack import EVENT_MESSAGES, ChirpStackParser
from adapter.sources.tts import TTSParser
from adapter.uplink import DeviceStatus, Event, Origin, OtherEvent, Uplink
from tests.sources.mutations import damaged, mutated

FIXTURES = Path(__file__).parent.parent / "fixtures"
ORIGIN = Origin(tenant="city", lns_id="fuzz")
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CHIRPSTACK, TTS = ChirpStackParser(), TTSParser()

# ChirpStack fixtures with their event type (the name says it, except the uplinks)
CS_EVENTS = {
    path.stem: json.loads(path.read_text()) for path in sorted((FIXTURES / "chirpstack").glob("*.json"))
}
CS_TYPES = {name: "up" if name.startswith("up") else name for name in CS_EVENTS}
TTS_MESSAGES = [json.loads(path.read_text()) for path in sorted((FIXTURES / "tts").glob("*.json"))]

FUZZ = settings(derandomize=True, database=None, max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

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
        assert 0 <= event.f_cnt < 2**32 and (event.f_port is None or 0 < event.f_port < 2**32)
        assert len(event.payload) <= 256
    return event


topics = st.one_of(st.none(), st.sampled_from([
    "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/70b3d57ed0001a01/event/up",
    "application/x/device/70b3d57ed0001a01/event/status", "application/x/device/y/event/nope", "v3/app@t/devices/d/up",
    "v3/app/devices/dev/up", "v3/a/devices/b/location/solved", "", "//", "\x00",
]), st.text(max_size=30))
event_names = st.one_of(st.none(), st.sampled_from(["up", "status", "join", "uplink_message", "down-ack"]),
                        st.text(max_size=10))


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
