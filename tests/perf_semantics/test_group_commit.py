"""Group commit (``Pipeline.process_many``): one SQLite transaction for a burst of events, with
the guarantees of one event at a time.

Each event keeps its own outcome; an uplink repeated inside a burst is a duplicate; a failing
event leaves no trace and does not hold back the others; a burst that cannot be committed has
nothing stored, and every event of it is reported failed (so none is acknowledged).
"""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from adapter.outbox import Outbox, OutboxFull
from adapter.pipeline import Pipeline, PipelineResult, RawEvent
from adapter.config import load_config
from tests.support import demo_event, demo_pipeline

CONFIG = load_config(None)


def raw(name: str, mutate: Any = None) -> RawEvent:
    spec = demo_event(name)
    body = copy.deepcopy(spec["body"])
    if mutate is not None:
        mutate(body)
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    origin = CONFIG.connection(spec["connection"]).origin
    return RawEvent(data, spec["lns"], origin, spec.get("topic"), spec.get("event"))


def frame(n: int) -> Any:
    def mutate(body: dict[str, Any]) -> None:
        body["fCnt"] = n

    return mutate


def statuses(outcomes: list[Any]) -> list[str]:
    return [o.status if isinstance(o, PipelineResult) else type(o).__name__ for o in outcomes]


def stored(tmp_path: Path) -> tuple[int, int, list[str]]:
    """What a fresh connection sees committed: seen marks, outbox depth, outbox entity ids."""
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        seen = db.execute("SELECT COUNT(*) FROM seen_uplink").fetchone()[0]
        depth = db.execute("SELECT depth FROM outbox_depth").fetchone()[0]
        ids = [r[0] for r in db.execute("SELECT entity_id FROM outbox ORDER BY seq")]
    return seen, depth, ids


@pytest.fixture
def pipeline(tmp_path: Path) -> Any:
    p = demo_pipeline(tmp_path)
    yield p
    p.close()


def test_a_burst_keeps_each_outcome_and_commits_them_together(pipeline: Pipeline, tmp_path: Path) -> None:
    outcomes = pipeline.process_many(
        [
            raw("01-chirpstack-air-quality"),
            raw("10-chirpstack-air-quality-retry-duplicate"),  # the same uplink again, inside the burst
            raw("15-chirpstack-malformed-json"),
            raw("05-tts-weather-station"),
            raw("11-chirpstack-parking-status"),
            raw("12-chirpstack-streetlight-join"),
        ]
    )
    assert statuses(outcomes) == ["mapped", "duplicate", "rejected", "mapped", "device_status", "other"]
    assert pipeline.dead_letters.counts() == {"malformed_json": 1}
    mapped = [o for o in outcomes if isinstance(o, PipelineResult) and o.entities]
    ids = [e["id"] for o in mapped for e in o.entities]
    assert stored(tmp_path) == (2, len(ids), ids)  # visible to another connection: committed
    # and a later burst still knows them
    assert statuses(pipeline.process_many([raw("01-chirpstack-air-quality")])) == ["duplicate"]


def test_a_burst_is_not_visible_to_others_before_it_commits(pipeline: Pipeline, tmp_path: Path) -> None:
    seen_inside: list[tuple[int, int, list[str]]] = []
    original = pipeline.process

    def process(*args: Any, **kwargs: Any) -> PipelineResult:
        result = original(*args, **kwargs)
        seen_inside.append(stored(tmp_path))
        return result

    pipeline.process = process  # type: ignore[method-assign]
    pipeline.process_many([raw("01-chirpstack-air-quality"), raw("05-tts-weather-station")])
    assert seen_inside == [(0, 0, []), (0, 0, [])]
    assert stored(tmp_path)[0] == 2


def test_the_meter_index_of_an_earlier_event_of_the_burst_is_checked(pipeline: Pipeline) -> None:
    outcomes = pipeline.process_many(
        [
            raw("03-chirpstack-webhook-water-meter"),
            raw("04-chirpstack-webhook-water-meter-leak"),
            raw("13-chirpstack-water-meter-index-goes-down"),
        ]
    )
    assert statuses(outcomes) == ["mapped", "mapped", "rejected"]
    assert outcomes[2].reason == "meter_index_decrease"


def test_a_full_outbox_refuses_one_event_of_the_burst_and_leaves_it_unseen(pipeline: Pipeline, tmp_path: Path) -> None:
    assert pipeline.outbox is not None
    pipeline.outbox.max_depth = 3  # an air-quality uplink makes two entities
    outcomes = pipeline.process_many(
        [
            raw("01-chirpstack-air-quality", frame(1)),
            raw("01-chirpstack-air-quality", frame(2)),
            raw("11-chirpstack-parking-status"),
        ]
    )
    assert statuses(outcomes) == ["mapped", "OutboxFull", "device_status"]
    assert isinstance(outcomes[1], OutboxFull)
    seen, depth, ids = stored(tmp_path)
    assert (seen, depth, len(ids)) == (1, 3, 3)
    pipeline.outbox.max_depth = 10
    assert statuses(pipeline.process_many([raw("01-chirpstack-air-quality", frame(2))])) == ["mapped"]


