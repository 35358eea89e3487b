"""The RDF index of the provenance records: an embedded Oxigraph or any SPARQL 1.1 store.

The index is not the source of truth: the integrity log is, and the index is rebuilt from it
(``docs/provenance.md``). Its quads are a pure function of the records, so writing them twice
changes nothing, and both stores here favour fast writes over transactions.

Two implementations of one ``RdfStore`` protocol:

``OxigraphStore``
    pyoxigraph in this process. Every blocking call runs in a thread (``asyncio.to_thread``);
    pyoxigraph 0.5.13 releases the GIL while it loads, evaluates a query, pulls the next
    solution, serializes and takes a backup (checked: a ticking Python thread kept ticking
    through each), so the event loop keeps running. ``len(store)`` and iterating
    ``quads_for_pattern`` hold it, briefly.
``RemoteSparqlStore``
    A server over HTTP: SPARQL 1.1 Protocol queries and updates, N-Quads posted to the
    server's dataset endpoint.

What a query sees (``graphs``)
    ``None``: the default graph is the union of all named graphs, whatever the query's
    ``FROM`` says (Oxigraph's union mode overrides it, embedded and server alike). A list: the
    query's default graph is the union of those graphs and they are the only graphs ``GRAPH``
    can reach; the dataset is set by the store (pyoxigraph's ``default_graph`` and
    ``named_graphs``, the protocol's ``default-graph-uri`` and ``named-graph-uri``), which
    overrides the query's own ``FROM`` and ``FROM NAMED``, so a query cannot widen it.

Results of ``select`` (``Term``)
    IRIs and plain, language-tagged or unknown-datatype literals are ``str`` (the IRI, the
    lexical form); blank nodes are ``"_:id"``; xsd integer types are ``int``,
    ``xsd:double``/``xsd:float`` are ``float``, ``xsd:decimal`` is ``Decimal``,
    ``xsd:boolean`` is ``bool``, ``xsd:dateTime`` is ``datetime``. A literal whose lexical
    form does not parse stays a ``str``. An unbound variable is absent from its row.

Limits of protocol queries (``query_protocol``, untrusted text from the HTTP endpoint)
    pyoxigraph has no way to cancel or time-limit a query (``Store.query`` has no timeout
    or cancellation parameter; Oxigraph's server has ``--timeout-s``, its Python binding does
    not), and one call can run for ever (an aggregate over a cross product is computed inside
    ``Store.query`` itself, before any solution is pulled). So ``OxigraphStore`` answers them in child processes that
    are killed on timeout; see its docstring. More than ``max_results`` solutions or triples
    is ``QueryTooLarge``: the answer is never serialized. Updates do not parse as queries, but
    ``SERVICE`` is evaluated (pyoxigraph 0.5.13 and Oxigraph's server both fetch the other
    endpoint): callers refuse it before, as ``adapter.gateway.sparql`` does.

Errors, by what the caller can do::

    RdfStoreError                 (an AdapterError) the store refused or failed
    ├── RdfStoreUnavailable       connection refused, 5xx, timed out: retry later
    ├── InvalidQuery              the query or a graph IRI does not parse
    ├── UnsupportedFormat         no such answer format for this kind of query
    ├── QueryTimeout              the query ran past its time limit and was abandoned
    └── QueryTooLarge             more results than the limit allows
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import pickle
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiohttp
from pyoxigraph import (
    BlankNode,
    Literal,
    NamedNode,
    QueryBoolean,
    QueryResultsFormat,
    QuerySolutions,
    QueryTriples,
    RdfFormat,
    Store,
    Triple,
    parse,
    parse_query_results,
    serialize,
)

from adapter import resources
from adapter.exceptions import AdapterError
from adapter.httpclient import read_limited

__all__ = [
    "BULK_LOAD_MIN_CHARS",
    "GRAPH_MEDIA_TYPES",
    "RESULTS_MEDIA_TYPES",
    "InvalidQuery",
    "OxigraphStore",
    "QueryTimeout",
    "QueryTooLarge",
    "RdfStore",
    "RdfStoreError",
    "RdfStoreUnavailable",
    "RemoteSparqlStore",
    "Term",
    "UnsupportedFormat",
]

_T = TypeVar("_T")

#: A value of a ``select`` row (see the module docstring).
Term = str | int | float | Decimal | bool | datetime

_RESULTS_FORMATS = {
    "application/sparql-results+json": QueryResultsFormat.JSON,
    "application/sparql-results+xml": QueryResultsFormat.XML,
    "text/csv": QueryResultsFormat.CSV,
    "text/tab-separated-values": QueryResultsFormat.TSV,
}
_GRAPH_FORMATS = {
    "text/turtle": RdfFormat.TURTLE,
    "application/n-triples": RdfFormat.N_TRIPLES,
    "application/ld+json": RdfFormat.JSON_LD,
}
#: Answer formats of SELECT and ASK queries, the default first.
RESULTS_MEDIA_TYPES: tuple[str, ...] = tuple(_RESULTS_FORMATS)
#: Answer formats of CONSTRUCT and DESCRIBE queries, the default first.
GRAPH_MEDIA_TYPES: tuple[str, ...] = tuple(_GRAPH_FORMATS)

#: N-Quads texts at least this long go through ``Store.bulk_load``, shorter ones through
#: ``Store.load``. Measured on disk with 0.5.13: ``load`` ~90,000-130,000 quads/s at any
#: size, ``bulk_load`` ~1,600 quads/s for 30 quads (it writes new files on every call),
#: ~40,000 for 3,000, ~200,000 for the indexer's chunks of ~15,000 quads (~2 MB) and more
#: above; 1 MB is about 7,000 quads.
BULK_LOAD_MIN_CHARS = 1_000_000

_XSD = "http://www.w3.org/2001/XMLSchema#"
_INTEGER_TYPES = [
    "integer",
    "long",
    "int",
    "short",
    "byte",
    "nonNegativeInteger",
    "positiveInteger",
    "nonPositiveInteger",
    "negativeInteger",
    "unsignedLong",
    "unsignedInt",
    "unsignedShort",
    "unsignedByte",
]
_FROM_LEXICAL: dict[str, Callable[[str], Term]] = {
    **{_XSD + name: int for name in _INTEGER_TYPES},
    _XSD + "double": float,
    _XSD + "float": float,
    _XSD + "decimal": Decimal,
    _XSD + "boolean": lambda text: {"true": True, "1": True, "false": False, "0": False}[text],
    _XSD + "dateTime": datetime.fromisoformat,
    _XSD + "dateTimeStamp": datetime.fromisoformat,
}
_XSD_STRING = _XSD + "string"
# Oxigraph's server ends a streamed answer with this when its --timeout-s fires mid-answer.
_SERVER_CANCELLED = b"has been cancelled"


class RdfStoreError(AdapterError):
    """The RDF store refused or failed an operation; the message says which and why."""


class RdfStoreUnavailable(RdfStoreError):
    """The store cannot be reached or failed on its side (connection, 5xx, timeout): retry later."""


class InvalidQuery(RdfStoreError):
    """The query, or a graph IRI given with it, does not parse; the message is the parser's."""


