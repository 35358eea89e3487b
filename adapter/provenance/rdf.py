"""Provenance records as RDF: a lean per-uplink index for SPARQL, and the full W3C PROV-O record.

Why two shapes: the index is built for every record of every collectivity, so each quad costs
storage and load time for years; the full record is built for one uplink when someone asks for
it (the provenance API). The index therefore stores only what the example queries
(``adapter/provenance/queries``) join on, and per-attribute lineage is *derived by query*
(attribute value -> observation -> processing -> raw uplink, gateways, delivery) instead of
being stored once per attribute. Both shapes are pure functions of the record (and of the
delivery receipts), so a verifier can recompute them and compare with what a store holds.

Lean index of record ``n`` of tenant ``t`` (``index_nquads``), in the *shared* graph
``<urn:ngsild-adapter:graph:t>`` (S) or the *personal* graph
``<urn:ngsild-adapter:graph:t:personal>`` (P); ``U`` = ``urn:ngsild-adapter:t:uplink:n``,
``~x`` the pseudonym of ``x`` (``adapter.provenance.pseudonyms``)::

    U    rdf:type                prov:Entity                              S
    U    nga:payloadSha256       "hex"                      (uplinks)     P
    U    nga:fCnt                int                        (uplinks)     P
    U    rdf:type                nga:DeviceStatus           (status)      S
    U    prov:generatedAtTime    receivedAt                               S
    U    prov:wasAttributedTo    ~device                                  S
    per gateway i, R = U:reception:i
    U    nga:reception           R                                        S
    R    nga:gateway             <urn:ngsild-adapter:gateway:id>          S
    R    nga:rssi                number                     (if known)    S
    R    nga:snr                 number                     (if known)    S
    A = U:processing
    A    prov:used               U                                        S
    A    prov:startedAtTime      first step's startedAt                   S
    A    prov:endedAtTime        last step's endedAt                      S
    A    prov:wasAssociatedWith  <urn:ngsild-adapter:software:version>    S
    A    nga:codecFile           <urn:ngsild-adapter:codec:sha256>        S   (decode step)
    A    nga:profileFile         <urn:ngsild-adapter:profile:sha256>      S   (map step)
    A    nga:privacyRule         "rule"                     (per rule)    S
    per entity k, O = U:obs:k
    O    sosa:hasFeatureOfInterest ~entity id                             S
    O    sosa:resultTime         record observedAt                        S
    O    prov:wasGeneratedBy     A                                        S
    O    <expanded attribute IRI> value (a Relationship: ~target)         S   (P: personal, and its real target)
    per pseudonym in the record: the device's, each entity's, each shared Relationship target's
    ~x   nga:pseudonymOf         <x>                                      P

Every predicate of ``O`` other than the three structural ones is an attribute value. An
attribute is *indexed* when its ``value`` is a number, a string or a boolean, or its
``object`` is an IRI (or a list of IRIs: one quad each); GeoProperty, array and object values
(GeoJSON, DateTime objects, lists) are not indexed and stay in the full record. An attribute
whose own ``observedAt`` differs from the record's gets its own observation node
``V = U:obs:k:{name}`` with the same three structural quads (its time as ``sosa:resultTime``)
plus its value, so every query works unchanged. Attributes are written in name order, so the
text does not depend on the key order of the record (a JSON round trip sorts keys).

The codec and profile links are ``nga:codecFile`` / ``nga:profileFile`` rather than
``nga:codec``: the project context already maps the entity attribute ``codec`` (a codec's name)
to ``nga:codec``. Ids that are not IRI-safe (a gateway id with a space) are percent-encoded
in the IRIs built from them; the tenant must be a configured tenant name (``[a-z0-9_-]``).

Quad count: uplink record = 5 (status record: 4) + per gateway (2 + non-null rssi/snr) + 4
(+1 codec, +1 profile, +1 per privacy rule) + per entity (3 + indexed attributes) + 1 link for
the device + 1 per distinct entity id or shared Relationship target. The sample of
docs/provenance.md (one gateway with RSSI and SNR; decode, one privacy rule, map; one entity
with ``no2``, ``refDevice`` and ``location``) gives 5 + 4 + 7 + 5 + 3 = **24** quads. A typical
air-quality uplink (one gateway; decode and map; an AirQualityObserved with six measured values
and the Device entity with ``deviceState`` and ``rssi``) gives 5 + 4 + 6 + 9 + 5 + 3 = **32**
quads (``tests/provenance_rdf`` asserts the bound).

Two graphs per collectivity. The collectivity's own queries read both; an agreement that
removes personal fields opens the shared graph only, so that the store itself, not a
rewriting of the query, keeps those fields out of a researcher's answers
(``adapter.access.policies.PolicySet.sparql_dataset``). The personal graph holds the values of
the attributes the operator lists as personal (``[provenance] personal_attributes``: ``name``,
``owner``, ``refDevice``...; an attribute observed at its own time takes its whole observation
node there), any string value that holds the devEui (in any case and separator form), the
payload digest (a payload of a few bytes is found again from its SHA-256 by trying them all,
dropped fields included) and the frame counter (consecutive counters link a device's records
across a key rotation), the device's identifiers (below), and the links from pseudonyms to
real IRIs. In the shared graph, a device and every broker entity (entity ids and Relationship
targets: their ids are made of the devEui or the device's name) are named only by their keyed
pseudonyms, one per key period (``PseudonymKeys.key_for`` the record's reception day); the
record, processing and observation IRIs are numbered in the collectivity's log and name no
device. What the shared graph still lets a researcher link is in docs/provenance.md
("Pseudonymous shared graphs"). Without ``pseudonyms`` (internal: the full record) the real
IRIs stand where the pseudonyms would.

Things described once, not per uplink (``static_nquads``, same graphs): the device's
pseudonym (``sosa:Sensor``, ``prov:Agent``, ``prov:actedOnBehalfOf`` the collectivity; in the
personal graph, on its real IRI ``urn:ngsild-adapter:t:device:{devEui}``, ``nga:devEui``,
``nga:deviceId``, ``nga:application``); the collectivity (``prov:Organization``,
``nga:tenant``); the network-server connection (``prov:SoftwareAgent``, ``nga:lnsKind``,
``nga:connection``, ``prov:actedOnBehalfOf``); the software version (``prov:SoftwareAgent``,
``rdfs:label``, ``nga:version``); each gateway (``prov:Agent``, ``nga:Gateway``,
``nga:gatewayId``); codec and profile files (``prov:Entity``, ``nga:CodecFile`` /
``nga:ProfileFile``, ``nga:name``, ``nga:sha256``); and units: per (profile file, attribute IRI),
``P nga:unit N . N nga:attribute <attr> ; nga:unitCode "GQ"`` with
``N = urn:ngsild-adapter:profile:{sha256}:unit:{percent-encoded attribute IRI}``: a unit is a
property of the profile file, so it is not repeated per value (if one profile ever sent an
attribute with two units, the node has both; the full record has each value's own unit). They are a
pure function of the record too (never "only the first time", which would leave a rebuilt
index without them); each part is cached per key, so calling ``static_nquads`` for every
record is cheap and the store's set semantics removes the repeats.

Deliveries (``delivery_nquads``): ``D = urn:ngsild-adapter:t:delivery:id`` ``a prov:Activity``,
``prov:startedAtTime``, ``prov:endedAtTime``, ``nga:broker <url>``, ``nga:httpStatus``,
``prov:wasAssociatedWith`` the software, ``prov:used U`` per record of the batch, and per
refused entity ``D nga:refusal X . X nga:uplink U`` and, in the personal graph (the entity id,
and the broker's message, which often repeats it), ``X nga:entity <id> ; nga:detail "..."``
(``X = D:refusal:j``, ``j`` its position in ``refused``).

Terms are written exactly as Oxigraph stores them, so what a store returns equals what is
computed (``index_triples``): times as UTC ``xsd:dateTime`` with a ``Z`` and no trailing zeros
in the fraction (``2026-11-20T08:15:30.123Z``); a number whose value is integral (and within
+/-(2**53 - 1)) as ``xsd:integer``, which is how its RFC 8785 canonical form (the record's
digest) writes it, any other number as ``xsd:double`` in plain decimal notation; strings as
plain literals escaped as canonical N-Triples. No blank nodes: every node has an IRI derived
from the record, so loading the same record twice adds nothing.

Attribute names are expanded with pyld against the project's local contexts
(``adapter.ngsild.contexts.document_loader``), never the network; each (context, term) is
expanded once per process (about 2 ms per new term), after which ``index_nquads`` is plain
string building: about 32 us for the typical air-quality uplink above on CPython 3.11, its
pseudonyms included (26 us without them, on the same machine; each pseudonym's HMAC is
computed once per key and identifier; ``static_nquads`` about 17 us, off the hot path too).

The full record (``provenance_nquads``, ``provenance_dataset``), served to those who may read
the personal graph, names devices and entities by their real IRIs, in one graph: it holds the
lean and static quads with each pseudonym replaced by its real IRI (and no links), plus
everything else in the record: uplink size, fPort, chain link, record digest; the
reception (``U:reception``, a ``prov:Activity`` associated with the network-server connection
and the gateways); each step as its own ``prov:Activity`` ``U:processing:{step}``
(``dcterms:isPartOf`` the processing, the first ``prov:used U``, the next ones
``prov:wasInformedBy`` the previous, decode ``prov:used`` the codec file, map the profile file);
each entity's observation as a ``sosa:ObservationCollection`` (``nga:entityType``,
``sosa:madeBySensor``, ``sosa:hasMember``); each attribute value as a ``prov:Entity``
``U:obs:k:{name}`` (``prov:wasDerivedFrom U``, ``prov:wasGeneratedBy`` the map step,
``prov:generatedAtTime``, ``nga:entity``, ``nga:attribute``, ``nga:attributeName``,
``nga:observedAt``, ``prov:value``, ``nga:unitCode``; for a Property also a
``sosa:Observation`` with ``sosa:observedProperty``, ``sosa:hasFeatureOfInterest``,
``sosa:hasSimpleResult``, ``sosa:madeBySensor``, ``sosa:resultTime``; for a Relationship
``nga:object``); structured values are ``rdf:JSON`` literals in RFC 8785 form; and each
delivery of the record (its refusals, ``prov:used`` of the values sent, ``prov:wasInformedBy``
the processing).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeAlias
from urllib.parse import quote

import pyoxigraph
import rdflib
from pyld import jsonld

from adapter.exceptions import AdapterError
from adapter.ngsild.contexts import CORE_CONTEXT, document_loader
from adapter.provenance.integrity.canonical import CanonicalizationError, canonicalize, record_digest
from adapter.provenance.pseudonyms import PseudonymKey, PseudonymKeys, UnknownCollectivity

__all__ = [
    "NGA",
    "PREFIXES",
    "PROV",
    "ProvenanceRecordError",
    "SOSA",
    "Triple",
    "ValueNotInRecord",
    "codec_iri",
    "delivery_nquads",
    "delivery_triples",
    "expand_attribute",
    "gateway_iri",
    "graph_iri",
    "index_nquads",
    "index_triples",
    "index_triples_by_graph",
    "iri_term",
    "lineage",
    "personal_graph_iri",
    "provenance_dataset",
    "provenance_nquads",
    "static_nquads",
    "static_triples",
    "static_triples_by_graph",
    "string_term",
    "verification_triples",
]

PROV = "http://www.w3.org/ns/prov#"
SOSA = "http://www.w3.org/ns/sosa/"
NGA = "https://w3id.org/ngsild-adapter/ns#"
_XSD = "http://www.w3.org/2001/XMLSchema#"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDFS = "http://www.w3.org/2000/01/rdf-schema#"
_DCTERMS = "http://purl.org/dc/terms/"

#: The prefixes the full record is serialised with (and the example queries declare).
PREFIXES: dict[str, str] = {
    "dcterms": _DCTERMS,
    "nga": NGA,
    "prov": PROV,
    "rdf": _RDF,
    "rdfs": _RDFS,
    "sosa": SOSA,
    "xsd": _XSD,
}

#: One quad of the tenant's graph, as N-Triples term strings (``<iri>``, ``"lit"^^<dt>``).
Triple: TypeAlias = tuple[str, str, str]


class ProvenanceRecordError(AdapterError):
    """A provenance record (or a delivery receipt) does not have the documented format.

    The message names the record and what is wrong; nothing is emitted for it.
    """


class ValueNotInRecord(AdapterError, LookupError):
    """``lineage`` was asked for an entity or attribute that the record does not hold."""


# --------------------------------------------------------------------------- terms


def _iri_term(iri: str) -> str:
    return f"<{iri}>"


_TYPE = _iri_term(_RDF + "type")
_LABEL = _iri_term(_RDFS + "label")
_PART_OF = _iri_term(_DCTERMS + "isPartOf")
_P = {
    name: _iri_term(PROV + name)
    for name in (
        "Entity",
        "Activity",
        "Agent",
        "SoftwareAgent",
        "Organization",
        "used",
        "wasGeneratedBy",
        "wasDerivedFrom",
        "wasAttributedTo",
        "wasAssociatedWith",
        "wasInformedBy",
        "actedOnBehalfOf",
        "generatedAtTime",
        "startedAtTime",
        "endedAtTime",
        "value",
    )
}
_S = {
    name: _iri_term(SOSA + name)
    for name in (
        "Sensor",
        "Observation",
        "ObservationCollection",
        "hasFeatureOfInterest",
        "resultTime",
        "observedProperty",
        "hasSimpleResult",
        "madeBySensor",
        "hasMember",
    )
}
_N = {
    name: _iri_term(NGA + name)
    for name in (
        "Uplink",
        "DeviceStatus",
        "Reception",
        "Gateway",
        "CodecFile",
        "ProfileFile",
        "payloadSha256",
        "fCnt",
        "fPort",
        "size",
        "reception",
        "gateway",
        "gatewayId",
        "rssi",
        "snr",
        "codecFile",
        "profileFile",
        "privacyRule",
        "name",
        "sha256",
        "version",
        "devEui",
        "deviceId",
        "application",
        "tenant",
        "lnsKind",
        "connection",
        "unit",
        "unitCode",
        "attribute",
        "attributeName",
        "entity",
        "entityType",
        "observedAt",
        "object",
        "step",
        "broker",
        "httpStatus",
        "refusal",
        "uplink",
        "detail",
        "recordSha256",
        "chainSeq",
        "chainPrev",
        "formatVersion",
        "pseudonymOf",
    )
}
#: what identifies a device in its static description: its devEui, and the names it is given at
#: the network server (operators often name a meter after its household or address).
_DEVICE_IDENTIFIERS = frozenset({_N["devEui"], _N["deviceId"], _N["application"]})
_PSEUDONYM_OF = _N["pseudonymOf"]
_NOT_HEX = re.compile(r"[^0-9a-f]+")
_INTEGER = f"^^<{_XSD}integer>"
_DOUBLE = f"^^<{_XSD}double>"
_DATETIME = f"^^<{_XSD}dateTime>"
_JSON = f"^^<{_RDF}JSON>"
_TRUE = f'"true"^^<{_XSD}boolean>'
_FALSE = f'"false"^^<{_XSD}boolean>'

_TENANT = re.compile(r"[a-z0-9_-]{1,50}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# What Oxigraph (canonical N-Triples, RDF 1.2) escapes in a string literal.
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\\x7f\ufffe\uffff]')
_ESCAPES = {c: f"\\u{c:04X}" for c in (*range(0x20), 0x7F, 0xFFFE, 0xFFFF)}
_ESCAPES.update({0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"})
_MAX_SAFE_INT = 2**53 - 1
_CACHE_LIMIT = 100_000


def _cached(function: Callable[[Any], str]) -> Callable[[Any], str]:
    """Memoise a one-argument term builder in a plain dict (faster than lru_cache).

    The dict is emptied when it grows past ``_CACHE_LIMIT``, so that a long-running indexer
    seeing ever new ids (entities, relationship targets) does not grow without bound.
    """
    cache: dict[Any, str] = {}

    def lookup(key: Any) -> str:
        try:
            return cache[key]
        except KeyError:
            pass
        except TypeError:  # unhashable: not a string, number or tuple
            raise ProvenanceRecordError(f"expected a string or number, got {key!r}") from None
        value = function(key)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value
        return value

    return lookup


def _segment(text: str) -> str:
    """One component of an adapter IRI, percent-encoded so that any id yields a valid IRI."""
    if type(text) is not str or not text:
        raise ProvenanceRecordError(f"expected a non-empty string for an IRI component, got {text!r}")
    return quote(text, safe="")


@_cached
def _iri(text: str) -> str:
    """An IRI from the record (entity id, relationship object, broker URL), validated."""
    if type(text) is not str or _SCHEME.match(text) is None:
        raise ProvenanceRecordError(f"{text!r} is not an absolute IRI")
    try:
        pyoxigraph.NamedNode(text)
    except ValueError as exc:
        raise ProvenanceRecordError(f"{text!r} is not a valid IRI: {exc}") from exc
    return f"<{text}>"


def _string(text: str) -> str:
    if type(text) is not str:
        raise ProvenanceRecordError(f"expected a string, got {text!r}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProvenanceRecordError(f"string {text!r} is not valid Unicode") from exc
    if _NEEDS_ESCAPE.search(text) is not None:
        text = text.translate(_ESCAPES)
    return f'"{text}"'


def iri_term(text: str) -> str:
    """The N-Triples term of an absolute IRI read from stored data (an entity id, an
    agreement uid), validated as Oxigraph validates IRIs; ``ProvenanceRecordError`` otherwise:
    an IRI is never made of a string nobody checked."""
    return _iri(text)


def string_term(text: str) -> str:
    """A stored string as a plain literal, escaped as canonical N-Triples (what Oxigraph
    writes back); ``ProvenanceRecordError`` for a text that is not valid Unicode."""
    return _string(text)


@_cached
def _hex(text: str) -> str:
    if type(text) is not str or _HEX64.match(text) is None:
        raise ProvenanceRecordError(f"expected a lowercase hex SHA-256, got {text!r}")
    return f'"{text}"'


def _double(value: float) -> str:
    """An ``xsd:double`` literal as Oxigraph writes it (as Rust prints an f64).

    Rust prints the shortest digits that read back as the same double, never with an
    exponent and without a trailing ``.0``. Python's repr finds the same digits, except when
    two shortest candidates are exactly as close to the double: repr then takes the even
    last digit, Rust the one away from zero (708075487462537.25 prints as ...537.2 in Python,
    ...537.3 in Rust). Such ties need 16 or 17 significant digits, so ``_float`` sends only
    long reprs here.
    """
    if not math.isfinite(value):
        raise ProvenanceRecordError(f"{value} is not a finite number")
    shortest = Decimal(repr(value))
    exact = Fraction(value)
    candidate = Fraction(shortest)
    if candidate != exact:
        unit = Decimal((0, (1,), int(shortest.as_tuple().exponent)))
        other = shortest + unit if exact > candidate else shortest - unit
        if abs(other) > abs(shortest) and abs(Fraction(other) - exact) == abs(candidate - exact):
            shortest = other  # a tie: away from zero, as Rust
    text = format(shortest, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f'"{text}"{_DOUBLE}'


def _float(value: float) -> str:
    if value.is_integer():
        if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            # RFC 8785 writes 38.0 as 38: the record read back from the log has an int there.
            return f'"{int(value)}"{_INTEGER}'
        return _double(value)
    text = repr(value)
    if len(text) > 16 or "e" in text or "n" in text:  # 16+ digits (a tie?), an exponent, inf/nan
        return _double(value)
    return f'"{text}"{_DOUBLE}'  # at most 15 digits: no tie; one dot, no trailing 0


def _number(value: Any) -> str:
    kind = type(value)
    if kind is int:
        return f'"{value}"{_INTEGER}'
    if kind is float:
        return _float(value)
    raise ProvenanceRecordError(f"expected a number, got {value!r}")


def _scalar(value: Any) -> str | None:
    """The literal of an indexed value, or None for values that are not indexed."""
    kind = type(value)
    if kind is float:
        return _float(value)
    if kind is int:
        return f'"{value}"{_INTEGER}'
    if kind is str:
        return _string(value)
    if kind is bool:
        return _TRUE if value else _FALSE
    return None


def _datetime(text: str) -> str:
    """A record time as the ``xsd:dateTime`` literal Oxigraph stores (UTC, ``Z``, trimmed).

    Not memoised: most times occur once (reception, steps). The common forms (what
    ``isoformat()`` writes, in UTC) are rewritten by slicing once ``fromisoformat`` has
    validated them; any other offset goes through a conversion to UTC.
    """
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise ProvenanceRecordError(f"{text!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise ProvenanceRecordError(f"time {text!r} has no UTC offset")
    if text[-1] == "Z":
        body = text[:-1]
    elif text.endswith("+00:00"):
        body = text[:-6]
    else:
        body = ""
    size = len(body)
    if (
        (size == 19 or (20 < size <= 26 and body[19] == "." and body[20:].isdigit()))
        and body[4] == "-"
        and body[7] == "-"
        and body[10] == "T"
        and body[13] == ":"
        and body[16] == ":"
    ):
        fraction = body[20:].rstrip("0")
        return f'"{body[:19]}.{fraction}Z"{_DATETIME}' if fraction else f'"{body[:19]}Z"{_DATETIME}'
    moment = moment.astimezone(UTC)
    lexical = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond:
        lexical += f".{moment.microsecond:06d}".rstrip("0")
    return f'"{lexical}Z"{_DATETIME}'


def _json_literal(value: Any) -> str:
    try:
        text = canonicalize(value).decode("utf-8")
    except CanonicalizationError as exc:
        raise ProvenanceRecordError(f"value {value!r} has no canonical JSON form: {exc}") from exc
    return _string(text) + _JSON


# --------------------------------------------------------------------------- IRIs


def graph_iri(tenant: str) -> str:
    """The shared named graph of a collectivity: ``urn:ngsild-adapter:graph:{tenant}``."""
    return f"urn:ngsild-adapter:graph:{_tenant(tenant)[0]}"


def personal_graph_iri(tenant: str) -> str:
    """The personal named graph of a collectivity: ``urn:ngsild-adapter:graph:{tenant}:personal``."""
    return _personal_graph(tenant)[1:-1]


def _personal_graph(tenant: Any) -> str:
    return f"<urn:ngsild-adapter:graph:{_tenant(tenant)[0]}:personal>"


def gateway_iri(gateway_id: str) -> str:
    """A gateway: ``urn:ngsild-adapter:gateway:{id}`` (the id percent-encoded if need be)."""
    return f"urn:ngsild-adapter:gateway:{_segment(gateway_id)}"


def codec_iri(sha256: str) -> str:
    """A codec file, named by the SHA-256 of its content: ``urn:ngsild-adapter:codec:{sha256}``."""
    return f"urn:ngsild-adapter:codec:{_hex(sha256)[1:-1]}"


def _profile_iri(sha256: str) -> str:
    return f"urn:ngsild-adapter:profile:{_hex(sha256)[1:-1]}"


_tenants: dict[str, tuple[str, str, str]] = {}


def _tenant(tenant: Any) -> tuple[str, str, str]:
    """(tenant, graph term, IRI base ``urn:ngsild-adapter:{tenant}:``) of a valid tenant name."""
    try:
        return _tenants[tenant]
    except (KeyError, TypeError):
        pass
    if type(tenant) is not str or _TENANT.match(tenant) is None:
        raise ProvenanceRecordError(f"tenant {tenant!r} is not 1-50 characters of a-z, 0-9, '_' or '-'")
    entry = (tenant, f"<urn:ngsild-adapter:graph:{tenant}>", f"urn:ngsild-adapter:{tenant}:")
    _tenants[tenant] = entry
    return entry


@_cached
def _gateway_term(gateway_id: str) -> str:
    return f"<{gateway_iri(gateway_id)}>"


@_cached
def _software_term(version: str) -> str:
    return f"<urn:ngsild-adapter:software:{_segment(version)}>"


@_cached
def _codec_term(sha256: str) -> str:
    return f"<{codec_iri(sha256)}>"


@_cached
def _profile_term(sha256: str) -> str:
    return f"<{_profile_iri(sha256)}>"


@_cached
def _device_term(key: tuple[str, str]) -> str:
    base, dev_eui = key
    return f"<{base}device:{_segment(dev_eui)}>"


def _organization_term(tenant: str) -> str:
    return f"<urn:ngsild-adapter:organization:{tenant}>"


def _lns_term(base: str, connection: str) -> str:
    return f"<{base}lns:{_segment(connection)}>"


# --------------------------------------------------------------------------- expansion

_loader = document_loader()
_expansions: dict[Any, dict[str, str]] = {}
_type_expansions: dict[Any, dict[str, str]] = {}


def _context_key(context: Any) -> Any:
    if context is None:
        return (CORE_CONTEXT,)
    if type(context) is list or type(context) is tuple:
        key = tuple(context)
        try:
            hash(key)  # URLs only: the usual case, checked without a loop
            return key
        except TypeError:
            pass  # an inline context object in the list
    if type(context) is str:
        return (context,)
    return json.dumps(context, sort_keys=True)  # an inline context: keyed by its JSON


def _pyld_expand(context: Any, document: dict[str, Any]) -> list[Any]:
    """Expand one tiny document with pyld over the local contexts only."""
    ctx = [CORE_CONTEXT] if context is None else context
    try:
        expanded: list[Any] = jsonld.expand({"@context": ctx, **document}, {"documentLoader": _loader})
    except Exception as exc:  # pyld wraps loader errors (ContextNotAvailable) in JsonLdError
        raise ProvenanceRecordError(f"cannot expand {sorted(document)} with @context {ctx!r}: {exc}") from exc
    return expanded


def _expand_term(context: Any, term: str) -> str:
    expanded = _pyld_expand(context, {term: "x"})
    keys = [key for key in (expanded[0] if expanded else {}) if not key.startswith("@")]
    if len(keys) != 1 or _SCHEME.match(keys[0]) is None:
        raise ProvenanceRecordError(f"attribute {term!r} does not expand to an IRI with @context {context!r}")
    return str(keys[0])


def _attribute_term(key: Any, context: Any, term: str) -> str:
    terms = _expansions.get(key)
    if terms is None:
        terms = _expansions[key] = {}
    found = terms.get(term)
    if found is None:
        if type(term) is not str:
            raise ProvenanceRecordError(f"attribute name {term!r} is not a string")
        found = terms[term] = _iri(_expand_term(context, term))
    return found


def expand_attribute(context: Any, term: str) -> str:
    """The IRI of attribute ``term`` under an entity's ``@context`` (cached per context and term).

    >>> expand_attribute([ENVIRONMENT_CONTEXT_URL, ...], "no2")
    'https://smartdatamodels.org/dataModel.Environment/no2'
    """
    return _attribute_term(_context_key(context), context, term)[1:-1]


def _type_term(key: Any, context: Any, name: str) -> str:
    types = _type_expansions.setdefault(key, {})
    found = types.get(name)
    if found is None:
        expanded = _pyld_expand(context, {"@type": name})
        iris = expanded[0].get("@type", []) if expanded else []
        if len(iris) != 1 or _SCHEME.match(iris[0]) is None:
            raise ProvenanceRecordError(f"entity type {name!r} does not expand to an IRI")
        found = types[name] = _iri(iris[0])
    return found


# --------------------------------------------------------------------------- lean index


def _object_values(target: Any) -> tuple[str, ...]:
    """The IRIs of a Relationship's ``object`` (empty when it is not an IRI or a list of IRIs)."""
    if type(target) is str:
        return (_iri(target),)
    if type(target) is list and target and all(type(item) is str for item in target):
        return tuple(_iri(item) for item in target)
    return ()


