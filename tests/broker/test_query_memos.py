"""The memos of the query path (decoded attributes, encoded renderings) never answer stale or
foreign data: an update shows in the very next query, and each context gets its own rendering."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from adapter.ngsild.broker.jsonld import CORE_URL, ContextResolver
from adapter.ngsild.broker.render import Renderings, render_entity
from adapter.ngsild.broker.store import Store, StoredEntity, dumps
from adapter.ngsild.contexts import load_context
from tests.broker.helpers import SDM, SDM_ENVIRONMENT, air_quality, link

ROOM = "urn:ngsi-ld:Room:1"
AQ = "urn:ngsi-ld:AirQualityObserved:ville:0001"
ENTITIES = "/ngsi-ld/v1/entities"

#: one query per path through the memos: SQL paging, Python-side filters, another format
QUERIES = [
    {"type": "Room"},
    {"type": "Room", "attrs": "temperature,name"},
    {"type": "Room", "q": "temperature>0"},
    {"type": "Room", "options": "keyValues"},
    {"type": "Room", "options": "concise", "count": "true"},
    {"id": ROOM, "options": "sysAttrs"},
]


def room(temperature: float) -> dict[str, Any]:
    return {
        "id": ROOM,
        "type": "Room",
        "name": {"type": "Property", "value": "kitchen"},
        "temperature": {"type": "Property", "value": temperature, "unitCode": "CEL"},
    }


async def temperature_of(client: TestClient, params: dict[str, str]) -> Any:
    response = await client.get(ENTITIES, params=params)
    assert response.status == 200, await response.text()
    (entity,) = await response.json()
    value = entity["temperature"]
    return value["value"] if isinstance(value, dict) else value


async def read_twice(client: TestClient, params: dict[str, str]) -> Any:
    first = await temperature_of(client, params)
    assert await temperature_of(client, params) == first  # the second answer comes from the memos
    return first


@pytest.mark.parametrize("params", QUERIES)
async def test_every_kind_of_update_shows_in_the_next_query(client: TestClient, params: dict[str, str]) -> None:
    assert (await client.post(ENTITIES, json=room(19.5))).status == 201
    assert await read_twice(client, params) == 19.5

    # PATCH of one attribute (the row then holds its own JSON)
    patched = await client.patch(f"{ENTITIES}/{ROOM}/attrs", json={"temperature": {"type": "Property", "value": 20.5}})
    assert patched.status == 204
    assert await read_twice(client, params) == 20.5

    # batch update (append/overwrite)
    updated = await client.post(
        "/ngsi-ld/v1/entityOperations/update",
        json=[{"id": ROOM, "type": "Room", "temperature": {"type": "Property", "value": 21.5}}],
    )
    assert updated.status == 204
    assert await read_twice(client, params) == 21.5

    # replace-upsert (the row then points to the write's JSON)
    upserted = await client.post("/ngsi-ld/v1/entityOperations/upsert", json=[room(22.5)])
    assert upserted.status == 204
    assert await read_twice(client, params) == 22.5

    # one attribute written by its own path
    written = await client.patch(f"{ENTITIES}/{ROOM}/attrs/temperature", json={"type": "Property", "value": 23.5})
    assert written.status == 204
    assert await read_twice(client, params) == 23.5

    # back to an earlier state: the same stored text may be answered from the memo, correctly
    assert (await client.post("/ngsi-ld/v1/entityOperations/upsert", json=[room(19.5)])).status == 204
    assert await read_twice(client, params) == 19.5

    assert (await client.delete(f"{ENTITIES}/{ROOM}")).status == 204
    assert await (await client.get(ENTITIES, params=params)).json() == []


async def test_system_times_follow_the_entity(client: TestClient) -> None:
    await client.post(ENTITIES, json=room(19.5))
    params = {"type": "Room", "options": "sysAttrs"}
    before = (await (await client.get(ENTITIES, params=params)).json())[0]

    await client.patch(f"{ENTITIES}/{ROOM}/attrs", json={"name": {"type": "Property", "value": "kitchen"}})
    after = (await (await client.get(ENTITIES, params=params)).json())[0]
    retrieved = await (await client.get(f"{ENTITIES}/{ROOM}", params={"options": "sysAttrs"})).json()

    assert after["modifiedAt"] == retrieved["modifiedAt"] >= before["modifiedAt"]
    assert after["createdAt"] == before["createdAt"]


async def test_each_context_and_format_gets_its_own_rendering(client: TestClient) -> None:
    await client.post(
        ENTITIES, headers=link(SDM_ENVIRONMENT), json={k: v for k, v in air_quality(1).items() if k != "refDevice"}
    )
    params = {"type": f"{SDM}AirQualityObserved", "attrs": f"{SDM}temperature"}
    short_params = {"type": "AirQualityObserved", "attrs": "temperature"}

    async def get(query: dict[str, str], headers: dict[str, str]) -> tuple[Any, Any]:
        response = await client.get(ENTITIES, params=query, headers=headers)
        assert response.status == 200
        return await response.json(), response.headers.get("Link")

    for _ in range(2):  # the second round is answered from the memos: it must not mix them up
        short, short_link = await get(short_params, link(SDM_ENVIRONMENT))
        long, long_link = await get(params, {})
        ld, ld_link = await get(short_params, {**link(SDM_ENVIRONMENT), "Accept": "application/ld+json"})
        key_values, _ = await get({**short_params, "options": "keyValues"}, link(SDM_ENVIRONMENT))

        measure = {"type": "Property", "value": 11.2, "observedAt": "2026-11-20T08:15:30.123Z", "unitCode": "CEL"}
        assert short == [{"id": AQ, "type": "AirQualityObserved", "temperature": measure}]
        assert short_link == link(SDM_ENVIRONMENT)["Link"]
        assert long == [{"id": AQ, "type": f"{SDM}AirQualityObserved", f"{SDM}temperature": measure}]
        assert long_link == link(CORE_URL)["Link"]
        assert ld == [{**short[0], "@context": [SDM_ENVIRONMENT, CORE_URL]}]
        assert ld_link is None
        assert key_values == [{"id": AQ, "type": "AirQualityObserved", "temperature": 11.2}]


async def test_a_filtered_page_reads_no_further_than_it_needs_but_counts_everything(client: TestClient) -> None:
    rooms = [
        {"id": f"urn:ngsi-ld:Room:{n}", "type": "Room", "level": {"type": "Property", "value": n % 3}}
        for n in range(10)
    ]
    assert (await client.post("/ngsi-ld/v1/entityOperations/create", json=rooms)).status == 201

    page = await client.get(ENTITIES, params={"type": "Room", "q": "level==1", "limit": "2", "offset": "1"})
    counted = await client.get(
        ENTITIES, params={"type": "Room", "q": "level==1", "limit": "2", "offset": "1", "count": "true"}
    )

    assert [e["id"] for e in await page.json()] == ["urn:ngsi-ld:Room:4", "urn:ngsi-ld:Room:7"]
    assert await counted.json() == await page.json()
    assert counted.headers["NGSILD-Results-Count"] == "3"


def test_the_store_shares_one_decoding_per_stored_text() -> None:
    store = Store()
    try:
        state = StoredEntity(
            ROOM,
            "https://example.org/Room",
            "2026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:00.000Z",
            {"https://example.org/n": {"type": "Property", "value": 1}},
        )
        with store.transaction():
            store.add_tenant("t")
            store.write("t", [(state, state.attrs)], "2026-01-01T00:00:00.000Z")
        first = next(iter(store.select_entities("t", shared=True)))
        second = next(iter(store.select_entities("t", shared=True)))
        private = next(iter(store.select_entities("t")))

        assert first.attrs is second.attrs and first.source is second.source
        assert first.source == dumps(state.attrs)
        assert private.attrs == first.attrs and private.attrs is not first.attrs and private.source == ""

        changed = StoredEntity(
            ROOM,
            state.type,
            state.created_at,
            "2026-01-02T00:00:00.000Z",
            {"https://example.org/n": {"type": "Property", "value": 2}},
            tkey=first.tkey,
        )
        with store.transaction():
            store.write("t", [(changed, changed.attrs)], "2026-01-02T00:00:00.000Z")
        third = next(iter(store.select_entities("t", shared=True)))

        assert third.attrs["https://example.org/n"]["value"] == 2
        assert first.attrs["https://example.org/n"]["value"] == 1  # what was shared is never changed
    finally:
        store.close()


async def test_renderings_are_keyed_by_context_object_and_bounded() -> None:
    async def loader(url: str) -> Any:
        return load_context(url) if url != "urn:test:other" else {"@context": {"n": "https://example.org/n"}}

    resolver = ContextResolver(loader)
    core, other = resolver.core, await resolver.resolve("urn:test:other")
    entity = StoredEntity(
        ROOM,
        "https://example.org/Room",
        "c",
        "m",
        {"https://example.org/n": {"type": "Property", "value": 1}},
        source="text-1",
    )
    renderings = Renderings(size=4)

    in_core = renderings.encoded(entity, core)
    in_other = renderings.encoded(entity, other)

    assert in_core == dumps(render_entity(entity, core)) and '"https://example.org/n"' in in_core
    assert in_other == dumps(render_entity(entity, other)) and '"n"' in in_other
    assert renderings.encoded(entity, other) == in_other and renderings.hits == 1

    unstored = StoredEntity(ROOM, "https://example.org/Room", "c", "m", {})
    renderings.encoded(unstored, core)
    renderings.encoded(unstored, core)
    assert renderings.misses == 4  # entities without a stored text are rendered every time
    for n in range(10):
        renderings.encoded(StoredEntity(f"urn:x:{n}", "T", "c", "m", {}, source=f"t{n}"), core)
    assert len(renderings) <= 4
