"""A thin asyncio client for the NGSI-LD API of a context broker (Orion-LD, Scorpio, Stellio).

The adapter talks to the broker only through this HTTP API. The client takes its base URL
and an ``aiohttp.ClientSession`` from outside, so the application shares one connection pool
and tests point it at a fake or embedded broker.

Batch upsert is the write path: ``POST /ngsi-ld/v1/entityOperations/upsert?options=update``
(attributes absent from the batch are kept), ``Content-Type: application/ld+json`` with the
``@context`` inside every entity, as the pipeline produces them, and the tenant in
``NGSILD-Tenant``. Brokers answer 201 (the created ids), 204 (all existed) or 207 (per-entity
``success`` and ``errors``), and Scorpio a 400 (or 409) with the same ``errors`` when no entity
was written; each broker shapes its entries its own way. ``adapter.ngsild.outcomes`` reads
every known shape into one ``BatchOutcome``: a fate per entity (delivered, refused, retry, or
unknown when the answer cannot be matched to it).

Errors, grouped by what the caller can do about them::

    AdapterError                      (adapter.exceptions)
    └── NgsiLdError                   anything that went wrong talking to the broker; ``status`` and
        │                             ``problem`` (ProblemDetails) are set when the broker answered
        ├── BrokerUnavailable         5xx, 408, 429, a timeout, a refused or dropped connection:
        │                             the broker cannot take the request now; send it again later
        ├── BrokerRejectedRequest     any other 4xx: this request is wrong or not allowed (bad token,
        │   │                         wrong URL, tenants not enabled...); resending it unchanged fails
        │   └── BrokerRejectedBatch   400, 409, 413, 415, 422 to a batch with no per-entity reasons:
        │                             the batch was refused whole; ``entity_ids`` names its entities
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
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from adapter.exceptions import AdapterError
from adapter.httpclient import read_limited
from adapter.ngsild.outcomes import (
    REFUSAL_STATUSES,
    BatchOutcome,
    EntityError,
    EntityOutcome,
    Fate,
    ProblemDetails,
    TemporalOutcome,
    read_refusal,
    read_upsert_answer,
)

if TYPE_CHECKING:  # the configuration imports this package: no import cycle at run time
    from adapter.config import BrokerSettings

__all__ = [
    "BatchOutcome",
    "BrokerProtocolError",
    "BrokerRejectedBatch",
    "BrokerRejectedRequest",
    "BrokerUnavailable",
    "EntityError",
    "EntityOutcome",
    "Fate",
    "NgsiLdClient",
    "NgsiLdError",
    "ProblemDetails",
    "TemporalOutcome",
    "batch_size",
    "encode_entity",
]

LD_JSON = "application/ld+json"
JSON_LD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
_API = "/ngsi-ld/v1"
#: the longest answer read: a 207 naming 1,000 refused entities is well under 1 MiB
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_RETRY_LATER = frozenset({408, 429})


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
    """A batch refused as a whole (400, 409, 413, 415, 422) with no per-entity reasons.

    Which entities are at fault is unknown when the batch held more than one."""

    def __init__(self, message: str, *, status: int, problem: ProblemDetails, entity_ids: tuple[str, ...]) -> None:
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
        temporal_url: the root that answers temporal queries, when it is not the broker's
            (Mintaka beside Orion-LD); temporal writes still go to ``base_url``.
    """

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        temporal_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.temporal_url = (temporal_url or base_url).rstrip("/")
        self._session = session
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @classmethod
    def from_settings(
        cls, settings: BrokerSettings, session: aiohttp.ClientSession, *, url: str | None = None
    ) -> NgsiLdClient:
        """The client of the ``[broker]`` table: every component reaches the broker and its
        temporal API alike. ``url`` (a command's ``--broker``) replaces the broker, and then its
        temporal API too (the configured ``temporal_url`` belongs to the configured broker)."""
        base = url or settings.url
        if base is None:
            raise ValueError("no broker url: set [broker] url")
        return cls(
            base,
            session,
            token=settings.token,
            timeout_s=settings.request_timeout_s,
            temporal_url=settings.temporal_url if url is None else None,
        )

    async def batch_upsert(
        self, tenant: str | None, entities: Sequence[Mapping[str, Any]], *, options: str = "update"
    ) -> BatchOutcome:
        """Create or update ``entities`` in one request; what became of each is in the outcome.

        ``options="update"`` keeps the attributes a stored entity has and the batch does not
        carry; ``"replace"`` drops them. A 4xx holding per-entity reasons (Scorpio) is an
        outcome too. Raises ``BrokerRejectedBatch`` when the whole batch is refused without
        per-entity reasons, ``BrokerUnavailable`` when it should be sent again later,
        ``BrokerRejectedRequest`` for other 4xx, ``BrokerProtocolError`` for other statuses.
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
            "POST",
            "/entityOperations/upsert",
            tenant,
            params={"options": options},
            body=body,
            content_type=LD_JSON,
            text_if_not_json=True,
        )
        return self._read_upsert(status, payload, ids)

    def _read_upsert(self, status: int, payload: Any, ids: tuple[str, ...]) -> BatchOutcome:
        if status in (201, 204, 207):
            return read_upsert_answer(status, payload, ids)
        per_entity = read_refusal(status, payload, ids)  # Scorpio: a 400/409 with an ``errors`` list
        if per_entity is not None:
            return per_entity
        if status in REFUSAL_STATUSES:
            problem = ProblemDetails.from_json(payload, status=status, fallback="batch refused")
            raise BrokerRejectedBatch(
                f"the broker refused the whole batch of {len(ids)} entities: HTTP {status} {problem.title}",
                status=status,
                problem=problem,
                entity_ids=ids,
            )
        self._raise_for(status, payload, "batch upsert")
        raise BrokerProtocolError(f"unexpected HTTP {status} to a batch upsert", status=status)

    async def add_temporal_attributes(self, tenant: str | None, entity_id: str, fragment: str) -> TemporalOutcome:
        """``POST /temporal/entities/{id}/attrs``: add attribute instances to the entity's history only.

        ``fragment``: the attributes as JSON text (``encode_entity``), with their ``@context``.
        A broker that does not implement it (Orion-LD: 501) gives an outcome with ``supported``
        false. Raises ``BrokerUnavailable`` (send it again later) and ``BrokerRejectedRequest``
        (401, 403...) as the other calls do.
        """
        status, payload = await self._request(
            "POST",
            f"/temporal/entities/{quote(entity_id, safe='')}/attrs",
            tenant,
            body=fragment.encode("utf-8"),
            content_type=LD_JSON,
            text_if_not_json=True,
        )
        if status in (200, 201, 204):
            return TemporalOutcome(status, Fate.DELIVERED)
        problem = ProblemDetails.from_json(payload, status=status, fallback=f"HTTP {status}")
        if status in (404, 405, 501):
            return TemporalOutcome(status, Fate.UNKNOWN, problem, supported=False)
        if status == 207 or status in REFUSAL_STATUSES:  # 207: some attributes were not added
            return TemporalOutcome(status, Fate.REFUSED, problem)
        self._raise_for(status, payload, "temporal attribute addition")
        raise BrokerProtocolError(f"unexpected HTTP {status} to a temporal attribute addition", status=status)

    async def get_entity(
        self,
        tenant: str | None,
        entity_id: str,
        *,
        context: str | None = None,
        attrs: Sequence[str] = (),
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
            type=type,
            q=q,
            id=",".join(ids) or None,
            attrs=",".join(attrs) or None,
            limit=limit,
            offset=offset,
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
            attrs=",".join(attrs) or None,
            timerel=timerel,
            timeAt=time_at,
            endTimeAt=end_time_at,
            lastN=last_n,
            options=options,
        )
        status, payload = await self._request(
            "GET",
            f"/temporal/entities/{quote(entity_id, safe='')}",
            tenant,
            params=params,
            context=context,
            root=self.temporal_url,
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
        text_if_not_json: bool = False,
        root: str | None = None,
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
        url = f"{root or self.base_url}{_API}{path}"
        try:
            # Redirects are not followed: aiohttp would replay a POST as a GET without its body,
            # and the answer to that GET would be read as the batch's.
            async with self._session.request(
                method,
                url,
                params=params,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                raw = await read_limited(response, MAX_ANSWER_BYTES)
        except TimeoutError as exc:
            raise BrokerUnavailable(f"{method} {url}: no answer within {self._timeout.total} s") from exc
        except aiohttp.ClientError as exc:
            raise BrokerUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if 300 <= status < 400:
            raise BrokerRejectedRequest(
                f"{method} {url}: HTTP {status} redirect to {response.headers.get('Location', '?')!r}; redirects are "
                "not followed: set [broker] url to the broker's own address",
                status=status,
            )
        if raw is None:
            if text_if_not_json:  # a batch: its entities' outcomes are unknown (each is sent alone)
                return status, f"an answer longer than {MAX_ANSWER_BYTES} bytes, not read"
            raise BrokerProtocolError(
                f"{method} {url}: HTTP {status} with an answer longer than {MAX_ANSWER_BYTES} bytes", status=status
            )
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested beyond the parser's depth
            # A proxy's HTML error page: keep the status, the text is the detail. A batch answer
            # that is not JSON is read as such too (its entities' outcomes are then unknown).
            if status >= 400 or text_if_not_json:
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


def _params(**values: str | int | None) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def _object(payload: Any, status: int, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BrokerProtocolError(f"expected {what} in the HTTP {status} answer", status=status)
    return payload