class UnsupportedFormat(RdfStoreError):
    """The requested media type is not an answer format of this kind of query."""


class QueryTimeout(RdfStoreError):
    """The query ran longer than its time limit; it was stopped or abandoned."""


class QueryTooLarge(RdfStoreError):
    """The answer has more solutions or triples (or bytes, remote) than the limit allows."""


class RdfStore(Protocol):
    """Where the provenance quads are indexed and queried."""

    async def add_nquads(self, data: str) -> None:
        """Add the quads of an N-Quads text; quads already there are left as they are."""

    async def clear_graph(self, graph: str) -> None:
        """Drop a named graph and its quads (nothing happens if it does not exist)."""

    async def select(self, query: str, *, graphs: Sequence[str] | None = None) -> list[dict[str, Term]]:
        """Run a trusted SELECT query; rows map variable names to ``Term`` values."""

    async def quads(self, subjects: Sequence[str], graph: str) -> set[tuple[str, str, str]]:
        """``(s, p, o)`` of ``graph`` whose subject IRI is in ``subjects``, in N-Triples form."""

    async def query_protocol(
        self, query: str, *, accept: str, graphs: Sequence[str] | None, timeout_s: float, max_results: int
    ) -> tuple[bytes, str]:
        """Answer an untrusted read query: the answer in ``accept`` and its content type."""

    async def quad_count(self) -> int:
        """How many quads the store holds, in every graph."""

    async def close(self) -> None:
        """Release what the store holds; it is not used afterwards."""


