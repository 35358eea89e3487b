"""API1, broken object-level authorization: a partner reaches only the objects its agreements
name (a collectivity's entities, its own subscriptions, records and access logs of the
collectivities that opened them), whichever identifier or tenant it sends; a tenant that is not
a configured collectivity never reaches a decision nor the access log."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.access.log import NO_TENANT
from tests.gateway_security.support import ENTITIES, SENSOR, TYPE, as_, attacked, subscribing, subscription


async def test_another_collectivity_is_denied_and_its_ids_are_not_found(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        http = world.http
        ville = "urn:ngsi-ld:AirQualityObserved:ville:sensor0"
        assert (await http.get(ENTITIES, params={"type": TYPE}, headers=as_("schools", "ville"))).status == 403
        assert (await http.get(f"{ENTITIES}/{ville}", headers=as_("schools", "ville"))).status == 403
        # the city's entity asked under the region's agreement: the region's data has no such id
        assert (await http.get(f"{ENTITIES}/{ville}", headers=as_("schools", "region"))).status == 404
        wrong_type = await http.get(f"{ENTITIES}/{SENSOR.format(0)}", params={"type": "Device"}, headers=as_("schools"))
        assert wrong_type.status == 400  # the id names its type


# (HTTP strips the spaces around a header value: "region " is "region")
@pytest.mark.parametrize(
    "tenant",
    [
        "Region",
        "regi%6Fn",
        "re gion",
        "departement",
        "-",
        "region,ville",
        "ville;region",
        "../region",
        "region/x",
        "é",
        "a" * 60,
    ],
)
async def test_a_tenant_that_is_not_configured_is_refused_and_never_recorded(tmp_path: Path, tenant: str) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(ENTITIES, params={"type": TYPE}, headers=as_("schools", tenant))
        assert answer.status == 400 and "NGSILD-Tenant" in (await answer.json())["detail"]
        assert all(
            r.tenant in ("region", "ville", NO_TENANT)
            for t in ("region", "ville", NO_TENANT)
            for r in world.log.records(t)
        )


async def test_the_tenant_header_is_given_once(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        headers = [("Authorization", "Bearer schools"), ("NGSILD-Tenant", "region"), ("NGSILD-Tenant", "ville")]
        answer = await world.http.get(ENTITIES, params={"type": TYPE}, headers=headers)
        assert answer.status == 400


async def test_someone_elses_subscription_does_not_exist_for_you(tmp_path: Path) -> None:
    async with attacked(tmp_path, **subscribing()) as world:
        http = world.http
        made = await http.post("/ngsi-ld/v1/subscriptions", headers=as_("schools"), json=subscription())
        assert made.status == 201, await made.text()
        location = made.headers["Location"]
        for method in ("GET", "DELETE"):
            other = await http.request(method, location, headers=as_("windowed"))
            assert other.status == 404
        assert await (await http.get("/ngsi-ld/v1/subscriptions", headers=as_("windowed"))).json() == []
        mine = await http.get(location, headers=as_("schools"))
        assert mine.status == 200
        forged = await http.post(
            f"/gateway/notifications/{location.rsplit('/', 1)[-1]}/guessed-secret", json={"data": []}
        )
        assert forged.status == 404
        not_an_id = await http.get("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:x", headers=as_("schools"))
        assert not_an_id.status == 400


async def test_records_and_access_logs_of_others_are_refused_and_recorded_under_the_right_tenant(
    tmp_path: Path,
) -> None:
    async with attacked(tmp_path, adapter_url="http://127.0.0.1:9") as world:
        http = world.http
        for path in (
            "/provenance/region/uplinks/0",
            "/provenance/region/uplinks/0/record",
            "/provenance/region/devices/0011223344556677",
            "/provenance/region/devices/0011223344556677/records/0",
        ):
            answer = await http.get(path, headers=as_("schools"))
            assert answer.status == 403, path
        refused = [r for r in world.log.records("region") if r.outcome == "refused"]
        assert len(refused) == 4 and all(r.organization == "ville" for r in refused)
        assert world.log.records("ville") == []
        log = await http.get("/gateway/access", params={"tenant": "region"}, headers=as_("schools"))
        assert log.status == 403
        unknown = await http.get("/gateway/access", params={"tenant": "departement"}, headers=as_("schools"))
        assert unknown.status == 400


async def test_the_owner_pages_back_through_its_access_log(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from adapter.access.log import AccessLog
    from adapter.access.model import AccessRequest, Action, Principal
    from tests.gateway_security import support

    clock = iter(float(t) for t in range(1_000, 2_000))
    log = AccessLog(":memory:", tenants=["region"], clock=lambda: next(clock))
    who = support.PRINCIPALS["schools"]
    for _ in range(5):  # at 1000, 1001, ... 1004
        log.record(who, AccessRequest(Action.READ, "region", TYPE), outcome="permitted", reason="", path="/x")
    page = log.records("region", until=datetime.fromtimestamp(1003, UTC), limit=2)
    assert [r.at.timestamp() for r in page] == [1002.0, 1001.0]  # newest first, before the cut
    log.close()

    admin = Principal("https://kc/realms/region", "sub-admin", "region", frozenset({"data-admin"}))
    support.PRINCIPALS["regionadmin"] = admin
    try:
        async with attacked(tmp_path) as world:
            await world.http.get(ENTITIES, params={"type": TYPE}, headers=as_("schools"))
            headers = as_("regionadmin")
            recent = await world.http.get(
                "/gateway/access", params={"tenant": "region", "since": "2000-01-01T00:00:00Z"}, headers=headers
            )
            old = await world.http.get(
                "/gateway/access", params={"tenant": "region", "until": "2000-01-01T00:00:00Z"}, headers=headers
            )
            activities = [
                [n for n in (await a.json())["@graph"] if "prov:Activity" in n.get("@type", [])] for a in (recent, old)
            ]
            assert [len(a) for a in activities] == [1, 0]
            bad = await world.http.get(
                "/gateway/access", params={"tenant": "region", "until": "yesterday"}, headers=headers
            )
            assert bad.status == 400
    finally:
        del support.PRINCIPALS["regionadmin"]
