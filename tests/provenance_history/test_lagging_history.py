"""The verifier against a broker whose history lags behind its current entities (Mintaka reads
Orion-LD's TRoE database, written after the entity): honest data is never called altered
because the history does not hold its instance yet; it is ``pending``, with the reason.

The broker is the embedded one, in-process on 127.0.0.1; ``LaggingHistory`` hides from its
temporal answers every instance observed after a horizon the test moves (the test decides
when the history catches up, no clock involved).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapter.mapping.entities import iso
from adapter.ngsild.broker import create_broker_app
from adapter.ngsild.client import BrokerUnavailable, NgsiLdClient
from adapter.ngsild.history import parse_temporal_entity
from adapter.provenance.integrity.note import NoteVerifier
from adapter.provenance.runtime import read_broker
from adapter.provenance.verify import BrokerValue, Check, verify_value

TENANT = "ville"
ENTITY = "urn:ngsi-ld:AirQualityObserved:ville:0001"
START = datetime(2026, 11, 20, 8, 0, 0, 250000, tzinfo=UTC)  # milliseconds, as uplinks have


def observed(n: int) -> datetime:
    return START + timedelta(minutes=10 * n)


def entity(n: int) -> dict[str, Any]:
    at = iso(observed(n))
    return {
        "id": ENTITY,
        "type": "AirQualityObserved",
        "no2": {"type": "Property", "value": 30.0 + n, "unitCode": "GQ", "observedAt": at},
        "wasDerivedFrom": {
            "type": "Relationship",
            "object": f"urn:ngsild-adapter:{TENANT}:uplink:{n}",
            "observedAt": at,
        },
        "@context": [
            "https://w3id.org/ngsild-adapter/context.jsonld",
            "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
        ],
    }


class LaggingHistory(NgsiLdClient):
    """A client whose broker's history holds only what was observed up to ``horizon`` (None:
    the history holds nothing of the entity yet, and answers 404)."""

    horizon: datetime | None = None

    async def get_temporal(self, tenant: str | None, entity_id: str, **kwargs: Any) -> dict[str, Any] | None:
        answer = await super().get_temporal(tenant, entity_id, **kwargs)
        if answer is None or self.horizon is None:
            return None
        kept: dict[str, Any] = {"id": answer["id"], "type": answer.get("type")}
        for name, attribute in parse_temporal_entity(answer).attributes.items():
            instances = [
                dict(i.members)
                for i in attribute.instances
                if i.observed_at is not None and i.observed_at <= self.horizon
            ]
            if instances:
                kept[name] = instances
        return kept


class NoTemporalApi(NgsiLdClient):
    """Orion-LD without Mintaka: the temporal API answers 501."""

    async def get_temporal(self, tenant: str | None, entity_id: str, **kwargs: Any) -> dict[str, Any] | None:
        raise BrokerUnavailable("temporal retrieval: HTTP 501 OperationNotSupported", status=501)


@pytest.fixture
async def broker_url() -> AsyncIterator[str]:
    server = TestServer(create_broker_app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = NgsiLdClient(str(server.make_url("")), session)
            for n in range(3):  # three uplinks, each its own batch, as the writer sends them
                outcome = await client.batch_upsert(TENANT, [entity(n)])
                assert outcome.status in (201, 204), outcome
        yield str(server.make_url(""))
    finally:
        await server.close()


async def read(
    client_class: type[NgsiLdClient], url: str, n: int, horizon: datetime | None = None
) -> BrokerValue | None:
    async with aiohttp.ClientSession() as session:
        client = client_class(url, session)
        if isinstance(client, LaggingHistory):
            client.horizon = horizon
        return await read_broker(client, {}, TENANT, ENTITY, "no2", observed(n))


async def test_a_value_the_history_holds_is_read_from_it(broker_url: str) -> None:
    found = await read(NgsiLdClient, broker_url, 1)

    assert found is not None and found.pending is None
    assert found.attribute is not None and found.attribute["value"] == 31.0
    assert found.link == f"urn:ngsild-adapter:{TENANT}:uplink:1"


async def test_a_superseded_value_not_yet_in_the_history_is_pending_with_the_reason(broker_url: str) -> None:
    found = await read(LaggingHistory, broker_url, 1, horizon=observed(0))

    assert found is not None and found.attribute is None and found.link is None
    assert found.pending is not None
    assert "does not hold no2" in found.pending and "(yet)" in found.pending
    assert iso(observed(2)) in found.pending  # the newer value the entity already has


async def test_once_the_history_catches_up_the_same_value_is_read(broker_url: str) -> None:
    before = await read(LaggingHistory, broker_url, 1, horizon=observed(0))
    after = await read(LaggingHistory, broker_url, 1, horizon=observed(2))

    assert before is not None and before.pending is not None
    assert after is not None and after.pending is None
    assert after.attribute is not None and after.attribute["value"] == 31.0


async def test_a_history_without_the_entity_yet_is_pending_too(broker_url: str) -> None:
    found = await read(LaggingHistory, broker_url, 0, horizon=None)

    assert found is not None and found.pending is not None


async def test_the_latest_value_is_read_from_the_current_entity_while_the_history_lags(broker_url: str) -> None:
    found = await read(LaggingHistory, broker_url, 2, horizon=None)

    assert found is not None and found.pending is None
    assert found.attribute is not None and found.attribute["value"] == 32.0


async def test_without_a_temporal_api_a_superseded_value_is_pending_and_says_why(broker_url: str) -> None:
    superseded = await read(NoTemporalApi, broker_url, 0)
    latest = await read(NoTemporalApi, broker_url, 2)

    assert superseded is not None and superseded.pending is not None and "501" in superseded.pending
    assert latest is not None and latest.attribute is not None and latest.attribute["value"] == 32.0


async def test_a_value_never_sent_is_not_pending(broker_url: str) -> None:
    found = await read(LaggingHistory, broker_url, 7, horizon=observed(2))  # later than anything held

    assert found is not None and found.attribute is None and found.pending is None


# -- what the verifier answers ------------------------------------------------------------------


class _Evidence:
    """Evidence with one record (no log, no key): enough to see the record and value checks."""

    def __init__(self, broker: BrokerValue | None) -> None:
        self.broker = broker

    async def record_text(self, tenant: str, index: int) -> str | None:
        at = iso(observed(1))
        return json.dumps(
            {
                "recordType": "uplink",
                "observedAt": at,
                "device": {"devEui": "70b3d57ed0001a01"},
                "entities": [{"id": ENTITY, "attributes": {"no2": {"value": 31, "unitCode": "GQ"}}}],
                "chain": {"seq": 0, "prev": None},
            }
        )

    async def chain_record_text(self, tenant: str, dev_eui: str, seq: int) -> str | None:
        return None

    async def chain_length(self, tenant: str, dev_eui: str) -> int:
        return 1

    async def leaf(self, tenant: str, index: int) -> bytes | None:
        return None

    async def signed_checkpoint(self, tenant: str) -> bytes | None:
        return None

    async def inclusion_proof(self, tenant: str, index: int, size: int) -> Sequence[bytes]:
        return []

    async def verifier_key(self, tenant: str) -> NoteVerifier | None:
        return None

    async def broker_value(self, tenant: str, entity_id: str, attribute: str, at: datetime) -> BrokerValue | None:
        return self.broker

    async def index_check(self, tenant: str, index: int, record: dict[str, Any]) -> Check | None:
        return None


def statuses(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.status for c in checks}


async def test_the_verifier_says_pending_not_failed_when_the_record_must_come_from_a_lagging_history() -> None:
    lagging = BrokerValue(None, None, pending="the broker's history does not hold no2 ... (yet)")

    result = await verify_value(_Evidence(lagging), TENANT, ENTITY, "no2", observed(1))  # type: ignore[arg-type]

    assert statuses(result.checks) == {"record": "pending"}
    assert "(yet)" in result.checks[0].detail
    assert not result.holds


async def test_the_verifier_says_pending_for_the_value_of_a_known_record_the_history_lacks() -> None:
    lagging = BrokerValue(None, None, pending="the broker's history does not hold no2 ... (yet)")

    result = await verify_value(_Evidence(lagging), TENANT, ENTITY, "no2", observed(1), record=1)  # type: ignore[arg-type]

    assert statuses(result.checks)["value"] == "pending"
    assert not result.holds


async def test_a_value_the_broker_holds_differently_still_fails() -> None:
    changed = BrokerValue({"type": "Property", "value": 99.0, "unitCode": "GQ"}, None)

    result = await verify_value(_Evidence(changed), TENANT, ENTITY, "no2", observed(1), record=1)  # type: ignore[arg-type]

    assert statuses(result.checks)["value"] == "failed"


async def test_a_value_the_broker_does_not_have_and_cannot_come_still_fails() -> None:
    result = await verify_value(_Evidence(BrokerValue(None, None)), TENANT, ENTITY, "no2", observed(1), record=1)  # type: ignore[arg-type]

    assert statuses(result.checks)["value"] == "failed"
