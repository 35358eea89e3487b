"""The gateway's HTTP edge: every partner request parsed into the typed request model.

Each function takes what aiohttp received and returns one request of ``adapter.access.requests``,
or raises ``BadRequest`` naming the parameter, member or header that is wrong. What the model
does not know is refused here (400), never passed on: a query parameter no route lists, a second
value of a parameter, a subscription member the gateway does not offer, a ``Link`` context that
is not the type's, a tenant that is not one of the configured collectivities. After this, the
gateway never looks at the client's strings again: the decision takes the typed request, and the
broker request is built from the decision.

Names are short names only (``no2``, not an IRI nor a prefixed name): agreements name attributes
by their short names in the type's Smart Data Models context, and a client's own context or an
IRI could give a granted name to another attribute.
"""

from __future__ import annotations

from adapter.gateway.parse._values import (
    BadRequest,
    Headers,
    MAX_BODY_BYTES,
    NotAcceptable,
    SPARQL_MEDIA_TYPES,
    entity_type_of,
    patterns_of,
    safe_pattern,
)
from adapter.gateway.parse._queries import (
    entity_query,
    entity_query_body,
    entity_retrieval,
    json_body,
    subscription_from,
    subscription_id,
    subscription_request,
    temporal_query,
    temporal_retrieval,
)
from adapter.gateway.parse._provenance import (
    access_log_request,
    log_request,
    no_parameters,
    record_request,
    sparql_request,
    value_provenance_request,
)

__all__ = [
    "BadRequest",
    "Headers",
    "MAX_BODY_BYTES",
    "NotAcceptable",
    "SPARQL_MEDIA_TYPES",
    "access_log_request",
    "entity_query",
    "entity_query_body",
    "entity_retrieval",
    "entity_type_of",
    "json_body",
    "log_request",
    "no_parameters",
    "patterns_of",
    "record_request",
    "safe_pattern",
    "sparql_request",
    "subscription_from",
    "subscription_id",
    "subscription_request",
    "temporal_query",
    "temporal_retrieval",
    "value_provenance_request",
]
