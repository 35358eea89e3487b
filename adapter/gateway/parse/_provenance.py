"""The provenance, logs, SPARQL and access-log requests as typed requests (``adapter.gateway.parse``)."""

from __future__ import annotations

from collections.abc import Mapping

from multidict import MultiMapping

from adapter.access.requests import (
    AccessLogRequest,
    LogRequest,
    RecordRequest,
    SparqlRequest,
    ValueProvenanceRequest,
)
from adapter.provenance.integrity.tiles import InvalidTilePath, parse_path
from adapter.gateway.parse._values import (
    BadRequest,
    Headers,
    MAX_BODY_BYTES,
    _EUI,
    _Params,
    _datetime,
    _entity_id,
    _integer,
    _name,
    entity_type_of,
)

__all__ = [
    "access_log_request",
    "log_request",
    "no_parameters",
    "record_request",
    "sparql_request",
    "value_provenance_request",
]


# -- provenance, logs, SPARQL --------------------------------------------------------------------


def value_provenance_request(
    kind: str, tenant: str, query: MultiMapping[str], headers: Headers
) -> ValueProvenanceRequest:
    """``GET /provenance/{tenant}/lineage|verify?entity=&attr=&observedAt=[&value=]``."""
    params = _Params(
        query, ("entity", "attr", "observedAt", "value") if kind == "verify" else ("entity", "attr", "observedAt")
    )
    entity = params.get("entity")
    if entity is None:
        raise BadRequest("entity", "required: the entity id")
    entity_type = entity_type_of(_entity_id(entity, "entity"))
    if entity_type is None:
        raise BadRequest("entity", "an entity id naming its type (urn:ngsi-ld:<Type>:...)")
    attribute = params.get("attr")
    if attribute is None:
        raise BadRequest("attr", "required: the attribute's short name, as the agreements name it")
    value = params.get("value")
    if value is not None and len(value) > 1024:
        raise BadRequest("value", "at most 1024 characters")
    return ValueProvenanceRequest(
        headers.known_tenant(tenant, "tenant"),
        entity,
        entity_type,
        _name(attribute, "attr"),
        _datetime(params.get("observedAt"), "observedAt"),
        kind,
        value,
        purpose=headers.purpose(),
    )


def record_request(
    kind: str, tenant: str, match: Mapping[str, str], query: MultiMapping[str], headers: Headers
) -> RecordRequest:
    """``/provenance/{tenant}/uplinks/{n}[/record]``, ``/devices/{devEui}[/records/{seq}]``."""
    _Params(query, ())
    n = seq = None
    dev_eui = None
    if "n" in match:
        n = _integer(match["n"], "n", default=0, low=0, high=2**53)
    if "dev_eui" in match:
        if not _EUI.match(match["dev_eui"]):
            raise BadRequest("devEui", "16 hexadecimal digits")
        dev_eui = match["dev_eui"].lower()
    if "seq" in match:
        seq = _integer(match["seq"], "seq", default=0, low=0, high=2**53)
    return RecordRequest(headers.known_tenant(tenant, "tenant"), kind, n, dev_eui, seq, purpose=headers.purpose())


def log_request(
    kind: str, tenant: str | None, rest: str | None, query: MultiMapping[str], headers: Headers
) -> LogRequest:
    """The public log resources: ``checkpoint``, ``key``, ``tile/...``, ``proof/inclusion``,
    ``proof/consistency`` of one collectivity, or ``jwks``."""
    known = None if tenant is None else headers.known_tenant(tenant, "tenant")
    if kind == "inclusion":
        params = _Params(query, ("index", "size"))
        return LogRequest(
            kind,
            known,
            index=_integer(params.get("index"), "index", default=-1, low=0, high=2**53),
            size=_integer(params.get("size"), "size", default=-1, low=0, high=2**53),
        )
    if kind == "consistency":
        params = _Params(query, ("old", "size"))
        return LogRequest(
            kind,
            known,
            old=_integer(params.get("old"), "old", default=-1, low=0, high=2**53),
            size=_integer(params.get("size"), "size", default=-1, low=0, high=2**53),
        )
    _Params(query, ())
    if kind == "tile":
        path = f"tile/{rest or ''}"
        try:
            parse_path(path)  # the canonical tlog-tiles form only
        except InvalidTilePath as exc:
            raise BadRequest("tile", str(exc)) from None
        return LogRequest(kind, known, tile=path)
    return LogRequest(kind, known)


def sparql_request(
    method: str, content_type: str, query: MultiMapping[str], body: bytes, headers: Headers
) -> SparqlRequest:
    """A SPARQL 1.1 Protocol query (GET ``?query=``, a form, or ``application/sparql-query``)."""
    known = ("query", "default-graph-uri", "named-graph-uri")
    pairs: list[tuple[str, str]] = [(k, v) for k, v in query.items()]
    if method == "POST":
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest("body", f"larger than {MAX_BODY_BYTES} bytes")
        try:
            text = body.decode("utf-8", errors="strict") if body else ""
        except UnicodeDecodeError:
            raise BadRequest("body", "not UTF-8") from None
        if content_type == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl

            try:
                pairs += parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=64)
            except ValueError:
                raise BadRequest("body", "not a valid form") from None
        elif content_type == "application/sparql-query":
            pairs.append(("query", text))
        elif content_type == "application/sparql-update" or any(k == "update" for k, _ in pairs):
            raise BadRequest("update", "the SPARQL endpoint is read-only")
        else:
            raise BadRequest("Content-Type", "application/x-www-form-urlencoded or application/sparql-query")
    for key, _ in pairs:
        if key == "update":
            raise BadRequest("update", "the SPARQL endpoint is read-only")
        if key not in known:
            raise BadRequest(key, f"unknown parameter here (known: {', '.join(known)})")
    queries = [v for k, v in pairs if k == "query"]
    if len(queries) != 1 or not queries[0].strip():
        raise BadRequest("query", "one query")
    if len(queries[0]) > MAX_BODY_BYTES:
        raise BadRequest("query", f"longer than {MAX_BODY_BYTES} characters")
    graphs = tuple(v for k, v in pairs if k != "query")
    for graph in graphs:
        _entity_id(graph, "default-graph-uri")
    return SparqlRequest(queries[0], graphs, headers.sparql_accept(), purpose=headers.purpose())


def no_parameters(query: MultiMapping[str]) -> None:
    """Refuse any query parameter (a route that takes none)."""
    _Params(query, ())


def access_log_request(query: MultiMapping[str], headers: Headers) -> AccessLogRequest:
    """``GET /gateway/access?tenant=T[&since=][&until=]`` (newest first, 1,000 at most: page back
    with ``until``)."""
    params = _Params(query, ("tenant", "since", "until"))
    since, until = params.get("since"), params.get("until")
    return AccessLogRequest(
        headers.known_tenant(params.get("tenant") or "", "tenant"),
        None if since is None else _datetime(since, "since"),
        None if until is None else _datetime(until, "until"),
    )
