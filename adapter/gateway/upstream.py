"""Requests the gateway sends, built from decisions: never a client's string, never a relayed path.

Each function takes a narrowed request (``adapter.access.decide``) and returns an ``Upstream``:
a method, a fixed path made of validated segments (each percent-encoded on its own: an entity id
with ``/`` in it stays one segment), query parameters written from the typed values (``q``
rendered from its parsed form by ``adapter.ngsild.qlang.to_text``), headers and a body. The
allowlist is the code itself: a parameter is sent because a field of the narrowed request says
so, and no field holds raw client text. ``send`` gives the URL to aiohttp already encoded, so
nothing between here and the socket rewrites it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from adapter.access.decide import (
    CellQuery,
    NarrowedEntityQuery,
    NarrowedSubscription,
    NarrowedTemporalQuery,
    RecordDecision,
    SparqlDecision,
    ValueProvenanceDecision,
)
from adapter.access.requests import GeoQuery, LogRequest, Selection
from adapter.ngsild.context_server import broker_context
from adapter.ngsild.qlang import to_text

__all__ = [
    "Upstream",
    "UpstreamAnswer",
    "Vocabulary",
    "broker_subscription",
    "cells_locations",
    "cells_read",
    "delete_broker_subscription",
    "iso",
    "entity_query",
    "location_history",
    "log_resource",
    "record",
    "send",
    "sparql",
    "temporal_query",
    "value_provenance",
]

_API = ("ngsi-ld", "v1")
_LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
_SEGMENT = re.compile(r"[^\x00-\x20\x7f]{1,512}\Z")
#: characters left as they are in a path segment (RFC 3986 pchar, less what could end one)
_SAFE = ":@!$&'()*+,;="


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """How the broker is told attribute names: the Smart Data Models ``@context`` of each type,
    and the full IRIs of the adapter's own terms (``linkMargin``, ``qualityFlag``...), which
    the type's context does not define (short name -> IRI; the answers map them back).
    ``contexts_url``: the adapter's served contexts, which a broker without internet can
    fetch (``adapter.ngsild.context_server.broker_context``)."""

    contexts: Mapping[str, str]
    iris: Mapping[str, str] = field(default_factory=dict)
    contexts_url: str | None = None

    def context(self, entity_type: str) -> str:
        """The context partners are answered with (its official URL)."""
        return self.contexts[entity_type]

    def broker_context(self, entity_type: str) -> str:
        """The context the broker is sent for this type: its served copy when configured."""
        return broker_context(self.contexts[entity_type], self.contexts_url)

    def broker_name(self, name: str) -> str:
        return self.iris.get(name, name)

    def short_names(self) -> dict[str, str]:
        return {iri: name for name, iri in self.iris.items()}


@dataclass(frozen=True, slots=True)
class Upstream:
    """One request to the broker or to the adapter: ``path`` is a tuple of segments."""

    method: str
    path: tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    def target(self) -> str:
        """The request target (encoded path and query) under a root: what the access log keeps."""
        for segment in self.path:
            if segment in (".", "..") or not _SEGMENT.match(segment):
                raise ValueError(f"refusing to build a path with segment {segment[:40]!r}")
        path = "/" + "/".join(quote(s, safe=_SAFE) for s in self.path)
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.params)
        return f"{path}?{query}" if query else path

    @property
    def temporal(self) -> bool:
        """Whether this is a read of the temporal API (which Mintaka may answer beside Orion-LD)."""
        return self.method == "GET" and self.path[:3] == (*_API, "temporal")

    def url(self, base: str, target: str | None = None) -> URL:
        """The full URL under ``base`` (a root such as ``http://orion:1026``), already encoded."""
        root = URL(base)
        path, _, query = (target or self.target()).partition("?")
        return URL.build(
            scheme=root.scheme,
            host=root.raw_host or "",
            port=root.explicit_port,
            path=root.raw_path.rstrip("/") + path,
            query_string=query,
            encoded=True,
        )


_UNDECODED = object()


@dataclass(slots=True)
class UpstreamAnswer:
    """The answer to an ``Upstream``, and what was asked (``target``: its encoded path and query)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    target: str = ""
    _decoded: Any = field(default=_UNDECODED, repr=False, compare=False)

    def json(self) -> Any:
        """The decoded body (decoded once), or None when it is empty or not JSON."""
        if self._decoded is _UNDECODED:
            try:
                self._decoded = orjson.loads(self.body) if self.body else None
            except orjson.JSONDecodeError:
                self._decoded = None
        return self._decoded


_TIMEOUT = aiohttp.ClientTimeout(total=30.0)


async def send(
    session: aiohttp.ClientSession,
    base: str,
    upstream: Upstream,
    *,
    timeout: aiohttp.ClientTimeout = _TIMEOUT,
    temporal_base: str | None = None,
) -> UpstreamAnswer:
    """Send ``upstream`` under ``base`` (temporal reads under ``temporal_base`` when given: Mintaka
    beside Orion-LD); redirects are never followed (a 3xx is the answer)."""
    if upstream.temporal and temporal_base is not None:
        base = temporal_base
    target = upstream.target()
    async with session.request(
        upstream.method,
        upstream.url(base, target),
        headers=list(upstream.headers),
        data=upstream.body,
        allow_redirects=False,
        timeout=timeout,
    ) as answer:
        return UpstreamAnswer(answer.status, dict(answer.headers), await answer.read(), target)


def iso(moment: datetime) -> str:
    """An instant as NGSI-LD writes it (UTC, milliseconds, ``Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _broker_headers(tenant: str, context: str) -> tuple[tuple[str, str], ...]:
    return (("NGSILD-Tenant", tenant), ("Link", _LINK.format(context)), ("Accept", "application/json"))


def _coordinates(value: object) -> Any:
    return [_coordinates(v) for v in value] if isinstance(value, tuple) else value


def _geo_params(geo: GeoQuery) -> list[tuple[str, str]]:
    georel = geo.georel
    if geo.max_distance is not None:
        georel += f";maxDistance=={geo.max_distance:g}"
    if geo.min_distance is not None:
        georel += f";minDistance=={geo.min_distance:g}"
    return [
        ("georel", georel),
        ("geometry", geo.geometry),
        ("coordinates", orjson.dumps(_coordinates(geo.coordinates)).decode()),
        ("geoproperty", geo.geoproperty),
    ]


def _geo_member(geo: GeoQuery) -> dict[str, Any]:
    params = dict(_geo_params(geo))
    return {
        "georel": params["georel"],
        "geometry": geo.geometry,
        "coordinates": _coordinates(geo.coordinates),
        "geoproperty": geo.geoproperty,
    }


def _selection_params(selection: Selection) -> list[tuple[str, str]]:
    params = [("type", selection.entity_type)]
    if selection.ids:
        params.append(("id", ",".join(selection.ids)))
    if selection.id_pattern is not None:
        params.append(("idPattern", selection.id_pattern))
    if selection.q is not None:
        params.append(("q", to_text(selection.q)))
    if selection.geo is not None:
        params += _geo_params(selection.geo)
    return params


def _attrs(names: frozenset[str] | None, checks: frozenset[str], vocabulary: Vocabulary) -> str:
    """The explicit attribute list: what may be answered, and what the gateway checks (an entity
    matches when it has one of them, so nothing else is listed: a count or a page would then
    tell about entities with none of the granted attributes)."""
    return ",".join(sorted({vocabulary.broker_name(n) for n in (names or frozenset()) | checks}))


def entity_query(narrowed: NarrowedEntityQuery, vocabulary: Vocabulary) -> Upstream:
    """The broker query of current entities (a retrieval by id is a query of that id)."""
    request = narrowed.request
    params = _selection_params(request.selection)
    params.append(("attrs", _attrs(request.projection.attrs, narrowed.rules.checks, vocabulary)))
    params += [("limit", str(request.page.limit)), ("offset", str(request.page.offset))]
    if request.page.count:
        params.append(("count", "true"))
    if request.projection.sys_attrs:
        params.append(("options", "sysAttrs"))
    return Upstream(
        "GET",
        (*_API, "entities"),
        tuple(params),
        _broker_headers(request.selection.tenant, vocabulary.broker_context(request.selection.entity_type)),
    )


def temporal_query(narrowed: NarrowedTemporalQuery, vocabulary: Vocabulary) -> Upstream:
    """The broker query of temporal entities, normalized (the gateway renders other formats)."""
    request = narrowed.request
    params = _selection_params(request.selection)
    params.append(("attrs", _attrs(request.projection.attrs, narrowed.rules.checks, vocabulary)))
    time = request.time
    if time is not None:
        params += [("timerel", time.timerel), ("timeAt", iso(time.time_at)), ("timeproperty", "observedAt")]
        if time.end_time_at is not None:
            params.append(("endTimeAt", iso(time.end_time_at)))
    if request.last_n is not None:
        params.append(("lastN", str(request.last_n)))
    options = []
    if request.aggregation is not None:
        params += [
            ("aggrMethods", ",".join(request.aggregation.methods)),
            ("aggrPeriodDuration", request.aggregation.period),
        ]
        options.append("aggregatedValues")
    if request.projection.sys_attrs:
        options.append("sysAttrs")
    if options:
        params.append(("options", ",".join(options)))
    params += [("limit", str(request.page.limit)), ("offset", str(request.page.offset))]
    if request.page.count:
        params.append(("count", "true"))
    return Upstream(
        "GET",
        (*_API, "temporal", "entities"),
        tuple(params),
        _broker_headers(request.selection.tenant, vocabulary.broker_context(request.selection.entity_type)),
    )


def location_history(narrowed: NarrowedTemporalQuery, ids: Sequence[str], vocabulary: Vocabulary) -> Upstream:
    """Every location these entities have had (no time constraint: a location carries no
    observation time), so that an answer under an area holds no entity that was ever outside."""
    selection = narrowed.request.selection
    params = (("type", selection.entity_type), ("id", ",".join(ids)), ("attrs", "location"), ("limit", str(len(ids))))
    return Upstream(
        "GET",
        (*_API, "temporal", "entities"),
        params,
        _broker_headers(selection.tenant, vocabulary.broker_context(selection.entity_type)),
    )


def _area_params(query: CellQuery) -> list[tuple[str, str]]:
    if query.area is None:
        return []
    ring = [list(point) for point in query.area.polygon]
    return [
        ("georel", "within"),
        ("geometry", "Polygon"),
        ("coordinates", orjson.dumps([ring]).decode()),
        ("geoproperty", "location"),
    ]


def cells_read(
    query: CellQuery, start: datetime, end: datetime, offset: int, vocabulary: Vocabulary, *, page_size: int = 100
) -> Upstream:
    """One page of every sensor's history over one period, for computing its cells."""
    params = [
        ("type", query.entity_type),
        *_area_params(query),
        ("attrs", ",".join(sorted(vocabulary.broker_name(n) for n in query.attributes))),
        ("timerel", "between"),
        ("timeAt", iso(start)),
        ("endTimeAt", iso(end)),
        ("timeproperty", "observedAt"),
        ("options", "temporalValues"),
        ("limit", str(page_size)),
        ("offset", str(offset)),
    ]
    return Upstream(
        "GET",
        (*_API, "temporal", "entities"),
        tuple(params),
        _broker_headers(query.tenant, vocabulary.broker_context(query.entity_type)),
    )


def cells_locations(query: CellQuery, offset: int, vocabulary: Vocabulary, *, page_size: int = 100) -> Upstream:
    """One page of the sensors' current locations, which place them in the agreement's districts
    (a location carries no observation time: the history of one period does not hold it)."""
    params = [
        ("type", query.entity_type),
        *_area_params(query),
        ("attrs", "location"),
        ("limit", str(page_size)),
        ("offset", str(offset)),
    ]
    return Upstream(
        "GET",
        (*_API, "entities"),
        tuple(params),
        _broker_headers(query.tenant, vocabulary.broker_context(query.entity_type)),
    )


def broker_subscription(narrowed: NarrowedSubscription, notify_url: str, vocabulary: Vocabulary) -> Upstream:
    """The gateway's own subscription at the broker, notifying the gateway (never the partner)."""
    request = narrowed.request
    selection = request.selection
    entity: dict[str, Any] = {"type": selection.entity_type}
    entities = [{**entity, "id": i} for i in selection.ids] or [entity]
    if selection.id_pattern is not None:
        entities = [{**entity, "idPattern": selection.id_pattern}]
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": entities,
        "notification": {
            "format": "normalized",
            "attributes": _attrs(request.attributes, narrowed.rules.checks, vocabulary).split(","),
            "endpoint": {"uri": notify_url, "accept": "application/json"},
        },
        "@context": vocabulary.broker_context(selection.entity_type),
    }
    if request.watched is not None:
        body["watchedAttributes"] = sorted(vocabulary.broker_name(n) for n in request.watched)
    if selection.q is not None:
        body["q"] = to_text(selection.q)
    if selection.geo is not None:
        body["geoQ"] = _geo_member(selection.geo)
    if request.throttling is not None:
        body["throttling"] = request.throttling
    if request.expires_at is not None:
        body["expiresAt"] = iso(request.expires_at)
    return Upstream(
        "POST",
        (*_API, "subscriptions"),
        (),
        (("NGSILD-Tenant", selection.tenant), ("Content-Type", "application/ld+json")),
        orjson.dumps(body),
    )


def delete_broker_subscription(tenant: str, broker_id: str) -> Upstream:
    return Upstream("DELETE", (*_API, "subscriptions", broker_id), (), (("NGSILD-Tenant", tenant),))


def _bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("Authorization", f"Bearer {token}"),) if token else ()