# --- shared by both stores: terms, datasets, answers ---------------------------------------


def _python(term: object) -> Term:
    if isinstance(term, NamedNode):
        return term.value
    if isinstance(term, BlankNode):
        return f"_:{term.value}"
    if isinstance(term, Literal):
        convert = _FROM_LEXICAL.get(term.datatype.value)
        if convert is not None:
            try:
                return convert(term.value)
            except (ValueError, KeyError, InvalidOperation):
                pass
        return term.value
    return str(term)  # an RDF-star quoted triple


def _rows(solutions: QuerySolutions) -> list[dict[str, Term]]:
    variables = solutions.variables
    rows = []
    for solution in solutions:
        rows.append({v.value: _python(t) for v in variables if (t := solution[v]) is not None})
    return rows


def _named(iri: str) -> NamedNode:
    try:
        return NamedNode(iri)
    except ValueError as exc:
        raise InvalidQuery(f"{iri!r} is not a valid IRI: {exc}") from exc


async def _in_thread(work: Callable[[], _T]) -> _T:
    """Run ``work`` in a thread, letting no pyoxigraph object out of it in an error.

    pyoxigraph's query results are "unsendable" (pyo3): dropped on another thread than the one
    that made them, they raise ``RuntimeError``. The traceback of an exception holds the
    frames, and so the results, of the thread that raised it; errors therefore cross back as
    fresh exceptions, the message kept, the traceback and its chain left in the thread.
    """

    def guarded() -> tuple[_T | None, tuple[type[RdfStoreError], str] | None]:
        try:
            return work(), None
        except RdfStoreError as exc:
            return None, (type(exc), str(exc))
        except (OSError, SyntaxError, ValueError) as exc:
            return None, (RdfStoreError, f"the RDF store failed: {exc}")

    result, error = await asyncio.to_thread(guarded)
    if error is not None:
        raise error[0](error[1])
    return result  # type: ignore[return-value]


def _dataset(graphs: Sequence[str] | None) -> dict[str, Any]:
    """pyoxigraph ``query`` keywords that make the query see ``graphs`` and nothing else."""
    if graphs is None:
        return {"use_default_graph_as_union": True}
    nodes = [_named(g) for g in graphs]
    return {"default_graph": nodes, "named_graphs": nodes}


def _at_most(items: Iterable[Any], limit: int, what: str) -> list[Any]:
    kept = list(itertools.islice(items, limit + 1))
    if len(kept) > limit:
        raise QueryTooLarge(f"the answer has more than {limit} {what} (max_results = {limit}); add a LIMIT")
    return kept


def _json_term(term: object) -> dict[str, Any]:
    if isinstance(term, NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, Literal):
        found: dict[str, Any] = {"type": "literal", "value": term.value}
        if term.language:
            found["xml:lang"] = term.language
        elif term.datatype.value != _XSD_STRING:
            found["datatype"] = term.datatype.value
        return found
    assert isinstance(term, Triple)
    parts = {"subject": term.subject, "predicate": term.predicate, "object": term.object}
    return {"type": "triple", "value": {k: _json_term(v) for k, v in parts.items()}}


