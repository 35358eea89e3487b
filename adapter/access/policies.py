"""Sharing agreements between collectivities, and the decisions the gateway enforces.

One W3C ODRL 2.2 ``odrl:Agreement`` per file (JSON-LD, format in ``docs/sharing-agreements.md``;
parsing in ``adapter.access.odrl``). ``PolicySet.load`` reads a folder of them, all or nothing;
``decide`` turns a principal's request into a ``Decision``: the grants of every permission that
applies, best first, or a denial naming the rule. Deny by default: what no permission grants
is refused, including a collectivity's own data (its staff get it through agreements too)::

    policies = PolicySet.load(Path("compose/policies"), tenants={"ville", "region"},
                              catalogue=Catalogue.from_profiles(load_profiles(Path("models"))))
    decision = policies.decide(principal, AccessRequest(Action.SUBSCRIBE, "region",
                               "AirQualityObserved", purpose="ventilation-control"), now=now)
    if decision.permitted:
        grant = decision.grants[0]   # answer under it: attributes, removed, coarsened, area...

A permission applies when its agreement's assignee matches the principal, its target covers the
request's tenant and entity type, it lists the action, and its purpose (if any) is the request's.
Its other constraints do not deny: they narrow, and travel in the ``Grant`` (time window, area,
aggregation, removed and coarsened attributes) for the gateway to apply.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from adapter.access.model import AccessRequest, Action, Aggregation, Decision, Grant, Principal, SparqlDataset
from adapter.access.odrl import Agreement, Catalogue, Permission, PolicyError, parse_agreement

# the graphs are named where the index writes them
from adapter.provenance.rdf import graph_iri as graph_of
from adapter.provenance.rdf import personal_graph_iri as personal_graph_of

__all__ = [
    "Catalogue",
    "Cell",
    "PolicyError",
    "PolicySet",
    "access_graph_of",
    "check_file",
    "graph_of",
    "observation_window",
    "personal_graph_of",
    "visible_attributes",
]

_VERBS = {
    Action.READ: "read",
    Action.QUERY_HISTORY: "query the history of",
    Action.SUBSCRIBE: "subscribe to",
    Action.SPARQL_QUERY: "query over SPARQL",
}


class Cell(NamedTuple):
    """One cell of ``PolicySet.matrix``: may ``principal`` ``action`` ``attribute`` of
    ``entity_type`` of ``tenant``?"""

    principal: Principal
    tenant: str
    entity_type: str
    attribute: str
    action: Action
    allowed: bool


def access_graph_of(tenant: str) -> str:
    """The access graph of a collectivity: who read its data through the gateway, and what."""
    return f"urn:ngsild-adapter:graph:{tenant}:access"


def visible_attributes(grant: Grant, attributes: frozenset[str]) -> frozenset[str]:
    """What a grant lets through of a type's ``attributes`` (coarsened ones included)."""
    allowed = attributes if grant.attributes is None else grant.attributes & attributes
    return allowed - grant.removed