def sparql(decision: SparqlDecision, token: str | None) -> Upstream:
    """The query to the adapter's endpoint, over the decided graphs only."""
    params = tuple(
        [("default-graph-uri", g) for g in decision.graphs] + [("named-graph-uri", g) for g in decision.graphs]
    )
    headers = (("Content-Type", "application/sparql-query"), ("Accept", decision.request.accept), *_bearer(token))
    return Upstream("POST", ("sparql",), params, headers, decision.request.query.encode("utf-8"))


def value_provenance(decision: ValueProvenanceDecision, token: str | None) -> Upstream:
    request = decision.request
    params = [("entity", request.entity_id), ("attr", request.attribute), ("observedAt", iso(request.observed_at))]
    if request.value is not None:
        params.append(("value", request.value))
    return Upstream("GET", ("provenance", request.tenant, request.kind), tuple(params), _bearer(token))


def record(decision: RecordDecision, accept: str, token: str | None) -> Upstream:
    request = decision.request
    paths: dict[str, tuple[str, ...]] = {
        "uplink": ("uplinks", str(request.n)),
        "uplink-record": ("uplinks", str(request.n), "record"),
        "device": ("devices", str(request.dev_eui)),
        "device-record": ("devices", str(request.dev_eui), "records", str(request.seq)),
    }
    return Upstream(
        "GET", ("provenance", request.tenant, *paths[request.kind]), (), (("Accept", accept), *_bearer(token))
    )