def _lean(
    record: Mapping[str, Any], index: int, personal: Set[str] = frozenset(), pseudonyms: PseudonymKeys | None = None
) -> tuple[str, list[Triple], list[Triple]]:
    """(shared graph term, its quads, the quads of the personal graph).

    ``pseudonyms`` None: devices and entities keep their real IRIs and no link is made (the
    full record's form, for the collectivity's own readers).
    """
    if type(index) is not int or index < 0:
        raise ProvenanceRecordError(f"record number {index!r} is not a non-negative integer")
    try:
        return _lean_unchecked(record, index, personal, pseudonyms)
    except UnknownCollectivity as exc:
        raise ProvenanceRecordError(f"record {index}: {exc}") from exc
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise ProvenanceRecordError(f"record {index} does not have the format of docs/provenance.md: {exc!r}") from exc


def _pseudonym_key(pseudonyms: PseudonymKeys, tenant: str, received: str) -> PseudonymKey:
    """The key of a record received at ``received`` (an ``xsd:dateTime`` term of ``_datetime``)."""
    return pseudonyms.key_for(tenant, received[1:11])


@_cached
def _device_needle(dev_eui: str) -> str:
    """What a string names the device by: the devEui's hex digits (any case, any separators)."""
    digits = _NOT_HEX.sub("", dev_eui.lower())
    return digits if len(digits) == 16 else dev_eui.lower()


