"""Subscriptions and notifications, delivered over HTTP to a real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.broker.helpers import ADAPTER_CONTEXT, CORE, ERRORS, SDM_ENVIRONMENT, air_quality, link, problem


@dataclass
class Notification:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """An HTTP endpoint that records the notifications it gets (``/fail`` answers 500)."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[Notification] = asyncio.Queue()
        self.server: TestServer | None = None
        self.release = asyncio.Event()

    def url(self, path: str = "/notify") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def next(self) -> Notification:
        return await asyncio.wait_for(self.received.get(), timeout=5)

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/slow":
            await self.release.wait()
        await self.received.put(
            Notification(request.path, dict(request.query), dict(request.headers), await request.json())
        )
        return web.Response(status=500 if request.path == "/fail" else 204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiving = Receiver()
    app = web.Application()
    app.router.add_post("/{path:.*}", receiving.handle)
    receiving.server = TestServer(app, host="127.0.0.1")
    await receiving.server.start_server()
    yield receiving
    receiving.release.set()
    await receiving.server.close()


def subscription(receiver: Receiver, **fields: Any) -> dict[str, Any]:
    notification = {"endpoint": {"uri": receiver.url()}, **fields.pop("notification", {})}
    return {"type": "Subscription", "entities": [{"type": "Room"}], "notification": notification, **fields}


async def subscribe(client: TestClient, body: dict[str, Any], **headers: str) -> str:
    response = await client.post("/ngsi-ld/v1/subscriptions", json=body, headers=headers)
    assert response.status == 201, await response.text()
    location: str = response.headers["Location"]
    return location.rsplit("/", 1)[1]


def room(number: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Room:{number}", "type": "Room", **attrs}


async def upsert(client: TestClient, entities: list[dict[str, Any]], **kwargs: Any) -> None:
    response = await client.post("/ngsi-ld/v1/entityOperations/upsert", json=entities, **kwargs)
    assert response.status in (201, 204), await response.text()


async def sent_status(client: TestClient, sub_id: str) -> dict[str, Any]:
    """The notification status once the first notification has been attempted."""
    for _ in range(100):
        status: dict[str, Any] = (await (await client.get(f"/ngsi-ld/v1/subscriptions/{sub_id}")).json())[
            "notification"
        ]
        if status["timesSent"]:
            return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"no notification attempted for {sub_id}")


async def test_create_and_read_a_subscription(client: TestClient, receiver: Receiver) -> None:
    sub_id = await subscribe(
        client, subscription(receiver, watchedAttributes=["temperature"], q="temperature>20", description="warm rooms")
    )

    response = await client.get(f"/ngsi-ld/v1/subscriptions/{sub_id}")

    assert sub_id.startswith("urn:ngsi-ld:Subscription:")
    assert await response.json() == {
        "id": sub_id,
        "type": "Subscription",
        "description": "warm rooms",
        "entities": [{"type": "Room"}],
        "watchedAttributes": ["temperature"],
        "q": "temperature>20",
        "isActive": True,
        "status": "active",
        "notification": {
            "format": "normalized",
            "endpoint": {"accept": "application/json", "uri": receiver.url()},
            "timesSent": 0,
            "timesFailed": 0,
        },
        "jsonldContext": CORE,
    }


async def test_a_matching_write_is_notified(client: TestClient, receiver: Receiver) -> None:
    sub_id = await subscribe(client, subscription(receiver))

    await client.post("/ngsi-ld/v1/entities", json=room(1, temperature=21))
    notification = await receiver.next()

    assert notification.path == "/notify"
    assert notification.query == {"subscriptionId": sub_id}
    assert notification.headers["Content-Type"] == "application/json"
    assert notification.headers["Link"] == link(CORE)["Link"]
    assert notification.headers["Ngsild-Attribute-Format"] == "Normalized"
    body = notification.body
    assert body["id"].startswith("urn:ngsi-ld:Notification:")
    assert body["type"] == "Notification"
    assert body["subscriptionId"] == sub_id
    assert body["notifiedAt"].endswith("Z") and len(body["notifiedAt"]) == 24
    assert body["data"] == [
        {"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": {"type": "Property", "value": 21}}
    ]


async def test_one_batch_gives_one_notification_with_every_matching_entity(
    client: TestClient, receiver: Receiver
) -> None:
    await subscribe(client, subscription(receiver, q="temperature>20"))

    await upsert(
        client,
        [
            room(1, temperature=21),
            room(2, temperature=19),
            room(3, temperature=25),
            {"id": "urn:ngsi-ld:Hall:1", "type": "Hall", "temperature": 30},
        ],
    )
    notification = await receiver.next()

    assert [e["id"] for e in notification.body["data"]] == ["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:3"]
    assert receiver.received.empty()


async def test_watched_attributes(client: TestClient, receiver: Receiver) -> None:
    await upsert(client, [room(1, temperature=20, humidity=0.5)])
    await subscribe(client, subscription(receiver, watchedAttributes=["temperature"]))

    await client.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:1/attrs", json={"humidity": 0.6})
    await client.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:1/attrs", json={"temperature": 22})
    notification = await receiver.next()

    assert notification.body["data"][0]["temperature"]["value"] == 22
    assert notification.body["data"][0]["humidity"]["value"] == 0.6


async def test_attributes_and_format_of_the_notification(client: TestClient, receiver: Receiver) -> None:
    await subscribe(client, subscription(receiver, notification={"attributes": ["temperature"], "format": "keyValues"}))

    await upsert(client, [room(1, temperature=21, humidity=0.4)])
    notification = await receiver.next()

    assert notification.body["data"] == [{"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": 21}]
    assert notification.headers["Ngsild-Attribute-Format"] == "Simplified"


async def test_tenant_and_token_travel_with_the_notification(client: TestClient, receiver: Receiver) -> None:
    tenant = {"NGSILD-Tenant": "ville"}
    await subscribe(client, subscription(receiver), **tenant)

    await upsert(client, [room(1, temperature=21)], headers={**tenant, "X-Auth-Token": "secret"})
    notification = await receiver.next()

    assert notification.headers["NGSILD-Tenant"] == "ville"
    assert notification.headers["X-Auth-Token"] == "secret"


async def test_other_tenants_do_not_trigger_it(client: TestClient, receiver: Receiver) -> None:
    await subscribe(client, subscription(receiver), **{"NGSILD-Tenant": "ville"})

    await upsert(client, [room(1, temperature=1)], headers={"NGSILD-Tenant": "eau"})
    await upsert(client, [room(2, temperature=2)], headers={"NGSILD-Tenant": "ville"})

    assert [e["id"] for e in (await receiver.next()).body["data"]] == ["urn:ngsi-ld:Room:2"]


async def test_throttling_drops_notifications_inside_the_window(client: TestClient, receiver: Receiver) -> None:
    await subscribe(client, subscription(receiver, throttling=60))

    await upsert(client, [room(1, temperature=21)])
    await upsert(client, [room(1, temperature=22)])
    first = await receiver.next()
    await asyncio.sleep(0.2)

    assert first.body["data"][0]["temperature"]["value"] == 21
    assert receiver.received.empty()


async def test_delivery_outcomes_are_recorded(client: TestClient, receiver: Receiver) -> None:
    good = await subscribe(client, subscription(receiver))
    bad = await subscribe(client, subscription(receiver, notification={"endpoint": {"uri": receiver.url("/fail")}}))

    await upsert(client, [room(1, temperature=21)])
    good_status = await sent_status(client, good)
    bad_status = await sent_status(client, bad)

    assert (good_status["timesSent"], good_status["timesFailed"], good_status["status"]) == (1, 0, "ok")
    assert good_status["lastSuccess"] == good_status["lastNotification"]
    assert (bad_status["timesSent"], bad_status["timesFailed"], bad_status["status"]) == (1, 1, "failed")
    assert "lastSuccess" not in bad_status


async def test_a_slow_endpoint_never_blocks_writes(client: TestClient, receiver: Receiver) -> None:
    await subscribe(client, subscription(receiver, notification={"endpoint": {"uri": receiver.url("/slow")}}))

    started = time.monotonic()
    for n in range(5):
        await upsert(client, [room(n, temperature=n)])

    assert time.monotonic() - started < 1.0
    receiver.release.set()
    assert [e["id"] for e in (await receiver.next()).body["data"]] == ["urn:ngsi-ld:Room:0"]


async def test_notifications_are_compacted_with_the_subscription_context(
    client: TestClient, receiver: Receiver
) -> None:
    body = {**subscription(receiver), "entities": [{"type": "AirQualityObserved"}]}
    await subscribe(client, body, **link(SDM_ENVIRONMENT))

    response = await client.post(
        "/ngsi-ld/v1/entityOperations/upsert",
        data=json.dumps([air_quality(1, context=True)]),
        headers={"Content-Type": "application/ld+json"},
    )
    notification = await receiver.next()

    assert response.status == 201
    assert notification.headers["Link"] == link(SDM_ENVIRONMENT)["Link"]
    entity = notification.body["data"][0]
    assert entity["type"] == "AirQualityObserved"
    assert entity["temperature"]["value"] == 11.2


async def test_an_inline_context_is_served_for_the_link_of_notifications(
    client: TestClient, receiver: Receiver
) -> None:
    body = {
        **subscription(receiver),
        "entities": [{"type": "AirQualityObserved"}],
        "@context": [SDM_ENVIRONMENT, ADAPTER_CONTEXT, CORE],
    }
    response = await client.post(
        "/ngsi-ld/v1/subscriptions", data=json.dumps(body), headers={"Content-Type": "application/ld+json"}
    )
    assert response.status == 201

    await client.post(
        "/ngsi-ld/v1/entityOperations/upsert",
        data=json.dumps([air_quality(1, context=True)]),
        headers={"Content-Type": "application/ld+json"},
    )
    notification = await receiver.next()
    context_url = notification.headers["Link"].split(">")[0][1:]
    served = await client.get("/ngsi-ld/v1/jsonldContexts/" + context_url.rsplit("/", 1)[1])

    assert context_url.startswith(str(client.make_url("/ngsi-ld/v1/jsonldContexts/")))
    assert notification.body["data"][0]["type"] == "AirQualityObserved"
    assert await served.json() == {"@context": [SDM_ENVIRONMENT, ADAPTER_CONTEXT, CORE]}


async def test_json_ld_endpoints_get_the_context_in_the_body(client: TestClient, receiver: Receiver) -> None:
    await subscribe(
        client,
        subscription(receiver, notification={"endpoint": {"uri": receiver.url(), "accept": "application/ld+json"}}),
    )

    await upsert(client, [room(1, temperature=21)])
    notification = await receiver.next()

    assert notification.headers["Content-Type"] == "application/ld+json"
    assert "Link" not in notification.headers
    assert notification.body["@context"] == CORE


async def test_list_patch_and_delete(client: TestClient, receiver: Receiver) -> None:
    first = await subscribe(client, subscription(receiver))
    second = await subscribe(client, subscription(receiver, id="urn:ngsi-ld:Subscription:mine"))

    listed = await (await client.get("/ngsi-ld/v1/subscriptions", params={"count": "true"})).json()
    paused = await client.patch(f"/ngsi-ld/v1/subscriptions/{first}", json={"isActive": False})
    deleted = await client.delete(f"/ngsi-ld/v1/subscriptions/{second}")
    gone = await client.get(f"/ngsi-ld/v1/subscriptions/{second}")
    state = await (await client.get(f"/ngsi-ld/v1/subscriptions/{first}")).json()

    assert [s["id"] for s in listed] == [first, "urn:ngsi-ld:Subscription:mine"]
    assert (paused.status, deleted.status, gone.status) == (204, 204, 404)
    assert (state["isActive"], state["status"]) == (False, "paused")

    await upsert(client, [room(1, temperature=21)])
    await client.patch(f"/ngsi-ld/v1/subscriptions/{first}", json={"isActive": True})
    await upsert(client, [room(2, temperature=22)])

    assert [e["id"] for e in (await receiver.next()).body["data"]] == ["urn:ngsi-ld:Room:2"]


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"notification": None}, 400, "BadRequestData"),
        ({"entities": None}, 400, "BadRequestData"),
        ({"type": "Subscriptions"}, 400, "BadRequestData"),
        ({"notification": {"endpoint": {"uri": "nowhere"}}}, 400, "BadRequestData"),
        ({"notification": {"endpoint": {"uri": "mqtt://broker/topic"}}}, 501, "OperationNotSupported"),
        ({"notification": {"endpoint": {"uri": "http://x:1/n", "accept": "text/xml"}}}, 400, "BadRequestData"),
        ({"notification": {"endpoint": {"uri": "http://x:1/n"}, "format": "fancy"}}, 400, "BadRequestData"),
        ({"q": "temperature>"}, 400, "BadRequestData"),
        ({"throttling": -1}, 400, "BadRequestData"),
        ({"timeInterval": 60}, 501, "OperationNotSupported"),
        ({"colour": "blue"}, 400, "BadRequestData"),
    ],
)
async def test_invalid_subscriptions(
    client: TestClient, receiver: Receiver, change: dict[str, Any], status: int, error: str
) -> None:
    body = {key: value for key, value in {**subscription(receiver), **change}.items() if value is not None}

    response = await client.post("/ngsi-ld/v1/subscriptions", json=body)

    assert response.status == status
    assert (await problem(response))["type"] == ERRORS + error


async def test_the_same_subscription_id_twice_is_409(client: TestClient, receiver: Receiver) -> None:
    body = subscription(receiver, id="urn:ngsi-ld:Subscription:one")
    await subscribe(client, body)

    response = await client.post("/ngsi-ld/v1/subscriptions", json=body)

    assert response.status == 409
    assert (await problem(response))["type"] == ERRORS + "AlreadyExists"
