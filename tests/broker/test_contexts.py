"""@context handling: where the context comes from, downloads, expansion and compaction (note, section 4)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyld import jsonld

from adapter.ngsild.broker.jsonld import ContextResolver, HttpContextLoader
from adapter.ngsild.broker.payload import normalize_entity
from adapter.ngsild.broker.render import render_entity
from adapter.ngsild.broker.store import StoredEntity
from adapter.ngsild.contexts import document_loader, load_context

from tests.broker.helpers import ADAPTER_CONTEXT, CORE, ERRORS, SDM, SDM_ENVIRONMENT, air_quality, link, problem

AQ = "urn:ngsi-ld:AirQualityObserved:ville:0001"


class ContextServer:
    """Serves JSON-LD context documents on 127.0.0.1 and counts the downloads."""

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.documents: dict[str, Any] = {}
        self.downloads: list[str] = []

    def url(self, name: str) -> str:
        return str(self.server.make_url(f"/{name}"))


@pytest.fixture
async def contexts() -> AsyncIterator[ContextServer]:
    app = web.Application()
    holder: list[ContextServer] = []

    async def serve(request: web.Request) -> web.Response:
        served = holder[0]
        name = request.match_info["name"]
        served.downloads.append(name)
        if name not in served.documents:
            return web.Response(status=404)
        document = served.documents[name]
        return web.Response(
            text=document if isinstance(document, str) else json.dumps(document), content_type="application/ld+json"
        )

    app.router.add_get("/{name}", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    holder.append(ContextServer(server))
    yield holder[0]
    await server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/context.jsonld"


async def test_entities_with_body_contexts_are_stored_expanded(client: TestClient) -> None:
    response = await client.post(
        "/ngsi-ld/v1/entities",
        data=json.dumps(air_quality(1, context=True)),
        headers={"Content-Type": "application/ld+json"},
    )
    assert response.status == 201
    assert "Link" not in response.headers

    short = await (
        await client.get(
            f"/ngsi-ld/v1/entities/{AQ}",
            headers=link(SDM_ENVIRONMENT),
            params={"attrs": "temperature,location", "options": "keyValues"},
        )
    ).json()
    long = await (
        await client.get(
            f"/ngsi-ld/v1/entities/{AQ}", params={"attrs": f"{SDM}temperature,location", "options": "keyValues"}
        )
    ).json()

    assert short == {
        "id": AQ,
        "type": "AirQualityObserved",
        "temperature": 11.2,
        "location": {"type": "Point", "coordinates": [-1.6794, 48.1109]},
    }
    assert long == {
        "id": AQ,
        "type": f"{SDM}AirQualityObserved",
        f"{SDM}temperature": 11.2,
        "location": {"type": "Point", "coordinates": [-1.6794, 48.1109]},
    }


async def test_json_ld_answers_list_the_user_context_then_the_core(client: TestClient) -> None:
    await client.post(
        "/ngsi-ld/v1/entities", headers=link(SDM_ENVIRONMENT), json={"id": AQ, "type": "AirQualityObserved", "no2": 40}
    )

    response = await client.get(
        "/ngsi-ld/v1/entities",
        params={"type": "AirQualityObserved"},
        headers={**link(SDM_ENVIRONMENT), "Accept": "application/ld+json"},
    )

    assert response.content_type == "application/ld+json"
    assert await response.json() == [
        {
            "id": AQ,
            "type": "AirQualityObserved",
            "no2": {"type": "Property", "value": 40},
            "@context": [SDM_ENVIRONMENT, CORE],
        }
    ]


async def test_names_of_the_default_context_always_come_back_short(client: TestClient) -> None:
    await client.post("/ngsi-ld/v1/entities", json={"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "colour": "red"})

    response = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1", headers=link(SDM_ENVIRONMENT))

    assert await response.json() == {
        "id": "urn:ngsi-ld:Thing:1",
        "type": "Thing",
        "colour": {"type": "Property", "value": "red"},
    }


@pytest.mark.parametrize(
    ("content_type", "body", "headers", "title"),
    [
        (
            "application/json",
            {"@context": SDM_ENVIRONMENT},
            {},
            "Mismatch between /Content-Type/ and contents of the request payload body",
        ),
        ("application/ld+json", {}, {}, "@context missing in JSON payload"),
        (
            "application/ld+json",
            {"@context": SDM_ENVIRONMENT},
            link(SDM_ENVIRONMENT),
            "invalid combination of HTTP headers Content-Type and Link",
        ),
        ("application/ld+json", {"@context": 42}, {}, "Invalid @context"),
        ("application/ld+json", {"@context": ""}, {}, "Invalid @context"),
        ("application/ld+json", {"@context": "not a uri"}, {}, "Invalid @context"),
        ("application/ld+json", {"@context": [SDM_ENVIRONMENT, True]}, {}, "Invalid @context"),
    ],
)
async def test_context_source_rules(
    client: TestClient, content_type: str, body: dict[str, Any], headers: dict[str, str], title: str
) -> None:
    entity = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing", **body}

    response = await client.post(
        "/ngsi-ld/v1/entities", data=json.dumps(entity), headers={"Content-Type": content_type, **headers}
    )

    assert response.status == 400
    assert (await problem(response))["title"] == title


async def test_remote_contexts_are_downloaded_once(client: TestClient, contexts: ContextServer) -> None:
    contexts.documents["vehicle.jsonld"] = {
        "@context": {"Vehicle": "http://example.org/Vehicle", "speed": "http://example.org/speed"}
    }
    url = contexts.url("vehicle.jsonld")

    created = await client.post(
        "/ngsi-ld/v1/entities", headers=link(url), json={"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": 50}
    )
    read = await client.get(
        "/ngsi-ld/v1/entities", params={"type": "Vehicle", "options": "keyValues"}, headers=link(url)
    )
    core_only = await client.get(
        "/ngsi-ld/v1/entities", params={"type": "http://example.org/Vehicle", "options": "keyValues"}
    )

    assert created.status == 201
    assert await read.json() == [{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": 50}]
    assert read.headers["Link"] == link(url)["Link"]
    assert await core_only.json() == [
        {"id": "urn:ngsi-ld:Vehicle:1", "type": "http://example.org/Vehicle", "http://example.org/speed": 50}
    ]
    assert contexts.downloads == ["vehicle.jsonld"]


async def test_an_unreachable_context_is_503(client: TestClient, contexts: ContextServer) -> None:
    missing = contexts.url("missing.jsonld")
    closed = closed_port_url()

    via_link = await client.get("/ngsi-ld/v1/entities", params={"type": "T"}, headers=link(closed))
    via_body = await client.post(
        "/ngsi-ld/v1/entities",
        headers={"Content-Type": "application/ld+json"},
        data=json.dumps({"id": "urn:ngsi-ld:T:1", "type": "T", "@context": missing}),
    )

    assert via_link.status == 503
    assert await problem(via_link) == {
        "type": ERRORS + "LdContextNotAvailable",
        "title": "Unable to download context",
        "detail": closed,
    }
    assert via_body.status == 503
    assert (await problem(via_body))["type"] == ERRORS + "LdContextNotAvailable"


async def test_a_downloaded_context_that_is_not_json_is_400(client: TestClient, contexts: ContextServer) -> None:
    contexts.documents["broken.jsonld"] = "{not json"

    response = await client.get(
        "/ngsi-ld/v1/entities", params={"type": "T"}, headers=link(contexts.url("broken.jsonld"))
    )

    assert response.status == 400
    assert (await problem(response))["type"] == ERRORS + "BadRequestData"


async def test_core_terms_win_over_user_terms(client: TestClient) -> None:
    context = {"location": "http://example.org/where", "Thing": "http://example.org/Thing"}

    response = await client.post(
        "/ngsi-ld/v1/entities",
        headers={"Content-Type": "application/ld+json"},
        data=json.dumps(
            {
                "id": "urn:ngsi-ld:Thing:1",
                "type": "Thing",
                "@context": context,
                "location": {"type": "Point", "coordinates": [1, 2]},
            }
        ),
    )
    stored = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1")

    assert response.status == 201
    assert await stored.json() == {
        "id": "urn:ngsi-ld:Thing:1",
        "type": "http://example.org/Thing",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
    }


async def test_vocab_and_prefixes_of_an_inline_context(client: TestClient) -> None:
    context = {"@vocab": "http://example.org/vocab/", "ex": "http://example.org/terms/"}
    entity = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "@context": context, "colour": "red", "ex:size": 3}

    await client.post("/ngsi-ld/v1/entities", data=json.dumps(entity), headers={"Content-Type": "application/ld+json"})
    default = await (
        await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1", params={"options": "keyValues"})
    ).json()

    assert default == {
        "id": "urn:ngsi-ld:Thing:1",
        "type": "http://example.org/vocab/Thing",
        "http://example.org/vocab/colour": "red",
        "http://example.org/terms/size": 3,
    }


async def test_the_same_context_compacts_what_it_expanded(client: TestClient, contexts: ContextServer) -> None:
    contexts.documents["things.jsonld"] = {
        "@context": {"@vocab": "http://example.org/vocab/", "ex": "http://example.org/terms/"}
    }
    url = contexts.url("things.jsonld")

    await client.post(
        "/ngsi-ld/v1/entities",
        headers=link(url),
        json={"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "colour": "red", "ex:size": 3},
    )
    response = await client.get(
        "/ngsi-ld/v1/entities", headers=link(url), params={"type": "Thing", "q": "ex:size==3", "options": "keyValues"}
    )

    assert await response.json() == [{"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "colour": "red", "ex:size": 3}]


async def test_any_core_context_version_is_the_local_core(client: TestClient) -> None:
    v16 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"

    response = await client.get("/ngsi-ld/v1/entities", params={"type": "T"}, headers=link(v16))

    assert response.status == 200


async def test_context_documents_referring_to_other_contexts(client: TestClient, contexts: ContextServer) -> None:
    contexts.documents["outer.jsonld"] = {"@context": [contexts.url("inner.jsonld"), ADAPTER_CONTEXT]}
    contexts.documents["inner.jsonld"] = {"@context": {"Meter": "http://example.org/Meter"}}

    await client.post(
        "/ngsi-ld/v1/entities",
        headers=link(contexts.url("outer.jsonld")),
        json={"id": "urn:ngsi-ld:Meter:1", "type": "Meter", "fCnt": 7},
    )
    stored = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Meter:1", params={"options": "keyValues"})

    assert await stored.json() == {
        "id": "urn:ngsi-ld:Meter:1",
        "type": "http://example.org/Meter",
        "https://w3id.org/ngsild-adapter/ns#fCnt": 7,
    }


# --- @container on attribute terms: the broker compacts what it expanded as pyld does ---

_NS = "http://example.org/ns#"
_IRIS = [_NS + "a", _NS + "b", _NS + "c"]
_TERMS = ["pa", "pb", "pc", "qa", "qbb"]
_DEFINITIONS = st.sampled_from(["plain", "id", "list", "set", "typed"])


def _definition(iri: str, kind: str) -> Any:
    return {
        "plain": iri,
        "id": {"@id": iri},
        "list": {"@id": iri, "@container": "@list"},
        "set": {"@id": iri, "@container": "@set"},
        "typed": {"@id": iri, "@type": "@id"},
    }[kind]


@st.composite
def _contexts(draw: st.DrawFn) -> dict[str, Any]:
    terms = draw(st.lists(st.sampled_from(_TERMS), min_size=1, max_size=4, unique=True))
    context: dict[str, Any] = {term: _definition(draw(st.sampled_from(_IRIS)), draw(_DEFINITIONS)) for term in terms}
    if draw(st.booleans()):
        context["ex"] = _NS
    return context


@st.composite
def _written(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A context and an entity written with it: attribute keys with distinct IRIs."""
    context = draw(_contexts())
    keys: dict[str, str] = {}  # iri -> key naming it
    for term, definition in context.items():
        if term != "ex":
            keys.setdefault(definition if isinstance(definition, str) else definition["@id"], term)
    for iri in _IRIS:
        if iri not in keys and draw(st.booleans()):
            keys[iri] = "ex:" + iri[len(_NS) :] if "ex" in context else iri
    entity: dict[str, Any] = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing"}
    for number, key in enumerate(keys.values()):
        attribute: dict[str, Any] = {"type": "Property", "value": number}
        if draw(st.booleans()):
            sub = draw(st.sampled_from(list(keys.values())))
            attribute[sub] = {"type": "Property", "value": "x"}
        has_container = isinstance(context.get(key), dict) and "@container" in context[key]
        entity[key] = [attribute] if has_container and draw(st.booleans()) else attribute
    return context, entity