def test_an_event_that_crashes_is_undone_alone(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pipeline.outbox is not None
    put = pipeline.outbox.put
    calls = []

    def crash_on_second(*args: Any, **kwargs: Any) -> list[int]:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return put(*args, **kwargs)

    monkeypatch.setattr(pipeline.outbox, "put", crash_on_second)
    outcomes = pipeline.process_many(
        [
            raw("03-chirpstack-webhook-water-meter"),
            raw("04-chirpstack-webhook-water-meter-leak"),
            raw("05-tts-weather-station"),
        ]
    )
    assert statuses(outcomes) == ["mapped", "OSError", "mapped"]
    monkeypatch.undo()
    assert stored(tmp_path)[0] == 2
    # the crashed uplink was not seen and its meter index not kept: it is processed when it comes back
    assert statuses(pipeline.process_many([raw("04-chirpstack-webhook-water-meter-leak")])) == ["mapped"]
    assert statuses(pipeline.process_many([raw("13-chirpstack-water-meter-index-goes-down")])) == ["rejected"]


class FailingCommit:
    """The state's connection, whose COMMIT fails (disk full at the worst moment)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_a_burst_whose_commit_fails_has_every_event_failed_and_nothing_stored(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    real = pipeline.state._db
    pipeline.state._db = FailingCommit(real)  # type: ignore[assignment]
    outcomes = pipeline.process_many([raw("01-chirpstack-air-quality"), raw("05-tts-weather-station")])
    pipeline.state._db = real
    assert statuses(outcomes) == ["OperationalError", "OperationalError"]
    assert not real.in_transaction
    assert stored(tmp_path) == (0, 0, [])
    assert statuses(pipeline.process_many([raw("01-chirpstack-air-quality")])) == ["mapped"]


def test_a_burst_is_given_up_when_sqlite_ends_its_transaction(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some SQLite errors roll the whole transaction back: the burst must not go on in autocommit."""
    assert pipeline.outbox is not None
    put = pipeline.outbox.put
    calls = []

    def rolled_back_on_second(*args: Any, **kwargs: Any) -> list[int]:
        calls.append(1)
        if len(calls) == 2:
            pipeline.state.connection.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL, SQLITE_IOERR...
            raise sqlite3.OperationalError("disk I/O error")
        return put(*args, **kwargs)

    monkeypatch.setattr(pipeline.outbox, "put", rolled_back_on_second)
    outcomes = pipeline.process_many(
        [raw("01-chirpstack-air-quality"), raw("05-tts-weather-station"), raw("02-tts-school-climate")]
    )
    assert statuses(outcomes) == ["OperationalError"] * 3
    assert len(calls) == 2  # the third event was not processed in autocommit
    assert stored(tmp_path) == (0, 0, [])


def test_an_empty_burst_does_nothing(pipeline: Pipeline) -> None:
    assert pipeline.process_many([]) == []


def test_the_outbox_of_a_burst_reopens_with_the_items_in_queue_order(pipeline: Pipeline, tmp_path: Path) -> None:
    events = [raw("01-chirpstack-air-quality", frame(n)) for n in range(1, 30)]
    outcomes = pipeline.process_many(events)
    assert set(statuses(outcomes)) == {"mapped"}
    outbox = Outbox.open(tmp_path / "state.sqlite")
    pending = outbox.pending()
    assert [p.seq for p in pending] == sorted(p.seq for p in pending)
    assert outbox.depth() == len(pending) == 2 * 29
    assert [i.entity for i in outbox.load([p.seq for p in pending])] == [e for o in outcomes for e in o.entities]
    outbox.close()


def test_a_single_event_whose_commit_fails_leaves_no_open_transaction(pipeline: Pipeline, tmp_path: Path) -> None:
    real = pipeline.state._db
    pipeline.state._db = FailingCommit(real)  # type: ignore[assignment]
    event = raw("01-chirpstack-air-quality")
    with pytest.raises(sqlite3.OperationalError):
        pipeline.process(event.body, lns=event.lns, origin=event.origin, topic=event.topic)
    pipeline.state._db = real
    assert not real.in_transaction
    assert stored(tmp_path) == (0, 0, [])
    assert pipeline.process(event.body, lns=event.lns, origin=event.origin, topic=event.topic).status == "mapped"