class PolicySet:
    """The agreements in force, and the decisions they make.

    ``PolicySet.load(folder, tenants=..., catalogue=...)`` reads every ``*.jsonld`` file of a
    folder; one wrong file refuses them all (``PolicyError`` naming the file and the problem).
    Parameters: ``tenants``, the configured collectivities; ``catalogue``, the entity types and
    attributes the device profiles make (``Catalogue.from_profiles``); ``personal_attributes``,
    the attributes the RDF index keeps out of the shared graphs (``[provenance]
    personal_attributes``), which decides what a SPARQL permission can open.
    """

    def __init__(
        self,
        agreements: Sequence[Agreement],
        *,
        tenants: Set[str],
        catalogue: Catalogue,
        personal_attributes: Set[str] = frozenset(),
    ) -> None:
        by_uid: dict[str, Agreement] = {}
        for agreement in agreements:
            other = by_uid.get(agreement.uid)
            if other is not None:
                raise PolicyError(agreement.file, f"uid {agreement.uid} is already the uid of {other.file}")
            by_uid[agreement.uid] = agreement
        self.agreements = tuple(agreements)
        self.tenants = frozenset(tenants)
        self.catalogue = catalogue
        self.personal_attributes = frozenset(personal_attributes)
        self._by_uid = by_uid
        # (tenant, entity type, action) -> the permissions covering it, each with its grant
        # for that type: a grant depends on the permission and the type only.
        self._rules: dict[tuple[str, str, Action], list[tuple[Agreement, Permission, Grant]]] = {}
        for agreement in self.agreements:
            for permission in agreement.permissions:
                for entity_type in sorted(permission.entity_types):
                    grant = _grant(agreement, permission, catalogue.attributes(entity_type))
                    if grant is None:
                        continue
                    for action in permission.actions:
                        key = (permission.tenant, entity_type, action)
                        self._rules.setdefault(key, []).append((agreement, permission, grant))

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        tenants: Set[str],
        catalogue: Catalogue,
        contexts_dir: Path | None = None,
        personal_attributes: Set[str] = frozenset(),
    ) -> PolicySet:
        """Every ``*.jsonld`` agreement of ``folder`` (sorted by name), or a ``PolicyError``."""
        if not folder.is_dir():
            raise PolicyError(folder, "the agreements folder does not exist")
        agreements = [
            parse_agreement(path, tenants=tenants, catalogue=catalogue, contexts_dir=contexts_dir)
            for path in sorted(folder.glob("*.jsonld"))
        ]
        return cls(agreements, tenants=tenants, catalogue=catalogue, personal_attributes=personal_attributes)

    def attributes(self, entity_type: str) -> frozenset[str]:
        """The attributes the device profiles make for ``entity_type`` (none for an unknown type)."""
        return self.catalogue.attributes(entity_type) if entity_type in self.catalogue else frozenset()

    def agreement(self, uid: str) -> Agreement:
        """The agreement with this uid (``KeyError`` if none)."""
        return self._by_uid[uid]

    def decide(self, principal: Principal, request: AccessRequest, *, now: datetime) -> Decision:
        """Permit with the grants of every permission that applies, best first (raw values
        before aggregates, then more attributes), or deny naming the rule.

        ``now`` (timezone-aware) matters for subscriptions only: a permission whose time window
        has already closed grants no subscription (it could never deliver anything).
        """
        if now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime")
        if request.tenant not in self.tenants:
            return Decision(False, reason=f"{request.tenant!r} is not a collectivity of this gateway")
        if request.entity_type not in self.catalogue:
            return Decision(False, reason=f"no device profile makes entity type {request.entity_type!r}")
        grants: list[Grant] = []
        unmet: list[str] = []
        for agreement, permission, grant in self._rules.get((request.tenant, request.entity_type, request.action), ()):
            if not any(party.matches(principal) for party in agreement.assignees):
                continue
            problem = _unmet(agreement, permission, request, now)
            if problem is None:
                grants.append(grant)
            else:
                unmet.append(problem)
        if grants:
            attributes = self.catalogue.attributes(request.entity_type)
            return Decision(True, tuple(sorted(grants, key=lambda g: _rank(g, attributes))))
        if unmet:
            return Decision(False, reason="; ".join(unmet))
        return Decision(
            False,
            reason=f"no agreement grants {request.action.value} on {request.entity_type} of {request.tenant} "
            f"to {_who(principal)}",
        )

    def sparql_dataset(self, principal: Principal, *, purpose: str | None = None) -> SparqlDataset:
        """The graphs the principal's SPARQL queries may read, and why other permissions open none.

        A ``sparqlQuery`` permission (of an agreement the principal is an assignee of, whose
        purpose, if it has one, is ``purpose``) opens its collectivity's shared graph when every
        attribute it removes or coarsens is one the index keeps out of it (``personal_attributes``;
        a coarsened one is then left out entirely, which gives less, never more), and the personal
        graph too when it removes and coarsens nothing; such a permission also opens the access graph
        (who read the collectivity's data) to the collectivity's own people. One that removes an
        attribute the shared graph holds opens nothing: the store could not keep that attribute
        out of the answers.
        """
        graphs: set[str] = set()
        agreements: set[str] = set()
        refusals: list[str] = []
        for agreement in self.agreements:
            if not any(party.matches(principal) for party in agreement.assignees):
                continue
            for permission in agreement.permissions:
                if Action.SPARQL_QUERY not in permission.actions:
                    continue
                if permission.purposes is not None and purpose not in permission.purposes:
                    refusals.append(
                        f"agreement {agreement.uid} requires purpose "
                        f"{_and(sorted(permission.purposes), 'or')} (NGSILD-Purpose)"
                    )
                    continue
                hidden = permission.removed | {name for name, _ in permission.coarsened}
                held = sorted(hidden - self.personal_attributes)
                if held:
                    refusals.append(
                        f"agreement {agreement.uid} keeps {_and(held)} out of SPARQL answers, but the shared graph "
                        f"of {permission.tenant} holds {'it' if len(held) == 1 else 'them'}: the operator lists "
                        f"{'it' if len(held) == 1 else 'them'} in [provenance] personal_attributes"
                    )
                    continue
                graphs.add(graph_of(permission.tenant))
                if not hidden:
                    graphs.add(personal_graph_of(permission.tenant))
                    if principal.organization == permission.tenant:
                        graphs.add(access_graph_of(permission.tenant))
                agreements.add(agreement.uid)
        return SparqlDataset(tuple(sorted(graphs)), tuple(sorted(agreements)), tuple(refusals))

    def matrix(self, principals: Sequence[Principal], now: datetime) -> Iterator[Cell]:
        """Every (principal, tenant, entity type, attribute, action) cell, and whether it is allowed:
        some request (without purpose, or with any purpose an agreement names) is permitted
        and one of its grants lets the attribute through (coarsened or aggregated counts).

        For isolation tests: assert that every allowed cell is one you meant to share.
        """
        purposes: list[str | None] = [None]
        purposes += sorted({p for a in self.agreements for perm in a.permissions for p in perm.purposes or ()})
        for principal in principals:
            for tenant in sorted(self.tenants):
                for entity_type in self.catalogue.types:
                    attributes = self.catalogue.attributes(entity_type)
                    for action in Action:
                        visible: set[str] = set()
                        for purpose in purposes:
                            request = AccessRequest(action, tenant, entity_type, purpose)
                            for grant in self.decide(principal, request, now=now).grants:
                                visible |= visible_attributes(grant, attributes)
                        for attribute in sorted(attributes):
                            yield Cell(principal, tenant, entity_type, attribute, action, attribute in visible)

    def describe(self, agreement_uid: str) -> list[str]:
        """What an agreement grants, in plain English sentences: who, which data, which
        actions, under which conditions (``ngsild-adapter policy check FILE`` prints them)."""
        agreement = self.agreement(agreement_uid)
        who = _and([str(party) for party in agreement.assignees])
        lines = [f"Agreement {agreement.uid}: {agreement.assigner} shares data with {who}."]
        several = len(agreement.permissions) > 1
        for number, permission in enumerate(agreement.permissions, 1):
            verbs = _and([_VERBS[a] for a in Action if a in permission.actions])
            sentence = f"{who[0].upper()}{who[1:]} may {verbs} {_data(permission)}."
            lines.append(f"Permission {number}: {sentence}" if several else sentence)
            lines.extend(_conditions(permission))
        return lines