def _names_device(text: str, needle: str) -> bool:
    """Whether a string value holds the devEui, in whatever case or separator form."""
    if len(text) < len(needle):  # most values ("ok", "outdoor"): too short to hold it
        return False
    lowered = text.lower()
    return needle in lowered or (len(needle) == 16 and needle in _NOT_HEX.sub("", lowered))


def _lean_unchecked(
    record: Mapping[str, Any], index: int, personal: Set[str], pseudonyms: PseudonymKeys | None
) -> tuple[str, list[Triple], list[Triple]]:
    if record["formatVersion"] != 1:
        raise ProvenanceRecordError(f"record {index}: formatVersion {record['formatVersion']!r} is not 1")
    kind = record["recordType"]
    tenant, graph, base = _tenant(record["tenant"])
    u_iri = f"{base}uplink:{index}"
    u = f"<{u_iri}>"
    uplink = record["uplink"]
    dev_eui = record["device"]["devEui"]
    device = _device_term((base, dev_eui))
    received = _datetime(uplink["receivedAt"])
    quads: list[Triple] = [(u, _TYPE, _P["Entity"])]
    held: list[Triple] = []
    append = quads.append
    # What names the device goes to the personal graph: its payload digest (a short payload is
    # found again from its SHA-256 by trying them all) and frame counter (consecutive counters
    # link a device's records across a key rotation).
    if kind == "uplink":
        held.append((u, _N["payloadSha256"], _hex(uplink["payloadSha256"])))
        f_cnt = uplink.get("fCnt")
        if f_cnt is not None:
            held.append((u, _N["fCnt"], _number(f_cnt)))
    elif kind == "status":
        append((u, _TYPE, _N["DeviceStatus"]))
    else:
        raise ProvenanceRecordError(f"record {index}: recordType {kind!r} is neither uplink nor status")
    links: dict[Triple, None] = {}
    key: PseudonymKey | None = None
    if pseudonyms is not None:
        key = _pseudonym_key(pseudonyms, tenant, received)
        shown_device = f"<{key.device(dev_eui)}>"
        links[(shown_device, _PSEUDONYM_OF, device)] = None
    else:
        shown_device = device
    append((u, _P["generatedAtTime"], received))
    append((u, _P["wasAttributedTo"], shown_device))
    for i, gateway in enumerate(record["gateways"]):
        reception = f"<{u_iri}:reception:{i}>"
        append((u, _N["reception"], reception))
        append((reception, _N["gateway"], _gateway_term(gateway["id"])))
        rssi = gateway.get("rssi")
        if rssi is not None:
            append((reception, _N["rssi"], _number(rssi)))
        snr = gateway.get("snr")
        if snr is not None:
            append((reception, _N["snr"], _number(snr)))

    a = f"<{u_iri}:processing>"
    append((a, _P["used"], u))
    steps = record["steps"]
    if steps:
        append((a, _P["startedAtTime"], _datetime(steps[0]["startedAt"])))
        append((a, _P["endedAtTime"], _datetime(steps[-1]["endedAt"])))
    append((a, _P["wasAssociatedWith"], _software_term(record["adapter"]["version"])))
    for step in steps:
        name = step["step"]
        if name == "decode":
            sha = step.get("codecSha256")
            if sha is not None:
                append((a, _N["codecFile"], _codec_term(sha)))
        elif name == "map":
            sha = step.get("profileSha256")
            if sha is not None:
                append((a, _N["profileFile"], _profile_term(sha)))
        elif name == "privacy":
            for rule in step.get("rules") or ():
                append((a, _N["privacyRule"], _string(rule)))

    observed = record["observedAt"]
    observed_term = _datetime(observed)
    needle = _device_needle(dev_eui) if type(dev_eui) is str and dev_eui else None
    foi, result_time, generated = _S["hasFeatureOfInterest"], _S["resultTime"], _P["wasGeneratedBy"]
    for k, entity in enumerate(record["entities"]):
        o_iri = f"{u_iri}:obs:{k}"
        o = f"<{o_iri}>"
        entity_term = _iri(entity["id"])  # validated, whatever is shown
        if key is not None:
            shown_entity = f"<{key.entity(entity['id'])}>"
            links[(shown_entity, _PSEUDONYM_OF, entity_term)] = None
        else:
            shown_entity = entity_term
        append((o, foi, shown_entity))
        append((o, result_time, observed_term))
        append((o, generated, a))
        context = entity.get("@context")
        context_key = _context_key(context)
        terms = _expansions.get(context_key) or {}
        attributes = entity["attributes"]
        for name in sorted(attributes):  # the same text whatever the key order (JSON round trips)
            attribute = attributes[name]
            if type(attribute) is not dict:
                raise ProvenanceRecordError(f"record {index}: attribute {name!r} is not an object")
            is_personal = name in personal
            targets: tuple[str, ...] = ()
            if "value" in attribute:
                value = attribute["value"]
                kind = type(value)
                if kind is float:
                    values: tuple[str, ...] = (_float(value),)
                elif kind is int:
                    values = (f'"{value}"{_INTEGER}',)
                elif kind is str:
                    values = (_string(value),)
                    # a string that names the device is personal, whatever the attribute
                    is_personal = is_personal or (needle is not None and _names_device(value, needle))
                elif kind is bool:
                    values = (_TRUE if value else _FALSE,)
                else:
                    continue  # GeoJSON, DateTime objects, lists: not indexed
            else:
                values = _object_values(attribute.get("object"))
                if not values:
                    continue
                if key is not None and not is_personal:  # a Relationship names a broker entity
                    targets = values
                    values = tuple(f"<{key.entity(target[1:-1])}>" for target in targets)
                    for shown, target in zip(values, targets, strict=True):
                        links[(shown, _PSEUDONYM_OF, target)] = None
            predicate = terms.get(name) or _attribute_term(context_key, context, name)
            into = held.append if is_personal else append
            own_time = attribute.get("observedAt")
            if own_time is None or own_time == observed or _datetime(own_time) == observed_term:
                subject = o
            else:  # observed at its own time: its own observation node, same shape
                subject = f"<{o_iri}:{_segment(name)}>"
                into((subject, foi, shown_entity))
                into((subject, result_time, _datetime(own_time)))
                into((subject, generated, a))
            for term in values:
                into((subject, predicate, term))
    held += links
    return graph, quads, held