def log_resource(request: LogRequest) -> Upstream:
    """The public resources of the logs: fixed paths from validated components."""
    if request.kind == "jwks":
        return Upstream("GET", (".well-known", "jwks.json"))
    assert request.tenant is not None
    if request.kind == "tile":
        assert request.tile is not None
        return Upstream("GET", ("logs", request.tenant, *request.tile.split("/")))
    if request.kind == "inclusion":
        return Upstream(
            "GET",
            ("logs", request.tenant, "proof", "inclusion"),
            (("index", str(request.index)), ("size", str(request.size))),
        )
    if request.kind == "consistency":
        return Upstream(
            "GET",
            ("logs", request.tenant, "proof", "consistency"),
            (("old", str(request.old)), ("size", str(request.size))),
        )
    return Upstream("GET", ("logs", request.tenant, {"checkpoint": "checkpoint", "key": "key"}[request.kind]))


def adapter_terms(context: Mapping[str, Any]) -> dict[str, str]:
    """Short name -> IRI of each term of the adapter's own context (prefixes expanded)."""
    prefixes = {k: v for k, v in context.items() if isinstance(v, str) and v.endswith(("#", "/"))}
    terms: dict[str, str] = {}
    for term, definition in context.items():
        iri = definition.get("@id") if isinstance(definition, dict) else definition
        if not isinstance(iri, str) or term in prefixes:
            continue
        prefix, _, local = iri.partition(":")
        terms[term] = prefixes[prefix] + local if prefix in prefixes else iri
    return terms
