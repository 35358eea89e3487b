"""Who asks, what for, and what they are granted: the vocabulary shared by token validation
(``adapter.access.tokens``), sharing agreements (``adapter.access.policies``) and the gateway
that enforces them (``adapter.gateway``).

A ``Principal`` is what a validated token says about its bearer. An ``AccessRequest`` is one
thing the principal wants (an action on one entity type of one collectivity's data). A
``Grant`` is what one agreement permits for it, with the narrowing that comes with it; the
``Decision`` is the union of the grants that apply, or a denial naming why. Deny by default:
no grant, no access.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import rfc8785

if TYPE_CHECKING:  # the cells module reads this model: no import at run time
    from adapter.access.cells import District

__all__ = [
    "AccessRequest",
    "Action",
    "Aggregation",
    "Area",
    "Decision",
    "Grant",
    "Principal",
]


class Action(str, Enum):
    """What a principal may do with data (ODRL actions of the agreements)."""

    READ = "read"  # current entities: retrieval and query
    QUERY_HISTORY = "queryHistory"  # temporal retrieval (including aggregation)
    SUBSCRIBE = "subscribe"  # notifications through the gateway
    SPARQL_QUERY = "sparqlQuery"  # the provenance / observation graphs over SPARQL


@dataclass(frozen=True, slots=True)
class Principal:
    """The bearer of a validated access token.

    ``organization`` is the collectivity the bearer belongs to (the token's ``organization``
    claim, else the realm of its issuer); ``client_id`` is the OAuth client that obtained the
    token (``azp``); for a machine-to-machine token, the partner platform itself.
    """

    issuer: str
    subject: str
    organization: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    client_id: str | None = None
    username: str | None = None
    identity_provider: str | None = None  # set when the user logged in through identity brokering


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One action on one entity type of one collectivity (tenant); ``purpose`` as declared by
    the client (the ``NGSILD-Purpose`` header or the subscription's description), if any."""

    action: Action
    tenant: str
    entity_type: str
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class Area:
    """A spatial constraint: a WGS 84 polygon ``[[lon, lat], ...]`` (closed ring)."""

    polygon: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Aggregation:
    """Values only as published cells (``adapter.access.cells``): ``method`` (avg or sum) of
    each group of sensors over each calendar ``period`` (PT1H, P1D, P1W or P1M in
    ``time_zone``), published when at least ``min_group_size`` distinct sensors contributed
    and the ``dominance_top`` largest contributions make at most ``dominance_share`` of it.

    Groups: every sensor (``"all"``) or, with ``districts``, each district (a sensor is in
    the first district containing it), plus their ``total`` when asked; ``area`` (the
    permission's ``nga:area``) restricts the sensors first. ``noise_epsilon`` adds Laplace
    noise once per cell, each sensor's contribution clamped to ``contribution_bounds``;
    ``privacy_budget`` caps what one principal may spend. ``fingerprint`` names the cell
    definition, whatever agreement carries it.
    """

    method: str
    period: str
    min_group_size: int
    districts: tuple[District, ...] = ()
    time_zone: str = "UTC"
    dominance_top: int = 2
    dominance_share: float = 0.8
    total: bool = False
    area: Area | None = None
    noise_epsilon: float | None = None
    contribution_bounds: tuple[float, float] | None = None
    privacy_budget: float | None = None

    @property
    def fingerprint(self) -> str:
        """A digest of what decides the cells' values (not the budget, nor any agreement's
        uid), so that agreements with the same definition share the same stored cells."""
        definition: Any = {
            "version": "cells/1",  # bumped when the rules change, so no old cell is reused
            "method": self.method,
            "period": self.period,
            "minGroupSize": self.min_group_size,
            "districts": [[d.name, [list(p) for p in d.polygon]] for d in self.districts],
            "timeZone": self.time_zone,
            "dominance": [self.dominance_top, self.dominance_share],
            "total": self.total,
            "area": None if self.area is None else [list(p) for p in self.area.polygon],
            "noise": None if self.noise_epsilon is None else [self.noise_epsilon, list(self.contribution_bounds or ())],
        }
        return hashlib.sha256(rfc8785.dumps(definition)).hexdigest()


@dataclass(frozen=True, slots=True)
class Grant:
    """What one agreement permits for an ``AccessRequest``, and how it narrows it.

    ``attributes`` None means every attribute of the type (less ``removed``); ``coarsened``
    maps an attribute to the decimal places (for a location: of its coordinates) it keeps.
    """

    agreement: str  # the agreement's uid (an IRI)
    assigner: str  # the collectivity that owns the data
    attributes: frozenset[str] | None = None
    removed: frozenset[str] = frozenset()
    coarsened: tuple[tuple[str, int], ...] = ()
    area: Area | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    aggregation: Aggregation | None = None  # None: raw values


@dataclass(frozen=True, slots=True)
class Decision:
    """Permit with the grants that apply, or deny with the rule that denied (``reason`` is for
    the caller: it names the rule, never data).

    ``grants`` are ordered best first (raw values before aggregates, then more attributes);
    the gateway answers under the first and records that agreement in the access provenance.
    """

    permitted: bool
    grants: Sequence[Grant] = field(default_factory=tuple)
    reason: str = ""

    @property
    def agreements(self) -> tuple[str, ...]:
        return tuple(g.agreement for g in self.grants)


@dataclass(frozen=True, slots=True)
class SparqlDataset:
    """The named graphs a principal's SPARQL queries run over (the store restricts the query's
    dataset to them), the agreements that open them, and why other permissions opened nothing."""

    graphs: tuple[str, ...] = ()
    agreements: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()

    @property
    def tenants(self) -> tuple[str, ...]:
        """The collectivities whose graphs are open (``urn:ngsild-adapter:graph:{tenant}[:personal]``)."""
        return tuple(sorted({g.split(":")[3] for g in self.graphs}))
