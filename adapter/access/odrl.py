"""Sharing agreements as W3C ODRL 2.2 policies: reading and checking one agreement file.

An agreement file is JSON-LD. It is expanded with pyld against the local contexts only
(``http://www.w3.org/ns/odrl.jsonld`` is ``contexts/odrl.jsonld``; nothing is fetched), then
read in its expanded form, as IRIs, so every compact spelling the contexts allow means the
same thing. A file the engine could not enforce exactly is refused with a ``PolicyError``
naming the file and the problem: a term no context defines (JSON-LD would silently drop it),
an unknown action, left operand or operator, a tenant that is not a configured collectivity,
an entity type or attribute no device profile makes, an assignee that is not one of the three
party forms, an agreement without permission. The format is in ``docs/sharing-agreements.md``.

The parsed ``Agreement`` is plain data; ``adapter.access.policies`` decides with it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from pyld import jsonld

from adapter.access.cells import (
    PERIODS,
    RESERVED_GROUPS,
    District,
    PeriodsError,
    budget_cost,
    noise_available,
    time_zone,
)
from adapter.access.model import Action, Aggregation, Area, Principal
from adapter.exceptions import ConfigError
from adapter.mapping.profile import DeviceProfile
from adapter.ngsild.contexts import ContextNotAvailable, document_loader

__all__ = [
    "AGGREGATION_METHODS",
    "Agreement",
    "Catalogue",
    "MAX_DISTRICTS",
    "NGA",
    "ODRL",
    "ODRL_CONTEXT",
    "PROFILE",
    "Party",
    "Permission",
    "PolicyError",
    "parse_agreement",
    "short",
]

ODRL = "http://www.w3.org/ns/odrl/2/"
NGA = "https://w3id.org/ngsild-adapter/ns#"
ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
#: The ODRL profile the ``nga:`` terms belong to (optional ``profile`` of an agreement).
PROFILE = "https://w3id.org/ngsild-adapter/odrl-profile"
#: What an aggregated grant may publish. min and max are refused: a cell's min or max *is* one
#: sensor's exact reading, which no threshold or dominance rule can protect.
AGGREGATION_METHODS = ("avg", "sum")
#: Most districts one cell definition may name (each is one cell per period and attribute).
MAX_DISTRICTS = 100

_DCT = "http://purl.org/dc/terms/"
_XSD = "http://www.w3.org/2001/XMLSchema#"
# Expansion maps every term no context defines under this prefix instead of dropping it, so
# a misspelt "constrant" is refused rather than read as "no constraint".
_UNDEFINED = "urn:ngsild-adapter:undefined-term:"

_ACTIONS: dict[str, Action] = {
    ODRL + "read": Action.READ,
    NGA + "queryHistory": Action.QUERY_HISTORY,
    NGA + "subscribe": Action.SUBSCRIBE,
    NGA + "sparqlQuery": Action.SPARQL_QUERY,
}
#: leftOperand -> the operators it accepts
_OPERATORS: dict[str, tuple[str, ...]] = {
    ODRL + "purpose": ("eq", "isAnyOf"),
    ODRL + "dateTime": ("gteq", "lteq"),
    NGA + "area": ("eq",),
    NGA + "levelOfDetail": ("eq",),
    NGA + "aggregationMethod": ("eq",),
    NGA + "aggregationPeriod": ("eq",),
    NGA + "minGroupSize": ("gteq",),
    NGA + "aggregationTimeZone": ("eq",),
    NGA + "aggregationDistricts": ("eq",),
    NGA + "aggregationTotal": ("eq",),
    NGA + "dominanceSensors": ("eq",),
    NGA + "dominanceShare": ("lteq",),
    NGA + "noiseEpsilon": ("eq",),
    NGA + "sensorContribution": ("gteq", "lteq"),
    NGA + "privacyBudget": ("lteq",),
}
_REMOVE = NGA + "removeAttribute"
_COARSEN = NGA + "coarsenAttribute"
_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_ORGANIZATION = re.compile(r"urn:ngsild-adapter:organization:([^:\s]+)")
_MEMBER = re.compile(r"urn:ngsild-adapter:(role|client):([^:\s]+):(\S+)")
_PARTY_FORMS = (
    "urn:ngsild-adapter:organization:{tenant}, urn:ngsild-adapter:role:{tenant}:{role} "
    "or urn:ngsild-adapter:client:{tenant}:{clientId}"
)
#: Terms ODRL defines that agreements do not use, with why (instead of "not allowed here").
_UNSUPPORTED = {
    ODRL + "prohibition": "prohibitions are not supported: access is denied unless a permission grants it",
    ODRL + "obligation": "agreement-level obligations are not supported: put duties on a permission",
    ODRL + "refinement": "refinements are not supported here: name entity types and attributes with "
    "nga:entityType and nga:attribute",
    ODRL + "assignee": "the assignee belongs on the agreement, not on a permission",
    ODRL + "assigner": "the assigner belongs on the agreement, not on a permission",
    ODRL + "target": "the target belongs on each permission, not on the agreement",
    ODRL + "inheritFrom": "policy inheritance is not supported: each agreement stands alone",
    ODRL + "and": "logical constraints (odrl:and) are not supported: list the constraints (all must hold)",
    ODRL + "or": "logical constraints (odrl:or) are not supported: write one permission per alternative",
    ODRL + "xone": "logical constraints (odrl:xone) are not supported",
    ODRL + "andSequence": "logical constraints (odrl:andSequence) are not supported",
    ODRL + "rightOperandReference": "odrl:rightOperandReference is not supported: give the value as rightOperand",
}


class PolicyError(ConfigError):
    """A sharing-agreement file is wrong: ``file`` names it, ``what`` says what to fix.

    Raised when agreements are loaded, never while deciding: a wrong agreement never reaches
    run time (and ``PolicySet.load`` keeps none of the folder's agreements).
    """

    def __init__(self, file: Path | str, what: str) -> None:
        super().__init__(f"{file}: {what}")
        self.file = str(file)
        self.what = what


class Catalogue:
    """Which entity types exist and which attributes each has: what the device profiles make.

    ``Catalogue.from_profiles(load_profiles(models_dir))`` lists each profile entity's measured
    attributes, observation times, period bounds, location, constant and registry properties
    and relationships, plus the Smart Data Models ``Device`` entity (with every attribute the
    adapter writes on it) when a profile has a ``device`` section::

        catalogue = Catalogue({"AirQualityObserved": ["no2", "location"]})
        catalogue.attributes("AirQualityObserved")  # frozenset({'no2', 'location'})
    """

    def __init__(self, types: Mapping[str, Iterable[str]]) -> None:
        self._types = {name: frozenset(attributes) for name, attributes in sorted(types.items())}

    @classmethod
    def from_profiles(cls, profiles: Iterable[DeviceProfile]) -> Catalogue:
        types: dict[str, set[str]] = {}
        for profile in profiles:
            for spec in profile.entities:
                names = types.setdefault(spec.type, set())
                names.update(a.name for a in spec.attributes)
                names.update(spec.times)
                if spec.period is not None:
                    names.update((spec.period.start_attribute, spec.period.end_attribute))
                if spec.location is not None:
                    names.add("location")
                names.update(spec.static)
                names.update(spec.from_registry)
                names.update(spec.relationships)
            if profile.device is not None:
                # What build_device_entity writes (batteryLevel and linkMargin also come from
                # device-status events, whatever the profile says).
                device = types.setdefault("Device", set())
                device.update(
                    (
                        "batteryLevel",
                        "category",
                        "controlledProperty",
                        "dateLastValueReported",
                        "deviceState",
                        "linkMargin",
                        "location",
                        "name",
                        "rssi",
                        "supportedProtocol",
                    )
                )
                if profile.device.device_model:
                    device.add("refDeviceModel")
        return cls(types)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self._types)

    def __contains__(self, entity_type: object) -> bool:
        return entity_type in self._types

    def attributes(self, entity_type: str) -> frozenset[str]:
        """The attributes of a type (``KeyError`` for a type no profile makes)."""
        return self._types[entity_type]


@dataclass(frozen=True, slots=True)
class Party:
    """An assignee: a whole ``organization``, a ``role`` within one, or one OAuth ``client`` of one."""

    iri: str
    kind: str  # "organization", "role" or "client"
    tenant: str
    name: str | None = None  # the role, or the client id

    def matches(self, principal: Principal) -> bool:
        if principal.organization != self.tenant:
            return False
        if self.kind == "role":
            return self.name in principal.roles
        if self.kind == "client":
            return principal.client_id == self.name
        return True

    def __str__(self) -> str:
        if self.kind == "organization":
            return f"organization {self.tenant}"
        return f"{self.kind} {self.name} of {self.tenant}"


@dataclass(frozen=True, slots=True)
class Permission:
    """One permission of an agreement, as the engine uses it.

    ``entity_types`` is every type of the catalogue when the target names none
    (``every_type``); ``attributes`` None: every attribute of each type.
    """

    tenant: str
    entity_types: frozenset[str]
    every_type: bool
    attributes: frozenset[str] | None
    actions: frozenset[Action]
    purposes: frozenset[str] | None = None
    area: Area | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    aggregation: Aggregation | None = None
    removed: frozenset[str] = frozenset()
    coarsened: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Agreement:
    """One agreement file: ``assigner`` (the tenant whose data it shares) grants ``permissions``
    to every party of ``assignees``."""

    uid: str
    file: Path
    assigner: str
    assignees: tuple[Party, ...]
    permissions: tuple[Permission, ...]
    title: str | None = None


def parse_agreement(
    path: Path, *, tenants: Set[str], catalogue: Catalogue, contexts_dir: Path | None = None
) -> Agreement:
    """Read and check one agreement file; every mistake is a ``PolicyError(path, what)``."""
    return _Parser(path, tenants, catalogue, contexts_dir).agreement()


def short(iri: str) -> str:
    """An IRI as the agreements usually spell it (``odrl:read``, ``nga:subscribe``)."""
    for prefix, name in ((ODRL, "odrl:"), (NGA, "nga:"), (_DCT, "dct:"), (_XSD, "xsd:"), (_UNDEFINED, "")):
        if iri.startswith(prefix):
            return name + iri[len(prefix) :]
    return iri


def _listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


class _Node:
    """One expanded JSON-LD node, with errors that name the file and where in it."""

    def __init__(self, fail: Callable[[str], NoReturn], node: Any, where: str) -> None:
        self._fail, self.where = fail, where
        if not isinstance(node, dict) or "@value" in node or "@list" in node:
            self.fail("must be a JSON object (a node), not a value")
        self.node: dict[str, Any] = node

    def fail(self, what: str) -> NoReturn:
        self._fail(f"{self.where}: {what}" if self.where else what)

    def only(self, allowed: Set[str]) -> None:
        for key in self.node:
            if key in allowed or key in ("@id", "@type"):
                continue
            if key.startswith(_UNDEFINED):
                self.fail(
                    f"unknown term {short(key)!r} (neither the ODRL context nor the agreement's @context defines it)"
                )
            if key in _UNSUPPORTED:
                self.fail(_UNSUPPORTED[key])
            expected = f" (expected: {_listing(short(k) for k in allowed)})" if allowed else ""
            self.fail(f"{short(key)} is not allowed here{expected}")

    def types(self) -> list[str]:
        return list(self.node.get("@type", []))

    def values(self, prop: str) -> list[Any]:
        values = self.node.get(prop, [])
        for value in values:
            if isinstance(value, dict) and "@list" in value:
                self.fail(f"{short(prop)}: JSON-LD lists (@list) are not supported, give a plain array")
        return list(values)

    def nodes(self, prop: str, name: str) -> list[_Node]:
        values = self.values(prop)
        return [_Node(self._fail, v, self._sub(name, i, len(values))) for i, v in enumerate(values)]

    def ids(self, prop: str) -> list[str]:
        found = []
        for value in self.values(prop):
            if not isinstance(value, dict) or "@id" not in value or len(value) != 1:
                self.fail(f"{short(prop)} must name IRIs, not values or objects")
            found.append(value["@id"])
        return found

    def literals(self, prop: str) -> list[Any]:
        found = []
        for value in self.values(prop):
            if not isinstance(value, dict) or "@value" not in value:
                self.fail(f"{short(prop)} must hold values (strings, numbers), not objects")
            found.append(value["@value"])
        return found

    def strings(self, prop: str) -> list[str]:
        found = self.literals(prop)
        for value in found:
            if not isinstance(value, str) or not value:
                self.fail(f"{short(prop)} must hold non-empty strings, not {value!r}")
        return found

    def _sub(self, name: str, index: int, count: int) -> str:
        label = f"{name} {index + 1}" if count > 1 or name in ("permission", "constraint", "duty") else name
        return f"{self.where}: {label}" if self.where else label


class _Parser:
    def __init__(self, path: Path, tenants: Set[str], catalogue: Catalogue, contexts_dir: Path | None) -> None:
        self.path, self.tenants, self.catalogue, self.contexts_dir = path, tenants, catalogue, contexts_dir

    def fail(self, what: str) -> NoReturn:
        raise PolicyError(self.path, what)

    def tenant(self, tenant: str, node: _Node, what: str) -> str:
        if tenant not in self.tenants:
            node.fail(f"{what}: unknown tenant {tenant!r} (collectivities: {_listing(self.tenants)})")
        return tenant

    def expand(self) -> list[Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.fail(f"cannot be read: {exc}")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            self.fail(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        if not isinstance(document, dict) or "@context" not in document:
            self.fail("not a JSON-LD agreement: a JSON object with an @context is expected")
        options = {
            "documentLoader": document_loader(self.contexts_dir),
            "expandContext": {"@vocab": _UNDEFINED},
            "base": None,  # a relative IRI stays relative, so it is refused rather than guessed
        }
        try:
            expanded: list[Any] = jsonld.expand(document, options)
        except jsonld.JsonLdError as exc:
            self.fail(f"not valid JSON-LD: {_jsonld_problem(exc)}")
        except ContextNotAvailable as exc:
            self.fail(f"not valid JSON-LD: {exc}")
        if _uses_undeclared_nga(expanded):
            # "nga:tenant" without the prefix declared is an IRI of scheme "nga:", not our term
            self.fail(f'uses nga: terms without declaring the prefix: add {{"nga": "{NGA}"}} to the @context')
        return expanded

    def agreement(self) -> Agreement:
        expanded = self.expand()
        if len(expanded) != 1:
            self.fail(f"must hold exactly one agreement, not {len(expanded)} JSON-LD nodes")
        node = _Node(self.fail, expanded[0], "")
        node.only(
            {
                ODRL + "assigner",
                ODRL + "assignee",
                ODRL + "permission",
                ODRL + "profile",
                _DCT + "title",
                _DCT + "description",
            }
        )
        types = node.types()
        if ODRL + "Agreement" not in types:
            named = ", ".join(short(t) for t in types)
            self.fail(
                f"has type {named}: a sharing agreement must be an odrl:Agreement"
                if types
                else "has no type: a sharing agreement must be an odrl:Agreement"
            )
        uid = node.node.get("@id")
        if not isinstance(uid, str) or not _ABSOLUTE_IRI.fullmatch(uid):
            self.fail(f"uid must be an absolute IRI (e.g. urn:ngsild-adapter:agreement:name), not {uid!r}")
        for profile in node.ids(ODRL + "profile"):
            if profile != PROFILE:
                self.fail(f"unknown ODRL profile {profile!r} (the agreements use {PROFILE})")
        assigners = node.ids(ODRL + "assigner")
        if len(assigners) != 1:
            self.fail(f"needs exactly one assigner (urn:ngsild-adapter:organization:{{tenant}}), not {len(assigners)}")
        match = _ORGANIZATION.fullmatch(assigners[0])
        if match is None:
            self.fail(f"assigner {assigners[0]!r} must be an organization: urn:ngsild-adapter:organization:{{tenant}}")
        assigner = self.tenant(match.group(1), node, "assigner")
        assignees = tuple(self.party(p) for p in node.nodes(ODRL + "assignee", "assignee"))
        if not assignees:
            self.fail(f"has no assignee: name who is granted ({_PARTY_FORMS})")
        permissions = tuple(self.permission(p, assigner) for p in node.nodes(ODRL + "permission", "permission"))
        if not permissions:
            self.fail("has no permission: an agreement must grant at least one")
        titles = node.strings(_DCT + "title")
        node.strings(_DCT + "description")
        return Agreement(uid, self.path, assigner, assignees, permissions, titles[0] if titles else None)

    def party(self, node: _Node) -> Party:
        node.only(set())
        iri = node.node.get("@id")
        if not isinstance(iri, str):
            node.fail(f"a party is named by its IRI ({_PARTY_FORMS})")
        for t in node.types():
            if t not in (ODRL + "Party", ODRL + "PartyCollection"):
                node.fail(f"{iri}: a party is an odrl:Party or an odrl:PartyCollection, not {short(t)}")
        if match := _ORGANIZATION.fullmatch(iri):
            return Party(iri, "organization", self.tenant(match.group(1), node, iri))
        if match := _MEMBER.fullmatch(iri):
            return Party(iri, match.group(1), self.tenant(match.group(2), node, iri), match.group(3))
        node.fail(f"{iri!r} is not a known party form ({_PARTY_FORMS})")

    def permission(self, node: _Node, assigner: str) -> Permission:
        node.only({ODRL + "target", ODRL + "action", ODRL + "constraint", ODRL + "duty"})
        for t in node.types():
            if t != ODRL + "Permission":
                node.fail(f"a permission is an odrl:Permission, not {short(t)}")
        targets = node.nodes(ODRL + "target", "target")
        if len(targets) != 1:
            node.fail(f"needs exactly one target (an odrl:AssetCollection), not {len(targets)}")
        tenant, types, every_type, attributes = self.target(targets[0], assigner)
        actions = self.actions(node)
        constraints = self.constraints(node)
        removed, coarsened = self.duties(node, types)
        if Action.SPARQL_QUERY in actions:
            narrowing = [
                what
                for what, present in (
                    ("entity types", not every_type),
                    ("attributes", attributes is not None),
                    ("an area", constraints.get("area") is not None),
                    ("a time window", constraints.get("not_before") or constraints.get("not_after")),
                    ("aggregated detail", constraints.get("aggregation") is not None),
                )
                if present
            ]
            if narrowing:
                node.fail(
                    f"nga:sparqlQuery opens a collectivity's whole graph, which cannot be narrowed by "
                    f"{' or '.join(narrowing)}: give SPARQL a permission of its own (only removed and coarsened "
                    "attributes and purposes apply to it)"
                )
        return Permission(
            tenant=tenant,
            entity_types=types,
            every_type=every_type,
            attributes=attributes,
            actions=actions,
            removed=removed,
            coarsened=coarsened,
            **constraints,
        )

    def target(self, node: _Node, assigner: str) -> tuple[str, frozenset[str], bool, frozenset[str] | None]:
        node.only({NGA + "tenant", NGA + "entityType", NGA + "attribute"})
        for t in node.types():
            if t != ODRL + "AssetCollection":
                node.fail(f"the target is an odrl:AssetCollection, not {short(t)}")
        if set(node.node) <= {"@id", "@type"}:
            node.fail("the target must be an odrl:AssetCollection naming nga:tenant and nga:entityType")
        tenants = node.strings(NGA + "tenant")
        if len(tenants) > 1:
            node.fail("names more than one nga:tenant: write one permission per collectivity")
        tenant = self.tenant(tenants[0], node, "nga:tenant") if tenants else assigner
        if tenant != assigner:
            node.fail(f"nga:tenant {tenant} is not the assigner ({assigner}): a collectivity shares only its own data")
        named = node.strings(NGA + "entityType")
        for entity_type in named:
            if entity_type not in self.catalogue:
                made = _listing(self.catalogue.types)
                node.fail(f"unknown entity type {entity_type!r} (the device profiles make: {made})")
        types = frozenset(named) if named else frozenset(self.catalogue.types)
        listed = node.strings(NGA + "attribute")
        if not listed:
            return tenant, types, not named, None
        attributes = frozenset(listed)
        known = frozenset().union(*(self.catalogue.attributes(t) for t in types))
        for attribute in sorted(attributes - known):
            which = f"none of {_listing(types)} has it" if named else "no entity type has it"
            node.fail(f"unknown attribute {attribute!r}: {which}")
        for entity_type in sorted(named):
            if not attributes & self.catalogue.attributes(entity_type):
                node.fail(f"names entity type {entity_type} but none of its attributes")
        return tenant, types, not named, attributes

    def actions(self, node: _Node) -> frozenset[Action]:
        actions = set()
        for value in node.values(ODRL + "action"):
            if not isinstance(value, dict) or set(value) != {"@id"}:
                node.fail(
                    "action refinements are not supported: name the actions (read, nga:queryHistory, "
                    "nga:subscribe, nga:sparqlQuery)"
                )
            iri = value["@id"]
            if iri == ODRL + "use":
                node.fail(
                    "odrl:use is too broad: name the actions (read, nga:queryHistory, nga:subscribe, nga:sparqlQuery)"
                )
            if iri not in _ACTIONS:
                node.fail(f"unknown action {short(iri)!r} (known: {_listing(short(a) for a in _ACTIONS)})")
            actions.add(_ACTIONS[iri])
        if not actions:
            node.fail("has no action")
        return frozenset(actions)

    def constraints(self, node: _Node) -> dict[str, Any]:
        seen: set[tuple[str, str]] = set()
        values: dict[str, Any] = {}
        for constraint in node.nodes(ODRL + "constraint", "constraint"):
            constraint.only({ODRL + "leftOperand", ODRL + "operator", ODRL + "rightOperand"})
            for t in constraint.types():
                if t != ODRL + "Constraint":
                    constraint.fail(f"a constraint is an odrl:Constraint, not {short(t)}")
            left, operator = constraint.ids(ODRL + "leftOperand"), constraint.ids(ODRL + "operator")
            right = constraint.values(ODRL + "rightOperand")
            if len(left) != 1 or len(operator) != 1 or not right:
                constraint.fail("needs one leftOperand, one operator and a rightOperand")
            if left[0] not in _OPERATORS:
                constraint.fail(
                    f"unknown leftOperand {short(left[0])!r} (known: {_listing(short(k) for k in _OPERATORS)})"
                )
            allowed = _OPERATORS[left[0]]
            if not operator[0].startswith(ODRL) or operator[0][len(ODRL) :] not in allowed:
                constraint.fail(
                    f"operator {short(operator[0])!r} is not allowed with {short(left[0])} "
                    f"(allowed: {', '.join(allowed)})"
                )
            key = (left[0], operator[0])
            if key in seen:
                constraint.fail(f"{short(left[0])} {short(operator[0])} is given twice")
            seen.add(key)
            _CONSTRAINTS[left[0]](constraint, operator[0][len(ODRL) :], right, values)
        return _level_of_detail(node, values)

    def duties(self, node: _Node, types: frozenset[str]) -> tuple[frozenset[str], tuple[tuple[str, int], ...]]:
        known = frozenset().union(*(self.catalogue.attributes(t) for t in types))
        removed: set[str] = set()
        coarsened: dict[str, int] = {}
        for duty in node.nodes(ODRL + "duty", "duty"):
            duty.only({ODRL + "action", NGA + "attribute", NGA + "decimals"})
            for t in duty.types():
                if t != ODRL + "Duty":
                    duty.fail(f"a duty is an odrl:Duty, not {short(t)}")
            actions = duty.ids(ODRL + "action")
            if len(actions) != 1 or actions[0] not in (_REMOVE, _COARSEN):
                named = ", ".join(short(a) for a in actions) or "none"
                duty.fail(f"unknown duty action {named!r} (known: nga:coarsenAttribute, nga:removeAttribute)")
            attributes = duty.strings(NGA + "attribute")
            if not attributes:
                duty.fail(f"{short(actions[0])} needs nga:attribute (the attributes it applies to)")
            for attribute in attributes:
                if attribute not in known:
                    duty.fail(f"unknown attribute {attribute!r}: none of {_listing(types)} has it")
            decimals = duty.literals(NGA + "decimals")
            if actions[0] == _REMOVE:
                if decimals:
                    duty.fail("nga:decimals belongs to nga:coarsenAttribute, not nga:removeAttribute")
                removed.update(attributes)
                continue
            if len(decimals) != 1 or _integer(decimals[0]) is None or not 0 <= int(decimals[0]) <= 15:
                duty.fail("nga:coarsenAttribute needs nga:decimals: one integer from 0 to 15")
            for attribute in attributes:
                coarsened[attribute] = int(decimals[0])
        if both := removed & set(coarsened):
            node.fail(f"attribute {_listing(both)} is both removed and coarsened")
        return frozenset(removed), tuple(sorted(coarsened.items()))


def _jsonld_problem(exc: jsonld.JsonLdError) -> str:
    details = exc.details if isinstance(exc.details, dict) else {}
    url = details.get("url")
    if exc.code == "loading remote context failed" and url:
        return f"no local copy of the context {url} (nothing is fetched: add it to contexts/ and contexts/index.json)"
    message = exc.args[0] if exc.args else ""
    return f"{message} ({exc.code or exc.type})"


def _uses_undeclared_nga(value: Any) -> bool:
    if isinstance(value, list):
        return any(_uses_undeclared_nga(v) for v in value)
    if not isinstance(value, dict) or value.get("@type") == "@json":
        return False
    for key, item in value.items():
        if key.startswith("nga:") or (
            key in ("@id", "@type")
            and any(isinstance(i, str) and i.startswith("nga:") for i in (item if isinstance(item, list) else [item]))
        ):
            return True
        if _uses_undeclared_nga(item):
            return True
    return False


def _integer(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _one(constraint: _Node, right: list[Any], what: str) -> Any:
    if len(right) != 1:
        constraint.fail(f"needs one rightOperand ({what}), not {len(right)}")
    value = right[0]
    if isinstance(value, dict) and "@value" in value and value.get("@type") != "@json":
        return value["@value"]
    constraint.fail(f"rightOperand must be {what}")


def _purpose(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    purposes = []
    for value in right:
        # A purpose may be a word or an IRI (a DPV purpose, for instance).
        text = value.get("@value", value.get("@id")) if isinstance(value, dict) else None
        if not isinstance(text, str) or not text:
            constraint.fail("odrl:purpose needs purposes as strings or IRIs")
        purposes.append(text)
    if operator == "eq" and len(purposes) != 1:
        constraint.fail("odrl:purpose eq takes one purpose: use isAnyOf for several")
    out["purposes"] = frozenset(purposes)


def _date_time(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    text = _one(constraint, right, "a date and time with a time zone, e.g. 2025-01-01T00:00:00Z")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        constraint.fail(
            f"odrl:dateTime needs a date and time with a time zone (e.g. 2025-01-01T00:00:00Z), not {text!r}"
        )
    out["not_before" if operator == "gteq" else "not_after"] = moment


def _area(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    how = 'a GeoJSON Polygon as a JSON literal: {"@type": "@json", "@value": {"type": "Polygon", ...}}'
    if len(right) != 1 or not isinstance(right[0], dict) or right[0].get("@type") != "@json":
        constraint.fail(f"nga:area needs {how}")
    geometry = right[0]["@value"]
    rings = geometry.get("coordinates") if isinstance(geometry, dict) and geometry.get("type") == "Polygon" else None
    if not isinstance(rings, list) or len(rings) != 1:
        constraint.fail(f"nga:area needs {how}, with one ring (holes are not supported)")
    out["area"] = Area(_ring(constraint, rings[0], "nga:area: the ring"))


def _ring(constraint: _Node, ring: Any, what: str) -> tuple[tuple[float, float], ...]:
    """A closed linear ring of [longitude, latitude] positions, as a tuple."""
    if not isinstance(ring, list) or len(ring) < 4 or ring[0] != ring[-1] or not all(map(_position, ring)):
        constraint.fail(f"{what} must be closed, of at least 4 [longitude, latitude] positions in range")
    return tuple((float(p[0]), float(p[1])) for p in ring)


def _position(p: Any) -> bool:
    """A [longitude, latitude] pair in range."""
    return (
        isinstance(p, list)
        and len(p) == 2
        and all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)
        and -180 <= p[0] <= 180
        and -90 <= p[1] <= 90
    )


def _level(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    level = _one(constraint, right, '"raw" or "aggregated"')
    if level not in ("raw", "aggregated"):
        constraint.fail(f'nga:levelOfDetail is "raw" or "aggregated", not {level!r}')
    out["level"] = level


def _method(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    method = _one(constraint, right, "avg or sum")
    if method in ("min", "max"):
        constraint.fail(
            f"nga:aggregationMethod {method} is refused: the {method} of a cell is one sensor's exact "
            "reading, which no threshold or dominance rule protects (use avg or sum, or a raw grant if "
            "exact readings may be shared)"
        )
    if method not in AGGREGATION_METHODS:
        constraint.fail(f"nga:aggregationMethod is avg or sum, not {method!r}")
    out["method"] = method


_PERIOD_LIST = ", ".join(f"{name} ({what})" for name, what in PERIODS.items())


def _period(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    period = _one(constraint, right, f"one of {', '.join(PERIODS)}")
    if period not in PERIODS:
        constraint.fail(
            f"nga:aggregationPeriod is one of {_PERIOD_LIST}, not {period!r}: cells are calendar "
            "periods, aligned and never overlapping"
        )
    out["period"] = period


def _time_zone(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    name = _one(constraint, right, "an IANA time zone name such as Europe/Paris")
    if not isinstance(name, str) or not name:
        constraint.fail(f"nga:aggregationTimeZone is an IANA time zone name such as Europe/Paris, not {name!r}")
    try:
        time_zone(name)
    except PeriodsError:
        constraint.fail(
            f"nga:aggregationTimeZone: unknown time zone {name!r} (an IANA name such as Europe/Paris "
            "or UTC, known to this machine's zone database)"
        )
    out["time_zone"] = name


def _districts(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    how = (
        'a GeoJSON FeatureCollection as a JSON literal: {"@type": "@json", "@value": {"type": '
        '"FeatureCollection", "features": [{"type": "Feature", "properties": {"name": ...}, "geometry": '
        '{"type": "Polygon", ...}}, ...]}}'
    )
    if len(right) != 1 or not isinstance(right[0], dict) or right[0].get("@type") != "@json":
        constraint.fail(f"nga:aggregationDistricts needs {how}")
    collection = right[0]["@value"]
    features = collection.get("features") if isinstance(collection, dict) else None
    if (
        not isinstance(collection, dict)
        or collection.get("type") != "FeatureCollection"
        or not isinstance(features, list)
        or not features
    ):
        constraint.fail(f"nga:aggregationDistricts needs {how}, with at least one feature")
    if len(features) > MAX_DISTRICTS:
        constraint.fail(f"nga:aggregationDistricts names {len(features)} districts: at most {MAX_DISTRICTS}")
    districts: list[District] = []
    for number, feature in enumerate(features, 1):
        where = f"nga:aggregationDistricts: feature {number}"
        properties = feature.get("properties") if isinstance(feature, dict) else None
        name = properties.get("name") if isinstance(properties, dict) else None
        if (
            not isinstance(feature, dict)
            or feature.get("type") != "Feature"
            or not isinstance(name, str)
            or not (name.strip())
        ):
            constraint.fail(f"{where} must be a GeoJSON Feature with a non-empty properties.name")
        if len(name) > 100 or not name.isprintable():
            constraint.fail(f"{where}: a district name is at most 100 printable characters")
        if name in RESERVED_GROUPS:
            reserved = ", ".join(sorted(RESERVED_GROUPS))
            constraint.fail(
                f"{where}: {name!r} is the name of a group of its own ({reserved}): name the district otherwise"
            )
        if name in {d.name for d in districts}:
            constraint.fail(f"{where}: the district name {name!r} is given twice")
        geometry = feature.get("geometry")
        polygon = isinstance(geometry, dict) and geometry.get("type") == "Polygon"
        rings = geometry.get("coordinates") if polygon and isinstance(geometry, dict) else None
        if not isinstance(rings, list) or len(rings) != 1:
            constraint.fail(
                f"{where} ({name}): the geometry must be a GeoJSON Polygon with one ring (holes and "
                "MultiPolygons are not supported)"
            )
        districts.append(District(name, _ring(constraint, rings[0], f"{where} ({name}): the ring")))
    out["districts"] = tuple(districts)


def _flag(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    value = _one(constraint, right, "true or false")
    if not isinstance(value, bool):
        constraint.fail(f"nga:aggregationTotal is true or false, not {value!r}")
    out["total"] = value


def _number(constraint: _Node, right: list[Any], what: str, term: str) -> float:
    value = _one(constraint, right, what)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        constraint.fail(f"{term} is {what}, not {value!r}")
    return float(value)


def _dominance_sensors(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    count = _integer(_one(constraint, right, "a whole number of sensors"))
    if count is None or not 1 <= count <= 10:
        constraint.fail(
            "nga:dominanceSensors is the number n of the (n, k) dominance rule: a whole number from 1 to 10"
        )
    out["dominance_top"] = count


def _dominance_share(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    share = _number(constraint, right, "a share above 0 and at most 1 (e.g. 0.8)", "nga:dominanceShare")
    if not 0 < share <= 1:
        constraint.fail(
            f"nga:dominanceShare is the share k of the (n, k) dominance rule: above 0 and at most 1 "
            f"(1 turns the rule off), not {share:g}"
        )
    out["dominance_share"] = share


def _epsilon(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    epsilon = _number(constraint, right, "a positive number (epsilon per cell, e.g. 0.5)", "nga:noiseEpsilon")
    if epsilon <= 0:
        constraint.fail(f"nga:noiseEpsilon is a positive number (epsilon per cell), not {epsilon:g}")
    out["noise_epsilon"] = epsilon


def _contribution(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    bound = _number(
        constraint, right, "a number (a bound on one sensor's contribution to a cell)", "nga:sensorContribution"
    )
    out["contribution_lower" if operator == "gteq" else "contribution_upper"] = bound


def _budget(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    budget = _number(constraint, right, "a positive number (the epsilon one principal may spend)", "nga:privacyBudget")
    if budget <= 0:
        constraint.fail(f"nga:privacyBudget is a positive number (the epsilon one principal may spend), not {budget:g}")
    out["privacy_budget"] = budget


def _cells(node: _Node, parts: dict[str, Any], area: Area | None) -> Aggregation:
    """The cell definition of an aggregated permission, checked as a whole."""
    missing = [_CELL_TERMS[k] for k in ("method", "period", "min_group_size") if k not in parts]
    if missing:
        node.fail(f"nga:levelOfDetail aggregated needs {', '.join(missing)}")
    if parts.get("total") and "districts" not in parts:
        node.fail(
            "nga:aggregationTotal needs nga:aggregationDistricts: without districts the one cell of all "
            "sensors is already the total"
        )
    noise = [k for k in ("noise_epsilon", "contribution_lower", "contribution_upper") if k in parts]
    bounds = None
    if noise or "privacy_budget" in parts:
        absent = [
            _CELL_TERMS[k] for k in ("noise_epsilon", "contribution_lower", "contribution_upper") if k not in parts
        ]
        if absent:
            node.fail(
                f"noise needs nga:noiseEpsilon and both bounds of nga:sensorContribution (gteq and lteq); "
                f"missing: {', '.join(absent)}"
            )
        bounds = (parts.pop("contribution_lower"), parts.pop("contribution_upper"))
        if bounds[0] >= bounds[1]:
            node.fail(
                f"nga:sensorContribution: the lower bound ({bounds[0]:g}) must be below the upper one ({bounds[1]:g})"
            )
        if not noise_available():
            node.fail("nga:noiseEpsilon needs OpenDP, which is not installed here (pip install opendp==0.16.0)")
    aggregation = Aggregation(
        parts.pop("method"),
        parts.pop("period"),
        parts.pop("min_group_size"),
        area=area,
        contribution_bounds=bounds,
        **parts,
    )
    if aggregation.privacy_budget is not None and aggregation.noise_epsilon is not None:
        cost = budget_cost(aggregation)
        if aggregation.privacy_budget < cost:
            node.fail(
                f"nga:privacyBudget {aggregation.privacy_budget:g} is less than what one period of one "
                f"attribute costs (epsilon {cost:g}): nothing could ever be read"
            )
    return aggregation


def _group(constraint: _Node, operator: str, right: list[Any], out: dict[str, Any]) -> None:
    size = _integer(_one(constraint, right, "a whole number of sensors"))
    if size is None or size < 1:
        constraint.fail("nga:minGroupSize is a whole number of sensors, at least 1")
    out["min_group_size"] = size


_CONSTRAINTS: dict[str, Callable[[_Node, str, list[Any], dict[str, Any]], None]] = {
    ODRL + "purpose": _purpose,
    ODRL + "dateTime": _date_time,
    NGA + "area": _area,
    NGA + "levelOfDetail": _level,
    NGA + "aggregationMethod": _method,
    NGA + "aggregationPeriod": _period,
    NGA + "minGroupSize": _group,
    NGA + "aggregationTimeZone": _time_zone,
    NGA + "aggregationDistricts": _districts,
    NGA + "aggregationTotal": _flag,
    NGA + "dominanceSensors": _dominance_sensors,
    NGA + "dominanceShare": _dominance_share,
    NGA + "noiseEpsilon": _epsilon,
    NGA + "sensorContribution": _contribution,
    NGA + "privacyBudget": _budget,
}

#: Permission values of the cell definition -> the term that sets them (for messages).
_CELL_TERMS = {
    "method": "nga:aggregationMethod",
    "period": "nga:aggregationPeriod",
    "min_group_size": "nga:minGroupSize",
    "time_zone": "nga:aggregationTimeZone",
    "districts": "nga:aggregationDistricts",
    "total": "nga:aggregationTotal",
    "dominance_top": "nga:dominanceSensors",
    "dominance_share": "nga:dominanceShare",
    "noise_epsilon": "nga:noiseEpsilon",
    "contribution_lower": "nga:sensorContribution gteq",
    "contribution_upper": "nga:sensorContribution lteq",
    "privacy_budget": "nga:privacyBudget",
}


def _level_of_detail(node: _Node, values: dict[str, Any]) -> dict[str, Any]:
    """The constraints as ``Permission`` fields: the aggregation terms become one
    ``Aggregation`` (the cell definition), required with level ``aggregated`` and refused with
    ``raw``; the permission's area restricts its sensors too."""
    level = values.pop("level", "raw")
    parts = {k: values.pop(k) for k in _CELL_TERMS if k in values}
    if level == "aggregated":
        values["aggregation"] = _cells(node, parts, values.get("area"))
    elif parts:
        named = sorted({_CELL_TERMS[k].split()[0] for k in parts})
        node.fail(f"{', '.join(named)} need{'s' if len(named) == 1 else ''} nga:levelOfDetail eq aggregated")
    if values.get("not_before") and values.get("not_after") and values["not_before"] > values["not_after"]:
        node.fail("the odrl:dateTime window ends before it starts")
    return values
