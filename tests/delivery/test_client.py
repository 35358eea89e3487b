"""The NGSI-LD client against a fake Orion-LD: what it sends, how it reads each answer, and
how every failure becomes one of its own errors (the aiohttp one chained)."""

from __future__ import annotations

import aiohttp
import pytest

from adapter.ngsild.client import (
    BrokerProtocolError,
    BrokerRejectedBatch,
    BrokerRejectedRequest,
    BrokerUnavailable,
    Fate,
    NgsiLdClient,
    batch_size,
    encode_entity,
)
from tests.delivery.fake_broker import ERRORS, FakeBroker, Refusal
from tests.delivery.support import HOST, T0, make_entity, unused_port


@pytest.fixture
def client(broker_url: str, session: aiohttp.ClientSession) -> NgsiLdClient:
    return NgsiLdClient(broker_url, session, token="s3cret", timeout_s=1.0)


async def test_upsert_sends_ld_json_with_tenant_token_and_update_option(client: NgsiLdClient, fake: FakeBroker) -> None:
    entities = [make_entity(1), make_entity(2)]
    outcome = await client.batch_upsert("ville", entities)
    assert (outcome.status, outcome.created, outcome.errors) == (201, (entities[0]["id"], entities[1]["id"]), ())
    sent = fake.batches[0]
    assert sent.headers["Content-Type"] == "application/ld+json"
    assert sent.headers["NGSILD-Tenant"] == "ville"
    assert sent.headers["Authorization"] == "Bearer s3cret"
    assert "Link" not in sent.headers  # a Link next to a body @context is a 400 at Orion-LD
    assert sent.query == {"options": "update"}
    assert sent.size == batch_size(len(encode_entity(e).encode()) for e in entities)


async def test_upsert_answers_204_when_all_existed_and_207_when_mixed(client: NgsiLdClient, fake: FakeBroker) -> None:
    await client.batch_upsert("ville", [make_entity(1)])
    assert (await client.batch_upsert("ville", [make_entity(1, value=2.0)])).status == 204
    mixed = await client.batch_upsert("ville", [make_entity(1), make_entity(3)])
    assert (mixed.status, mixed.errors, set(mixed.succeeded)) == (207, (), {make_entity(1)["id"], make_entity(3)["id"]})


async def test_update_semantics_keep_attributes_the_batch_does_not_carry(client: NgsiLdClient) -> None:
    first = make_entity(1, pad=3)
    await client.batch_upsert("ville", [first])
    await client.batch_upsert("ville", [make_entity(1, value=9.0)])
    stored = await client.get_entity("ville", first["id"])
    assert stored is not None
    assert stored["no2"]["value"] == 9.0 and stored["description"]["value"] == "xxx"


async def test_207_errors_are_read_entity_by_entity(client: NgsiLdClient, fake: FakeBroker) -> None:
    bad = make_entity(2)["id"]
    fake.refuse[bad] = Refusal(status=400, title="the Entity Type cannot be altered")
    outcome = await client.batch_upsert("ville", [make_entity(1), make_entity(2)])
    assert outcome.status == 207 and outcome.succeeded == (make_entity(1)["id"],)
    problem = outcome.error_for(bad)
    assert problem is not None
    assert (problem.type, problem.status) == (ERRORS + "BadRequestData", 400)
    assert problem.title == "the Entity Type cannot be altered"
    assert outcome.error_for(make_entity(1)["id"]) is None


@pytest.mark.parametrize("status", [400, 413, 415, 422])
async def test_a_batch_refused_whole_is_rejected_with_the_problem_details(
    client: NgsiLdClient, fake: FakeBroker, status: int
) -> None:
    fake.reject_batch_with = status
    with pytest.raises(BrokerRejectedBatch) as caught:
        await client.batch_upsert("ville", [make_entity(1), make_entity(2)])
    assert caught.value.status == status
    assert caught.value.problem is not None and caught.value.problem.type == ERRORS + "BadRequestData"
    assert caught.value.problem.status == status  # Orion-LD leaves it out; the HTTP status fills in
    assert caught.value.entity_ids == (make_entity(1)["id"], make_entity(2)["id"])


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_mean_unavailable(client: NgsiLdClient, fake: FakeBroker, status: int) -> None:
    fake.fail_with = status
    with pytest.raises(BrokerUnavailable) as caught:
        await client.batch_upsert("ville", [make_entity(1)])
    assert caught.value.status == status


