"""Batch upsert answers of every real broker (Orion-LD, Scorpio, Stellio, the spec's
BatchOperationResult) and of broken ones: each entity ends delivered only when an answer
confirmed it, or as a dead letter with the broker's own reason; none is lost in between."""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.deadletter import DeadLetterStore
from adapter.delivery import BROKER_REFUSED, BROKER_UNCONFIRMED
from adapter.delivery.writer import MAX_ENTITY_FAILURES
from adapter.ngsild.outcomes import Fate, read_refusal, read_upsert_answer
from adapter.outbox import Outbox, UplinkRef
from tests.delivery.shaped_broker import ALTITUDE_REFUSAL, Answer, Batch, ShapedBroker, dialect_answer, problem
from tests.delivery.support import FAST, HOST, SOURCE, T0, eventually, make_entity, running, writer_for

IDS = ("urn:a", "urn:b", "urn:c")
BAD = problem(400, "BadRequestData", "Invalid entity", "urn:b: bad")


# -- the reader, shape by shape (each from the broker's source: see adapter.ngsild.outcomes) --


def fates(outcome: Any) -> dict[str, Fate]:
    return {o.entity_id: o.fate for o in outcome.outcomes}


def test_orion_ld_207_reads_entity_id_and_error() -> None:
    body = {"success": ["urn:a", "urn:c"], "errors": [{"entityId": "urn:b", "error": BAD}]}
    outcome = read_upsert_answer(207, body, IDS)
    assert fates(outcome) == {"urn:a": Fate.DELIVERED, "urn:b": Fate.REFUSED, "urn:c": Fate.DELIVERED}
    refused = outcome.outcome_of("urn:b")
    assert refused is not None and refused.problem is not None and refused.problem.to_json() == BAD


@pytest.mark.parametrize("status, body", [(201, ["urn:a"]), (204, None), (201, [])])
def test_orion_ld_201_and_204_deliver_every_entity(status: int, body: Any) -> None:
    # a 201 lists only the created ids (Orion-LD experimental, Scorpio, Stellio): the status says all were written
    assert set(fates(read_upsert_answer(status, body, IDS)).values()) == {Fate.DELIVERED}


def test_scorpio_207_reads_id_and_problem_details() -> None:
    body = {"success": ["urn:a", "urn:c"], "errors": [{"id": "urn:b", "type": "Upsert", "ProblemDetails": BAD}]}
    outcome = read_upsert_answer(207, body, IDS)
    assert fates(outcome)["urn:b"] is Fate.REFUSED and outcome.strays == ()
    assert outcome.error_for("urn:b") is not None and outcome.error_for("urn:b").title == "Invalid entity"  # type: ignore[union-attr]
    assert "Upsert" not in str(outcome.error_for("urn:b"))  # the entry's "type" is the operation, not the problem


def test_scorpio_400_with_errors_reads_each_reason_and_leaves_the_rest_unknown() -> None:
    body = {
        "errors": [
            {"id": "urn:a", "type": "Upsert", "ProblemDetails": BAD},
            {"id": "urn:b", "type": "Upsert", "ProblemDetails": {**BAD, "title": "other"}},
        ]
    }
    outcome = read_refusal(400, body, IDS)
    assert outcome is not None
    assert fates(outcome) == {"urn:a": Fate.REFUSED, "urn:b": Fate.REFUSED, "urn:c": Fate.UNKNOWN}
    assert [outcome.error_for(i).title for i in ("urn:a", "urn:b")] == ["Invalid entity", "other"]  # type: ignore[union-attr]
    assert read_refusal(400, {"type": ERRORS_BAD, "title": "x"}, IDS) is None  # a request-level refusal


ERRORS_BAD = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


@pytest.mark.parametrize(
    "error",
    [
        {**BAD, "instance": None},  # Stellio: Spring ProblemDetail
        BAD,  # the spec's BatchEntityError.error
    ],
)
def test_stellio_and_spec_batch_operation_result(error: dict[str, Any]) -> None:
    body = {"success": ["urn:a", "urn:c"], "errors": [{"entityId": "urn:b", "error": error, "registrationId": None}]}
    assert fates(read_upsert_answer(207, body, IDS)) == {
        "urn:a": Fate.DELIVERED,
        "urn:b": Fate.REFUSED,
        "urn:c": Fate.DELIVERED,
    }


