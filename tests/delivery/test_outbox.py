"""The outbox: durable, bounded, and written in the same transaction as the uplink's seen mark."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapter.app import build_pipeline, replay_dead_letters
from adapter.config import load_config
from adapter.delivery import BROKER_REFUSED
from adapter.metrics import render_outbox_metrics
from adapter.outbox import Outbox, OutboxFull, UplinkRef
from adapter.pipeline import Pipeline
from tests.delivery.support import SOURCE, T0, make_entity, queue
from tests.support import body_bytes, demo_event, demo_pipeline

CONFIG = load_config(None, env={})


def process(pipeline: Pipeline, name: str) -> Any:
    spec = demo_event(name)
    origin = CONFIG.connection(spec["connection"]).origin
    return pipeline.process(
        body_bytes(spec), lns=spec["lns"], origin=origin, topic=spec.get("topic"), event=spec.get("event")
    )


@pytest.fixture
def pipeline(tmp_path: Path) -> Any:
    p = demo_pipeline(tmp_path)
    yield p
    p.close()


def test_items_keep_tenant_id_order_key_body_and_source(outbox: Outbox) -> None:
    (seq,) = queue(outbox, [make_entity(1)], tenant="eau", at=T0 + timedelta(microseconds=5))
    (pending,) = outbox.pending()
    assert (pending.seq, pending.tenant, pending.entity_id) == (seq, "eau", make_entity(1)["id"])
    (item,) = outbox.load([seq])
    assert item.entity == make_entity(1) and item.source == SOURCE
    assert item.observed_at == T0 + timedelta(microseconds=5)
    assert pending.size == len(item.entity_json.encode())


def test_put_is_all_or_nothing_and_a_full_outbox_refuses(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.sqlite", max_depth=3)
    queue(outbox, [make_entity(1), make_entity(2)])
    with pytest.raises(OutboxFull) as caught:
        queue(outbox, [make_entity(3), make_entity(4)])
    assert (caught.value.depth, caught.value.max_depth) == (2, 3)
    assert outbox.depth() == 2 and len(outbox.pending()) == 2
    queue(outbox, [make_entity(3)])
    assert outbox.depth() == 3
    outbox.close()


def test_items_survive_a_restart_and_the_depth_is_shared_between_processes(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    listener, replayer = Outbox.open(path), Outbox.open(path)
    queue(listener, [make_entity(1)])
    queue(replayer, [make_entity(2)])  # e.g. `deadletter replay` while `listen` runs
    assert listener.depth() == replayer.depth() == 2
    listener.complete(delivered=[listener.pending()[0].seq])
    assert replayer.depth() == 1
    listener.close()
    replayer.close()
    reopened = Outbox.open(path)
    assert [p.entity_id for p in reopened.pending()] == [make_entity(2)["id"]]
    reopened.close()


def test_metrics_and_their_prometheus_text(tmp_path: Path) -> None:
    now = [1_000.0]
    outbox = Outbox.open(tmp_path / "o.sqlite", max_depth=50, clock=lambda: now[0])
    assert outbox.metrics().oldest_age_s == 0.0
    first, second, _ = queue(outbox, [make_entity(1), make_entity(2), make_entity(3)])
    now[0] += 12.5
    outbox.complete(delivered=[first], refused=[second])
    outbox.note_retried(4)
    metrics = outbox.metrics()
    assert (metrics.depth, metrics.max_depth, metrics.oldest_age_s) == (1, 50, 12.5)
    assert (metrics.delivered, metrics.retried, metrics.refused) == (1, 4, 1)
    text = render_outbox_metrics(metrics)
    assert "# TYPE ngsild_adapter_outbox_depth gauge\nngsild_adapter_outbox_depth 1\n" in text
    assert "ngsild_adapter_outbox_oldest_age_seconds 12.500\n" in text
    assert "# TYPE ngsild_adapter_outbox_delivered_total counter\nngsild_adapter_outbox_delivered_total 1\n" in text
    assert "ngsild_adapter_outbox_retried_total 4\n" in text and "ngsild_adapter_outbox_refused_total 1\n" in text
    outbox.close()


# --- with the pipeline: the seen mark and the entities commit together ----------------------------


def test_an_accepted_uplink_is_queued_and_a_replay_of_it_is_recognised(pipeline: Pipeline) -> None:
    assert pipeline.outbox is not None
    result = process(pipeline, "01-chirpstack-air-quality")
    assert result.status == "mapped"
    items = pipeline.outbox.load([p.seq for p in pipeline.outbox.pending()])
    assert [i.entity for i in items] == list(result.entities)
    assert {i.source for i in items} == {
        UplinkRef("ville-chirpstack", "chirpstack", "up", "70b3d57ed0001a01", 1234, record=0)
    }
    assert {i.observed_at for i in items} == {result.observed_at}
    assert process(pipeline, "01-chirpstack-air-quality").status == "duplicate"
    assert pipeline.outbox.depth() == len(result.entities)


def test_a_status_event_queues_its_device_entity(pipeline: Pipeline) -> None:
    result = process(pipeline, "11-chirpstack-parking-status")
    assert result.status == "device_status" and pipeline.outbox is not None
    (item,) = pipeline.outbox.load([p.seq for p in pipeline.outbox.pending()])
    assert item.entity == result.entities[0] and item.source.event == "status"


def test_a_full_outbox_leaves_the_uplink_unseen_so_that_it_is_processed_when_sent_again(pipeline: Pipeline) -> None:
    assert pipeline.outbox is not None
    pipeline.outbox.max_depth = 1  # an air-quality uplink makes two entities
    with pytest.raises(OutboxFull):
        process(pipeline, "01-chirpstack-air-quality")
    assert pipeline.outbox.depth() == 0
    pipeline.outbox.max_depth = 10
    assert process(pipeline, "01-chirpstack-air-quality").status == "mapped"  # not a duplicate
    assert pipeline.outbox.depth() == 2


def test_a_crash_while_queuing_rolls_back_the_seen_mark_and_the_meter_index(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pipeline.outbox is not None

    def crash(*args: Any, **kwargs: Any) -> list[int]:
        raise OSError("disk full")

    monkeypatch.setattr(pipeline.outbox, "put", crash)
    with pytest.raises(OSError):
        process(pipeline, "03-chirpstack-webhook-water-meter")
    monkeypatch.undo()
    assert pipeline.outbox.depth() == 0
    result = process(pipeline, "03-chirpstack-webhook-water-meter")
    assert result.status == "mapped"  # not seen before: the failed attempt left no trace
    assert pipeline.outbox.depth() == len(result.entities)


def test_entities_queued_by_the_pipeline_survive_closing_it(tmp_path: Path) -> None:
    pipeline = demo_pipeline(tmp_path)
    result = process(pipeline, "01-chirpstack-air-quality")
    pipeline.close()
    outbox = Outbox.open(tmp_path / "state.sqlite")
    assert [p.entity_id for p in outbox.pending()] == [e["id"] for e in result.entities]
    outbox.close()


def test_replaying_a_broker_refusal_queues_the_entity_again(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, state_dir=tmp_path)
    pipeline = build_pipeline(config, config.state_dir)
    entity = make_entity(1)
    letter = pipeline.dead_letters.add(
        connection="ville-chirpstack",
        lns="chirpstack",
        tenant="ville",
        body=json.dumps(entity).encode(),
        reason=BROKER_REFUSED,
        detail='{"status": 400}',
        event="up",
        dev_eui="70b3d57ed0001a01",
    )
    pipeline.close()
    statuses = replay_dead_letters(config, ids=[letter], reason=None, emit=lambda r: None)
    assert statuses == ["requeued"]
    outbox = Outbox.open(config.state_dir / "state.sqlite")
    (item,) = outbox.load([p.seq for p in outbox.pending()])
    assert item.entity == entity and item.tenant == "ville" and item.observed_at == T0
    outbox.close()
    pipeline = build_pipeline(config, config.state_dir)
    replayed = pipeline.dead_letters.get(letter)
    assert replayed is not None and replayed.status == "replayed" and replayed.reason == BROKER_REFUSED
    pipeline.close()