def check_file(path: Path, tenants: Set[str], catalogue: Catalogue, *, contexts_dir: Path | None = None) -> list[str]:
    """Check one agreement file and say what it grants (``describe``); ``PolicyError`` if wrong."""
    agreement = parse_agreement(path, tenants=tenants, catalogue=catalogue, contexts_dir=contexts_dir)
    return PolicySet([agreement], tenants=tenants, catalogue=catalogue).describe(agreement.uid)


def _grant(agreement: Agreement, permission: Permission, attributes: frozenset[str]) -> Grant | None:
    """The grant of a permission for a type with these attributes; None if it names none of them."""
    listed = None if permission.attributes is None else permission.attributes & attributes
    if listed is not None and not listed:
        return None
    return Grant(
        agreement=agreement.uid,
        assigner=agreement.assigner,
        attributes=listed,
        removed=permission.removed & attributes,
        coarsened=tuple((name, decimals) for name, decimals in permission.coarsened if name in attributes),
        area=permission.area,
        not_before=permission.not_before,
        not_after=permission.not_after,
        aggregation=permission.aggregation,
    )


def _rank(grant: Grant, attributes: frozenset[str]) -> tuple[bool, int, int, bool, bool, str]:
    return (
        grant.aggregation is not None,
        -len(visible_attributes(grant, attributes)),
        len(grant.coarsened),
        grant.area is not None,
        grant.not_before is not None or grant.not_after is not None,
        grant.agreement,
    )


