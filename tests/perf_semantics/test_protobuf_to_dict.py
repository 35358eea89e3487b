"""``message_to_dict`` gives exactly what ``json_format.MessageToDict`` gives, on every ChirpStack
event type: the fixtures, the simulated fleet, and messages filled at random (every field type,
NaN and infinities, enum numbers no name matches, Struct objects, maps, repeated messages)."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from adapter.demo.fleet import build_fleet, uplinks
from adapter.sources.chirpstack import EVENT_MESSAGES
from adapter.sources.chirpstack.parser import message_to_dict
from tests.support import FIXTURES

F = FieldDescriptor


def outcome(convert: Any, message: Message) -> Any:
    try:
        return ("ok", json.dumps(convert(message), sort_keys=True))  # text: NaN-safe, order-free
    except json_format.Error as exc:
        return ("error", type(exc).__name__)


def fill(message: Message, rng: random.Random, depth: int = 0) -> None:
    for fd in message.DESCRIPTOR.fields:
        if rng.random() < 0.35:
            continue
        entry = fd.message_type if fd.type == F.TYPE_MESSAGE else None
        if entry is not None and entry.GetOptions().map_entry:
            target = getattr(message, fd.name)
            for _ in range(rng.randint(0, 3)):
                key = scalar(entry.fields_by_name["key"], rng)
                value_fd = entry.fields_by_name["value"]
                if value_fd.type == F.TYPE_MESSAGE:
                    fill(target[key], rng, depth + 1)
                else:
                    target[key] = scalar(value_fd, rng)
        elif fd.is_repeated:
            target = getattr(message, fd.name)
            for _ in range(rng.randint(0, 3)):
                if fd.type == F.TYPE_MESSAGE:
                    if depth < 4:
                        fill(target.add(), rng, depth + 1)
                else:
                    target.append(scalar(fd, rng))
        elif fd.type == F.TYPE_MESSAGE:
            if depth < 4:
                special(getattr(message, fd.name), rng) or fill(getattr(message, fd.name), rng, depth + 1)
                if not getattr(message, fd.name).ListFields():
                    getattr(message, fd.name).SetInParent()
        else:
            setattr(message, fd.name, scalar(fd, rng))


def special(message: Message, rng: random.Random) -> bool:
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Struct":
        nan = float("nan") if rng.random() < 0.1 else 1.5
        message.update({"a": nan, "b": [1, "x", None, True], "c": {"d": "é"}, "e": rng.randint(-5, 5)})
        return True
    if name == "google.protobuf.Timestamp":
        message.seconds = rng.randint(0, 2_000_000_000)
        message.nanos = rng.choice([0, 1000, 123456789])
        return True
    if name == "google.protobuf.Duration":
        message.seconds = rng.randint(-100, 100)
        message.nanos = 0 if message.seconds == 0 else (1 if message.seconds > 0 else -1) * rng.choice([0, 500])
        return True
    return False


def scalar(fd: FieldDescriptor, rng: random.Random) -> Any:
    t = fd.type
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return rng.choice(
            [0.1, -2.94, 868.1, 1e-7, 3.0, float("nan"), float("inf"), -float("inf"), rng.uniform(-1e6, 1e6)]
        )
    if t in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return rng.choice([0, -1, 2**53 + 1, -(2**62)])
    if t in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return rng.choice([0, 1, 2**64 - 1])
    if t in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return rng.randint(-(2**31), 2**31 - 1)
    if t in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return rng.randint(0, 2**32 - 1)
    if t == F.TYPE_BOOL:
        return rng.random() < 0.5
    if t == F.TYPE_STRING:
        return rng.choice(["", "a", "é€", "0016c001f153a14c"])
    if t == F.TYPE_BYTES:
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 9)))
    if t == F.TYPE_ENUM:
        numbers = list(fd.enum_type.values_by_number)
        return rng.choice([*numbers, 99]) if not fd.enum_type.is_closed else rng.choice(numbers)
    raise AssertionError(f"no random value for {fd.full_name}")


@pytest.mark.parametrize("event", sorted(EVENT_MESSAGES))
def test_random_messages_of_every_event_type(event: str) -> None:
    rng = random.Random(f"chirpstack-{event}")
    for _ in range(150):
        message = EVENT_MESSAGES[event]()
        fill(message, rng)
        again = EVENT_MESSAGES[event].FromString(message.SerializeToString())
        assert outcome(message_to_dict, again) == outcome(json_format.MessageToDict, again)


def test_the_fixtures_and_the_fleet() -> None:
    messages = []
    for path in sorted((FIXTURES / "chirpstack").glob("*.json")):
        kind = path.stem.split("_")[0]
        if kind in EVENT_MESSAGES:
            body = json.loads(path.read_text(encoding="utf-8"))
            messages.append(json_format.ParseDict(body, EVENT_MESSAGES[kind](), ignore_unknown_fields=True))
    devices = [d for d in build_fleet() if d.lns == "chirpstack"]
    for event in uplinks(devices, 300):
        body = json.loads(event.body) if event.body[:1] == b"{" else None
        message = EVENT_MESSAGES["up"]()
        if body is None:
            message.ParseFromString(event.body)
        else:
            json_format.ParseDict(body, message, ignore_unknown_fields=True)
        messages.append(message)
    assert len(messages) > 300
    for message in messages:
        assert message_to_dict(message) == json_format.MessageToDict(message)


def test_special_floats_are_spelled_as_message_to_dict_spells_them() -> None:
    message = EVENT_MESSAGES["up"]()
    rx = message.rx_info.add()
    rx.snr = float("nan")
    rx.rssi = -100
    assert message_to_dict(message) == json_format.MessageToDict(message)
    assert message_to_dict(message)["rxInfo"][0]["snr"] == "NaN"
    rx.snr = 0.1  # a float32 field: the shortest decimal of its 32-bit value
    assert message_to_dict(message)["rxInfo"][0]["snr"] == 0.1 == json_format.MessageToDict(message)["rxInfo"][0]["snr"]
    assert not math.isnan(message_to_dict(message)["rxInfo"][0]["snr"])