def _render(graph: str, triples: Iterable[Triple]) -> str:
    tail = f" {graph} .\n"
    text = tail.join(map(" ".join, triples))  # C-level joins: the fastest way to write them
    return text + tail if text else ""


def index_nquads(
    record: Mapping[str, Any], index: int, *, pseudonyms: PseudonymKeys, personal: Set[str] = frozenset()
) -> str:
    """The lean index quads of record ``index`` (N-Quads text, in the tenant's named graphs).

    Devices and entities are named in the shared graph by their pseudonyms under the key of
    ``pseudonyms`` that applies to the record's reception day; the links to their real IRIs,
    the values of the attributes named in ``personal`` (and strings naming the device), the
    payload digest and the frame counter go to the tenant's personal graph (see "Two graphs
    per collectivity" above). Deterministic: the same record and key always yield the same
    text (see the module docstring for the shape). Raises ``ProvenanceRecordError`` if the
    record does not have the format, ``MissingPseudonymKey`` if its key is not on this machine.

    >>> store.load(index_nquads(record, 41, pseudonyms=keys).encode(), pyoxigraph.RdfFormat.N_QUADS)
    """
    graph, quads, held = _lean(record, index, personal, pseudonyms)
    text = _render(graph, quads)
    return text + _render(_personal_graph(record["tenant"]), held) if held else text


