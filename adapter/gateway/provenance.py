"""The provenance API: records, their PROV-O form, the lineage of a value, and the verifier.

``GET /provenance/{tenant}/uplinks/{n}``
    The W3C PROV-O record of uplink ``n`` (the IRI ``urn:ngsild-adapter:{tenant}:uplink:{n}``
    an entity's ``wasDerivedFrom`` names): Turtle, JSON-LD or N-Triples by ``Accept``.
``GET /provenance/{tenant}/uplinks/{n}/record``
    The logged record itself, byte for byte the canonical form whose SHA-256 is the log's
    leaf (``Repr-Digest`` header, RFC 9530).
``GET /provenance/{tenant}/devices/{devEui}`` and ``.../devices/{devEui}/records/{seq}``
    The length of a device's hash chain, and its record at position ``seq`` (canonical bytes,
    its record number in ``Record-Index``): a verifier checks a record's neighbours with them.
``GET /provenance/{tenant}/lineage?entity=ID&attr=NAME&observedAt=TIME[&record=N]``
    One value, from raw bytes to broker, as JSON.
``GET /provenance/{tenant}/verify?entity=ID&attr=NAME&observedAt=TIME[&value=V][&record=N]``
    The verifier's report (``adapter.provenance.verify``) as JSON; ``holds`` says it all.
    A partner who does not trust this server runs ``ngsild-adapter verify`` against the logs'
    published resources instead.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from hashlib import sha256

from aiohttp import web

from adapter.gateway import problem
from adapter.provenance.rdf import ValueNotInRecord, lineage, provenance_dataset
from adapter.provenance.runtime import ProvenanceRuntime
from adapter.provenance.verify import parse_uplink_iri

__all__ = ["provenance_routes"]

_RDF_FORMATS = {  # media type -> rdflib serializer
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
}


def _media_type(request: web.Request) -> str | None:
    """The first acceptable RDF media type in ``Accept`` (Turtle when anything goes)."""
    accept = request.headers.get("Accept", "*/*")
    for part in accept.split(","):
        kind = part.split(";")[0].strip().lower()
        if kind in _RDF_FORMATS:
            return kind
        if kind in ("*/*", "text/*"):
            return "text/turtle"
        if kind == "application/*":
            return "application/ld+json"
    return None


def _time(text: str | None) -> datetime:
    if not text:
        raise web.HTTPBadRequest(text="parameter observedAt is required\n")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise web.HTTPBadRequest(text=f"observedAt {text!r} is not an ISO 8601 date-time\n") from None
    if moment.tzinfo is None:
        raise web.HTTPBadRequest(text="observedAt needs a time zone (e.g. Z)\n")
    return moment


def provenance_routes(runtime: ProvenanceRuntime) -> list[web.RouteDef]:
    """The routes above, answering from ``runtime``."""
    ledger = runtime.ledger

    def stored(request: web.Request) -> tuple[str, int, str]:
        tenant = request.match_info["tenant"]
        try:
            index = int(request.match_info["n"])
        except ValueError:
            raise web.HTTPNotFound() from None
        record = ledger.get(tenant, index)
        if record is None:
            raise web.HTTPNotFound(text=f"no record {index} in the log of {tenant}\n")
        return tenant, index, record.text

    async def prov(request: web.Request) -> web.Response:
        tenant, index, text = stored(request)
        media_type = _media_type(request)
        if media_type is None:
            return problem(406, "Not Acceptable", f"PROV-O is served as {', '.join(_RDF_FORMATS)}")
        receipts = [r.to_json() for r in ledger.deliveries_of(tenant, index)]
        dataset = provenance_dataset(json.loads(text), index, receipts)
        body = dataset.serialize(format=_RDF_FORMATS[media_type])
        return web.Response(text=body, content_type=media_type)

    async def record(request: web.Request) -> web.Response:
        _, _, text = stored(request)
        digest = base64.b64encode(sha256(text.encode("utf-8")).digest()).decode("ascii")
        return web.Response(text=text, content_type="application/json", headers={"Repr-Digest": f"sha-256=:{digest}:"})

    async def device(request: web.Request) -> web.Response:
        tenant, dev_eui = request.match_info["tenant"], request.match_info["dev_eui"]
        length = ledger.chain_length(tenant, dev_eui)
        if length == 0:
            return problem(404, "No such device", f"no record of device {dev_eui} in the log of {tenant}")
        return web.json_response({"tenant": tenant, "devEui": dev_eui, "chainLength": length})

    async def chain_record(request: web.Request) -> web.Response:
        tenant, dev_eui = request.match_info["tenant"], request.match_info["dev_eui"]
        try:
            seq = int(request.match_info["seq"])
        except ValueError:
            raise web.HTTPNotFound() from None
        found = ledger.chain_neighbour(tenant, dev_eui, seq)
        if found is None:
            return problem(404, "No such record", f"no record {seq} in the chain of device {dev_eui}")
        return web.Response(
            text=found.text, content_type="application/json", headers={"Record-Index": str(found.index)}
        )

    async def lineage_view(request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        entity, attribute = request.query.get("entity"), request.query.get("attr")
        if not entity or not attribute:
            return problem(400, "Bad Request", "parameters entity, attr and observedAt are required")
        observed_at = _time(request.query.get("observedAt"))
        index = await _record_of(runtime, tenant, entity, attribute, observed_at, request.query.get("record"))
        if index is None:
            return problem(
                404, "No provenance record", f"no record of {entity} {attribute} observed at {observed_at.isoformat()}"
            )
        found = ledger.get(tenant, index)
        if found is None:
            return problem(404, "No provenance record", f"record {index} of {tenant} is missing")
        receipts = [r.to_json() for r in ledger.deliveries_of(tenant, index)]
        try:
            return web.json_response(lineage(found.record, index, entity, attribute, receipts))
        except ValueNotInRecord as exc:
            return problem(404, "Value not in the record", str(exc))

    async def verify(request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        entity, attribute = request.query.get("entity"), request.query.get("attr")
        if not entity or not attribute:
            return problem(400, "Bad Request", "parameters entity, attr and observedAt are required")
        record = request.query.get("record")
        if record is not None and not record.isdigit():
            return problem(400, "Bad Request", "record must be a record number")
        result = await runtime.verify(
            tenant,
            entity,
            attribute,
            _time(request.query.get("observedAt")),
            value=request.query.get("value"),
            record=int(record) if record is not None else None,
        )
        return web.json_response(result.to_json())

    return [
        web.get("/provenance/{tenant}/uplinks/{n}", prov),
        web.get("/provenance/{tenant}/uplinks/{n}/record", record),
        web.get("/provenance/{tenant}/devices/{dev_eui}", device),
        web.get("/provenance/{tenant}/devices/{dev_eui}/records/{seq}", chain_record),
        web.get("/provenance/{tenant}/lineage", lineage_view),
        web.get("/provenance/{tenant}/verify", verify),
    ]


async def _record_of(
    runtime: ProvenanceRuntime, tenant: str, entity: str, attribute: str, observed_at: datetime, given: str | None
) -> int | None:
    if given is not None:
        return int(given) if given.isdigit() else None
    if runtime.broker is None:
        return None
    found = await runtime.read_broker(tenant, entity, attribute, observed_at)
    target = parse_uplink_iri(found.link) if found is not None and found.link else None
    return target[1] if target is not None and target[0] == tenant else None