def _pyld(entity: dict[str, Any], written: dict[str, Any], read: dict[str, Any]) -> dict[str, Any]:
    options = {"documentLoader": document_loader()}
    expanded = jsonld.expand({"@context": [written, CORE], **entity}, options)
    compacted: dict[str, Any] = jsonld.compact(expanded, [read, CORE], options)
    del compacted["@context"]
    return compacted


def _broker(entity: dict[str, Any], written: dict[str, Any], read: dict[str, Any]) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        resolver = ContextResolver(HttpContextLoader())
        stored = normalize_entity(entity, await resolver.resolve(written))
        assert stored.type is not None
        entity_now = StoredEntity(
            stored.id, stored.type, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z", stored.attrs
        )
        return render_entity(entity_now, await resolver.resolve(read))

    return asyncio.run(run())


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_written(), read=_contexts())
def test_containers_expand_and_compact_as_pyld_does(
    case: tuple[dict[str, Any], dict[str, Any]], read: dict[str, Any]
) -> None:
    written, entity = case
    assert not set(_TERMS) & set(load_context(CORE)["@context"])

    assert _broker(entity, written, read) == _pyld(entity, written, read)
    assert _broker(entity, written, written) == _pyld(entity, written, written)


async def test_an_attribute_under_a_list_term_comes_back_as_a_processor_compacts_it(client: TestClient) -> None:
    # the old project context declared validRange with "@container": "@list": what was written
    # with it stays a list, under any context (Scorpio answered the same)
    listed = {"validRange": {"@id": "https://w3id.org/ngsild-adapter/ns#validRange", "@container": "@list"}}
    body = {
        "id": "urn:ngsi-ld:Thing:1",
        "type": "Thing",
        "@context": listed,
        "validRange": {"type": "Property", "value": [-40, 60]},
    }

    created = await client.post(
        "/ngsi-ld/v1/entities", data=json.dumps(body), headers={"Content-Type": "application/ld+json"}
    )
    core_only = await (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1")).json()
    fixed = await (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1", headers=link(ADAPTER_CONTEXT))).json()

    assert created.status == 201
    attribute = {"type": "Property", "value": [-40, 60]}
    assert core_only["https://w3id.org/ngsild-adapter/ns#validRange"] == {"@list": [attribute]}
    assert (
        fixed
        == _pyld({k: v for k, v in body.items() if k != "@context"}, listed, load_context(ADAPTER_CONTEXT)["@context"])
        == {"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "validRange": {"@list": [attribute]}}
    )
