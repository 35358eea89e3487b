"""The one parser of temporal answers (``adapter.ngsild.history``): every shape a real broker
answers reads into the same instances, oldest first.

The shapes are those of the brokers' code: the embedded broker (arrays, oldest first; newest
first under ``lastN``), Mintaka (newest first under ``lastN``; JSON-LD compaction turns a single
instance into an object), Scorpio (no ``ORDER BY`` on its aggregation; a single instance
compacted to an object on retrieval), and the simplified ``temporalValues`` representation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.ngsild.history import TemporalAnswerError, parse_temporal_entities, parse_temporal_entity
from adapter.provenance.verify import broker_value_from

START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LINK = "urn:ngsild-adapter:ville:uplink:{n}"


def instance(n: int, *, notation: str = "ms") -> dict[str, Any]:
    moment = START + timedelta(minutes=10 * n)
    text = {
        "ms": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "s": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "offset": moment.astimezone().isoformat(),
    }[notation]
    return {
        "type": "Property",
        "value": 30.0 + n,
        "unitCode": "GQ",
        "observedAt": text,
        "instanceId": f"urn:ngsi-ld:attribute:instance:{n}",
    }


def link(n: int) -> dict[str, Any]:
    return {
        "type": "Relationship",
        "object": LINK.format(n=n),
        "observedAt": (START + timedelta(minutes=10 * n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def values(entity: dict[str, Any], name: str = "no2") -> list[float]:
    found = parse_temporal_entity(entity).attribute(name)
    assert found is not None
    return [i.members["value"] for i in found.instances]


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.permutations(range(6)), st.sampled_from(["ms", "s", "offset"]))
def test_instances_in_any_order_and_notation_read_oldest_first(order: list[int], notation: str) -> None:
    entity = {"id": "urn:a", "type": "T", "no2": [instance(n, notation=notation) for n in order]}

    assert values(entity) == [30.0 + n for n in range(6)]


@pytest.mark.parametrize("shape", ["object", "array"])
def test_one_instance_reads_the_same_as_an_object_or_an_array_of_one(shape: str) -> None:
    one = instance(3)
    entity = {"id": "urn:a", "type": "T", "no2": one if shape == "object" else [one]}

    parsed = parse_temporal_entity(entity).attribute("no2")

    assert parsed is not None and len(parsed.instances) == 1
    assert parsed.instances[0].members == one
    assert parsed.instances[0].observed_at == START + timedelta(minutes=30)


def test_simplified_pairs_read_as_instances_of_their_type() -> None:
    entity = {
        "id": "urn:a",
        "type": "T",
        "no2": {"type": "Property", "values": [[32.0, "2026-11-20T08:20:00Z"], [31.0, "2026-11-20T08:10:00Z"]]},
        "refDevice": {"type": "Relationship", "objects": [["urn:d", "2026-11-20T08:10:00Z"]]},
        "name": {"type": "LanguageProperty", "languageMaps": [[{"fr": "a"}, "2026-11-20T08:10:00Z"]]},
    }

    parsed = parse_temporal_entity(entity)

    assert values(entity) == [31.0, 32.0]
    device = parsed.attribute("refDevice")
    assert device is not None and device.instances[0].members == {
        "type": "Relationship",
        "object": "urn:d",
        "observedAt": "2026-11-20T08:10:00Z",
    }
    name = parsed.attribute("name")
    assert name is not None and name.instances[0].members["languageMap"] == {"fr": "a"}


def test_a_lone_simplified_pair_compacted_out_of_its_array_is_one_pair() -> None:
    entity = {"id": "urn:a", "type": "T", "no2": {"type": "Property", "values": [32.0, "2026-11-20T08:20:00Z"]}}

    assert values(entity) == [32.0]


def test_aggregated_values_and_unknown_shapes_give_no_instances() -> None:
    entity = {
        "id": "urn:a",
        "type": "T",
        "no2": {"type": "Property", "avg": [[31.5, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"]]},
        "odd": {"type": "Property"},
        "text": "plain",
        "count": 3,
    }

    parsed = parse_temporal_entity(entity)

    assert parsed.attribute("no2") is not None and parsed.attribute("no2").instances == ()  # type: ignore[union-attr]
    assert parsed.attribute("odd").instances == ()  # type: ignore[union-attr]
    assert parsed.attribute("text") is None and parsed.attribute("count") is None


def test_instances_without_an_observation_time_keep_their_place_after_the_timed_ones() -> None:
    untimed = {"type": "Property", "value": 1.0}
    entity = {"id": "urn:a", "no2": [untimed, instance(2), {**untimed, "observedAt": "12:00"}, instance(1)]}

    parsed = parse_temporal_entity(entity).attribute("no2")

    assert parsed is not None
    assert [i.members.get("value") for i in parsed.instances] == [31.0, 32.0, 1.0, 1.0]
    assert parsed.latest() is not None and parsed.latest().members["value"] == 32.0  # type: ignore[union-attr]


@pytest.mark.parametrize("body", [None, [], "urn:a", {"type": "T"}, {"id": ""}, {"id": 3}])
def test_an_answer_that_is_not_an_entity_is_a_clear_error(body: Any) -> None:
    with pytest.raises(TemporalAnswerError):
        parse_temporal_entity(body)


def test_a_query_answer_keeps_its_entities_and_leaves_out_bad_entries() -> None:
    answer = [{"id": "urn:a", "no2": instance(1)}, "junk", {"type": "no id"}, {"id": "urn:b", "no2": [instance(2)]}]

    assert [e.id for e in parse_temporal_entities(answer)] == ["urn:a", "urn:b"]
    assert [e.id for e in parse_temporal_entities({"id": "urn:c"})] == ["urn:c"]


# -- the verifier's reader, on each broker's shape ---------------------------------------------

MINTAKA_LAST_N = {
    "id": "urn:a",
    "type": "T",
    "no2": [instance(5), instance(4), instance(3)],
    "wasDerivedFrom": [link(5), link(4), link(3)],
}
MINTAKA_ONE = {"id": "urn:a", "type": "T", "no2": instance(4), "wasDerivedFrom": link(4)}
SCORPIO_EXPANDED_LINK = {
    "id": "urn:a",
    "type": "T",
    "no2": [instance(3), instance(5), instance(4)],
    "http://www.w3.org/ns/prov#wasDerivedFrom": {**link(4), "object": [LINK.format(n=4)]},
}
EMBEDDED = {
    "id": "urn:a",
    "type": "T",
    "no2": [instance(3), instance(4), instance(5)],
    "wasDerivedFrom": [link(3), link(4), link(5)],
}


@pytest.mark.parametrize(
    "answer",
    [MINTAKA_LAST_N, MINTAKA_ONE, SCORPIO_EXPANDED_LINK, EMBEDDED],
    ids=["mintaka-lastN", "mintaka-one-instance", "scorpio-unordered", "embedded"],
)
def test_the_verifier_reads_the_value_and_its_link_at_the_instant_from_every_shape(answer: dict[str, Any]) -> None:
    found = broker_value_from(answer, "no2", "2026-11-20T08:40:00Z")  # the same instant as ...08:40:00.000Z

    assert found is not None
    assert found.attribute is not None and found.attribute["value"] == 34.0
    assert found.link == LINK.format(n=4)
    assert found.pending is None


def test_the_verifier_finds_nothing_at_an_instant_the_answer_does_not_hold() -> None:
    found = broker_value_from(MINTAKA_ONE, "no2", "2026-11-20T08:50:00Z")

    assert found is not None and found.attribute is None and found.link is None
