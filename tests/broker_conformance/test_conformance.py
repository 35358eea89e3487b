"""One set of requests, sent to every broker under test (``conftest.py``): what the NGSI-LD
spec (ETSI GS CIM 009) promises and the adapter relies on, written so that a real Orion-LD or
Scorpio passes it. Where the spec allows several answers, every one is accepted (201, 204 or
207 for an upsert; instances in any order; one instance as an object or an array of one).

Assertions known to differ between brokers are marked ``broker_differs`` and listed here; each
such test accepts every known answer and names which broker gives which:
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from adapter.ngsild.history import TemporalEntity, parse_temporal_entity
from tests.broker_conformance.conftest import CORE_CONTEXT, Target

#: assertion -> how brokers differ (the tests marked ``broker_differs`` accept each answer)
KNOWN_DIFFERENCES = {
    "upsert-status": "all new: 201 with the ids; all existing: 204; mixed: Orion-LD legacy 207 with no errors, "
    "Orion-LD experimental 201 listing only the created ids",
    "create-existing": "Orion-LD: 207 with an error entry {entityId, error} (409 AlreadyExists or 400); "
    "Scorpio: 400 with an errors list when every entity fails, entries {id, ProblemDetails}",
    "q-mixed-precedence": "';' and '|' mixed without parentheses: the spec and the embedded broker read ';' "
    "tighter; Orion-LD refuses the mix with 400",
    "unknown-tenant": "Orion-LD: 404 NonExistingTenant; other brokers may answer 200 with nothing",
    "temporal-api": "Orion-LD answers 501 (the history is Mintaka's: NGSILD_ADAPTER_TEST_TEMPORAL_URL); "
    "instances newest first under lastN (Mintaka, embedded) or in no stated order (Scorpio); "
    "Mintaka's 'between' excludes both ends, Scorpio's includes both, the spec's [timeAt, endTimeAt)",
    "history-delay": "Mintaka reads TRoE's PostgreSQL, written after the entity: the history is polled (bounded)",
}
__doc__ = (__doc__ or "") + "\n".join(f"- ``{k}``: {v}" for k, v in KNOWN_DIFFERENCES.items()) + "\n"

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
LD_JSON = "application/ld+json"


def differs(key: str) -> pytest.MarkDecorator:
    return pytest.mark.broker_differs(KNOWN_DIFFERENCES[key])


def probe(
    target: Target,
    n: int,
    *,
    level: float = 1.0,
    lon: float = -1.68,
    lat: float = 48.11,
    observed: str = "2026-11-20T08:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": target.entity_id("ConformanceProbe", n),
        "type": "ConformanceProbe",
        "level": {"type": "Property", "value": level, "unitCode": "C62", "observedAt": observed},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        **extra,
    }


async def send(
    target: Target,
    method: str,
    path: str,
    *,
    tenant: str | None = None,
    temporal: bool = False,
    json: Any = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    sent = target.headers(tenant, **(headers or {}))
    if json is not None:
        sent.setdefault("Content-Type", "application/json")
    async with target.session.request(
        method, target.api(path, temporal=temporal), json=json, params=params, headers=sent
    ) as response:
        raw = await response.read()
        body: Any = None
        if raw:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        return response.status, body, dict(response.headers)


async def upsert(
    target: Target, entities: list[dict[str, Any]], *, tenant: str | None = None, options: str = "update"
) -> tuple[int, Any]:
    owner = tenant or target.tenant
    target.made.setdefault(owner, set()).update(e["id"] for e in entities)
    status, body, _ = await send(
        target, "POST", "/entityOperations/upsert", tenant=owner, json=entities, params={"options": options}
    )
    return status, body


def succeeded(status: int, body: Any, ids: list[str]) -> bool:
    """An upsert or create that lost nothing, in any shape the spec and Orion-LD allow."""
    if status == 201:
        return body is None or (isinstance(body, list) and set(body) <= set(ids))
    if status == 204:
        return True
    return status == 207 and isinstance(body, dict) and not body.get("errors")


async def ids_of(target: Target, *, tenant: str | None = None, **params: str) -> list[str]:
    status, body, _ = await send(target, "GET", "/entities", tenant=tenant, params={"limit": "100", **params})
    assert status == 200, (status, body)
    assert isinstance(body, list)
    return sorted(e["id"] for e in body)


def problem_type(body: Any) -> str | None:
    return body.get("type") if isinstance(body, dict) else None


# -- batches ------------------------------------------------------------------------------------


@differs("upsert-status")
async def test_upsert_creates_then_updates_and_loses_nothing(target: Target) -> None:
    first = [probe(target, 1), probe(target, 2)]
    status, body = await upsert(target, first)
    assert succeeded(status, body, [e["id"] for e in first]), (status, body)

    mixed = [probe(target, 2, level=2.0), probe(target, 3)]
    status, body = await upsert(target, mixed)
    assert succeeded(status, body, [e["id"] for e in mixed]), (status, body)

    status, body = await upsert(target, [probe(target, 3, level=3.0)])
    assert succeeded(status, body, []) and status != 201, (status, body)  # nothing new: never "created"

    assert await ids_of(target, type="ConformanceProbe") == sorted(
        target.entity_id("ConformanceProbe", n) for n in (1, 2, 3)
    )
    status, entity, _ = await send(target, "GET", f"/entities/{target.entity_id('ConformanceProbe', 2)}")
    assert status == 200 and entity["level"]["value"] == 2.0


async def test_upsert_with_options_update_keeps_the_attributes_it_does_not_carry(target: Target) -> None:
    await upsert(target, [probe(target, 1, note={"type": "Property", "value": "kept"})])
    status, body = await upsert(target, [probe(target, 1, level=5.0)], options="update")
    assert succeeded(status, body, []), (status, body)

    status, entity, _ = await send(target, "GET", f"/entities/{target.entity_id('ConformanceProbe', 1)}")

    assert status == 200
    assert entity["level"]["value"] == 5.0 and entity["note"]["value"] == "kept"


@differs("create-existing")
async def test_creating_an_existing_entity_is_refused_and_names_it(target: Target) -> None:
    existing = probe(target, 1)
    await upsert(target, [existing])

    status, body, _ = await send(target, "POST", "/entityOperations/create", json=[existing])

    if status == 207:
        entries = body["errors"] if isinstance(body, dict) else []
        assert [e.get("entityId", e.get("id")) for e in entries] == [existing["id"]], body
    else:
        assert status in (400, 409), (status, body)


async def test_a_batch_that_is_not_an_array_is_refused_whole(target: Target) -> None:
    status, body, _ = await send(target, "POST", "/entityOperations/upsert", json={"id": "urn:x"})

    assert status == 400, (status, body)
    assert problem_type(body) in (ERRORS + "BadRequestData", ERRORS + "InvalidRequest")


# -- contexts -----------------------------------------------------------------------------------


async def test_names_come_back_short_with_the_context_they_were_written_with(target: Target) -> None:
    entity = {
        **probe(target, 1),
        "qualityFlag": {"type": "Property", "value": "ok"},
        "@context": [target.context_url, CORE_CONTEXT],
    }
    target.made.setdefault(target.tenant, set()).add(entity["id"])
    status, body, _ = await send(
        target, "POST", "/entityOperations/upsert", json=[entity], headers={"Content-Type": LD_JSON}
    )
    if status == 503 or problem_type(body) == ERRORS + "LdContextNotAvailable":
        pytest.fail(
            f"the broker cannot download {target.context_url}: set NGSILD_ADAPTER_TEST_CONTEXT_URL "
            "to where the adapter serves contexts/ngsild-adapter.jsonld",
            pytrace=False,
        )
    assert succeeded(status, body, [entity["id"]]), (status, body)
    link = f'<{target.context_url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'

    _, with_link, _ = await send(target, "GET", f"/entities/{entity['id']}", headers={"Link": link})
    _, without, _ = await send(target, "GET", f"/entities/{entity['id']}")

    assert with_link["qualityFlag"]["value"] == "ok"
    assert "qualityFlag" not in without
    assert without["https://w3id.org/ngsild-adapter/ns#qualityFlag"]["value"] == "ok"


# -- q ------------------------------------------------------------------------------------------


@pytest.fixture
async def levels(target: Target) -> Target:
    """Probes 1..4 with levels 1..4 and a kind: 1 and 2 'a', 3 and 4 'b'."""
    entities = [
        probe(target, n, level=float(n), kind={"type": "Property", "value": "a" if n <= 2 else "b"})
        for n in range(1, 5)
    ]
    status, body = await upsert(target, entities)
    assert succeeded(status, body, [e["id"] for e in entities]), (status, body)
    return target


def named(target: Target, *numbers: int) -> list[str]:
    return sorted(target.entity_id("ConformanceProbe", n) for n in numbers)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("level>2", (3, 4)),
        ('kind=="a";level>1', (2,)),
        ("level<2|level>3", (1, 4)),
        ('(kind=="a"|level==4);level>=2', (2, 4)),
        ('kind=="b";(level==1|level==4)', (4,)),
        ("level==2..3", (2, 3)),
        ("level==1,4", (1, 4)),
    ],
)
async def test_q_selects_by_the_spec(levels: Target, q: str, expected: tuple[int, ...]) -> None:
    assert await ids_of(levels, type="ConformanceProbe", q=q) == named(levels, *expected)


@differs("q-mixed-precedence")
async def test_and_binds_tighter_than_or_or_the_mix_is_refused(levels: Target) -> None:
    status, body, _ = await send(
        levels, "GET", "/entities", params={"type": "ConformanceProbe", "q": 'kind=="b";level==3|level==1'}
    )

    if status == 400:  # Orion-LD
        assert problem_type(body) == ERRORS + "BadRequestData"
    else:
        assert status == 200
        assert sorted(e["id"] for e in body) == named(levels, 1, 3)  # (b;3)|1, never b;(3|1) -> [3]


@pytest.mark.parametrize("q", ["level==", 'kind=="a', "(level==1", "level>1)", ";level==1"])
async def test_an_invalid_q_is_400_never_an_empty_answer(levels: Target, q: str) -> None:
    status, body, _ = await send(levels, "GET", "/entities", params={"type": "ConformanceProbe", "q": q})

    assert status == 400, (status, body)
    assert problem_type(body) in (ERRORS + "BadRequestData", ERRORS + "InvalidRequest")


# -- geo ----------------------------------------------------------------------------------------


async def test_geo_queries_near_and_within(target: Target) -> None:
    entities = [
        probe(target, 1, lon=-1.680, lat=48.110),
        probe(target, 2, lon=-1.690, lat=48.115),
        probe(target, 3, lon=2.35, lat=48.85),
    ]
    await upsert(target, entities)

    near = await ids_of(
        target, type="ConformanceProbe", georel="near;maxDistance==2000", geometry="Point", coordinates="[-1.68,48.11]"
    )
    within = await ids_of(
        target,
        type="ConformanceProbe",
        georel="within",
        geometry="Polygon",
        coordinates="[[[-1.7,48.1],[-1.6,48.1],[-1.6,48.2],[-1.7,48.2],[-1.7,48.1]]]",
    )

    assert near == named(target, 1, 2)
    assert within == named(target, 1, 2)


# -- temporal -----------------------------------------------------------------------------------

READINGS = [(10.0, "2026-11-20T00:00:00Z"), (11.0, "2026-11-20T01:00:00Z"), (12.0, "2026-11-20T02:00:00Z")]


async def history(target: Target, entity_id: str, params: dict[str, str], *, holding: int) -> TemporalEntity:
    """The temporal entity, once the history holds ``holding`` instances of ``level`` (a broker
    may write its history with a delay: polled a bounded number of times, never timed)."""
    for _ in range(1 if target.name == "embedded" else 50):
        status, body, _ = await send(
            target, "GET", f"/temporal/entities/{entity_id}", temporal=True, params={"attrs": "level", **params}
        )
        if status == 501:
            pytest.skip(
                "the broker answers 501 to the temporal API (Orion-LD: it is Mintaka's); "
                "set NGSILD_ADAPTER_TEST_TEMPORAL_URL"
            )
        if status == 200:
            parsed = parse_temporal_entity(body)
            level = parsed.attribute("level")
            if level is not None and len(level.instances) >= holding:
                return parsed
        await asyncio.sleep(0.2)
    raise AssertionError(f"the history of {entity_id} never held {holding} instances: {status} {body}")


@differs("temporal-api")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [10.0, 11.0, 12.0]),
        ({"lastN": "1"}, [12.0]),
        ({"lastN": "2"}, [11.0, 12.0]),
        ({"timerel": "before", "timeAt": "2026-11-20T00:30:00Z"}, [10.0]),
        ({"timerel": "after", "timeAt": "2026-11-20T00:30:00Z"}, [11.0, 12.0]),
        ({"timerel": "between", "timeAt": "2026-11-20T00:30:00Z", "endTimeAt": "2026-11-20T01:30:00Z"}, [11.0]),
    ],
)
async def test_the_history_keeps_every_observation_in_any_order_and_shape(
    target: Target, params: dict[str, str], expected: list[float]
) -> None:
    entity_id = target.entity_id("ConformanceProbe", 1)
    for value, observed in READINGS:  # one batch per reading, as the adapter's writer sends them
        status, body = await upsert(target, [probe(target, 1, level=value, observed=observed)])
        assert succeeded(status, body, [entity_id]), (status, body)
    await history(target, entity_id, {}, holding=len(READINGS))

    parsed = await history(target, entity_id, params, holding=len(expected))

    level = parsed.attribute("level")
    assert level is not None
    assert [i.members["value"] for i in level.instances] == expected  # the parser orders them oldest first


# -- subscriptions ------------------------------------------------------------------------------


async def test_a_subscription_is_created_read_and_deleted(target: Target) -> None:
    identifier = f"urn:ngsi-ld:Subscription:conformance-{target.run}"
    subscription: dict[str, Any] = {
        "id": identifier,
        "type": "Subscription",
        "entities": [{"type": "ConformanceProbe"}],
        "watchedAttributes": ["level"],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"}},
    }
    target.subscriptions.setdefault(target.tenant, set()).add(identifier)

    created, body, headers = await send(target, "POST", "/subscriptions", json=subscription)
    assert created == 201, (created, body)
    assert headers.get("Location", "").endswith(identifier)
    read, stored, _ = await send(target, "GET", f"/subscriptions/{subscription['id']}")
    deleted, _, _ = await send(target, "DELETE", f"/subscriptions/{subscription['id']}")
    gone, _, _ = await send(target, "GET", f"/subscriptions/{subscription['id']}")

    assert read == 200 and stored["id"] == subscription["id"]
    assert deleted == 204 and gone == 404
    target.subscriptions[target.tenant].discard(subscription["id"])


# -- tenants ------------------------------------------------------------------------------------


async def test_tenants_see_only_their_own_entities(target: Target) -> None:
    other = target.other_tenant()
    await upsert(target, [probe(target, 1)])
    await upsert(target, [probe(target, 2)], tenant=other)

    assert await ids_of(target, type="ConformanceProbe") == named(target, 1)
    assert await ids_of(target, type="ConformanceProbe", tenant=other) == named(target, 2)
    status, _, _ = await send(target, "GET", f"/entities/{target.entity_id('ConformanceProbe', 2)}")
    assert status == 404


@differs("unknown-tenant")
async def test_an_unknown_tenant_holds_nothing(target: Target) -> None:
    status, body, _ = await send(
        target, "GET", "/entities", tenant=f"{target.tenant}_never", params={"type": "ConformanceProbe"}
    )

    if status == 404:
        assert problem_type(body) == ERRORS + "NonExistingTenant"
    else:
        assert (status, body) == (200, [])
