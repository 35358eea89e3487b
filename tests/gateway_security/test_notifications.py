"""Notifications are decided again, each time, as reads are: a subscription follows the agreements
in force (a narrowed agreement rebuilds the broker's subscription, and nothing the broker sent
under the old one is forwarded), is triggered only by changes of what it may see uncoarsened,
and does not outlive its capped lifetime."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapter.access.decide import SUBSCRIPTION_LIFETIME
from tests.gateway.support import NOW, air_quality_entities, local_endpoints
from tests.gateway.test_subscriptions import Partner
from tests.gateway_security import support
from tests.gateway_security.support import GRANTS, as_, attacked, subscribing, subscription
from tests.support import eventually


@pytest.fixture
async def partner() -> AsyncIterator[Partner]:
    endpoint = Partner()
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


def _reading(sensor: int, **values: float) -> dict[str, Any]:
    entity = copy.deepcopy(air_quality_entities("region", 4, days=1)[sensor])
    for name, value in values.items():
        entity[name]["value"] = value
    return entity


async def _subscribe(world: Any, who: str, endpoint: str, **members: Any) -> str:
    made = await world.http.post(
        "/ngsi-ld/v1/subscriptions", headers=as_(who), json=subscription(endpoint=endpoint, **members)
    )
    assert made.status == 201, await made.text()
    return str(made.headers["Location"])


async def test_a_narrowed_agreement_rebuilds_the_subscription_and_forwards_nothing_of_the_old_one(
    tmp_path: Path, partner: Partner
) -> None:
    context = subscribing(endpoints=local_endpoints(partner.url), public_url="auto")
    async with attacked(tmp_path, **context) as world:
        await _subscribe(world, "schools", partner.url, watchedAttributes=["no2"])
        store = context["subscriptions"]
        (first,) = store.owned_by(support.PRINCIPALS["schools"])
        await world.broker.batch_upsert("region", [_reading(3, no2=111.0)])
        await eventually(
            lambda: any(d["no2"]["value"] == 111.0 for n in partner.received for d in n["data"]),
            "the first notification",
            timeout=10,
        )
        # the region narrows the agreement to its area: sensor 3 is outside
        narrowed = replace(GRANTS["schools"], area=support.AREA)
        world.grants.rows = [
            (*row[:5], narrowed if row[5] is GRANTS["schools"] else row[5]) for row in world.grants.rows
        ]
        await world.broker.batch_upsert("region", [_reading(3, no2=222.0)])
        await eventually(
            lambda: store.get(first.id) is not None and store.get(first.id).broker_id != first.broker_id,
            "the broker subscription to be made again",
            timeout=10,
        )
        await world.broker.batch_upsert("region", [_reading(3, no2=333.0), _reading(0, no2=444.0)])
        await eventually(
            lambda: any(d["no2"]["value"] == 444.0 for n in partner.received for d in n["data"]),
            "a notification of the sensor inside",
            timeout=10,
        )
    seen = {d["no2"]["value"] for n in partner.received for d in n["data"]}
    assert 222.0 not in seen and 333.0 not in seen


async def test_without_watched_attributes_only_changes_it_may_see_raw_notify(tmp_path: Path, partner: Partner) -> None:
    context = subscribing(endpoints=local_endpoints(partner.url), public_url="auto")
    async with attacked(tmp_path, "nolocation", **context) as world:
        await _subscribe(
            world, "nolocation", partner.url, notification={"attributes": ["no2"], "endpoint": {"uri": partner.url}}
        )
        only_temperature = {
            k: v for k, v in _reading(1, temperature=99.0).items() if k in ("id", "type", "temperature", "@context")
        }
        await world.broker.batch_upsert("region", [only_temperature])  # a change the agreement removes
        await world.broker.batch_upsert("region", [_reading(2, no2=55.0)])
        await eventually(lambda: bool(partner.received), "the notification of the no2 change", timeout=10)
        await asyncio.sleep(0.2)  # a notification of the temperature change would have come before
    notified = [d["id"][-7:] for n in partner.received for d in n["data"]]
    assert notified == ["sensor2"]


async def test_a_subscription_lasts_at_most_its_capped_lifetime(tmp_path: Path) -> None:
    context = subscribing()
    async with attacked(tmp_path, **context) as world:
        far = (NOW + timedelta(days=3650)).isoformat().replace("+00:00", "Z")
        location = await _subscribe(world, "schools", "http://127.0.0.1:9/notify", expiresAt=far)
        shown = await (await world.http.get(location, headers=as_("schools"))).json()
        assert shown["expiresAt"] == (NOW + SUBSCRIPTION_LIFETIME).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )
        past = (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z")
        expired = await world.http.post(
            "/ngsi-ld/v1/subscriptions", headers=as_("schools"), json=subscription(expiresAt=past)
        )
        assert expired.status == 403