def test_a_5xx_entry_is_retried_and_an_entity_in_both_lists_is_refused() -> None:
    body = {
        "success": ["urn:a", "urn:b"],
        "errors": [{"entityId": "urn:a", "error": {**BAD, "status": 503}}, {"id": "urn:b", "ProblemDetails": BAD}],
    }
    assert fates(read_upsert_answer(207, body, IDS)) == {
        "urn:a": Fate.RETRY,
        "urn:b": Fate.REFUSED,
        "urn:c": Fate.UNKNOWN,
    }


@pytest.mark.parametrize(
    "status, body",
    [
        (207, {"success": ["urn:a"]}),  # urn:b and urn:c are named nowhere
        (207, {"errors": [{"id": None, "ProblemDetails": BAD}, {"entityId": "urn:zzz", "error": BAD}, 7, "x"]}),
        (207, {"errors": [{"entityId": "urn:b"}]}),  # an error entry without a reason
        (207, {"foo": 1}),
        (207, []),
        (207, "<html>"),
        (207, None),
        (207, {"errors": None, "success": ["urn:a"]}),
        (201, "<html>created</html>"),
        (201, {"created": ["urn:a"]}),
        (201, [1, 2]),
    ],
)
def test_garbage_leaves_outcomes_unknown_never_delivered(status: int, body: Any) -> None:
    outcome = read_upsert_answer(status, body, IDS)
    assert fates(outcome)["urn:b"] is Fate.UNKNOWN and fates(outcome)["urn:c"] is Fate.UNKNOWN
    assert all(o.why for o in outcome.with_fate(Fate.UNKNOWN))


def test_entries_naming_entities_not_in_the_batch_are_strays() -> None:
    body = {"success": ["urn:a", "urn:other"], "errors": [{"entityId": None, "error": BAD}]}
    outcome = read_upsert_answer(207, body, IDS)
    assert len(outcome.strays) == 2 and fates(outcome)["urn:a"] is Fate.DELIVERED


# -- the writer against each broker's dialect, over HTTP on 127.0.0.1 --


@dataclass
class Receipts:
    """A provenance ledger standing in for ``ProvenanceLedger.record_delivery``."""

    delivered: list[int] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def record_delivery(
        self,
        tenant: str,
        *,
        started_at: str,
        ended_at: str,
        broker: str,
        status: int,
        software: str,
        records: Sequence[int],
        refused: Sequence[dict[str, Any]] = (),
    ) -> int:
        self.delivered += records
        self.refused += refused
        self.statuses.append(status)
        return len(self.statuses)


@pytest.fixture
async def shaped_url(shaped: ShapedBroker) -> AsyncIterator[str]:
    async with TestServer(shaped.app(), host=HOST) as server:
        yield str(server.make_url("")).rstrip("/")


@pytest.fixture
def shaped() -> ShapedBroker:
    return ShapedBroker()


def put_each(outbox: Outbox, entities: list[dict[str, Any]]) -> None:
    """Queue each entity as its own uplink, provenance record n for entity n."""
    for n, entity in enumerate(entities):
        source = UplinkRef(SOURCE.connection, SOURCE.lns, "up", SOURCE.dev_eui, n, record=n)
        outbox.put("ville", [entity], observed_at=T0, source=source)


def letters_by_id(dead_letters: DeadLetterStore) -> dict[str, Any]:
    return {json.loads(letter.body)["id"]: letter for letter in dead_letters.list(limit=10_000)}


async def deliver(
    outbox: Outbox, url: str, session: aiohttp.ClientSession, dead_letters: DeadLetterStore, receipts: Receipts
) -> None:
    async with running(writer_for(outbox, url, session, dead_letters, receipts=receipts)):
        await eventually(lambda: outbox.depth() == 0, "the outbox to be emptied")


def located(n: int, coordinates: list[float]) -> dict[str, Any]:
    entity = make_entity(n)
    entity["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": coordinates}}
    return entity


