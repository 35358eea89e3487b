"""Hypothesis strategies that damage real network-server events, for the crash-freedom tests.

``mutated(documents)`` takes one of ``documents`` (parsed JSON events), changes a few members
(any JSON value, a raw fragment no Python value serialises to, or a deletion), serialises it
and maybe damages the bytes (cut, flipped, inserted); ``damaged`` does the byte part alone.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

__all__ = ["RAW", "damaged", "mutated", "paths", "values"]

# JSON values as an attacker writes them: huge and tiny numbers, odd text, deep nesting.
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**31, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "70B3D57ED0001A01",
            "70-b3-d5-7e-d0-00-1a-01",
            "²",
            "٣",
            "\x00",
            "2026-11-20T08:15:30Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "AAAA",
            "!!",
            "up",
            "CR_4_5",
        ]
    ),
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Raw JSON fragments no Python value serialises to.
RAW = [
    b"1e999999",
    b"-1e400",
    b"9" * 400,
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b"NaN",
    b"Infinity",
    b"[" * 40 + b"]" * 40,
    b'{"a":' * 40 + b"1" + b"}" * 40,
    b"[" * 3000,
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a member of ``value`` (keys and indexes)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, documents: list[dict[str, Any]]) -> bytes:
    """A real event, changed in a few places, serialised, then maybe damaged byte-wise."""
    document = json.loads(json.dumps(draw(st.sampled_from(documents))))
    raw_slots: dict[str, bytes] = {}
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(document)))
        if not path:
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "raw"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "raw":
            slot = f"__raw_{len(raw_slots)}__"
            raw_slots[slot] = draw(st.sampled_from(RAW))
            parent[path[-1]] = slot
        else:
            parent[path[-1]] = draw(values)
    body = json.dumps(document).encode()
    for slot, raw in raw_slots.items():
        body = body.replace(f'"{slot}"'.encode(), raw)
    return damaged(draw, body)


def damaged(draw: st.DrawFn, body: bytes) -> bytes:
    damage = draw(st.sampled_from(["none", "none", "cut", "flip", "insert"]))
    if not body or damage == "none":
        return body
    at = draw(st.integers(0, len(body) - 1))
    if damage == "cut":
        return body[:at]
    if damage == "flip":
        return body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1 :]
    return body[:at] + draw(st.binary(min_size=1, max_size=8)) + body[at:]