async def test_a_wrong_token_is_a_rejected_request_not_a_rejected_batch(client: NgsiLdClient, fake: FakeBroker) -> None:
    fake.fail_with = 401
    with pytest.raises(BrokerRejectedRequest) as caught:
        await client.batch_upsert("ville", [make_entity(1)])
    assert not isinstance(caught.value, BrokerRejectedBatch) and caught.value.status == 401


async def test_refused_connection_is_unavailable_with_the_aiohttp_error_chained(session: aiohttp.ClientSession) -> None:
    client = NgsiLdClient(f"http://{HOST}:{unused_port()}", session, timeout_s=1.0)
    with pytest.raises(BrokerUnavailable) as caught:
        await client.batch_upsert("ville", [make_entity(1)])
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    assert caught.value.status is None


async def test_dropped_connection_is_unavailable(client: NgsiLdClient, fake: FakeBroker) -> None:
    fake.drop_next = 1
    with pytest.raises(BrokerUnavailable) as caught:
        await client.batch_upsert("ville", [make_entity(1)])
    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)


async def test_timeout_is_unavailable(broker_url: str, session: aiohttp.ClientSession, fake: FakeBroker) -> None:
    fake.stall_next, fake.stall_s = 1, 0.5
    client = NgsiLdClient(broker_url, session, timeout_s=0.1)
    with pytest.raises(BrokerUnavailable) as caught:
        await client.batch_upsert("ville", [make_entity(1)])
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_an_answer_outside_the_api_is_a_protocol_error_and_an_unreadable_201_says_nothing(
    session: aiohttp.ClientSession,
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    answers = [web.Response(status=201, text="<html>created</html>"), web.Response(status=200, text="{}")]

    async def teapot(request: web.Request) -> web.Response:
        return answers.pop(0)

    app = web.Application()
    app.router.add_post("/ngsi-ld/v1/entityOperations/upsert", teapot)
    async with TestServer(app, host=HOST) as server:
        client = NgsiLdClient(str(server.make_url("")), session)
        outcome = await client.batch_upsert("ville", [make_entity(1)])  # a 201 that names nothing
        assert [o.fate for o in outcome.outcomes] == [Fate.UNKNOWN]
        with pytest.raises(BrokerProtocolError):  # a 200 is no answer to a batch upsert
            await client.batch_upsert("ville", [make_entity(1)])


async def test_read_helpers(client: NgsiLdClient) -> None:
    await client.batch_upsert("ville", [make_entity(1, T0, 1.0)])
    await client.batch_upsert("ville", [make_entity(1, T0, 2.0), make_entity(2)])
    assert await client.get_entity("ville", "urn:ngsi-ld:AirQualityObserved:ville:unknown") is None
    assert await client.get_entity("other", make_entity(1)["id"]) is None  # tenants are apart
    found = await client.query_entities("ville", type="AirQualityObserved", limit=10)
    assert sorted(e["id"] for e in found) == [make_entity(1)["id"], make_entity(2)["id"]]
    temporal = await client.get_temporal("ville", make_entity(1)["id"])
    assert temporal is not None and [i["value"] for i in temporal["no2"]] == [1.0, 2.0]
    with pytest.raises(BrokerRejectedRequest):
        await client.query_entities("ville")  # "Too broad query"


async def test_an_empty_batch_is_a_caller_error(client: NgsiLdClient) -> None:
    with pytest.raises(ValueError):
        await client.batch_upsert("ville", [])