def index_triples(record: Mapping[str, Any], index: int, *, pseudonyms: PseudonymKeys) -> set[Triple]:
    """The quads of ``index_nquads`` as (subject, predicate, object) N-Triples term strings,
    whichever graph each goes to.

    They are written as a store returns them (``str(quad.object)`` in pyoxigraph), so a
    verifier can compare a store's graph with a fresh computation as sets.
    """
    _, quads, held = _lean(record, index, frozenset(), pseudonyms)
    return {*quads, *held}


def index_triples_by_graph(
    record: Mapping[str, Any], index: int, *, pseudonyms: PseudonymKeys, personal: Set[str] = frozenset()
) -> dict[str, set[Triple]]:
    """The quads of ``index_nquads`` per graph IRI (shared, and personal when it gets any)."""
    graph, quads, held = _lean(record, index, personal, pseudonyms)
    found = {graph[1:-1]: set(quads)}
    if held:
        found[_personal_graph(record["tenant"])[1:-1]] = set(held)
    return found


def verification_triples(
    record: Mapping[str, Any], index: int, *, pseudonyms: PseudonymKeys, personal: Set[str] = frozenset()
) -> dict[str, set[Triple]]:
    """Per graph IRI, everything a store must hold about the subjects of the record's quads:
    ``index_triples_by_graph`` plus the shared description of the device's pseudonym (the
    subject of the record's link), so that a verifier reading those subjects in both graphs
    can tell a missing, a changed and an added quad (a link copied into the shared graph
    would undo the pseudonym)."""
    found = index_triples_by_graph(record, index, pseudonyms=pseudonyms, personal=personal)
    shared_graph = _tenant(record["tenant"])[1][1:-1]
    found.setdefault(_personal_graph(record["tenant"])[1:-1], set())
    device = _lean_device_pseudonym(record, pseudonyms)
    static = static_triples_by_graph(record, pseudonyms=pseudonyms)
    found[shared_graph] |= {t for t in static.get(shared_graph, ()) if t[0] == device}
    return found


def _lean_device_pseudonym(record: Mapping[str, Any], pseudonyms: PseudonymKeys) -> str:
    try:
        tenant = _tenant(record["tenant"])[0]
        key = _pseudonym_key(pseudonyms, tenant, _datetime(record["uplink"]["receivedAt"]))
        return f"<{key.device(record['device']['devEui'])}>"
    except UnknownCollectivity as exc:
        raise ProvenanceRecordError(str(exc)) from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProvenanceRecordError(f"record does not have the format of docs/provenance.md: {exc!r}") from exc


# --------------------------------------------------------------------------- static quads

_static_parts: dict[tuple[Any, ...], tuple[Triple, ...]] = {}


def _part(key: tuple[Any, ...], build: Callable[..., list[Triple]], *args: Any) -> tuple[Triple, ...]:
    """The triples ``build(*args)`` makes, built once per ``key`` (the arguments that decide them)."""
    found = _static_parts.get(key)
    if found is None:
        if len(_static_parts) >= _CACHE_LIMIT:
            _static_parts.clear()
        found = _static_parts[key] = tuple(build(*args))
    return found


def _organization_triples(tenant: str) -> list[Triple]:
    organization = _organization_term(tenant)
    return [(organization, _TYPE, _P["Organization"]), (organization, _N["tenant"], _string(tenant))]