def _render(
    results: QueryBoolean | QuerySolutions | Iterable[Triple], accept: str, max_results: int
) -> tuple[bytes, str]:
    """Serialize an answer with pyoxigraph after checking its size: ``(body, content type)``.

    Solutions are counted before anything is serialized, so they are first kept as a list and
    written as SPARQL JSON, which pyoxigraph parses back into a solution stream it can write
    in any results format (it offers no way to build one from Python terms).
    """
    if isinstance(results, QueryBoolean | QuerySolutions):
        results_format = _RESULTS_FORMATS.get(accept)
        if results_format is None:
            raise UnsupportedFormat(
                f"{accept} is not an answer format of SELECT or ASK; use one of {RESULTS_MEDIA_TYPES}"
            )
        if isinstance(results, QuerySolutions):
            variables = results.variables
            rows = _at_most(results, max_results, "solutions")
            bindings = [{v.value: _json_term(t) for v in variables if (t := row[v]) is not None} for row in rows]
            document = {"head": {"vars": [v.value for v in variables]}, "results": {"bindings": bindings}}
            results = parse_query_results(json.dumps(document).encode(), format=QueryResultsFormat.JSON)
            assert isinstance(results, QuerySolutions)
        body = results.serialize(format=results_format)
        assert body is not None
        return body, results_format.media_type
    graph_format = _GRAPH_FORMATS.get(accept)
    if graph_format is None:
        raise UnsupportedFormat(
            f"{accept} is not an answer format of CONSTRUCT or DESCRIBE; use one of {GRAPH_MEDIA_TYPES}"
        )
    body = serialize(_at_most(results, max_results, "triples"), format=graph_format)
    assert body is not None
    return body, graph_format.media_type


# --- embedded: pyoxigraph ------------------------------------------------------------------


@dataclass
class _Snapshot:
    """A frozen copy (RocksDB checkpoint) of the store that worker processes open read-only."""

    path: Path
    generation: int
    users: int = 0


