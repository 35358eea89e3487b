"""The outbox without per-row triggers, and the writer that splices the stored text.

The depth stays exact (puts of several entities, bulk deletes, an item deleted twice, another
process putting meanwhile); a file made when triggers kept the depth is migrated on opening;
what the broker receives is byte for byte the text stored when the entity was queued.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapter.deadletter import DeadLetterStore
from adapter.ngsild.client import NgsiLdClient, encode_entity
from adapter.outbox import Outbox
from tests.delivery.support import FAST, HOST, make_entity, queue, running, eventually, writer_for


def count(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as db:
        return (
            db.execute("SELECT depth FROM outbox_depth").fetchone()[0],
            db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0],
        )


def test_put_numbers_items_consecutively_and_counts_them_once(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.sqlite")
    first = queue(outbox, [make_entity(1), make_entity(2), make_entity(3)])
    second = queue(outbox, [make_entity(4)])
    assert [p.seq for p in outbox.pending()] == [*first, *second]
    assert second[0] == first[-1] + 1 and first == list(range(first[0], first[0] + 3))
    assert outbox.depth() == 4 == count(tmp_path / "o.sqlite")[1]
    assert queue(outbox, []) == [] and outbox.depth() == 4
    outbox.close()


def test_bulk_complete_keeps_the_depth_exact_even_for_items_already_gone(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    listener, replayer = Outbox.open(path), Outbox.open(path)
    seqs = queue(listener, [make_entity(n) for n in range(1, 1201)])  # more than one DELETE statement
    queue(replayer, [make_entity(5000)])  # another process puts meanwhile
    listener.complete(delivered=seqs[:700], refused=seqs[700:1000])
    assert count(path) == (201, 201)
    listener.complete(delivered=seqs[:10])  # already gone: nothing counted twice
    assert count(path) == (201, 201) and replayer.depth() == 201
    listener.complete(delivered=seqs[1000:])
    assert count(path) == (1, 1)
    listener.close()
    replayer.close()


def test_a_file_whose_depth_was_kept_by_triggers_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    outbox = Outbox.open(path)
    queue(outbox, [make_entity(1), make_entity(2)])
    outbox.close()
    with sqlite3.connect(path) as db:  # as the previous version left it, with a wrong count to prove the recount
        db.executescript("""
            CREATE TRIGGER outbox_depth_put AFTER INSERT ON outbox BEGIN UPDATE outbox_depth SET depth = depth + 1; END;
            CREATE TRIGGER outbox_depth_take AFTER DELETE ON outbox BEGIN UPDATE outbox_depth SET depth = depth - 1; END;
            UPDATE outbox_depth SET depth = 7;
        """)
    outbox = Outbox.open(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0] == 0
    assert outbox.depth() == 2
    queue(outbox, [make_entity(3)])
    outbox.complete(delivered=[outbox.pending()[0].seq])
    assert count(path) == (2, 2)
    outbox.close()


async def test_the_writer_sends_the_stored_text_byte_for_byte(tmp_path: Path) -> None:
    bodies: list[bytes] = []

    async def upsert(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/ngsi-ld/v1/entityOperations/upsert", upsert)
    outbox = Outbox.open(tmp_path / "o.sqlite")
    entities = [make_entity(1), make_entity(2, value=2.5), make_entity(3, pad=10)]
    entities[2]["description"]["value"] = "Défense — 10 µg/m³"  # non-ASCII stays as it is
    queue(outbox, entities)
    stored = [i.entity_json for i in outbox.load([p.seq for p in outbox.pending()])]
    assert stored == [encode_entity(e) for e in entities]
    assert [p.size for p in outbox.pending()] == [len(t.encode()) for t in stored]
    letters = DeadLetterStore(tmp_path / "dl.sqlite")
    async with TestServer(app, host=HOST) as server, aiohttp.ClientSession() as session:
        writer = writer_for(outbox, str(server.make_url("")).rstrip("/"), session, letters, FAST)
        async with running(writer):
            await eventually(lambda: outbox.depth() == 0, "the batch to be acknowledged")
    assert bodies == [("[" + ",".join(stored) + "]").encode()]
    outbox.close()
    letters.close()


async def test_batch_upsert_encoded_checks_its_arguments() -> None:
    async with aiohttp.ClientSession() as session:
        client = NgsiLdClient("http://127.0.0.1:9", session)
        for encoded, ids in (([], []), (["{}"], [])):
            try:
                await client.batch_upsert_encoded("ville", encoded, ids)
            except ValueError:
                continue
            raise AssertionError("expected a ValueError")