def _device_triples(
    base: str, tenant: str, dev_eui: str, device_id: Any, application: Any, shown: str | None
) -> list[Triple]:
    """The device as a sensor of its collectivity (under its pseudonym ``shown``, if any), and
    what identifies it (``_DEVICE_IDENTIFIERS``, on its real IRI)."""
    term = _device_term((base, dev_eui))
    agent = shown or term
    triples = [
        (agent, _TYPE, _S["Sensor"]),
        (agent, _TYPE, _P["Agent"]),
        (agent, _P["actedOnBehalfOf"], _organization_term(tenant)),
        (term, _N["devEui"], _string(dev_eui)),
    ]
    if device_id is not None:
        triples.append((term, _N["deviceId"], _string(device_id)))
    if application is not None:
        triples.append((term, _N["application"], _string(application)))
    return triples


def _software_triples(software: str, version: str) -> list[Triple]:
    term = _software_term(version)
    return [
        (term, _TYPE, _P["SoftwareAgent"]),
        (term, _LABEL, _string(software)),
        (term, _N["version"], _string(version)),
    ]


def _lns_triples(base: str, tenant: str, connection: str, kind: Any) -> list[Triple]:
    term = _lns_term(base, connection)
    triples = [
        (term, _TYPE, _P["SoftwareAgent"]),
        (term, _N["connection"], _string(connection)),
        (term, _P["actedOnBehalfOf"], _organization_term(tenant)),
    ]
    if kind is not None:
        triples.append((term, _N["lnsKind"], _string(kind)))
    return triples


def _gateway_triples(gateway_id: str) -> list[Triple]:
    term = _gateway_term(gateway_id)
    return [(term, _TYPE, _P["Agent"]), (term, _TYPE, _N["Gateway"]), (term, _N["gatewayId"], _string(gateway_id))]


def _file_triples(term: str, file_class: str, sha256: str, name: Any) -> list[Triple]:
    triples = [(term, _TYPE, _P["Entity"]), (term, _TYPE, file_class), (term, _N["sha256"], _hex(sha256))]
    if name is not None:
        triples.append((term, _N["name"], _string(name)))
    return triples


def _unit_triples(profile: str, attribute: str, unit: str) -> list[Triple]:
    node = f"<{profile[1:-1]}:unit:{quote(attribute[1:-1], safe='')}>"
    return [(profile, _N["unit"], node), (node, _N["attribute"], attribute), (node, _N["unitCode"], _string(unit))]


def _static(
    record: Mapping[str, Any], index: int | None = None, pseudonyms: PseudonymKeys | None = None
) -> tuple[str, list[Triple]]:
    try:
        return _static_unchecked(record, pseudonyms)
    except UnknownCollectivity as exc:
        raise ProvenanceRecordError(f"{'record' if index is None else f'record {index}'}: {exc}") from exc
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        where = "record" if index is None else f"record {index}"
        raise ProvenanceRecordError(f"{where} does not have the format of docs/provenance.md: {exc!r}") from exc


def _static_unchecked(record: Mapping[str, Any], pseudonyms: PseudonymKeys | None) -> tuple[str, list[Triple]]:
    tenant, graph, base = _tenant(record["tenant"])
    out: list[Triple] = [*_part(("organization", tenant), _organization_triples, tenant)]
    device = record["device"]
    shown = None
    if pseudonyms is not None:
        _device_term((base, device["devEui"]))  # validates the devEui
        key = _pseudonym_key(pseudonyms, tenant, _datetime(record["uplink"]["receivedAt"]))
        shown = f"<{key.device(device['devEui'])}>"
    args: tuple[Any, ...] = (
        base,
        tenant,
        device["devEui"],
        device.get("deviceId"),
        device.get("application"),
        shown,
    )
    out += _part(("device", *args), _device_triples, *args)
    software, version = record["adapter"].get("software", "ngsild-adapter"), record["adapter"]["version"]
    out += _part(("software", software, version), _software_triples, software, version)
    lns = record.get("lns")
    if lns is not None and lns.get("connection") is not None:
        args = (base, tenant, lns["connection"], lns.get("kind"))
        out += _part(("lns", *args), _lns_triples, *args)
    for gateway in record["gateways"]:
        out += _part(("gateway", gateway["id"]), _gateway_triples, gateway["id"])
    profile: str | None = None
    for step in record["steps"]:
        if step["step"] == "decode" and step.get("codecSha256") is not None:
            args = (_codec_term(step["codecSha256"]), _N["CodecFile"], step["codecSha256"], step.get("codec"))
            out += _part(("file", *args), _file_triples, *args)
        elif step["step"] == "map" and step.get("profileSha256") is not None:
            profile = _profile_term(step["profileSha256"])
            args = (profile, _N["ProfileFile"], step["profileSha256"], step.get("profile"))
            out += _part(("file", *args), _file_triples, *args)
    if profile is not None:
        for entity in record["entities"]:
            context = entity.get("@context")
            key = _context_key(context)
            for name, attribute in sorted(entity["attributes"].items()):
                unit = attribute.get("unitCode")
                if unit is not None:
                    args = (profile, _attribute_term(key, context, name), unit)
                    out += _part(("unit", *args), _unit_triples, *args)
    return graph, out


def static_triples(record: Mapping[str, Any], *, pseudonyms: PseudonymKeys) -> set[Triple]:
    """The once-per-thing quads a record refers to (see ``static_nquads``), as term strings."""
    return set(_static(record, None, pseudonyms)[1])


def _static_split(record: Mapping[str, Any], pseudonyms: PseudonymKeys) -> tuple[str, list[Triple], list[Triple]]:
    graph, triples = _static(record, None, pseudonyms)
    unique = dict.fromkeys(triples)
    shared = [t for t in unique if t[1] not in _DEVICE_IDENTIFIERS]
    held = [t for t in unique if t[1] in _DEVICE_IDENTIFIERS]
    return graph, shared, held


def static_triples_by_graph(record: Mapping[str, Any], *, pseudonyms: PseudonymKeys) -> dict[str, set[Triple]]:
    """The quads of ``static_nquads`` per graph IRI."""
    graph, shared, held = _static_split(record, pseudonyms)
    return {graph[1:-1]: set(shared), _personal_graph(record["tenant"])[1:-1]: set(held)}


def static_nquads(record: Mapping[str, Any], *, pseudonyms: PseudonymKeys) -> str:
    """Quads describing what the record refers to but that do not change per uplink.

    The device (under its pseudonym) and its collectivity, the network-server connection, the
    software version, the gateways, the codec and profile files and the profile's unit codes,
    in the tenant's shared graph; what identifies the device (``nga:devEui`` and its names at
    the network server, ``nga:deviceId``, ``nga:application``, on its real IRI) in its personal
    graph. A pure function of the record and its key (cached per part): index them with every
    record, or only when one of their keys is new; the store keeps each quad once either way.
    """
    graph, shared, held = _static_split(record, pseudonyms)
    return _render(graph, shared) + _render(_personal_graph(record["tenant"]), held)


# --------------------------------------------------------------------------- deliveries


def _receipt_core(tenant: str, receipt: Mapping[str, Any]) -> tuple[str, str, str, list[Triple]]:
    """(graph, delivery term, IRI base, quads describing the delivery itself)."""
    tenant_name, graph, base = _tenant(tenant)
    if receipt.get("tenant", tenant_name) != tenant_name:
        raise ProvenanceRecordError(f"receipt of tenant {receipt.get('tenant')!r} given for {tenant_name!r}")
    delivery_id = receipt["id"]
    if type(delivery_id) is not int or delivery_id < 0:
        raise ProvenanceRecordError(f"delivery id {delivery_id!r} is not a non-negative integer")
    d = f"<{base}delivery:{delivery_id}>"
    status = receipt["status"]
    if type(status) is not int:
        raise ProvenanceRecordError(f"delivery {delivery_id}: status {status!r} is not an integer")
    quads = [
        (d, _TYPE, _P["Activity"]),
        (d, _P["startedAtTime"], _datetime(receipt["startedAt"])),
        (d, _P["endedAtTime"], _datetime(receipt["endedAt"])),
        (d, _N["broker"], _iri(receipt["broker"])),
        (d, _N["httpStatus"], _number(status)),
        (d, _P["wasAssociatedWith"], _software_term(receipt["software"])),
    ]
    return graph, d, base, quads


