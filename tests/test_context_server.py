"""The adapter serves its JSON-LD contexts so that a broker can fetch them."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from pyld import jsonld

from adapter.ngsild.context_server import broker_context, broker_contexts, context_routes, served_context_urls
from adapter.ngsild.contexts import ADAPTER_CONTEXT, CORE_CONTEXT, document_loader, load_context

SDM_ENVIRONMENT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"


async def test_every_indexed_context_is_served_as_json_ld() -> None:
    app = web.Application()
    app.add_routes(context_routes())
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/contexts/sdm-environment.jsonld")
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("application/ld+json")
        assert json.loads(await answer.text()) == load_context(SDM_ENVIRONMENT)
        listed = await (await client.get("/contexts/")).json()
        assert "ngsild-adapter.jsonld" in listed and "ngsi-ld-core-context.jsonld" in listed
        assert (await client.get("/contexts/../pyproject.toml")).status == 404
        assert (await client.get("/contexts/index.json")).status == 404


def test_entity_contexts_are_rewritten_to_the_served_copies_except_core_and_unknown_ones() -> None:
    rewritten = served_context_urls(
        [SDM_ENVIRONMENT, ADAPTER_CONTEXT, CORE_CONTEXT, "https://example.org/c.jsonld"],
        "http://adapter:8080/contexts/",
    )
    assert rewritten == [
        "http://adapter:8080/contexts/sdm-environment.jsonld",
        "http://adapter:8080/contexts/ngsild-adapter.jsonld",
        CORE_CONTEXT,
        "https://example.org/c.jsonld",
    ]
    assert served_context_urls(SDM_ENVIRONMENT, "http://a/contexts") == "http://a/contexts/sdm-environment.jsonld"


def _round_trip(entity: dict[str, Any]) -> dict[str, Any]:
    """Expand then compact with the entity's own contexts, as a full JSON-LD processor does."""
    options = {"documentLoader": document_loader()}
    compacted: dict[str, Any] = jsonld.compact(jsonld.expand(entity, options), entity["@context"], options)
    return compacted


def test_a_flagged_measure_round_trips_through_a_json_ld_processor_unchanged() -> None:
    # the shape mapping/entities.py writes for a reading outside its sensor's range
    temperature = {
        "type": "Property",
        "value": 81.5,
        "observedAt": "2026-11-20T08:15:30.123Z",
        "unitCode": "CEL",
        "qualityFlag": {"type": "Property", "value": "outOfRange"},
        "validRange": {"type": "Property", "value": [-40.0, 60.0]},
    }
    entity = {
        "@context": [SDM_ENVIRONMENT, ADAPTER_CONTEXT, CORE_CONTEXT],
        "id": "urn:ngsi-ld:AirQualityObserved:ville:0001",
        "type": "AirQualityObserved",
        "temperature": temperature,
    }

    assert _round_trip(entity) == entity


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    term=st.sampled_from(
        sorted(t for t in load_context(ADAPTER_CONTEXT)["@context"] if t not in ("ngsild-adapter", "prov"))
    ),
    value=st.one_of(
        st.integers(-(10**6), 10**6), st.text(max_size=5), st.lists(st.integers(-100, 100), min_size=2, max_size=4)
    ),
    nested=st.booleans(),
)
def test_every_term_of_the_project_context_round_trips(term: str, value: Any, nested: bool) -> None:
    # a term that carries a container or a type coercion would come back changed (the
    # validRange bug: "@container": "@list" wrapped the whole attribute in a list)
    attribute: dict[str, Any] = (
        {"type": "Relationship", "object": "urn:ngsi-ld:Device:1"}
        if term == "wasDerivedFrom"
        else {"type": "Property", "value": value}
    )
    body = {"temperature": {"type": "Property", "value": 1, term: attribute}} if nested else {term: attribute}
    entity = {
        "@context": [SDM_ENVIRONMENT, ADAPTER_CONTEXT, CORE_CONTEXT],
        "id": "urn:ngsi-ld:AirQualityObserved:ville:0001",
        "type": "AirQualityObserved",
        **body,
    }

    assert _round_trip(entity) == entity


def test_broker_context_is_the_official_url_unless_served_copies_are_configured() -> None:
    entity_context = [SDM_ENVIRONMENT, ADAPTER_CONTEXT, CORE_CONTEXT]

    assert broker_context(entity_context, None) == entity_context
    assert broker_context(SDM_ENVIRONMENT, None) == SDM_ENVIRONMENT
    assert broker_context(entity_context, "http://adapter:8080/contexts") == served_context_urls(
        entity_context, "http://adapter:8080/contexts"
    )
    assert broker_contexts({"AirQualityObserved": SDM_ENVIRONMENT}, "http://adapter:8080/contexts") == {
        "AirQualityObserved": "http://adapter:8080/contexts/sdm-environment.jsonld"
    }
