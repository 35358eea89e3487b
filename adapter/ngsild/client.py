"""A thin asyncio client for the NGSI-LD API of a context broker (Orion-LD, Scorpio, Stellio).

The adapter talks to the broker only through this HTTP API. The client takes its base URL
and an ``aiohttp.ClientSession`` from outside, so the application shares one connection pool
and tests point it at a fake or embedded broker.

Batch upsert is the write path: ``POST /ngsi-ld/v1/entityOperations/upsert?options=update``
(attributes absent from the batch are kept), ``Content-Type: application/ld+json`` with the
``@context`` inside every entity, as the pipeline produces them, and the tenant in
``NGSILD-Tenant``. Orion-LD answers 201 (the created ids), 204 (all existed) or 207 (per-entity
``success`` and ``errors``, sent even when every entity failed, and also for a mixed batch without
errors in its legacy mode); ``BatchOutcome`` holds either shape.

Errors, grouped by what the caller can do about them::

    AdapterError                      (adapter.exceptions)
    └── NgsiLdError                   anything that went wrong talking to the broker; ``status`` and
        │                             ``problem`` (ProblemDetails) are set when the broker answered
        ├── BrokerUnavailable         5xx, 408, 429, a timeout, a refused or dropped connection:
        │                             the broker cannot take the request now; send it again later
        ├── BrokerRejectedRequest     any other 4xx: this request is wrong or not allowed (bad token,
        │   │                         wrong URL, tenants not enabled...); resending it unchanged fails
        │   └── BrokerRejectedBatch   400, 413, 415, 422 to a batch: the entities themselves are at
        │                             fault; ``entity_ids`` names them
        └── BrokerProtocolError       the answer is not what the NGSI-LD API promises (status, body)

aiohttp and asyncio errors are translated here and chained (``raise ... from``); nothing from
aiohttp escapes. Match broker errors on ProblemDetails ``type`` and HTTP status, not on titles,
which differ between Orion-LD's modes.

The encoding of a batch body is fixed (``encode_entity``: compact JSON, UTF-8): the body of a
batch is ``[`` + the encoded entities joined by ``,`` + ``]``, so a caller can know the exact size
of a batch before sending it (``batch_size``), and keep it under the broker's 1 MiB limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from adapter.exceptions import AdapterError

__all__ = [
    "BatchOutcome",
    "BrokerProtocolError",
    "BrokerRejectedBatch",
    "BrokerRejectedRequest",
    "BrokerUnavailable",
    "EntityError",
    "NgsiLdClient",
    "NgsiLdError",
    "ProblemDetails",
    "batch_size",
    "encode_entity",
]

LD_JSON = "application/ld+json"
JSON_LD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
_API = "/ngsi-ld/v1"
_REJECTED_BATCH = frozenset({400, 413, 415, 422})
_RETRY_LATER = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class ProblemDetails:
    """An error as the broker describes it (RFC 9457 / NGSI-LD ProblemDetails).

    Orion-LD sends ``type``, ``title`` and ``detail`` but no ``status`` at the top of a
    request-level error: ``status`` is then the HTTP status.
    """

    type: str
    title: str
    status: int | None = None
    detail: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any, *, status: int | None = None, fallback: str = "") -> ProblemDetails:
        if not isinstance(value, Mapping):
            return cls(type="about:blank", title=fallback, status=status, detail=None if value is None else str(value))
        known = {"type", "title", "status", "detail"}
        raw_status = value.get("status")
        return cls(
            type=str(value.get("type") or "about:blank"),
            title=str(value.get("title") or fallback),
            status=raw_status if isinstance(raw_status, int) else status,
            detail=None if value.get("detail") is None else str(value["detail"]),
            extra={k: v for k, v in value.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "title": self.title}
        if self.status is not None:
            out["status"] = self.status
        if self.detail is not None:
            out["detail"] = self.detail
        return {**out, **self.extra}


@dataclass(frozen=True, slots=True)
class EntityError:
    """One entity of a batch that the broker did not write, and why."""

    entity_id: str
    problem: ProblemDetails


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """The broker's answer to a batch upsert.

    ``status`` is 201, 204 or 207. ``created`` lists the ids a 201 names (the new entities;
    in Orion-LD's experimental mode a mixed batch is a 201 listing only those).
    ``succeeded`` lists the ``success`` ids of a 207. Every entity of the batch that is not in
    ``errors`` was written.
    """

    status: int
    created: tuple[str, ...] = ()
    succeeded: tuple[str, ...] = ()
    errors: tuple[EntityError, ...] = ()

    def error_for(self, entity_id: str) -> ProblemDetails | None:
        for error in self.errors:
            if error.entity_id == entity_id:
                return error.problem
        return None


class NgsiLdError(AdapterError):
    """Root of the broker errors; ``status`` and ``problem`` are set when the broker answered."""

    def __init__(self, message: str, *, status: int | None = None, problem: ProblemDetails | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem


class BrokerUnavailable(NgsiLdError):
    """The broker cannot take the request now (5xx, 408, 429, timeout, connection refused or lost)."""


class BrokerRejectedRequest(NgsiLdError):
    """The broker refused this request (4xx); sending it again unchanged will not help."""


class BrokerRejectedBatch(BrokerRejectedRequest):
    """A batch refused as a whole (400, 413, 415, 422): its entities are at fault."""

    def __init__(
        self, message: str, *, status: int, problem: ProblemDetails, entity_ids: tuple[str, ...]
    ) -> None:
        super().__init__(message, status=status, problem=problem)
        self.entity_ids = entity_ids


class BrokerProtocolError(NgsiLdError):
    """The broker answered something the NGSI-LD API does not allow (status or body)."""


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_entity(entity: Mapping[str, Any]) -> str:
    """An entity as it is written in a batch body (compact JSON, non-ASCII kept)."""
    return _ENCODER.encode(entity)


def batch_size(encoded_sizes: Iterable[int]) -> int:
    """The byte size of a batch body made of entities whose UTF-8 encodings have these sizes."""
    sizes = list(encoded_sizes)
    return 2 + sum(sizes) + max(len(sizes) - 1, 0)


class NgsiLdClient:
    """The NGSI-LD API of one broker.

    Usage::

        async with aiohttp.ClientSession() as session:
            client = NgsiLdClient("http://orion:1026", session, token=os.environ.get("BROKER_TOKEN"))
            outcome = await client.batch_upsert("ville", entities)

    Parameters:
        base_url: the broker's root, without ``/ngsi-ld/v1``.
        session: the aiohttp session to send requests with (the caller owns and closes it).
        token: sent as ``Authorization: Bearer <token>`` when given.
        timeout_s: the limit for one whole request, connection included.
    """

    def __init__(
        self, base_url: str, session: aiohttp.ClientSession, *, token: str | None = None, timeout_s: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def batch_upsert(
        self, tenant: str | None, entities: Sequence[Mapping[str, Any]], *, options: str = "update"
    ) -> BatchOutcome:
        """Create or update ``entities`` in one request; per-entity failures are in the outcome.

        ``options="update"`` keeps the attributes a stored entity has and the batch does not
        carry; ``"replace"`` drops them. Raises ``BrokerRejectedBatch`` when the whole batch is
        refused, ``BrokerUnavailable`` when it should be sent again later.
        """
        if not entities:
            raise ValueError("a batch upsert needs at least one entity")
        return await self.batch_upsert_encoded(
            tenant, [encode_entity(e) for e in entities], [str(e.get("id")) for e in entities], options=options
        )

    async def batch_upsert_encoded(
        self, tenant: str | None, encoded: Sequence[str], ids: Sequence[str], *, options: str = "update"
    ) -> BatchOutcome:
        """``batch_upsert`` of entities already encoded with ``encode_entity`` (``ids``: theirs, in order).

        The texts are spliced into the body as they are (the outbox stores them so), never
        decoded and encoded again.
        """
        if not encoded:
            raise ValueError("a batch upsert needs at least one entity")
        if len(ids) != len(encoded):
            raise ValueError("one id per encoded entity")
        if options not in ("update", "replace"):
            raise ValueError(f"upsert options must be 'update' or 'replace', not {options!r}")
        body = ("[" + ",".join(encoded) + "]").encode("utf-8")
        ids = tuple(ids)
        status, payload = await self._request(
            "POST", "/entityOperations/upsert", tenant, params={"options": options}, body=body,
            content_type=LD_JSON,
        )
        if status in _REJECTED_BATCH:
            problem = ProblemDetails.from_json(payload, status=status, fallback="batch refused")
            raise BrokerRejectedBatch(
                f"the broker refused the whole batch of {len(ids)} entities: HTTP {status} {problem.title}",
                status=status, problem=problem, entity_ids=ids,
            )
        self._raise_for(status, payload, "batch upsert")
        if status == 204:
            return BatchOutcome(204)
        if status == 201:
            if not isinstance(payload, list):
                raise BrokerProtocolError("a 201 to a batch upsert must list the created ids", status=status)
            return BatchOutcome(201, created=tuple(str(i) for i in payload))
        if status == 207:
            return _multi_status(payload)
        raise BrokerProtocolError(f"unexpected HTTP {status} to a batch upsert", status=status)

    async def get_entity(
        self, tenant: str | None, entity_id: str, *, context: str | None = None, attrs: Sequence[str] = (),
        options: str | None = None,
    ) -> dict[str, Any] | None:
        """``GET /entities/{id}``, compacted with ``context`` (a URL); None when there is no such entity."""
        params = _params(attrs=",".join(attrs) or None, options=options)
        status, payload = await self._request(
            "GET", f"/entities/{quote(entity_id, safe='')}", tenant, params=params, context=context
        )
        if status == 404:
            return None
        self._raise_for(status, payload, "entity retrieval")
        return _object(payload, status, "an entity")

    async def query_entities(
        self,
        tenant: str | None,
        *,
        type: str | None = None,
        q: str | None = None,
        ids: Sequence[str] = (),
        attrs: Sequence[str] = (),
        context: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        options: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /entities`` (one page: ``limit`` defaults to the broker's, 20 for Orion-LD)."""
        params = _params(
            type=type, q=q, id=",".join(ids) or None, attrs=",".join(attrs) or None, limit=limit, offset=offset,
            options=options,
        )
        status, payload = await self._request("GET", "/entities", tenant, params=params, context=context)
        self._raise_for(status, payload, "entity query")
        if not isinstance(payload, list) or not all(isinstance(e, dict) for e in payload):
            raise BrokerProtocolError(f"expected a list of entities in the HTTP {status} answer", status=status)
        return payload

    async def get_temporal(
        self,
        tenant: str | None,
        entity_id: str,
        *,
        context: str | None = None,
        attrs: Sequence[str] = (),
        timerel: str | None = None,
        time_at: str | None = None,
        end_time_at: str | None = None,
        last_n: int | None = None,
        options: str | None = None,
    ) -> dict[str, Any] | None:
        """``GET /temporal/entities/{id}``; None when unknown. Orion-LD itself answers 501 (use Mintaka)."""
        params = _params(
            attrs=",".join(attrs) or None, timerel=timerel, timeAt=time_at, endTimeAt=end_time_at, lastN=last_n,
            options=options,
        )
        status, payload = await self._request(
            "GET", f"/temporal/entities/{quote(entity_id, safe='')}", tenant, params=params, context=context
        )
        if status == 404:
            return None
        self._raise_for(status, payload, "temporal retrieval")
        return _object(payload, status, "a temporal entity")

    async def _request(
        self,
        method: str,
        path: str,
        tenant: str | None,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        context: str | None = None,
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if tenant:
            headers["NGSILD-Tenant"] = tenant
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if content_type:
            headers["Content-Type"] = content_type
        if context:
            headers["Link"] = f'<{context}>; rel="{JSON_LD_CONTEXT_REL}"; type="{LD_JSON}"'
        url = f"{self.base_url}{_API}{path}"
        try:
            async with self._session.request(
                method, url, params=params, data=body, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise BrokerUnavailable(f"{method} {url}: no answer within {self._timeout.total} s") from exc
        except aiohttp.ClientError as exc:
            raise BrokerUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError as exc:
            if status >= 400:  # a proxy's HTML error page: keep the status, the text is the detail
                return status, raw.decode("utf-8", errors="replace")[:500]
            raise BrokerProtocolError(
                f"{method} {url}: HTTP {status} with a body that is not JSON", status=status
            ) from exc

    @staticmethod
    def _raise_for(status: int, payload: Any, what: str) -> None:
        if status < 400:
            return
        problem = ProblemDetails.from_json(payload, status=status, fallback=f"HTTP {status}")
        message = f"{what}: HTTP {status} {problem.title}" + (f" ({problem.detail})" if problem.detail else "")
        if status >= 500 or status in _RETRY_LATER:
            raise BrokerUnavailable(message, status=status, problem=problem)
        raise BrokerRejectedRequest(message, status=status, problem=problem)


def _multi_status(payload: Any) -> BatchOutcome:
    if not isinstance(payload, Mapping):
        raise BrokerProtocolError("a 207 to a batch upsert must be an object with success and errors", status=207)
    errors = []
    for item in payload.get("errors") or ():
        if not isinstance(item, Mapping):
            raise BrokerProtocolError(f"a 207 error entry must be an object, not {item!r}", status=207)
        errors.append(EntityError(
            str(item.get("entityId")), ProblemDetails.from_json(item.get("error"), fallback="entity refused")
        ))
    return BatchOutcome(207, succeeded=tuple(str(i) for i in payload.get("success") or ()), errors=tuple(errors))


def _params(**values: str | int | None) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def _object(payload: Any, status: int, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BrokerProtocolError(f"expected {what} in the HTTP {status} answer", status=status)
    return payload
