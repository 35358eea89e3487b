"""A read-only SPARQL 1.1 Protocol endpoint over the provenance index (an ``RdfStore``).

Requests (SPARQL 1.1 Protocol, section 2.1)
    ``GET ?query=``, ``POST`` of a form (``application/x-www-form-urlencoded``, ``query=``)
    and ``POST`` of ``application/sparql-query`` (the body is the query, other parameters in
    the URL). ``default-graph-uri`` and ``named-graph-uri`` may only narrow the graphs
    ``graphs_for(request)`` allows: the query sees the graphs named in either parameter that
    are also allowed (all of them as its default graph, each as a named graph), so naming a
    graph that is not allowed yields nothing rather than an error that would confirm it exists.
    The store enforces the restriction on the dataset; ``FROM``/``GRAPH`` cannot widen it.

Refused before the store sees anything
    403: updates (an ``update`` parameter, an ``application/sparql-update`` body, or an
    update operation sent as ``query``) and ``SERVICE`` (it would make the store fetch other
    endpoints). The query is parsed with rdflib's SPARQL grammar, so comments and string
    literals that merely contain these words are not refused. 400: a query that does not
    parse (the parser's message), or none. 413: a query longer than ``max_query_bytes``.
    415: another body type. 406: no answer format matches ``Accept``.

Answers, by content negotiation on ``Accept`` (the default first)
    SELECT and ASK: ``application/sparql-results+json``, ``application/sparql-results+xml``,
    ``text/csv``, ``text/tab-separated-values``. CONSTRUCT and DESCRIBE: ``text/turtle``,
    ``application/n-triples``, ``application/ld+json``.

Limits (``SparqlLimits``)
    A query running past ``timeout_s`` is stopped: 503. An answer of more than
    ``max_results`` solutions or triples is not sent: 400 (add a ``LIMIT``).

Errors are RFC 9457 problem details (``{"type", "title", "status", "detail"}``,
``application/problem+json``), ``type`` telling the cases apart (``PROBLEM_BASE`` + a name).

rdflib's grammar is recursive: a query with more than about 80 triple patterns in one group,
or nested more than about 35 groups deep, exhausts Python's recursion limit and gets a 400.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiMapping
from pyparsing import ParseBaseException, ParseResults
from rdflib.plugins.sparql.parser import parseQuery, parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue

from adapter.gateway import negotiate, problem
from adapter.provenance.store import (
    GRAPH_MEDIA_TYPES,
    RESULTS_MEDIA_TYPES,
    InvalidQuery,
    QueryTimeout,
    QueryTooLarge,
    RdfStore,
    RdfStoreError,
    RdfStoreUnavailable,
)

__all__ = ["PROBLEM_BASE", "SparqlLimits", "sparql_routes"]

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://w3id.org/ngsild-adapter/problems/sparql#"
FORM = "application/x-www-form-urlencoded"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
_GRAPH_FORMS = ("ConstructQuery", "DescribeQuery")


@dataclass(frozen=True, kw_only=True)
class SparqlLimits:
    """What one request may cost: time, answer size, query size."""

    #: seconds a query may run (waiting for a free query worker included)
    timeout_s: float = 10.0
    #: solutions (SELECT) or triples (CONSTRUCT, DESCRIBE) an answer may hold
    max_results: int = 10_000
    #: bytes of UTF-8 a query may have
    max_query_bytes: int = 16 * 1024


class _Problem(Exception):
    """An answer other than the query's: becomes a problem-details response."""

    def __init__(self, status: int, name: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.name, self.title, self.detail = status, name, title, detail

    def response(self) -> web.Response:
        return problem(self.status, self.title, self.detail, type=PROBLEM_BASE + self.name)


def _all_graphs(request: web.Request) -> Sequence[str] | None:
    return None


def sparql_routes(
    store: RdfStore,
    *,
    path: str = "/sparql",
    limits: SparqlLimits,
    graphs_for: Callable[[web.Request], Sequence[str] | None] = _all_graphs,
) -> list[web.RouteDef]:
    """The GET and POST routes of the endpoint at ``path``.

    ``graphs_for`` names the graphs a request may read (``None``: all of them); access
    control plugs in here.

    >>> app = web.Application()
    >>> app.add_routes(sparql_routes(store, limits=SparqlLimits(timeout_s=5)))  # doctest: +SKIP
    """

    async def handle(request: web.Request) -> web.Response:
        try:
            return await _answer(request, store, limits, graphs_for(request))
        except _Problem as problem:
            return problem.response()

    return [web.get(path, handle), web.post(path, handle)]


async def _answer(
    request: web.Request, store: RdfStore, limits: SparqlLimits, allowed: Sequence[str] | None
) -> web.Response:
    params, query = await _read_request(request, limits)
    # pyparsing holds the GIL, but in a thread the event loop still gets its turns
    form = await asyncio.to_thread(_query_form, query)
    offers = GRAPH_MEDIA_TYPES if form in _GRAPH_FORMS else RESULTS_MEDIA_TYPES
    media_type = negotiate(request.headers.get("Accept", ""), offers)
    if media_type is None:
        raise _Problem(406, "not-acceptable", "Not Acceptable", f"{form} answers are available as {', '.join(offers)}")
    try:
        body, content_type = await store.query_protocol(
            query, accept=media_type, graphs=_graphs(params, allowed),
            timeout_s=limits.timeout_s, max_results=limits.max_results,
        )  # fmt: skip
    except QueryTimeout as exc:
        detail = f"the query ran longer than the limit (timeout_s = {limits.timeout_s:g} s) and was stopped"
        raise _Problem(503, "timeout", "Query Timeout", detail) from exc
    except QueryTooLarge as exc:
        raise _Problem(400, "too-many-results", "Too Many Results", str(exc)) from exc
    except InvalidQuery as exc:
        raise _Problem(400, "invalid-query", "Invalid Query", str(exc)) from exc
    # The store's own messages name its URLs and files: they go to the log, not to the client.
    except RdfStoreUnavailable as exc:
        log.warning("SPARQL endpoint: the RDF store is unavailable: %s", exc)
        raise _Problem(
            503, "store-unavailable", "Store Unavailable", "the RDF store is unavailable; retry later"
        ) from exc
    except RdfStoreError as exc:
        log.exception("SPARQL endpoint: the RDF store failed")
        raise _Problem(500, "store-error", "Store Error", "the RDF store failed to answer") from exc
    return web.Response(body=body, headers={"Content-Type": content_type, "Vary": "Accept"})


async def _read_request(request: web.Request, limits: SparqlLimits) -> tuple[MultiMapping[str], str]:
    """The request's parameters and its query, or the problem with them."""
    params: MultiMapping[str] = request.query
    body_query: str | None = None
    if request.method == "POST":
        if request.content_type == SPARQL_UPDATE:
            raise _Problem(
                403, "update-refused", "Update Refused", "this endpoint is read-only: SPARQL updates are refused"
            )
        if request.content_type == FORM:
            # URL-encoding may triple the query's length; the query itself is checked below
            text = _utf8(await _read_body(request, 3 * limits.max_query_bytes + 8192, limits))
            params = MultiDict([*request.query.items(), *parse_qsl(text, keep_blank_values=True)])
        elif request.content_type == SPARQL_QUERY:
            body_query = _utf8(await _read_body(request, limits.max_query_bytes, limits))
        else:
            raise _Problem(415, "unsupported-media-type", "Unsupported Media Type", f"send {FORM} or {SPARQL_QUERY}")
    if "update" in params:
        raise _Problem(
            403, "update-refused", "Update Refused", "this endpoint is read-only: the 'update' parameter is refused"
        )
    queries = params.getall("query", [])
    if body_query is not None:
        queries.append(body_query)
    if len(queries) != 1 or not queries[0].strip():
        raise _Problem(400, "missing-query", "Missing Query", "send exactly one non-empty query")
    if len(queries[0].encode()) > limits.max_query_bytes:
        raise _query_too_large(limits)
    return params, queries[0]


async def _read_body(request: web.Request, limit: int, limits: SparqlLimits) -> bytes:
    """The body, read no further than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise _query_too_large(limits)
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise _query_too_large(limits)
    return bytes(body)


def _query_too_large(limits: SparqlLimits) -> _Problem:
    detail = f"the query is longer than the limit (max_query_bytes = {limits.max_query_bytes})"
    return _Problem(413, "query-too-large", "Query Too Large", detail)


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Problem(400, "invalid-query", "Invalid Query", f"the request is not UTF-8: {exc}") from exc


def _query_form(query: str) -> str:
    """``SelectQuery``, ``AskQuery``, ``ConstructQuery`` or ``DescribeQuery``, else a problem."""
    try:
        parsed = parseQuery(query)
    except ParseBaseException as exc:
        if _is_update(query):
            raise _Problem(
                403, "update-refused", "Update Refused", "this endpoint is read-only: SPARQL updates are refused"
            ) from exc
        raise _Problem(400, "invalid-query", "Invalid Query", f"the query does not parse: {exc}") from exc
    except RecursionError as exc:
        raise _Problem(
            400, "invalid-query", "Invalid Query", "the query is too long or nested too deeply to be parsed"
        ) from exc
    if any(node.name == "ServiceGraphPattern" for node in _nodes(parsed)):
        raise _Problem(
            403, "service-refused", "SERVICE Refused", "federated queries (SERVICE) are refused by this endpoint"
        )
    name: str = parsed[1].name
    return name


def _is_update(text: str) -> bool:
    try:
        parseUpdate(text)
    except (ParseBaseException, RecursionError):
        return False
    return True


def _nodes(value: object) -> Iterator[CompValue]:
    """Every node of an rdflib parse tree."""
    if isinstance(value, CompValue):
        yield value
        children: object = list(value.values())
    elif isinstance(value, ParseResults | list | tuple):
        children = value
    else:
        return
    for child in children:  # type: ignore[attr-defined]
        yield from _nodes(child)


def _graphs(params: MultiMapping[str], allowed: Sequence[str] | None) -> list[str] | None:
    asked = list(dict.fromkeys(params.getall("default-graph-uri", []) + params.getall("named-graph-uri", [])))
    if not asked:
        return None if allowed is None else list(allowed)
    if allowed is None:
        return asked
    permitted = set(allowed)
    return [graph for graph in asked if graph in permitted]
