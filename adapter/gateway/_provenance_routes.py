"""The gateway's routes to the adapter's own surfaces, narrowed: SPARQL, the provenance of a
value, whole records, the public logs, and the access log (``adapter.gateway.app``)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from adapter.access.decide import (
    AccessLogDecision,
    RecordDecision,
    SparqlDecision,
    ValueProvenanceDecision,
)
from adapter.access.log import AccessLog
from adapter.access.model import AccessRequest, Action
from adapter.gateway import parse, upstream
from adapter.gateway.answers import filter_entity, partner_lineage, partner_verification
from adapter.gateway.parse import BadRequest
from adapter.gateway.upstream import UpstreamAnswer

from adapter.gateway._steps import _json, _problem, _route, _Steps

__all__: list[str] = []

#: headers of the adapter's answers that are passed on (record digests, cache rules)
_RECORD_HEADERS = ("Content-Type", "Repr-Digest", "Record-Index")
_LOG_HEADERS = ("Content-Type", "Cache-Control")


class _ProvenanceRoutes(_Steps):
    # -- the access log ---------------------------------------------------------------------------

    async def access(self, request: web.Request) -> web.Response:
        """The accesses to a collectivity's data, for its data administrators."""
        principal = await self._principal(request)
        typed = parse.access_log_request(request.query, self._headers(request))
        decided = self._decide(principal, typed, _route(request))
        assert isinstance(decided, AccessLogDecision)
        asked = decided.request
        records = self.c.access_log.records(asked.tenant, since=asked.since, until=asked.until)
        return _json(AccessLog.as_prov(records), content_type="application/ld+json")

    # -- SPARQL, provenance, logs (the adapter's, narrowed) ------------------------------------------

    async def sparql(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        base = self._adapter()
        typed = parse.sparql_request(
            request.method, request.content_type, request.query, await request.read(), self._headers(request)
        )
        decided = self._decide(principal, typed, _route(request))
        assert isinstance(decided, SparqlDecision)
        built = upstream.sparql(decided, self.c.adapter_token)
        answer = await upstream.send(self.c.session, base, built)
        content_type = answer.headers.get("Content-Type", "").split(";")[0].strip()
        for tenant in decided.tenants:  # one record per collectivity: each owner sees who queried its graphs
            self.c.access_log.record(
                principal,
                AccessRequest(Action.SPARQL_QUERY, tenant, "graph", purpose=typed.purpose),
                outcome="permitted" if answer.status == 200 else "refused",
                reason=f"graphs {', '.join(decided.graphs)}; endpoint answered {answer.status}",
                path=answer.target,
                agreement=", ".join(decided.agreements) or None,
            )
        if answer.status == 200 and content_type not in parse.SPARQL_MEDIA_TYPES:
            return _problem(502, "BadGateway", "Bad Gateway", "the SPARQL endpoint answered an unexpected format")
        if answer.status not in (200, 400, 408, 413, 503):
            return _problem(502, "BadGateway", "Bad Gateway", f"the SPARQL endpoint answered {answer.status}")
        return web.Response(
            body=answer.body,
            status=answer.status,
            headers={"Content-Type": answer.headers.get("Content-Type", "application/problem+json")},
        )

    async def lineage(self, request: web.Request) -> web.Response:
        return await self._value_provenance(request, "lineage")

    async def verify(self, request: web.Request) -> web.Response:
        return await self._value_provenance(request, "verify")

    async def _value_provenance(self, request: web.Request, kind: str) -> web.Response:
        principal = await self._principal(request)
        typed = parse.value_provenance_request(
            kind, request.match_info["tenant"], request.query, self._headers(request)
        )
        decided = self._decide(principal, typed, _route(request))
        assert isinstance(decided, ValueProvenanceDecision)
        base = self._adapter()
        if decided.area_check is not None:  # outside the area is "not found", as for the entity itself
            check = upstream.entity_query(decided.area_check, self.vocabulary)
            found = await self._broker(check)
            body = found.json()
            if (
                found.status != 200
                or not isinstance(body, list)
                or not [e for e in (filter_entity(x, decided.area_check.rules, self.short_names) for x in body) if e]
            ):
                return _problem(404, "ResourceNotFound", "Not Found", "no such entity, or nothing of it is granted")
        built = upstream.value_provenance(decided, self.c.adapter_token)
        answer = await upstream.send(self.c.session, base, built)
        value = answer.json()
        if answer.status == 200 and isinstance(value, dict) and not decided.personal:  # by allowlist
            value = partner_lineage(value) if kind == "lineage" else partner_verification(value)
        self._record(
            principal,
            decided.access,
            answer,
            reason=f"provenance: adapter answered {answer.status}",
            agreement=decided.grant.agreement,
            entities=[typed.entity_id],
        )
        if value is None:
            return _problem(502, "BadGateway", "Bad Gateway", f"the adapter answered {answer.status}")
        return _json(value, status=answer.status if answer.status in (200, 404) else 502)

    async def uplink_record(self, request: web.Request) -> web.Response:
        return await self._record_route(request, "uplink")

    async def uplink_canonical_record(self, request: web.Request) -> web.Response:
        return await self._record_route(request, "uplink-record")

    async def device_chain(self, request: web.Request) -> web.Response:
        return await self._record_route(request, "device")

    async def device_record(self, request: web.Request) -> web.Response:
        return await self._record_route(request, "device-record")

    async def _record_route(self, request: web.Request, kind: str) -> web.Response:
        """A whole record, or a device's chain: for principals who may read the personal graph."""
        principal = await self._principal(request)
        headers = self._headers(request)
        typed = parse.record_request(kind, request.match_info["tenant"], request.match_info, request.query, headers)
        decided = self._decide(principal, typed, _route(request))
        assert isinstance(decided, RecordDecision)
        accept = headers.one("Accept") or "*/*"
        if len(accept) > 256 or not accept.isprintable():
            raise BadRequest("Accept", "a short media type list")
        built = upstream.record(decided, accept, self.c.adapter_token)
        answer = await upstream.send(self.c.session, self._adapter(), built)
        self._record(
            principal,
            decided.access,
            answer,
            reason=f"provenance: adapter answered {answer.status}",
            agreement=", ".join(decided.agreements),
        )
        return _relayed(answer, _RECORD_HEADERS)

    async def log_checkpoint(self, request: web.Request) -> web.Response:
        return await self._log(request, "checkpoint")

    async def log_key(self, request: web.Request) -> web.Response:
        return await self._log(request, "key")

    async def log_tile(self, request: web.Request) -> web.Response:
        return await self._log(request, "tile")

    async def log_inclusion(self, request: web.Request) -> web.Response:
        return await self._log(request, "inclusion")

    async def log_consistency(self, request: web.Request) -> web.Response:
        return await self._log(request, "consistency")

    async def jwks(self, request: web.Request) -> web.Response:
        return await self._log(request, "jwks")

    async def _log(self, request: web.Request, kind: str) -> web.Response:
        """The collectivities' signed logs, keys and proofs: public, so that anyone can check."""
        typed = parse.log_request(
            kind,
            request.match_info.get("tenant"),
            request.match_info.get("rest"),
            request.query,
            self._headers(request),
        )
        answer = await upstream.send(self.c.session, self._adapter(), upstream.log_resource(typed))
        return _relayed(answer, _LOG_HEADERS)


def _relayed(answer: UpstreamAnswer, kept: Sequence[str]) -> web.Response:
    return web.Response(
        body=answer.body,
        status=answer.status if answer.status < 500 else 502,
        headers={k: v for k, v in answer.headers.items() if k in kept},
    )
