"""The adapter serves its JSON-LD contexts so that a broker can fetch them."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.ngsild.context_server import context_routes, served_context_urls
from adapter.ngsild.contexts import ADAPTER_CONTEXT, CORE_CONTEXT, load_context

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
    rewritten = served_context_urls([SDM_ENVIRONMENT, ADAPTER_CONTEXT, CORE_CONTEXT, "https://example.org/c.jsonld"],
                                    "http://adapter:8080/contexts/")
    assert rewritten == [
        "http://adapter:8080/contexts/sdm-environment.jsonld",
        "http://adapter:8080/contexts/ngsild-adapter.jsonld",
        CORE_CONTEXT,
        "https://example.org/c.jsonld",
    ]
    assert served_context_urls(SDM_ENVIRONMENT, "http://a/contexts") == "http://a/contexts/sdm-environment.jsonld"