def _record_number(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ProvenanceRecordError(f"record number {value!r} is not a non-negative integer")
    return value


def _refusal_triples(d: str, base: str, j: int, refusal: Mapping[str, Any]) -> list[Triple]:
    """The refusal's node and record (shared), then the entity and the broker's words (personal:
    a broker's message often repeats the entity id)."""
    x = f"<{d[1:-1]}:refusal:{j}>"
    return [
        (d, _N["refusal"], x),
        (x, _N["uplink"], f"<{base}uplink:{_record_number(refusal['record'])}>"),
        (x, _N["entity"], _iri(refusal["entity"])),
        (x, _N["detail"], _string(refusal.get("detail", ""))),
    ]


_REFUSAL_PERSONAL = frozenset({_N["entity"], _N["detail"]})


def _delivery(tenant: str, receipt: Mapping[str, Any]) -> tuple[str, list[Triple], list[Triple]]:
    """(shared graph term, the delivery's shared quads, those of its personal graph)."""
    held: list[Triple] = []
    try:
        graph, d, base, quads = _receipt_core(tenant, receipt)
        for number in receipt["records"]:
            quads.append((d, _P["used"], f"<{base}uplink:{_record_number(number)}>"))
        for j, refusal in enumerate(receipt.get("refused") or ()):
            for triple in _refusal_triples(d, base, j, refusal):
                (held if triple[1] in _REFUSAL_PERSONAL else quads).append(triple)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ProvenanceRecordError(f"delivery receipt does not have the documented format: {exc!r}") from exc
    return graph, quads, held


def delivery_nquads(tenant: str, receipt: Mapping[str, Any]) -> str:
    """The quads of one broker delivery (a batch), from its receipt.

    Receipt: ``{"id": int, "tenant": str, "startedAt": iso, "endedAt": iso, "broker": url,
    "status": int, "software": version, "records": [n, ...], "refused": [{"record": n,
    "entity": id, "detail": str}]}``.
    """
    graph, quads, held = _delivery(tenant, receipt)
    return _render(graph, dict.fromkeys(quads)) + _render(_personal_graph(tenant), held)


def delivery_triples(tenant: str, receipt: Mapping[str, Any]) -> set[Triple]:
    """The quads of ``delivery_nquads`` as term strings."""
    _, quads, held = _delivery(tenant, receipt)
    return {*quads, *held}


def _receipts_for(tenant: str, index: int, receipts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The receipts of deliveries that carried record ``index`` (sent, or refused), in time order."""
    found = []
    for receipt in receipts:
        try:
            if receipt.get("tenant", tenant) != tenant:
                continue
            numbers = {*receipt["records"], *(r["record"] for r in receipt.get("refused") or ())}
        except (KeyError, TypeError, AttributeError) as exc:
            raise ProvenanceRecordError(f"delivery receipt does not have the documented format: {exc!r}") from exc
        if index in numbers:
            _delivery(tenant, receipt)  # validates it
            found.append(receipt)
    return sorted(found, key=lambda r: (datetime.fromisoformat(r["endedAt"]), r["id"]))


# --------------------------------------------------------------------------- full record


def _step_iris(u_iri: str, steps: Sequence[Mapping[str, Any]]) -> list[str]:
    names = [step["step"] for step in steps]
    return [
        f"{u_iri}:processing:{_segment(name)}" + (f":{i}" if names.count(name) > 1 else "")
        for i, name in enumerate(names)
    ]


def _full(record: Mapping[str, Any], index: int, receipts: Iterable[Mapping[str, Any]]) -> tuple[str, list[Triple]]:
    graph, lean, held = _lean(record, index, frozenset(), None)
    _, static = _static(record, index, None)
    try:
        extra = _full_extra(record, index, receipts)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise ProvenanceRecordError(f"record {index} does not have the format of docs/provenance.md: {exc!r}") from exc
    return graph, list(dict.fromkeys([*lean, *held, *static, *extra]))


def _full_extra(record: Mapping[str, Any], index: int, receipts: Iterable[Mapping[str, Any]]) -> list[Triple]:
    tenant, _, base = _tenant(record["tenant"])
    u_iri = f"{base}uplink:{index}"
    u = f"<{u_iri}>"
    device = _device_term((base, record["device"]["devEui"]))
    software = _software_term(record["adapter"]["version"])
    uplink = record["uplink"]
    out: list[Triple] = []
    add = out.append

    # the raw uplink and its reception
    if record["recordType"] == "uplink":
        add((u, _TYPE, _N["Uplink"]))
    for key, predicate in (("size", "size"), ("fPort", "fPort")):
        if uplink.get(key) is not None:
            add((u, _N[predicate], _number(uplink[key])))
    add((u, _N["formatVersion"], _number(record["formatVersion"])))
    try:
        add((u, _N["recordSha256"], _hex(record_digest(dict(record)).hex())))
    except CanonicalizationError as exc:
        raise ProvenanceRecordError(f"record {index} has no canonical form: {exc}") from exc
    chain = record.get("chain") or {}
    if chain.get("seq") is not None:
        add((u, _N["chainSeq"], _number(chain["seq"])))
    if chain.get("prev") is not None:
        add((u, _N["chainPrev"], _hex(chain["prev"])))
    reception = f"<{u_iri}:reception>"
    add((u, _P["wasGeneratedBy"], reception))
    add((reception, _TYPE, _P["Activity"]))
    add((reception, _P["endedAtTime"], _datetime(uplink["receivedAt"])))
    lns = record.get("lns")
    if lns is not None and lns.get("connection") is not None:
        add((reception, _P["wasAssociatedWith"], _lns_term(base, lns["connection"])))
    for i, gateway in enumerate(record["gateways"]):
        node = f"<{u_iri}:reception:{i}>"
        add((node, _TYPE, _N["Reception"]))
        add((reception, _P["wasAssociatedWith"], _gateway_term(gateway["id"])))

    # processing, one activity per step
    a = f"<{u_iri}:processing>"
    add((a, _TYPE, _P["Activity"]))
    steps = record["steps"]
    step_terms = [f"<{iri}>" for iri in _step_iris(u_iri, steps)]
    map_term: str | None = None
    map_ended: str | None = None
    for position, (step, term) in enumerate(zip(steps, step_terms, strict=True)):
        name = step["step"]
        add((term, _TYPE, _P["Activity"]))
        add((term, _N["step"], _string(name)))
        add((term, _PART_OF, a))
        add((term, _P["startedAtTime"], _datetime(step["startedAt"])))
        add((term, _P["endedAtTime"], _datetime(step["endedAt"])))
        add((term, _P["wasAssociatedWith"], software))
        if position == 0:
            add((term, _P["used"], u))
        else:
            add((term, _P["wasInformedBy"], step_terms[position - 1]))
        if name == "decode" and step.get("codecSha256") is not None:
            add((term, _P["used"], _codec_term(step["codecSha256"])))
            add((term, _N["codecFile"], _codec_term(step["codecSha256"])))
        elif name == "privacy":
            for rule in step.get("rules") or ():
                add((term, _N["privacyRule"], _string(rule)))
        elif name == "map":
            map_term, map_ended = term, step["endedAt"]
            if step.get("profileSha256") is not None:
                add((term, _P["used"], _profile_term(step["profileSha256"])))
                add((term, _N["profileFile"], _profile_term(step["profileSha256"])))

    # observations and attribute values
    observed = record["observedAt"]
    generator = map_term or a
    generated_at = _datetime(map_ended or observed)
    values_by_entity: dict[str, list[str]] = {}
    for k, entity in enumerate(record["entities"]):
        o_iri = f"{u_iri}:obs:{k}"
        o = f"<{o_iri}>"
        entity_term = _iri(entity["id"])
        context = entity.get("@context")
        key = _context_key(context)
        add((o, _TYPE, _S["ObservationCollection"]))
        add((o, _S["madeBySensor"], device))
        if entity.get("type") is not None:
            add((o, _N["entityType"], _type_term(key, context, entity["type"])))
        for name, attribute in sorted(entity["attributes"].items()):
            v = f"<{o_iri}:{_segment(name)}>"
            values_by_entity.setdefault(entity["id"], []).append(v)
            attribute_term = _attribute_term(key, context, name)
            time = _datetime(attribute.get("observedAt") or observed)
            add((o, _S["hasMember"], v))
            add((v, _TYPE, _P["Entity"]))
            add((v, _P["wasDerivedFrom"], u))
            add((v, _P["wasGeneratedBy"], generator))
            add((v, _P["generatedAtTime"], generated_at))
            add((v, _N["entity"], entity_term))
            add((v, _N["attribute"], attribute_term))
            add((v, _N["attributeName"], _string(name)))
            add((v, _N["observedAt"], time))
            if attribute.get("unitCode") is not None:
                add((v, _N["unitCode"], _string(attribute["unitCode"])))
            if "value" in attribute:
                literal = _scalar(attribute["value"]) or _json_literal(attribute["value"])
                add((v, _TYPE, _S["Observation"]))
                add((v, _S["observedProperty"], attribute_term))
                add((v, _S["hasFeatureOfInterest"], entity_term))
                add((v, _S["madeBySensor"], device))
                add((v, _S["resultTime"], time))
                add((v, _P["value"], literal))
                add((v, _S["hasSimpleResult"], literal))
            elif "object" in attribute:
                targets = attribute["object"]
                for target in targets if type(targets) is list else [targets]:
                    add((v, _N["object"], _iri(target)))

    # deliveries of this record
    for receipt in _receipts_for(tenant, index, receipts):
        _, d, _, core = _receipt_core(tenant, receipt)
        out += core
        add((d, _P["used"], u))
        add((d, _P["wasInformedBy"], a))
        for j, refusal in enumerate(receipt.get("refused") or ()):
            if refusal.get("record") == index:
                out += _refusal_triples(d, base, j, refusal)
        for values in values_by_entity.values():
            for v in values:
                add((d, _P["used"], v))  # sent, whether the broker then accepted it or not
    return out


def provenance_nquads(record: Mapping[str, Any], index: int, receipts: Iterable[Mapping[str, Any]] = ()) -> str:
    """The full PROV-O record of one uplink as N-Quads (a superset of the lean and static quads)."""
    graph, triples = _full(record, index, receipts)
    return _render(graph, triples)


def provenance_dataset(
    record: Mapping[str, Any], index: int, receipts: Iterable[Mapping[str, Any]] = ()
) -> rdflib.Graph:
    """The full W3C PROV-O / SOSA record of one uplink, for the provenance API.

    An ``rdflib.Graph`` whose identifier is the tenant's named graph, with the ``PREFIXES``
    bound: serialise it as Turtle (``graph.serialize(format="turtle")``) or JSON-LD. (A Graph
    rather than an ``rdflib.Dataset``: rdflib 7.6's Dataset serialisers emit deprecation
    warnings, and the record lives in a single graph anyway.) ``receipts`` are the delivery
    receipts; those that carried record ``index`` are included.
    """
    graph, triples = _full(record, index, receipts)
    result = rdflib.Graph(identifier=rdflib.URIRef(graph[1:-1]))
    for prefix, namespace in PREFIXES.items():
        result.bind(prefix, namespace)
    result.parse(data="".join(f"{s} {p} {o} .\n" for s, p, o in triples), format="nt")
    return result


# --------------------------------------------------------------------------- lineage


def lineage(
    record: Mapping[str, Any],
    index: int,
    entity_id: str,
    attribute: str,
    receipts: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A plain JSON summary of one attribute value, from the raw bytes to the broker.

    ``attribute`` is the attribute's name in the entity (``no2``) or its expanded IRI. Keys:
    ``value`` (entity, attribute, IRI, value or object, unit, observedAt, node IRI),
    ``uplink`` (IRI, record type, payload digest, size, fCnt, fPort, receivedAt, device,
    network server), ``gateways`` (id, IRI, rssi, snr), ``steps`` (decode, privacy, map with
    their times, codec/profile and rules), ``software`` and ``deliveries`` (broker, status,
    times, and whether the broker accepted this entity). Raises ``ValueNotInRecord`` when the
    record has no such value, ``ProvenanceRecordError`` when it does not have the format.
    """
    graph, _, _ = _lean(record, index, frozenset(), None)  # validates the record
    tenant, _, base = _tenant(record["tenant"])
    u_iri = f"{base}uplink:{index}"
    for k, entity in enumerate(record["entities"]):
        if entity.get("id") != entity_id:
            continue
        context = entity.get("@context")
        key = _context_key(context)
        for name, attr in entity["attributes"].items():
            iri = _attribute_term(key, context, name)[1:-1]
            if attribute in (name, iri):
                try:
                    return _lineage(record, index, graph, base, u_iri, k, entity, name, iri, attr, receipts)
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    raise ProvenanceRecordError(f"record {index} or a receipt lacks the format: {exc!r}") from exc
        raise ValueNotInRecord(f"record {index} of {tenant}: entity {entity_id} has no attribute {attribute!r}")
    raise ValueNotInRecord(f"record {index} of {tenant} has no entity {entity_id}")


def _lineage(
    record: Mapping[str, Any],
    index: int,
    graph: str,
    base: str,
    u_iri: str,
    k: int,
    entity: Mapping[str, Any],
    name: str,
    iri: str,
    attr: Mapping[str, Any],
    receipts: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    tenant = record["tenant"]
    uplink = record["uplink"]
    device = record["device"]
    lns = record.get("lns") or {}
    value: dict[str, Any] = {
        "node": f"{u_iri}:obs:{k}:{_segment(name)}",
        "observation": f"{u_iri}:obs:{k}",
        "entity": entity["id"],
        "entityType": entity.get("type"),
        "attribute": name,
        "attributeIri": iri,
        "observedAt": attr.get("observedAt") or record["observedAt"],
    }
    if "object" in attr:
        value["object"] = attr["object"]
    else:
        value["value"] = attr.get("value")
    if attr.get("unitCode") is not None:
        value["unitCode"] = attr["unitCode"]
    steps = []
    for step, step_iri in zip(record["steps"], _step_iris(u_iri, record["steps"]), strict=True):
        summary = {"iri": step_iri, **step}
        if step["step"] == "decode" and step.get("codecSha256"):
            summary["codecIri"] = codec_iri(step["codecSha256"])
        if step["step"] == "map" and step.get("profileSha256"):
            summary["profileIri"] = _profile_iri(step["profileSha256"])
        steps.append(summary)
    deliveries = []
    for receipt in _receipts_for(tenant, index, receipts):
        refusal = next(
            (r for r in receipt.get("refused") or () if r.get("record") == index and r.get("entity") == entity["id"]),
            None,
        )
        deliveries.append(
            {
                "iri": f"{base}delivery:{receipt['id']}",
                "id": receipt["id"],
                "broker": receipt["broker"],
                "status": receipt["status"],
                "startedAt": receipt["startedAt"],
                "endedAt": receipt["endedAt"],
                "software": receipt.get("software"),
                "accepted": refusal is None,
                **({"detail": refusal.get("detail")} if refusal is not None else {}),
            }
        )
    return {
        "graph": graph[1:-1],
        "tenant": tenant,
        "record": index,
        "value": value,
        "uplink": {
            "iri": u_iri,
            "recordType": record["recordType"],
            "payloadSha256": uplink.get("payloadSha256"),
            "size": uplink.get("size"),
            "fCnt": uplink.get("fCnt"),
            "fPort": uplink.get("fPort"),
            "receivedAt": uplink["receivedAt"],
            "device": {"iri": _device_term((base, device["devEui"]))[1:-1], **device},
            "networkServer": {
                **({"iri": _lns_term(base, lns["connection"])[1:-1]} if lns.get("connection") else {}),
                **lns,
            },
            "chain": record.get("chain"),
        },
        "gateways": [
            {"iri": gateway_iri(g["id"]), "id": g["id"], "rssi": g.get("rssi"), "snr": g.get("snr")}
            for g in record["gateways"]
        ],
        "processing": f"{u_iri}:processing",
        "steps": steps,
        "software": {
            "iri": _software_term(record["adapter"]["version"])[1:-1],
            "name": record["adapter"].get("software"),
            "version": record["adapter"]["version"],
        },
        "deliveries": deliveries,
    }