class OxigraphStore:
    """The index in an embedded Oxigraph (pyoxigraph), on disk or in a temporary directory.

    ``path`` is the store's directory (created if missing); ``None`` makes a throw-away store
    in a temporary directory deleted by ``close()``. It is a RocksDB store rather than
    pyoxigraph's in-memory ``Store()`` because protocol queries run on a copy that another
    process can open (below), which an in-memory store cannot give.

    Writes: texts of ``BULK_LOAD_MIN_CHARS`` or more go through ``Store.bulk_load``, which is
    not transactional (a failure may leave part of the text written) and skips the checks
    of a transaction. That is fine here because this store is an index rebuilt from the
    integrity log and quads are idempotent: writing the text again repairs it.

    ``select`` and ``quads`` are the adapter's own queries: they run in a thread, unlimited.

    ``query_protocol`` takes untrusted queries, which pyoxigraph cannot interrupt. They run
    in up to ``query_workers`` child processes (Python running ``_serve_queries``), each on a
    read-only copy of the store: ``Store.backup`` makes a RocksDB checkpoint (hard links,
    after a flush of the recent writes) in ``<path>.sparql-snapshots/``, taken again before a
    query whenever the store was written since the last one, so answers include every write
    that completed before the query started. (pyoxigraph documents that opening the live
    store with ``Store.read_only`` while this process writes it is undefined behaviour, hence
    the copy.) A query that passes ``timeout_s`` (waiting for a free worker and taking the
    copy included) gets ``QueryTimeout`` and its process is killed, so the evaluation really
    stops and its CPU and memory come back. A worker is started on first need (about 0.3 s:
    a Python start) and reused.
    """

    def __init__(self, path: Path | None, *, query_workers: int = 2) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ngsild-adapter-rdf-")
            path = Path(self._tmp.name) / "store"
        self._snapshots_dir = path.with_name(path.name + ".sparql-snapshots")
        shutil.rmtree(self._snapshots_dir, ignore_errors=True)  # left by a crash: never reused
        try:
            self._store = Store(str(path))
        except OSError as exc:
            raise RdfStoreError(f"cannot open the RDF store in {path}: {exc}") from exc
        self._generation = 0  # bumped by every write; a snapshot of an older one is stale
        self._snapshot: _Snapshot | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(query_workers)
        self._idle: list[_Worker] = []
        self._closed = False

    async def add_nquads(self, data: str) -> None:
        if not data.strip():
            return
        method = "bulk_load" if len(data) >= BULK_LOAD_MIN_CHARS else "load"
        try:
            await self._blocking(method, data, format=RdfFormat.N_QUADS)
        except SyntaxError as exc:
            raise RdfStoreError(f"invalid N-Quads: {exc}") from exc
        except OSError as exc:
            raise RdfStoreError(f"cannot write to the RDF store: {exc}") from exc
        finally:
            self._generation += 1

    async def clear_graph(self, graph: str) -> None:
        node = _named(graph)
        try:
            await self._blocking("remove_graph", node)
        except OSError as exc:
            raise RdfStoreError(f"cannot drop graph {graph}: {exc}") from exc
        finally:
            self._generation += 1

    async def select(self, query: str, *, graphs: Sequence[str] | None = None) -> list[dict[str, Term]]:
        def run() -> list[dict[str, Term]]:
            results = _query(self._store, query, graphs)
            if not isinstance(results, QuerySolutions):
                raise InvalidQuery("select() runs SELECT queries only")
            return _rows(results)

        return await _in_thread(run)

    async def quads(self, subjects: Sequence[str], graph: str) -> set[tuple[str, str, str]]:
        nodes = [_named(s) for s in subjects]
        graph_node = _named(graph)

        def run() -> set[tuple[str, str, str]]:
            found = set()
            for node in nodes:
                for quad in self._store.quads_for_pattern(node, None, None, graph_node):
                    found.add((str(quad.subject), str(quad.predicate), str(quad.object)))
            return found

        return await _in_thread(run)

    async def query_protocol(
        self, query: str, *, accept: str, graphs: Sequence[str] | None, timeout_s: float, max_results: int
    ) -> tuple[bytes, str]:
        job = (query, None if graphs is None else list(graphs), accept, max_results)
        try:
            async with asyncio.timeout(timeout_s), self._slots:
                snapshot = await self._fresh_snapshot()
                snapshot.users += 1
                try:
                    worker = self._idle.pop() if self._idle else await _Worker.start()
                    try:
                        reply = await worker.ask((str(snapshot.path), *job))
                    except BaseException:
                        await worker.kill()
                        raise
                    if self._closed:
                        await worker.stop()
                    else:
                        self._idle.append(worker)
                finally:
                    snapshot.users -= 1
                    self._drop_if_unused(snapshot)
        except TimeoutError as exc:
            raise QueryTimeout(
                f"the query ran longer than the limit (timeout_s = {timeout_s:g} s) and was stopped"
            ) from exc
        return _unpack(reply)

    async def quad_count(self) -> int:
        count: int = await self._blocking("__len__")
        return count

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        workers, self._idle = self._idle, []
        for worker in workers:
            await worker.stop()
        if self._refreshing is not None:
            await asyncio.gather(self._refreshing, return_exceptions=True)
        # pyoxigraph has no close(): RocksDB closes, and frees its lock, when the Store is freed
        del self._store
        shutil.rmtree(self._snapshots_dir, ignore_errors=True)
        if self._tmp is not None:
            self._tmp.cleanup()

    async def _blocking(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of the Store in a thread.

        The thread gets this object rather than the Store's bound method: a thread-pool job
        keeps its callable a moment after its caller has resumed, and a Store still referenced
        after ``close()`` would keep the RocksDB lock (reopening the path would fail).
        """
        return await asyncio.to_thread(lambda: getattr(self._store, method)(*args, **kwargs))

    async def _fresh_snapshot(self) -> _Snapshot:
        """A snapshot that holds every write completed before this call.

        One backup runs at a time; it is shielded so that a query timing out while waiting
        for it does not leave a half-made checkpoint behind.
        """
        wanted = self._generation
        while self._snapshot is None or self._snapshot.generation < wanted:
            if self._refreshing is None:
                self._refreshing = asyncio.create_task(self._take_snapshot())
            await asyncio.shield(self._refreshing)
        return self._snapshot

    async def _take_snapshot(self) -> None:
        generation = self._generation
        path = self._snapshots_dir / f"{generation}-{os.urandom(4).hex()}"
        try:
            self._snapshots_dir.mkdir(exist_ok=True)
            await self._blocking("backup", str(path))
        except OSError as exc:
            raise RdfStoreError(f"cannot copy the RDF store for a query: {exc}") from exc
        finally:
            self._refreshing = None
        previous, self._snapshot = self._snapshot, _Snapshot(path, generation)
        if previous is not None:
            self._drop_if_unused(previous)

    def _drop_if_unused(self, snapshot: _Snapshot) -> None:
        # Idle workers may still have it open: they reopen the current one on their next job,
        # and a read-only RocksDB instance reads nothing until then.
        if snapshot is not self._snapshot and snapshot.users == 0:
            shutil.rmtree(snapshot.path, ignore_errors=True)


def _query(store: Store, query: str, graphs: Sequence[str] | None) -> QueryBoolean | QuerySolutions | QueryTriples:
    try:
        return store.query(query, **_dataset(graphs))
    except SyntaxError as exc:
        raise InvalidQuery(str(exc)) from exc
    except OSError as exc:
        raise RdfStoreError(f"the RDF store failed to answer: {exc}") from exc


_ERRORS: dict[str, type[RdfStoreError]] = {
    cls.__name__: cls for cls in (RdfStoreError, InvalidQuery, UnsupportedFormat, QueryTooLarge)
}


def _unpack(reply: tuple[Any, ...]) -> tuple[bytes, str]:
    if reply[0] == "ok":
        return reply[1], reply[2]
    raise _ERRORS.get(reply[1], RdfStoreError)(reply[2])


class _Worker:
    """A child process answering protocol queries one at a time over its stdin/stdout.

    Frames are an 8-byte length and a pickle; both ends are this module.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls) -> _Worker:
        # The folder holding this very package first on the path, whether installed or a checkout.
        root = str(resources.package_root())
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from adapter.provenance.store import _serve_queries; _serve_queries()",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        return cls(process)

    async def ask(self, job: tuple[Any, ...]) -> tuple[Any, ...]:
        assert self._process.stdin is not None and self._process.stdout is not None
        frame = pickle.dumps(job)
        self._process.stdin.write(struct.pack(">Q", len(frame)) + frame)
        try:
            await self._process.stdin.drain()
            (size,) = struct.unpack(">Q", await self._process.stdout.readexactly(8))
            reply: tuple[Any, ...] = pickle.loads(await self._process.stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise RdfStoreError(f"the query process ended (exit code {self._process.returncode})") from exc
        return reply

    async def stop(self) -> None:
        """Let the process end by itself (end of its input), or kill it after 5 s."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            async with asyncio.timeout(5):
                await self._process.wait()
        except TimeoutError:
            await self.kill()

    async def kill(self) -> None:
        if self._process.returncode is None:
            self._process.kill()
        await self._process.wait()


def _serve_queries() -> None:
    """Main loop of a query worker process: one job in, one reply out, until end of input.

    A job is ``(snapshot path, query, graphs, media type, max results)``; the reply is
    ``("ok", body, content type)`` or ``("error", exception class name, message)``.
    """
    inbox, outbox = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing printed by accident can corrupt the frames
    opened: tuple[str, Store] | None = None
    while header := inbox.read(8):
        (size,) = struct.unpack(">Q", header)
        path, query, graphs, accept, max_results = pickle.loads(inbox.read(size))
        reply: tuple[Any, ...]
        try:
            if opened is None or opened[0] != path:
                opened = None  # close the previous snapshot first
                opened = (path, Store.read_only(path))
            reply = ("ok", *_render(_query(opened[1], query, graphs), accept, max_results))
        except RdfStoreError as exc:
            reply = ("error", type(exc).__name__, str(exc))
        except (OSError, SyntaxError, ValueError) as exc:
            reply = ("error", "RdfStoreError", f"the query failed: {exc}")
        frame = pickle.dumps(reply)
        outbox.write(struct.pack(">Q", len(frame)) + frame)
        outbox.flush()


# --- remote: SPARQL 1.1 Protocol -----------------------------------------------------------

# Asked for so that the answer can be counted and re-serialized like an embedded one.
_REMOTE_ACCEPT = "application/sparql-results+json, application/n-triples"
# Names the graph a query restricted to no graph at all gets: the protocol has no way to say
# "none", and nothing is ever written to this IRI.
_NO_GRAPH = "urn:ngsild-adapter:graph:-none-"
_QUADS_PER_REQUEST = 500


class RemoteSparqlStore:
    """The index in a SPARQL 1.1 store over HTTP (Oxigraph server, Fuseki, ...).

    ``query_url`` takes SPARQL 1.1 Protocol queries (POSTed as a form, the graph restriction
    in ``default-graph-uri``/``named-graph-uri``), ``update_url`` SPARQL 1.1 Updates
    (``DROP SILENT GRAPH`` for ``clear_graph``). ``store_url`` receives ``add_nquads`` as a
    ``POST`` of ``application/n-quads``: that is not the Graph Store HTTP Protocol (which
    moves one graph at a time) but its common extension to whole datasets, served by
    Oxigraph (``/store``) and Fuseki (the dataset URL). ``union_default_graph`` is the query
    parameter that makes the default graph the union of the named graphs when ``graphs`` is
    ``None``: Oxigraph's ``union-default-graph``; ``None`` for a server configured that way
    (Fuseki's ``unionDefaultGraph``).

    The ``session`` belongs to the caller, who closes it; ``timeout_s`` bounds every request
    but protocol queries, which have their own limit. ``query_protocol`` stops reading an
    answer at ``max_response_bytes`` (``QueryTooLarge``), then counts it. On timeout the
    request is abandoned: the evaluation on the server stops only through the server's own
    limit (Oxigraph: ``serve --timeout-s``), which should be close to the endpoint's. An
    answer Oxigraph cut short on its own timeout is a ``QueryTimeout`` too.
    """

    def __init__(
        self,
        query_url: str,
        update_url: str,
        store_url: str,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float = 30.0,
        max_response_bytes: int = 64 * 1024 * 1024,
        union_default_graph: str | None = "union-default-graph",
    ) -> None:
        self._query_url = query_url
        self._update_url = update_url
        self._store_url = store_url
        self._session = session
        self._timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes
        self._union_default_graph = union_default_graph

    async def add_nquads(self, data: str) -> None:
        if data.strip():
            await self._send(self._store_url, data, "application/n-quads")

    async def clear_graph(self, graph: str) -> None:
        await self._send(self._update_url, f"DROP SILENT GRAPH {_named(graph)}", "application/sparql-update")

    async def select(self, query: str, *, graphs: Sequence[str] | None = None) -> list[dict[str, Term]]:
        body, content_type = await self._query(
            query, graphs, "application/sparql-results+json", timeout_s=self._timeout_s
        )

        def rows() -> list[dict[str, Term]]:
            results = _parse_answer(body, content_type)
            if not isinstance(results, QuerySolutions):
                raise InvalidQuery("select() runs SELECT queries only")
            try:
                return _rows(results)
            except SyntaxError as exc:
                raise _broken_answer(body, exc) from exc

        return await _in_thread(rows)

    async def quads(self, subjects: Sequence[str], graph: str) -> set[tuple[str, str, str]]:
        found: set[tuple[str, str, str]] = set()
        graph_node = _named(graph)
        for start in range(0, len(subjects), _QUADS_PER_REQUEST):
            values = " ".join(str(_named(s)) for s in subjects[start : start + _QUADS_PER_REQUEST])
            query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH {graph_node} {{ VALUES ?s {{ {values} }} ?s ?p ?o }} }}"
            body, _ = await self._query(query, None, "application/n-triples", timeout_s=self._timeout_s)
            try:
                found.update(
                    (str(q.subject), str(q.predicate), str(q.object)) for q in parse(body, format=RdfFormat.N_TRIPLES)
                )
            except SyntaxError as exc:
                raise _broken_answer(body, exc) from exc
        return found

    async def query_protocol(
        self, query: str, *, accept: str, graphs: Sequence[str] | None, timeout_s: float, max_results: int
    ) -> tuple[bytes, str]:
        body, content_type = await self._query(
            query,
            graphs,
            _REMOTE_ACCEPT,
            timeout_s=timeout_s,
            limit=self._max_response_bytes,
            timeout_error=QueryTimeout,
        )

        def render() -> tuple[bytes, str]:
            results = _parse_answer(body, content_type)
            try:
                return _render(results, accept, max_results)
            except SyntaxError as exc:
                raise _broken_answer(body, exc) from exc

        return await _in_thread(render)

    async def quad_count(self) -> int:
        query = "SELECT (COUNT(*) AS ?n) WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"
        # the store's own default graph, not the union of the named graphs, is counted here
        body, _ = await self._query(
            query, None, "application/sparql-results+json", timeout_s=self._timeout_s, union=False
        )
        results = parse_query_results(body, format=QueryResultsFormat.JSON)
        assert isinstance(results, QuerySolutions)
        count = _python(next(iter(results))["n"])
        assert isinstance(count, int)
        return count

    async def close(self) -> None:
        """Nothing to release: the session is the caller's."""

    async def _query(
        self,
        query: str,
        graphs: Sequence[str] | None,
        accept: str,
        *,
        timeout_s: float,
        limit: int | None = None,
        timeout_error: type[RdfStoreError] = RdfStoreUnavailable,
        union: bool = True,
    ) -> tuple[bytes, str]:
        form = [("query", query)]
        if graphs is None:
            if union and self._union_default_graph:
                form.append((self._union_default_graph, "true"))
        else:
            for graph in graphs or [_NO_GRAPH]:
                form += [("default-graph-uri", graph), ("named-graph-uri", graph)]
        return await self._request(
            self._query_url, data=form, headers={"Accept": accept},
            timeout_s=timeout_s, limit=limit, timeout_error=timeout_error, refused=InvalidQuery,
        )  # fmt: skip

    async def _send(self, url: str, data: str, content_type: str) -> None:
        await self._request(
            # a file object: aiohttp streams it instead of warning that bytes may block the loop
            url, data=io.BytesIO(data.encode()), headers={"Content-Type": content_type},
            timeout_s=self._timeout_s, limit=None, timeout_error=RdfStoreUnavailable, refused=RdfStoreError,
        )  # fmt: skip

    async def _request(
        self,
        url: str,
        *,
        data: Any,
        headers: dict[str, str],
        timeout_s: float,
        limit: int | None,
        timeout_error: type[RdfStoreError],
        refused: type[RdfStoreError],
    ) -> tuple[bytes, str]:
        """POST, read the answer (at most ``limit`` bytes) and translate every failure."""
        try:
            async with self._session.post(
                url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                body = await read_limited(response, limit)
                if body is None:
                    raise QueryTooLarge(f"the answer is larger than {limit} bytes (max_response_bytes)")
                said = body[:500].decode(errors="replace")
                if response.status >= 500:
                    raise RdfStoreUnavailable(f"{url} answered {response.status}: {said}")
                if response.status >= 400:
                    # the store's own words only: for a query, that is what the client gets
                    raise refused(f"the store refused the request ({response.status}): {said}")
                return body, response.content_type
        except TimeoutError as exc:
            raise timeout_error(f"{url} did not answer within {timeout_s:g} s (timeout_s)") from exc
        except aiohttp.ClientError as exc:
            raise RdfStoreUnavailable(f"cannot reach {url}: {exc}") from exc


def _parse_answer(body: bytes, content_type: str) -> QueryBoolean | QuerySolutions | Iterable[Triple]:
    """The parsed answer of a remote store, lazily: syntax errors surface while iterating."""
    try:
        if content_type == "application/sparql-results+json":
            return parse_query_results(body, format=QueryResultsFormat.JSON)
        if content_type == "application/n-triples":
            return (quad.triple for quad in parse(body, format=RdfFormat.N_TRIPLES))
    except SyntaxError as exc:
        raise _broken_answer(body, exc) from exc
    raise RdfStoreError(f"the store answered in {content_type}, not in one of {_REMOTE_ACCEPT}")


def _broken_answer(body: bytes, exc: SyntaxError) -> RdfStoreError:
    if _SERVER_CANCELLED in body[-200:]:
        return QueryTimeout("the store stopped the query on its own time limit")
    return RdfStoreError(f"the store's answer does not parse: {exc}")
