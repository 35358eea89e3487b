"""The access log stores only validated values: a tenant from the configured set (else
NO_TENANT), every other string as bounded plain text; nothing a request carries can make a
record fail to be written or the access graph fail to be built (adapter.access.log)."""

from __future__ import annotations

import json

import pyoxigraph
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.access.graph import access_nquads
from adapter.access.log import LIMITS, NO_TENANT, AccessLog, plain_text
from adapter.access.model import AccessRequest, Action, Principal

TENANTS = ("ville", "region")
PARTNER = Principal("https://kc/realms/region", "0b9c-41", "region", client_id="ventilation", username="alice")


def _read(
    tenant: str, *, subject: str = PARTNER.subject, username: str | None = None
) -> tuple[Principal, AccessRequest]:
    who = Principal(PARTNER.issuer, subject, "region", username=username)
    return who, AccessRequest(Action.READ, tenant, "AirQualityObserved")


@pytest.mark.parametrize(
    "tenant", ["Ville", "ville ", " ville", "vil\u200ble", "ville\x00", "urn:x", "x> <y", "", "metropole", "v" * 10_000]
)
def test_a_tenant_that_is_not_configured_is_recorded_as_no_tenant(tenant: str) -> None:
    log = AccessLog(":memory:", tenants=TENANTS)
    log.record(*_read(tenant), outcome="refused", reason="unknown tenant", path="/ngsi-ld/v1/entities")
    (record,) = log.after(0)
    assert record.tenant == NO_TENANT
    assert log.records("ville") == [] and log.records(tenant) == []
    assert access_nquads([record]) == ""  # no collectivity owns it: it reaches no access graph


def test_a_configured_tenant_is_recorded_as_it_is() -> None:
    log = AccessLog(":memory:", tenants=TENANTS)
    log.record(*_read("ville"), outcome="permitted", reason="", path="/ngsi-ld/v1/entities", entities=["urn:a"])
    (record,) = log.records("ville")
    assert (record.tenant, record.entities) == ("ville", ("urn:a",))
    assert AccessLog.as_prov([record])["@graph"][0]["@id"] == f"urn:ngsild-adapter:ville:access:{record.id}"


def test_without_the_configured_set_only_the_tenant_grammar_is_recorded() -> None:
    log = AccessLog(":memory:")
    for tenant in ("ville", "Ville", "a b", "x>"):
        log.record(*_read(tenant), outcome="refused", reason="", path="/")
    assert [r.tenant for r in log.after(0)] == ["ville", NO_TENANT, NO_TENANT, NO_TENANT]


def test_long_values_are_cut_to_their_limit_with_a_marker() -> None:
    log = AccessLog(":memory:", tenants=TENANTS)
    log.record(
        *_read("ville", subject="s" * 100_000, username="u" * 5000),
        outcome="refused",
        reason="r" * 1_000_000,
        path="/p" * 50_000,
        agreement="urn:a" * 10_000,
        entities=["urn:e" * 1000] * 20_000,
    )
    (record,) = log.after(0)
    assert len(record.reason) == LIMITS["reason"] and record.reason.endswith("…")
    assert len(record.path) == LIMITS["path"] and len(record.subject) == LIMITS["subject"]
    assert record.username is not None and len(record.username) == LIMITS["username"]
    assert record.agreement is not None and len(record.agreement) == LIMITS["agreement"]
    assert len(record.entities) == 10_000 and all(len(e) == LIMITS["entity"] for e in record.entities)


def test_control_format_and_surrogate_characters_are_stored_as_plain_text() -> None:
    log = AccessLog(":memory:", tenants=TENANTS)
    log.record(
        *_read("ville", subject="a\udc80b", username="bob\u202eevil"),
        outcome="refused",
        reason="line one\nline two\r\x1b[31m",
        path="/ngsi-ld/v1/entities?q=a\u2028b",
    )
    (record,) = log.after(0)
    assert record.subject == "a\ufffdb" and record.username == "bob\ufffdevil"
    assert record.reason == "line one\ufffdline two\ufffd\ufffd[31m"
    assert record.path == "/ngsi-ld/v1/entities?q=a\ufffdb"
    assert plain_text("Métropole — données", 100) == "Métropole — données"  # ordinary text is kept as it is


def test_optional_fields_stay_absent() -> None:
    log = AccessLog(":memory:", tenants=TENANTS)
    log.record(
        Principal("https://kc/realms/ville", "sub", "ville"),
        AccessRequest(Action.READ, "ville", "T"),
        outcome="permitted",
        reason="",
        path="/",
    )
    (record,) = log.after(0)
    assert (record.username, record.client_id, record.agreement) == (None, None, None)


_ANY = st.text(max_size=300)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(
    tenant=_ANY,
    entity_type=_ANY,
    issuer=_ANY,
    subject=_ANY,
    organization=_ANY,
    username=st.none() | _ANY,
    client_id=st.none() | _ANY,
    reason=_ANY,
    path=_ANY,
    agreement=st.none() | _ANY,
    entities=st.lists(_ANY, max_size=5),
)
def test_any_request_values_are_recorded_bounded_and_printable(
    tenant: str,
    entity_type: str,
    issuer: str,
    subject: str,
    organization: str,
    username: str | None,
    client_id: str | None,
    reason: str,
    path: str,
    agreement: str | None,
    entities: list[str],
) -> None:
    log = AccessLog(":memory:", tenants=TENANTS)
    principal = Principal(issuer, subject, organization, client_id=client_id, username=username)
    log.record(
        principal,
        AccessRequest(Action.SUBSCRIBE, tenant, entity_type),
        outcome="refused",
        reason=reason,
        path=path,
        agreement=agreement,
        entities=entities,
    )
    (record,) = log.after(0)
    assert record.tenant in (*TENANTS, NO_TENANT)
    stored = {
        "entity_type": record.entity_type,
        "issuer": record.issuer,
        "subject": record.subject,
        "organization": record.organization,
        "username": record.username,
        "client_id": record.client_id,
        "reason": record.reason,
        "path": record.path,
        "agreement": record.agreement,
    }
    for name, value in stored.items():
        if value is not None:
            assert len(value) <= LIMITS[name] and value.isprintable(), name
    assert all(len(e) <= LIMITS["entity"] and e.isprintable() for e in record.entities)
    json.dumps(AccessLog.as_prov([record]), ensure_ascii=False).encode("utf-8")  # as_prov still serialises


def test_the_access_graph_of_a_recorded_tenant_parses() -> None:
    log = AccessLog(":memory:", tenants=TENANTS)
    log.record(
        *_read("ville", username='eve" .\n<x> <y> <z>'),
        outcome="permitted",
        reason='a"b\\c\n',
        path="/ngsi-ld/v1/entities?q=no2>40",
        entities=["urn:ngsi-ld:AirQualityObserved:1"],
    )
    store = pyoxigraph.Store()
    store.load(access_nquads(log.after(0)).encode("utf-8"), pyoxigraph.RdfFormat.N_QUADS)
    assert len(store) > 0


@pytest.mark.parametrize("space", ["\xa0", "\u2007", "\u3000", "\u202f"])
def test_spaces_other_than_the_ascii_one_are_stored_as_a_plain_space(space: str) -> None:
    """A no-break or ideographic space in a path would make two different requests look alike
    in the log (and is not printable text): it is kept as U+0020."""
    assert plain_text(f"/ngsi-ld/v1/entities{space}x", 100) == "/ngsi-ld/v1/entities x"
