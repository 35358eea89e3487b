"""What only the remote store does: HTTP failures, the server's own limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapter.demo.network import LOOPBACK, free_port
from adapter.provenance.store import (
    QueryTimeout,
    QueryTooLarge,
    RdfStoreError,
    RdfStoreUnavailable,
    RemoteSparqlStore,
)
from tests.rdfstore.conftest import remote_store
from tests.rdfstore.test_contract import ENDLESS, nquads


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def store_at(base: str, session: aiohttp.ClientSession, **kwargs: object) -> RemoteSparqlStore:
    return RemoteSparqlStore(f"{base}/query", f"{base}/update", f"{base}/store", session, **kwargs)  # type: ignore[arg-type]


async def test_a_server_that_does_not_listen_is_unavailable(session: aiohttp.ClientSession) -> None:
    store = store_at(f"http://{LOOPBACK}:{free_port()}", session)
    with pytest.raises(RdfStoreUnavailable, match="cannot reach"):
        await store.add_nquads(nquads(1))
    with pytest.raises(RdfStoreUnavailable):
        await store.select("SELECT * WHERE { ?s ?p ?o }")
    with pytest.raises(RdfStoreUnavailable):
        await store.query_protocol("ASK {}", accept="text/csv", graphs=None, timeout_s=5, max_results=1)


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_error_is_unavailable_and_a_refusal_is_an_error(
    session: aiohttp.ClientSession, status: int
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=status if request.path == "/store" else 400, text="no")

    app = web.Application()
    app.router.add_post("/{name}", refuse)
    async with TestServer(app, host=LOOPBACK) as server:
        store = store_at(str(server.make_url("")).rstrip("/"), session)
        with pytest.raises(RdfStoreUnavailable, match=str(status)):
            await store.add_nquads(nquads(1))
        with pytest.raises(RdfStoreError, match="400") as refused:
            await store.clear_graph("urn:g")
        assert not isinstance(refused.value, RdfStoreUnavailable)


async def test_a_query_the_server_stops_on_its_own_limit_is_a_timeout(
    oxigraph_server: str, session: aiohttp.ClientSession
) -> None:
    store = await remote_store(oxigraph_server, session)
    await store.add_nquads(nquads(300))
    # the server's own limit stopped it, not the client's 30 s: the error says which (no clock here,
    # a loaded machine stretches both)
    with pytest.raises(QueryTimeout, match="its own time limit"):
        await store.query_protocol(ENDLESS, accept="text/csv", graphs=None, timeout_s=30, max_results=10)


async def test_reading_an_answer_stops_at_max_response_bytes(
    oxigraph_server: str, session: aiohttp.ClientSession
) -> None:
    await remote_store(oxigraph_server, session)
    store = store_at(oxigraph_server, session, max_response_bytes=2000)
    await store.add_nquads(nquads(100))
    with pytest.raises(QueryTooLarge, match="2000 bytes"):
        await store.query_protocol(
            "SELECT * WHERE { ?s ?p ?o }", accept="text/csv", graphs=None, timeout_s=10, max_results=1000
        )
