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


@pytest.mark.parametrize(
    "params,named",
    [
        ({"q": LONG_Q}, "q"),
        ({"q": DEEP_Q}, "q"),
        ({"q": "no2==" + ",".join(str(i) for i in range(1200))}, "q"),
        ({"id": ",".join(f"urn:ngsi-ld:AirQualityObserved:region:s{i}" for i in range(101))}, "id"),
        ({"idPattern": "(a+)+" * 60}, "idPattern"),
        ({"limit": "100000"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "99999999999"}, "offset"),
        ({"limit": "1e3"}, "limit"),
        ({"limit": "0x10"}, "limit"),
        ({"attrs": ",".join(f"a{i}" for i in range(300))}, "attrs"),
        ({"coordinates": "[" * 50 + "]" * 50, "georel": "within", "geometry": "Polygon"}, "coordinates"),
    ],
)
async def test_a_size_past_its_bound_is_refused_by_name(tmp_path: Path, params: dict[str, str], named: str) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(ENTITIES, params={"type": TYPE, **params}, headers=as_("schools"))
        assert answer.status == 400, (named, await answer.text())
        assert (await answer.json())["detail"].startswith(f"{named}:")


async def test_a_request_line_past_the_servers_limit_is_refused(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(
            ENTITIES, params={"type": TYPE, "q": ";".join(["no2>1"] * 3000)}, headers=as_("schools")
        )
        assert answer.status in (400, 414)


@pytest.mark.parametrize(
    "params",
    [
        {"lastN": "1000000"},
        {"lastN": "-1"},
        {"timerel": "between", "timeAt": "2026-11-20T00:00:00Z", "endTimeAt": "2026-11-19T00:00:00Z"},
        {"timerel": "after", "timeAt": "yesterday"},
        {"timeAt": "2026-11-20T00:00:00"},
    ],
)
async def test_temporal_bounds(tmp_path: Path, params: dict[str, str]) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(TEMPORAL, params={"type": TYPE, **params}, headers=as_("schools"))
        assert answer.status == 400


async def test_an_official_cannot_ask_for_unbounded_cells(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        for params in ({}, {"timerel": "after", "timeAt": "1970-01-01T00:00:00Z"}):
            answer = await world.http.get(TEMPORAL, params={"type": TYPE, **params}, headers=as_("official", "region"))
            assert answer.status == 400 and "periods" in (await answer.json())["detail"], await answer.text()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"{" + b'"x":1,' * 20_000 + b'"y":2}',
        b"\xff\xfe",
        b'{"type": "Subscription", "entities": [{"type": "AirQualityObserved"}], "q": "' + b"a" * 5000 + b'"}',
        b'{"type":"Subscription","entities":['
        + b'{"type":"AirQualityObserved"},' * 200
        + b'{"type":"AirQualityObserved"}]}',
    ],
)
async def test_hostile_bodies_are_refused_never_a_failure(tmp_path: Path, body: bytes) -> None:
    async with attacked(tmp_path, **subscribing()) as world:
        for path in ("/ngsi-ld/v1/subscriptions", "/ngsi-ld/v1/entityOperations/query"):
            answer = await world.http.post(
                path, data=body, headers={**as_("schools"), "Content-Type": "application/json"}
            )
            assert answer.status in (400, 413), (path, answer.status, await answer.text())
        big = await world.http.post(
            "/ngsi-ld/v1/subscriptions",
            headers=as_("schools"),
            json=subscription(description="x" * (MAX_BODY_BYTES + 1)),
        )
        assert big.status == 413


@pytest.mark.parametrize(
    "pattern", ["^([\\w:-]+)+!", "(a+)+$", "(a|aa)*b", ".*.*.*x", "a{1,99}", "[a-z]*x", "\\d+", "(?=a)", "\\1"]
)
async def test_a_pattern_that_could_backtrack_at_the_broker_is_refused(tmp_path: Path, pattern: str) -> None:
    async with attacked(tmp_path, **subscribing()) as world:
        http = world.http
        by_id = await http.get(ENTITIES, params={"type": TYPE, "idPattern": pattern}, headers=as_("schools"))
        assert by_id.status == 400 and (await by_id.json())["detail"].startswith("idPattern:")
        in_q = await http.get(ENTITIES, params={"type": TYPE, "q": f'no2~="{pattern}"'}, headers=as_("schools"))
        assert in_q.status == 400
        subscribed = await http.post(
            "/ngsi-ld/v1/subscriptions",
            headers=as_("schools"),
            json=subscription(entities=[{"type": TYPE, "idPattern": pattern}]),
        )
        assert subscribed.status == 400
    async with attacked(tmp_path / "again") as world:  # the bounded subset still answers
        fine = await world.http.get(
            ENTITIES, params={"type": TYPE, "idPattern": ".*sensor[01]$"}, headers=as_("schools")
        )
        assert fine.status == 200 and len(await fine.json()) == 2


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1969-12-31T23:59:59Z"])
async def test_an_instant_out_of_range_is_refused_not_a_failure(tmp_path: Path, moment: str) -> None:
    async with attacked(tmp_path) as world:
        for who, params in (
            ("schools", {"timerel": "before", "timeAt": moment}),
            ("official", {"timerel": "after", "timeAt": moment}),
        ):
            answer = await world.http.get(TEMPORAL, params={"type": TYPE, **params}, headers=as_(who))
            assert answer.status == 400, await answer.text()


async def test_one_request_computes_a_bounded_number_of_periods_the_rest_is_pending(tmp_path: Path) -> None:
    from adapter.gateway.cells import MAX_COMPUTED_PER_REQUEST

    async with attacked(tmp_path) as world:
        window = {
            "type": TYPE,
            "timerel": "between",
            "timeAt": "2026-09-01T00:00:00Z",
            "endTimeAt": "2026-11-22T00:00:00Z",
            "attrs": "no2",
        }
        first = await (await world.http.get(TEMPORAL, params=window, headers=as_("official"))).json()
        statuses = [c["status"] for c in first[0]["no2"]["cells"]]
        assert statuses.count("pending") == len(statuses) - MAX_COMPUTED_PER_REQUEST
        second = await (await world.http.get(TEMPORAL, params=window, headers=as_("official"))).json()
        assert [c["status"] for c in second[0]["no2"]["cells"]].count("pending") < statuses.count("pending")


async def test_an_id_list_in_a_retrieval_is_not_an_id(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        path = "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:region:sensor9,urn:ngsi-ld:AirQualityObserved:region:sensor1"
        assert (await world.http.get(path, headers=as_("schools"))).status == 400
        control = "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:region:sensor1%7F"
        assert (await world.http.get(control, headers=as_("schools"))).status == 400
