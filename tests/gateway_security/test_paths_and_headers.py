"""API8, security misconfiguration: no path the gateway serves can be turned into another one.

Each route maps to a fixed upstream path built from validated components; encoded slashes,
backslashes and dots, dot segments and empty segments are refused before any route runs; the
published logs forward only the C2SP resources, with canonical tile paths. The adapter's own
``/metrics``, ``/sparql`` of every graph, and records of another collectivity are out of reach
of every form below, with or without a token. The upstream side is checked too: a stand-in
adapter records every path it is asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from tests.gateway_security.support import ENTITIES, TYPE, as_, attacked

HOSTILE_PATHS = [
    "/logs/region%2F..%2F..%2Fmetrics",
    "/logs/region/..%2F..%2Fmetrics",
    "/logs/region/tile/..%2F..%2Fsparql",
    "/logs/region/%2e%2e/%2e%2e/metrics",
    "/logs/region/tile/0/x001/../../../../metrics",
    "/logs/..%2Fprovenance%2Fville%2Fuplinks%2F0/checkpoint",
    "/logs/region%5c..%5cmetrics",
    "/logs/region/tile/0/000%252F..",
    "/provenance/region%2F..%2Fville/uplinks/0",
    "/provenance/ville/uplinks/0%2Frecord",
    "/provenance/region/lineage/..%2F..%2Fsparql",
    "/logs//region/checkpoint",
    "/logs/region/./checkpoint",
    "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:region:sensor0%2F..%2F..%2F..%2Fmetrics",
    "/logs/region/tile/0/1",
    "/logs/region/tile/entries/x1/000",
    "/logs/region/tile/0/000.p/0",
    "/logs/region/tile/0/000.p/256",
    "/logs/departement/checkpoint",
    "/logs/Region/checkpoint",
    "/logs/region/proof/inclusion?index=-1&size=2",
    "/logs/region/proof/inclusion?index=0&size=2&extra=1",
    "/logs/region/checkpoint?x=1",
    "/metrics",
    "/sparql/../metrics",
    "/.well-known/../metrics",
]


@pytest.fixture
async def adapter() -> AsyncIterator[tuple[str, list[str]]]:
    """A stand-in for ``ngsild-adapter serve`` that records the raw paths it is asked."""
    asked: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        asked.append(request.raw_path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/"), asked


@pytest.mark.parametrize("path", HOSTILE_PATHS)
async def test_no_form_of_a_path_reaches_anything_but_its_own_resource(
    tmp_path: Path, adapter: tuple[str, list[str]], path: str
) -> None:
    url, asked = adapter
    async with attacked(tmp_path, adapter_url=url) as world:
        raw = URL(str(world.http.make_url("")).rstrip("/") + path, encoded=True)  # sent as written, not normalised
        for headers in ({}, as_("schools")):
            answer = await world.http.session.get(raw, headers=headers)
            assert answer.status in (400, 401, 403, 404, 405), (path, answer.status, await answer.text())
    assert not [p for p in asked if not p.startswith("/logs/region/") or ".." in p or "metrics" in p], asked


async def test_the_published_resources_are_forwarded_as_their_canonical_paths(
    tmp_path: Path, adapter: tuple[str, list[str]]
) -> None:
    url, asked = adapter
    async with attacked(tmp_path, adapter_url=url) as world:
        for path in (
            "/logs/region/checkpoint",
            "/logs/region/key",
            "/logs/region/tile/0/x001/234",
            "/logs/region/tile/entries/000.p/7",
            "/logs/region/proof/inclusion?index=1&size=4",
            "/.well-known/jwks.json",
        ):
            assert (await world.http.get(path)).status == 200, path
    assert asked == [
        "/logs/region/checkpoint",
        "/logs/region/key",
        "/logs/region/tile/0/x001/234",
        "/logs/region/tile/entries/000.p/7",
        "/logs/region/proof/inclusion?index=1&size=4",
        "/.well-known/jwks.json",
    ]


@pytest.mark.parametrize(
    "link",
    [
        '<https://example.org/evil.jsonld>; rel="http://www.w3.org/ns/json-ld#context"',
        '<https://example.org/evil.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; x="<https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld>"',
        '<https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld>, <https://example.org/evil.jsonld>; rel="http://www.w3.org/ns/json-ld#context"',
        '<https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld>; rel="other"',
        "not a link",
    ],
)
async def test_a_client_context_other_than_the_types_is_refused(tmp_path: Path, link: str) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(ENTITIES, params={"type": TYPE}, headers=as_("schools", Link=link))
        assert answer.status == 400, link


@pytest.mark.parametrize(
    "accept,status",
    [
        ("application/json", 200),
        ("application/ld+json", 200),
        ("*/*", 200),
        ("text/html", 406),
        ("application/ld+json;q=0, text/html", 406),
        ("application/xml, application/json;q=0.1", 200),
    ],
)
async def test_the_answer_format_is_one_the_gateway_renders(tmp_path: Path, accept: str, status: int) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(ENTITIES, params={"type": TYPE}, headers=as_("schools", Accept=accept))
        assert answer.status == status
        if status == 200 and "ld+json" in answer.headers["Content-Type"]:
            assert all("@context" in e for e in await answer.json())


async def test_an_unknown_parameter_or_a_repeated_one_is_refused_by_name(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        for params in (
            {"type": TYPE, "scopeQ": "/a"},
            {"type": TYPE, "lang": "fr"},
            {"type": TYPE, "local": "true"},
            {"type": TYPE, "csf": "x"},
            {"type": TYPE, "datasetId": "urn:x"},
            {"type": TYPE, "join": "flat"},
            [("type", TYPE), ("q", "no2>1"), ("q", "temperature>1")],
            [("type", TYPE), ("type", "Device")],
        ):
            answer = await world.http.get(ENTITIES, params=params, headers=as_("schools"))
            assert answer.status == 400, params
            detail = (await answer.json())["detail"]
            name = params[-1][0] if isinstance(params, list) else next(k for k in params if k != "type")
            assert detail.startswith(f"{name}:"), detail
