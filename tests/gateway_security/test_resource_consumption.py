"""API4, unrestricted resource consumption: every size a partner chooses is bounded, and past a
bound the request is refused by name before any work (no broker read, no decoder recursion);
nothing a partner sends makes the gateway fail. Slow clients are the servers' limits
(``adapter.httpserver``, tests/http_limits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.gateway.parse import MAX_BODY_BYTES
from tests.gateway_security.support import ENTITIES, TEMPORAL, TYPE, as_, attacked, subscribing, subscription

LONG_Q = ";".join(["no2>1"] * 700)  # past the grammar's 4,096 characters, within a request line
DEEP_Q = "".join("(no2>1" + (";" if i % 2 else "|") for i in range(40)) + "no2>1" + ")" * 40  # 40 levels


@pytest.mark.parametrize("params,named", [
    ({"q": LONG_Q}, "q"),
    ({"q": DEEP_Q}, "q"),
    ({"q": "no2==" + ",".join(str(i) for i in range(1200))}, "q"),
    ({"id": ",".join(f"urn:ngsi-ld:AirQualityObserved:region:s{i}" for i in range(101))}, "id"),
    ({"idPattern": "(a+)+" * 60}, "idPattern"),
    ({"limit": "100000"}, "limit"), ({"limit": "0"}, "limit"), ({"offset": "-1"}, "offset"),
    ({"offset": "99999999999"}, "offset"), ({"limit": "1e3"}, "limit"), ({"limit": "0x10"}, "limit"),
    ({"attrs": ",".join(f"a{i}" for i in range(300))}, "attrs"),
    ({"coordinates": "[" * 50 + "]" * 50, "georel": "within", "geometry": "Polygon"}, "coordinates"),
])
async def test_a_size_past_its_bound_is_refused_by_name(tmp_path: Path, params: dict[str, str], named: str) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(ENTITIES, params={"type": TYPE, **params}, headers=as_("schools"))
        assert answer.status == 400, (named, await answer.text())
        assert (await answer.json())["detail"].startswith(f"{named}:")


async def test_a_request_line_past_the_servers_limit_is_refused(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(ENTITIES, params={"type": TYPE, "q": ";".join(["no2>1"] * 3000)},
                                      headers=as_("schools"))
        assert answer.status in (400, 414)


@pytest.mark.parametrize("params", [{"lastN": "1000000"}, {"lastN": "-1"},
                                    {"timerel": "between", "timeAt": "2026-11-20T00:00:00Z",
                                     "endTimeAt": "2026-11-19T00:00:00Z"},
                                    {"timerel": "after", "timeAt": "yesterday"}, {"timeAt": "2026-11-20T00:00:00"}])
async def test_temporal_bounds(tmp_path: Path, params: dict[str, str]) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(TEMPORAL, params={"type": TYPE, **params}, headers=as_("schools"))
        assert answer.status == 400


async def test_an_official_cannot_ask_for_unbounded_cells(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        for params in ({}, {"timerel": "after", "timeAt": "1900-01-01T00:00:00Z"}):
            answer = await world.http.get(TEMPORAL, params={"type": TYPE, **params}, headers=as_("official", "region"))
            assert answer.status == 400 and "periods" in (await answer.json())["detail"], await answer.text()


@pytest.mark.parametrize("body", [
    b"[" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b"{" + b'"x":1,' * 20_000 + b'"y":2}',
    b"\xff\xfe", b'{"type": "Subscription", "entities": [{"type": "AirQualityObserved"}], "q": "' + b"a" * 5000 + b'"}',
    b'{"type":"Subscription","entities":[' + b'{"type":"AirQualityObserved"},' * 200 + b'{"type":"AirQualityObserved"}]}',
])
async def test_hostile_bodies_are_refused_never_a_failure(tmp_path: Path, body: bytes) -> None:
    async with attacked(tmp_path, **subscribing()) as world:
        for path in ("/ngsi-ld/v1/subscriptions", "/ngsi-ld/v1/entityOperations/query"):
            answer = await world.http.post(path, data=body, headers={**as_("schools"), "Content-Type": "application/json"})
            assert answer.status in (400, 413), (path, answer.status, await answer.text())
        big = await world.http.post("/ngsi-ld/v1/subscriptions", headers=as_("schools"),
                                    json=subscription(description="x" * (MAX_BODY_BYTES + 1)))
        assert big.status == 413
