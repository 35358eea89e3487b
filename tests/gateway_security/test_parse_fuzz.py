"""Crash-freedom of the gateway's edge: whatever query parameters, headers, tenants, paths and
bodies a client sends, parsing gives a typed request or a ``BadRequest`` naming what is wrong,
never another exception (which would be a 500 and, in a background task, a stopped process)."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, MultiDict

from adapter.gateway import parse
from adapter.gateway.parse import BadRequest

PROFILE = settings(max_examples=300, derandomize=True, deadline=None)
TENANTS = frozenset({"region", "ville"})
CONTEXTS = {
    "AirQualityObserved": "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/"
    "context.jsonld"
}
NAMES = [
    "type",
    "id",
    "idPattern",
    "q",
    "attrs",
    "pick",
    "omit",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "limit",
    "offset",
    "count",
    "options",
    "format",
    "timerel",
    "timeAt",
    "endTimeAt",
    "timeproperty",
    "lastN",
    "aggrMethods",
    "aggrPeriodDuration",
    "entity",
    "attr",
    "observedAt",
    "value",
    "index",
    "size",
    "old",
    "tenant",
    "since",
    "until",
    "query",
    "default-graph-uri",
    "x",
]
_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "AirQualityObserved",
            "no2>1",
            "near;maxDistance==10",
            "Point",
            "[1,2]",
            "[[[0,0],[1,0],[1,1],[0,0]]]",
            "true",
            "2026-11-20T00:00:00Z",
            "0001-01-01T00:00:00+05:00",
            "keyValues,sysAttrs",
            "urn:ngsi-ld:AirQualityObserved:x",
            "between",
            "observedAt",
            "avg",
            "P1D",
            "-1",
            "1e9",
            "%2F..",
            "\x00",
            "é" * 30,
        ]
    ),
)
_params = st.lists(st.tuples(st.sampled_from(NAMES), _values), max_size=8).map(MultiDict)
_headers = st.lists(
    st.tuples(
        st.sampled_from(["NGSILD-Tenant", "NGSILD-Purpose", "Link", "Accept"]),
        st.one_of(st.text(max_size=30), st.sampled_from(["region", "ville", "*/*", "application/ld+json"])),
    ),
    max_size=5,
).map(CIMultiDict)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
_bodies = st.one_of(
    st.binary(max_size=200),
    _json.map(orjson.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["Subscription", "Query"]), "entities": st.just([{"type": "AirQualityObserved"}])},
        optional={
            "q": st.text(max_size=20),
            "geoQ": _json,
            "notification": _json,
            "watchedAttributes": _json,
            "attrs": _json,
            "temporalQ": _json,
        },
    ).map(orjson.dumps),
)


def _never_else(call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except BadRequest:
        pass


@PROFILE
@given(params=_params, headers=_headers)
def test_query_parameters_and_headers(params: MultiDict[str], headers: CIMultiDict[str]) -> None:
    h = parse.Headers(headers, TENANTS)
    for call in (
        lambda: parse.entity_query(params, h, CONTEXTS),
        lambda: parse.temporal_query(params, h, CONTEXTS),
        lambda: parse.entity_retrieval("urn:ngsi-ld:AirQualityObserved:x", params, h, CONTEXTS),
        lambda: parse.temporal_retrieval("urn:ngsi-ld:AirQualityObserved:x", params, h, CONTEXTS),
        lambda: parse.value_provenance_request("lineage", "region", params, h),
        lambda: parse.log_request("inclusion", "region", None, params, h),
        lambda: parse.access_log_request(params, h),
        lambda: parse.sparql_request("GET", "", params, b"", h),
    ):
        _never_else(call)


@PROFILE
@given(body=_bodies, headers=_headers, params=_params)
def test_bodies(body: bytes, headers: CIMultiDict[str], params: MultiDict[str]) -> None:
    h = parse.Headers(CIMultiDict({**headers, "NGSILD-Tenant": "region"}), TENANTS)
    for call in (
        lambda: parse.subscription_request(parse.json_body(body), h, CONTEXTS),
        lambda: parse.entity_query_body(body, params, h, CONTEXTS, temporal=False),
        lambda: parse.entity_query_body(body, params, h, CONTEXTS, temporal=True),
        lambda: parse.sparql_request("POST", "application/x-www-form-urlencoded", params, body, h),
        lambda: parse.sparql_request("POST", "application/sparql-query", params, body, h),
    ):
        _never_else(call)


@PROFILE
@given(
    tenant=st.text(max_size=60),
    rest=st.text(max_size=60),
    kind=st.sampled_from(["tile", "checkpoint", "key"]),
    match=st.dictionaries(st.sampled_from(["n", "dev_eui", "seq"]), st.text(max_size=25)),
)
def test_path_components(tenant: str, rest: str, kind: str, match: dict[str, str]) -> None:
    h = parse.Headers(CIMultiDict(), TENANTS)
    _never_else(lambda: parse.log_request(kind, tenant, rest, MultiDict(), h))
    _never_else(lambda: parse.record_request("device-record", tenant, match, MultiDict(), h))
    _never_else(lambda: parse.subscription_id(rest))
    _never_else(
        lambda: parse.entity_retrieval(
            rest, MultiDict(), parse.Headers(CIMultiDict({"NGSILD-Tenant": tenant}), TENANTS), CONTEXTS
        )
    )