def _unmet(agreement: Agreement, permission: Permission, request: AccessRequest, now: datetime) -> str | None:
    if permission.purposes is not None and request.purpose not in permission.purposes:
        wanted = (
            f"purpose {next(iter(permission.purposes))}"
            if len(permission.purposes) == 1
            else f"one of the purposes {_and(sorted(permission.purposes), 'or')}"
        )
        declared = "declares none" if request.purpose is None else "declares another"
        return f"agreement {agreement.uid} requires {wanted} (the request {declared})"
    if request.action is Action.SUBSCRIBE and permission.not_after is not None and permission.not_after < now:
        return (
            f"agreement {agreement.uid} covers observations until {_iso(permission.not_after)} only: "
            "a subscription would receive none"
        )
    return None


def _who(principal: Principal) -> str:
    client = f" (client {principal.client_id})" if principal.client_id else ""
    return f"organization {principal.organization}{client}"


def _and(items: Sequence[str], last: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def observation_window(not_before: datetime | None, not_after: datetime | None) -> str:
    """An agreement's time window in words: ``from T1 to T2``, ``from T1 on`` or ``until T2``."""
    if not_before is not None and not_after is not None:
        return f"from {_iso(not_before)} to {_iso(not_after)}"
    if not_before is not None:
        return f"from {_iso(not_before)} on"
    if not_after is not None:
        return f"until {_iso(not_after)}"
    return "at any time"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _data(permission: Permission) -> str:
    if permission.every_type:
        data = f"all of {permission.tenant}'s data"
    else:
        data = f"{permission.tenant}'s {_and(sorted(permission.entity_types))}"
    if permission.attributes is not None:
        data += f", only the attributes {_and(sorted(permission.attributes))}"
    return data


def _cell_conditions(a: Aggregation) -> list[str]:
    """An aggregated grant's cell definition in plain words (``adapter.access.cells``)."""
    period = {
        "PT1H": "clock hour",
        "P1D": "calendar day",
        "P1W": "ISO week (from Monday)",
        "P1M": "calendar month",
    }.get(a.period, a.period)
    if a.districts:
        names = _and([d.name for d in a.districts])
        groups = f"each district ({names}){' and their total' if a.total else ''}"
    else:
        groups = "all the sensors together"
    largest = (
        "the largest contribution makes"
        if a.dominance_top == 1
        else f"the {a.dominance_top} largest contributions make"
    )
    lines = [
        f"Only aggregates, as published cells: the {a.method} of {groups}, per {period} ({a.period}, {a.time_zone}).",
        f"A cell is published only once its period is over, when at least {a.min_group_size} sensors contributed "
        f"and {largest} at most {a.dominance_share * 100:g}% of it; otherwise it is suppressed"
        + (", as is any cell the total would reveal." if a.total else "."),
    ]
    if a.districts:
        lines.append("Sensors outside every district are in no cell.")
    if a.noise_epsilon is not None and a.contribution_bounds is not None:
        lower, upper = a.contribution_bounds
        budget = f"; a reader may spend at most epsilon {a.privacy_budget:g}" if a.privacy_budget is not None else ""
        lines.append(
            f"Published values carry Laplace noise (epsilon {a.noise_epsilon:g} per cell, each sensor's "
            f"contribution clamped to [{lower:g}, {upper:g}]){budget}."
        )
    return lines


def _conditions(permission: Permission) -> list[str]:
    lines = []
    if permission.purposes is not None:
        purposes = sorted(permission.purposes)
        lines.append(
            f"Only for the purpose {purposes[0]}."
            if len(purposes) == 1
            else f"Only for one of the purposes {_and(purposes, 'or')}."
        )
    if permission.aggregation is None:
        lines.append("Raw values.")
    else:
        lines.extend(_cell_conditions(permission.aggregation))
    if permission.not_before or permission.not_after:
        lines.append(f"Only observations {observation_window(permission.not_before, permission.not_after)}.")
    if permission.area is not None:
        corners = len(permission.area.polygon) - 1
        lines.append(f"Only observations located inside the agreement's polygon ({corners} corners).")
    if permission.removed:
        names = sorted(permission.removed)
        lines.append(
            f"Attributes {_and(names)} are removed." if len(names) > 1 else f"Attribute {names[0]} is removed."
        )
    for name, decimals in permission.coarsened:
        lines.append(f"Attribute {name} is coarsened to {decimals} decimal{'s' if decimals != 1 else ''}.")
    return lines
