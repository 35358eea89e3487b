"""What a partner asks, as typed values: the one request model the gateway decides on.

Every partner request (NGSI-LD entities, temporal entities, subscriptions, the provenance of a
value, whole records, SPARQL, the access log) is parsed at the HTTP edge
(``adapter.gateway.parse``) into one of the requests below, and nothing else of the HTTP
request is looked at afterwards: the decision (``adapter.access.decide``) takes the typed
request, and what the gateway sends to the broker or to the adapter is built from the
decision's narrowed request (``adapter.gateway.upstream``), never from the client's strings.
A parameter, member or header the parser does not know is refused there, so nothing the
model cannot express reaches a decision.

Two requests that ask the same question are the same value: retrieving ``/entities/{id}`` is
an ``EntityQuery`` with that id, the same as ``/entities?id=...&type=...`` or a POST of
``/entityOperations/query``; a subscription's entities, ``q`` and ``geoQ`` are the same
``Selection`` a query carries. So they reach the same decision by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from adapter.ngsild.qlang import Expr, attribute_paths

__all__ = [
    "AccessLogRequest",
    "BrokerAggregation",
    "EntityFormat",
    "EntityQuery",
    "GeoQuery",
    "LogRequest",
    "Page",
    "PartnerRequest",
    "Projection",
    "RecordRequest",
    "Selection",
    "SparqlRequest",
    "SubscriptionRequest",
    "TemporalQuery",
    "TimeQuery",
    "ValueProvenanceRequest",
]


class EntityFormat(str, Enum):
    """How entities are rendered to the partner (the gateway always reads normalized ones)."""

    NORMALIZED = "normalized"
    KEY_VALUES = "keyValues"  # also ``simplified``
    CONCISE = "concise"
    TEMPORAL_VALUES = "temporalValues"  # temporal entities only (``simplified`` there)


@dataclass(frozen=True, slots=True)
class GeoQuery:
    """An NGSI-LD geo-query; ``geoproperty`` is explicit (the brokers' default, ``location``,
    is written out so that the decision sees which attribute the query is about).

    ``coordinates`` is the validated GeoJSON coordinates array (nested tuples of floats);
    ``max_distance``/``min_distance`` (metres) go with ``near`` only.
    """

    georel: str  # near, within, contains, intersects, equals, disjoint, overlaps
    geometry: str  # Point, MultiPoint, LineString, MultiLineString, Polygon, MultiPolygon
    coordinates: tuple[object, ...]
    geoproperty: str = "location"
    max_distance: float | None = None
    min_distance: float | None = None


@dataclass(frozen=True, slots=True)
class TimeQuery:
    """A temporal query's time constraint: ``timerel`` with ``timeAt`` (and ``endTimeAt`` for
    ``between``), on ``timeproperty`` (explicit: ``observedAt`` unless the client names another)."""

    timerel: str  # before, after, between
    time_at: datetime
    end_time_at: datetime | None = None
    timeproperty: str = "observedAt"

    @property
    def start(self) -> datetime | None:
        return None if self.timerel == "before" else self.time_at

    @property
    def end(self) -> datetime | None:
        if self.timerel == "before":
            return self.time_at
        return self.end_time_at if self.timerel == "between" else None


@dataclass(frozen=True, slots=True)
class Selection:
    """Which entities: one collectivity (``tenant``, a configured one), one entity type, and
    what narrows them (ids, an id pattern, a parsed ``q``, a geo-query)."""

    tenant: str
    entity_type: str
    ids: tuple[str, ...] = ()
    id_pattern: str | None = None
    q: Expr | None = None
    geo: GeoQuery | None = None

    @property
    def q_attributes(self) -> frozenset[str]:
        """Every attribute ``q`` refers to, wherever it appears in the expression."""
        return frozenset(path.attribute for path in attribute_paths(self.q)) if self.q is not None else frozenset()


@dataclass(frozen=True, slots=True)
class Projection:
    """What of each entity: ``attrs`` (``attrs`` or ``pick``; None: every attribute), ``omit``,
    system attributes, and the format the partner wants."""

    attrs: frozenset[str] | None = None
    omit: frozenset[str] = frozenset()
    sys_attrs: bool = False
    format: EntityFormat = EntityFormat.NORMALIZED

    @property
    def named(self) -> frozenset[str]:
        """Every attribute the projection names."""
        return (self.attrs or frozenset()) | self.omit


@dataclass(frozen=True, slots=True)
class Page:
    limit: int = 20
    offset: int = 0
    count: bool = False


@dataclass(frozen=True, slots=True)
class BrokerAggregation:
    """The NGSI-LD temporal aggregation a raw grant may ask of the broker (``aggrMethods``,
    ``aggrPeriodDuration``) over its own data."""

    methods: tuple[str, ...]
    period: str


@dataclass(frozen=True, slots=True)
class EntityQuery:
    """Current entities: a query, or (``single``) the retrieval of one entity by its id."""

    selection: Selection
    projection: Projection = field(default_factory=Projection)
    page: Page = field(default_factory=Page)
    single: bool = False
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class TemporalQuery:
    """Temporal entities (the history): a query, or (``single``) one entity's history."""

    selection: Selection
    projection: Projection = field(default_factory=Projection)
    page: Page = field(default_factory=Page)
    time: TimeQuery | None = None
    last_n: int | None = None
    aggregation: BrokerAggregation | None = None
    single: bool = False
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """A partner's subscription: the entities (a ``Selection``, as a query has), what is
    watched and notified, and where the gateway forwards notifications (``endpoint``, still
    to be checked against the endpoint policy)."""

    selection: Selection
    endpoint: str
    watched: frozenset[str] | None = None
    attributes: frozenset[str] | None = None
    format: EntityFormat = EntityFormat.NORMALIZED
    accept: str = "application/json"
    throttling: int | None = None
    expires_at: datetime | None = None
    description: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class ValueProvenanceRequest:
    """The lineage or the verification of one value (``kind``: ``lineage`` or ``verify``)."""

    tenant: str
    entity_id: str
    entity_type: str
    attribute: str
    observed_at: datetime
    kind: str
    value: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class RecordRequest:
    """A whole provenance record or a device's chain: ``uplink`` (``n``), ``uplink-record``
    (``n``), ``device`` (``dev_eui``) or ``device-record`` (``dev_eui``, ``seq``)."""

    tenant: str
    kind: str
    n: int | None = None
    dev_eui: str | None = None
    seq: int | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class LogRequest:
    """A public resource of a collectivity's signed log: ``checkpoint``, ``key``, ``tile``
    (``tile``: the canonical tlog-tiles path, validated), ``inclusion`` (``index``, ``size``)
    or ``consistency`` (``old``, ``size``); or the JWK set of every key (``jwks``, no tenant)."""

    kind: str
    tenant: str | None = None
    tile: str | None = None
    index: int | None = None
    old: int | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class SparqlRequest:
    """A SPARQL 1.1 Protocol query: its text (the store runs it read-only over the dataset the
    gateway sets), the graphs its dataset parameters ask for (they can only narrow), and the
    result format (one of the media types the endpoint serves)."""

    query: str
    graphs: tuple[str, ...] = ()
    accept: str = "application/sparql-results+json"
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class AccessLogRequest:
    """The accesses to a collectivity's data (``/gateway/access?tenant=[&since=][&until=]``)."""

    tenant: str
    since: datetime | None = None
    until: datetime | None = None


PartnerRequest = (
    EntityQuery
    | TemporalQuery
    | SubscriptionRequest
    | ValueProvenanceRequest
    | RecordRequest
    | SparqlRequest
    | AccessLogRequest
    | LogRequest
)