@pytest.mark.parametrize("dialect", ["orion", "scorpio", "stellio"])
async def test_a_position_with_altitude_refused_by_the_broker_is_a_dead_letter_with_its_reason(
    dialect: str,
    shaped: ShapedBroker,
    shaped_url: str,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    shaped.dialect = dialect
    entities = [located(0, [2.35, 48.85]), located(1, [2.35, 48.85, 35.0]), make_entity(2)]
    put_each(outbox, entities)
    receipts = Receipts()
    await deliver(outbox, shaped_url, session, dead_letters, receipts)
    (letter,) = dead_letters.list()
    assert letter.reason == BROKER_REFUSED and json.loads(letter.body) == entities[1]
    detail = json.loads(letter.detail)
    assert (detail["title"], detail["status"]) == (ALTITUDE_REFUSAL, 400)
    assert sorted(shaped.stored) == sorted([entities[0]["id"], entities[2]["id"]])
    assert sorted(receipts.delivered) == [0, 2] and [r["record"] for r in receipts.refused] == [1]
    assert len(shaped.requests) == 1  # every entity's fate was in the one answer


async def test_scorpio_refusing_every_entity_answers_400_with_a_reason_for_each(
    shaped: ShapedBroker,
    shaped_url: str,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    shaped.dialect = "scorpio"
    entities = [located(n, [2.35, 48.85, float(n)]) for n in range(3)]
    shaped.refuse = {entities[2]["id"]}
    put_each(outbox, entities)
    await deliver(outbox, shaped_url, session, dead_letters, Receipts())
    letters = letters_by_id(dead_letters)
    assert {i: json.loads(letter.detail)["title"] for i, letter in letters.items()} == {
        entities[0]["id"]: ALTITUDE_REFUSAL,
        entities[1]["id"]: ALTITUDE_REFUSAL,
        entities[2]["id"]: "Invalid entity",
    }
    assert {letter.reason for letter in letters.values()} == {BROKER_REFUSED}
    assert len(shaped.requests) == 1 and shaped.stored == {}


async def test_a_400_with_reasons_for_some_entities_resolves_the_others_alone(
    shaped: ShapedBroker,
    shaped_url: str,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    entities = [make_entity(n) for n in range(4)]
    first = entities[0]["id"]
    shaped.answers = [lambda batch: Answer(400, {"errors": [{"id": first, "type": "Upsert", "ProblemDetails": BAD}]})]
    put_each(outbox, entities)
    receipts = Receipts()
    await deliver(outbox, shaped_url, session, dead_letters, receipts)
    assert list(letters_by_id(dead_letters)) == [first]
    assert sorted(shaped.stored) == sorted(e["id"] for e in entities[1:])
    assert sorted(len(ids) for ids in shaped.requests) == [1, 1, 1, 4]
    assert sorted(receipts.delivered) == [1, 2, 3] and [r["record"] for r in receipts.refused] == [0]


@pytest.mark.parametrize(
    "garbage",
    [
        lambda b: Answer(207, {"success": list(b.ids[:1])}, frozenset(b.ids)),  # the others named nowhere
        lambda b: Answer(207, {"errors": [{"id": None, "ProblemDetails": BAD}], "success": []}, frozenset(b.ids[:2])),
        lambda b: Answer(207, {"errors": [{"entityId": "urn:not:in:batch", "error": BAD}]}),
        lambda b: Answer(207, "<html>multi</html>", frozenset(b.ids)),
        lambda b: Answer(201, {"unexpected": True}, frozenset(b.ids)),
        lambda b: Answer(400, {"type": ERRORS_BAD, "title": "refused whole"}),
    ],
)
async def test_an_answer_that_cannot_be_matched_is_confirmed_entity_by_entity(
    garbage: Callable[[Batch], Answer],
    shaped: ShapedBroker,
    shaped_url: str,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    entities = [make_entity(n) for n in range(3)]
    shaped.refuse = {entities[2]["id"]}
    shaped.answers = [lambda b: _without_refused(garbage, b)]
    put_each(outbox, entities)
    receipts = Receipts()
    await deliver(outbox, shaped_url, session, dead_letters, receipts)
    # the broker's own refusal still reaches the dead letter, once asked alone; the others are delivered
    assert list(letters_by_id(dead_letters)) == [entities[2]["id"]]
    assert json.loads(dead_letters.list()[0].detail)["title"] == "Invalid entity"
    assert sorted(receipts.delivered) == [0, 1] and all(i in shaped.stored for i in (e["id"] for e in entities[:2]))


def _without_refused(garbage: Callable[[Batch], Answer], batch: Batch) -> Answer:
    answer = garbage(batch)
    if answer.status == 201:  # a success status would be a lie while an entity is refused
        answer = Answer(207, "<html>multi</html>")
    return Answer(answer.status, answer.body, answer.stored - set(batch.refused))


async def test_an_entity_whose_answer_stays_unreadable_alone_is_a_dead_letter_never_delivered(
    shaped: ShapedBroker,
    shaped_url: str,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    junk = Answer(207, {"foo": "bar"})
    shaped.answers = [lambda b: junk] * 3
    put_each(outbox, [make_entity(0), make_entity(1)])
    receipts = Receipts()
    await deliver(outbox, shaped_url, session, dead_letters, receipts)
    letters = dead_letters.list()
    assert {letter.reason for letter in letters} == {BROKER_UNCONFIRMED} and len(letters) == 2
    detail = json.loads(letters[0].detail)
    assert detail["status"] == 207 and "not a batch operation result" in detail["detail"]
    assert receipts.delivered == [] and sorted(r["record"] for r in receipts.refused) == [0, 1]
    assert outbox.metrics().delivered == 0 and outbox.metrics().refused == 2


# -- for any answer a broker gives, nothing is lost and nothing unconfirmed counts --

KINDS = ("honest", "omit", "strays", "junk207", "junk201", "whole400", "partial400", "5xx", "entity5xx", "401", "200")


def scripted(kind: str, seed: int, dialect: str) -> Callable[[Batch], Answer]:
    """One answer of ``kind`` to whatever batch comes; truthful, however incomplete or garbled."""

    def answer(batch: Batch) -> Answer:
        rng = random.Random(seed)
        writable = [i for i in batch.ids if i not in batch.refused]
        some = frozenset(i for i in writable if rng.random() < 0.5)
        if kind == "honest":
            return dialect_answer(dialect, batch)
        if kind == "omit":
            return dialect_answer(
                dialect,
                batch,
                listed_success=[i for i in writable if rng.random() < 0.5],
                listed_errors=[i for i in batch.refused if rng.random() < 0.5],
            )
        if kind == "strays":
            errors = [
                {"entityId": None, "error": BAD},
                {"id": "urn:elsewhere", "ProblemDetails": BAD},
                {"error": BAD},
                42,
            ]
            return Answer(207, {"success": sorted(some) + ["urn:elsewhere"], "errors": errors}, frozenset(writable))
        if kind == "junk207":
            body: Any = rng.choice([{"foo": 1}, [], "<html>", {"errors": [1, "a", None]}, {"errors": None}, None])
            return Answer(207, body, some)
        if kind == "junk201" and not batch.refused:
            return Answer(201, rng.choice(["<html>ok</html>", {"a": 1}, [1]]), frozenset(batch.ids))
        if kind in ("whole400", "junk201"):
            return Answer(400, {"type": ERRORS_BAD, "title": "refused whole"})
        if kind == "partial400":
            listed = [i for i in batch.ids if rng.random() < 0.5]
            reasons = {i: batch.refused.get(i, BAD) for i in listed}
            return Answer(
                400, {"errors": [{"id": i, "type": "Upsert", "ProblemDetails": p} for i, p in reasons.items()]}
            )
        if kind == "5xx":
            return Answer(503, {"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError", "title": "busy"})
        if kind == "entity5xx":
            busy = [i for i in writable if rng.random() < 0.5]
            done = [i for i in writable if i not in busy]
            errors = [{"entityId": i, "error": {**BAD, "status": 503}} for i in busy]
            errors += [{"entityId": i, "error": p} for i, p in batch.refused.items()]
            return Answer(207, {"success": done, "errors": errors}, frozenset(done))
        if kind == "401":
            return Answer(401, {"type": ERRORS_BAD, "title": "Unauthorized"})
        return Answer(200, {}, some)

    return answer


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(1, 7),
    bad=st.sets(st.integers(0, 6), max_size=3),
    script=st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 2**16)), max_size=6),
    dialect=st.sampled_from(["orion", "scorpio", "stellio"]),
    batch_max=st.sampled_from([1, 3, 8]),
)
def test_for_any_answer_delivered_plus_dead_lettered_is_what_was_produced(
    count: int,
    bad: set[int],
    script: list[tuple[str, int]],
    dialect: str,
    batch_max: int,
) -> None:
    asyncio.run(_any_answer(count, bad, script, dialect, batch_max))


async def _any_answer(count: int, bad: set[int], script: list[tuple[str, int]], dialect: str, batch_max: int) -> None:
    import dataclasses

    entities = [make_entity(n) for n in range(count)]
    broker = ShapedBroker(
        dialect=dialect,
        refuse={entities[n]["id"] for n in bad if n < count},
        answers=[scripted(kind, seed, dialect) for kind, seed in script],
    )
    receipts = Receipts()
    with tempfile.TemporaryDirectory() as folder:
        outbox = Outbox.open(Path(folder) / "outbox.sqlite")
        dead_letters = DeadLetterStore(Path(folder) / "dead.sqlite")
        try:
            put_each(outbox, entities)
            settings_ = dataclasses.replace(FAST, batch_max_entities=batch_max)
            async with TestServer(broker.app(), host=HOST) as server, aiohttp.ClientSession() as session:
                url = str(server.make_url("")).rstrip("/")
                async with running(writer_for(outbox, url, session, dead_letters, settings_, receipts=receipts)):
                    await eventually(lambda: outbox.depth() == 0, "the writer to settle", timeout=30.0)
            letters = letters_by_id(dead_letters)
            delivered = {entities[r]["id"] for r in receipts.delivered}
            # every entity ends once: delivered, or a dead letter with a reason
            assert len(receipts.delivered) == len(delivered) and not delivered & set(letters)
            assert delivered | set(letters) == {e["id"] for e in entities}
            assert len(dead_letters.list(limit=10_000)) == len(letters)
            metrics = outbox.metrics()
            assert (metrics.delivered, metrics.refused) == (len(delivered), len(letters))
            # nothing counted delivered that the broker did not write
            assert delivered <= set(broker.stored)
            for letter in letters.values():
                assert letter.reason in (BROKER_REFUSED, BROKER_UNCONFIRMED) and json.loads(letter.detail)["title"]
            # the receipts say the same, one final outcome per record
            assert sorted([*receipts.delivered, *(r["record"] for r in receipts.refused)]) == list(range(count))
        finally:
            outbox.close()
            dead_letters.close()


async def test_an_entity_the_broker_always_fails_with_its_own_5xx_ends_as_a_dead_letter(
    shaped: ShapedBroker,
    shaped_url: str,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    dead_letters: DeadLetterStore,
) -> None:
    """A 500 tied to one entity's content (a database error) is not retried for ever, holding that
    entity's newer observations behind it: after MAX_ENTITY_FAILURES answers in a row it is sent
    alone, and a 5xx then makes it a dead letter that keeps the broker's answer."""
    entities = [make_entity(n) for n in range(3)]
    poison = entities[0]["id"]

    def fails_the_poison(batch: Batch) -> Answer:
        done = [i for i in batch.ids if i != poison]
        errors = [{"entityId": poison, "error": {**BAD, "status": 500}}] if poison in batch.ids else []
        return Answer(207, {"success": done, "errors": errors}, frozenset(done))

    shaped.answers = [fails_the_poison] * 50
    put_each(outbox, entities)
    await deliver(outbox, shaped_url, session, dead_letters, Receipts())
    letters = letters_by_id(dead_letters)
    assert list(letters) == [poison] and letters[poison].reason == BROKER_UNCONFIRMED
    assert json.loads(letters[poison].detail)["answer"]["status"] == 500
    poisoned = [ids for ids in shaped.requests if poison in ids]
    assert len(poisoned) == MAX_ENTITY_FAILURES and poisoned[-1] == (poison,)  # the others left after the first
    assert set(shaped.stored) == {e["id"] for e in entities[1:]}
