"""Provisioning a collectivity: a realm shaped like the shipped ones, created once; a second
call changes nothing, and a realm missing parts is completed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from keycloak import KeycloakAdmin

from adapter.access.admin import REALM_TEMPLATE, ROLES, AdminError, AdminResult, IdentityAdmin, realm_representation


def test_the_representation_keeps_the_shape_of_the_city_s_realm_and_renames_it() -> None:
    realm = realm_representation("metropole", "Métropole")
    city = json.loads(REALM_TEMPLATE.read_text(encoding="utf-8"))

    assert realm["realm"] == "metropole" and realm["displayName"] == "Métropole"
    assert {role["name"] for role in realm["roles"]["realm"]} == set(ROLES)
    assert realm["groups"] == city["groups"]
    assert next(g for g in realm["groups"] if g["name"] == "service-donnees")["realmRoles"] == ["data-admin"]
    assert [s["name"] for s in realm["clientScopes"]] == [s["name"] for s in city["clientScopes"]]
    assert realm["defaultDefaultClientScopes"] == city["defaultDefaultClientScopes"]
    ngsild = next(s for s in realm["clientScopes"] if s["name"] == "ngsild")
    mappers = {m["name"]: m["config"] for m in ngsild["protocolMappers"]}
    assert mappers["organization"]["claim.value"] == "metropole"
    assert mappers["roles"]["claim.name"] == "roles" and mappers["roles"]["multivalued"] == "true"
    assert mappers["audience ngsild-gateway"]["included.client.audience"] == "ngsild-gateway"
    assert "groups" in mappers


def test_the_representation_leaves_out_the_city_s_users_partners_and_federation() -> None:
    realm = realm_representation("metropole", "Métropole")

    assert {"users", "identityProviders", "identityProviderMappers", "authenticationFlows"}.isdisjoint(realm)
    clients = {c["clientId"]: c for c in realm["clients"]}
    assert set(clients) == {"ngsild-gateway", "cli"}  # no partner, no broker: nothing with a secret
    assert clients["ngsild-gateway"]["bearerOnly"] is True
    assert clients["cli"]["publicClient"] is True
    assert clients["cli"]["directAccessGrantsEnabled"] is False  # production: no password grant
    assert "${" not in json.dumps(realm).replace("${profileScopeConsentText}", "").replace(
        "${emailScopeConsentText}", ""
    ).replace("${offlineAccessScopeConsentText}", "")
    assert "ville" not in json.dumps({key: value for key, value in realm.items() if key != "attributes"})


def test_the_password_grant_of_cli_is_for_tests_only() -> None:
    realm = realm_representation("metropole", "Métropole", password_grant=True)

    assert next(c for c in realm["clients"] if c["clientId"] == "cli")["directAccessGrantsEnabled"] is True


@pytest.mark.parametrize(("tenant", "problem"), [("master", "administration realm"), ("Ville Nord", "lower-case")])
def test_a_tenant_that_cannot_be_a_collectivity_s_realm_is_refused(tenant: str, problem: str) -> None:
    with pytest.raises(AdminError, match=problem):
        realm_representation(tenant, "x")


def test_a_template_without_the_ngsild_scope_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "realm.json"
    template.write_text(json.dumps({"realm": "x", "clientScopes": [], "roles": {"realm": []}}))

    with pytest.raises(AdminError, match="no ngsild scope with an organization mapper"):
        realm_representation("metropole", "Métropole", template=template)


@pytest.mark.keycloak
def test_provisioning_a_collectivity_twice_creates_it_once(metropole: tuple[AdminResult, AdminResult]) -> None:
    first, second = metropole

    assert first.action == "created" and first.changed
    assert "realm metropole" in first.created and "client ngsild-gateway" in first.created
    assert second.action == "unchanged" and not second.changed
    assert second.created == ()
    assert "already provisioned" in second.message and "nothing changed" in second.message
    assert {"role data-admin", "group service-donnees", "client scope ngsild", "client ngsild-gateway"} <= set(
        second.existing
    )


@pytest.mark.keycloak
def test_the_provisioned_realm_is_shaped_like_the_shipped_ones(
    metropole: tuple[AdminResult, AdminResult], inspect: Callable[[str], KeycloakAdmin]
) -> None:
    realm = inspect("metropole")

    assert realm.get_realm("metropole")["displayName"] == "Métropole"
    assert set(ROLES) <= {role["name"] for role in realm.get_realm_roles()}
    groups = {group["name"]: group["id"] for group in realm.get_groups()}
    assert [r["name"] for r in realm.get_group_realm_roles(groups["service-donnees"])] == ["data-admin"]
    ngsild = realm.get_client_scope_by_name("ngsild")
    assert ngsild is not None
    organization = next(m for m in realm.get_mappers_from_client_scope(ngsild["id"]) if m["name"] == "organization")
    assert organization["config"]["claim.value"] == "metropole"
    assert "ngsild" in {scope["name"] for scope in realm.get_default_default_client_scopes()}
    gateway_id = realm.get_client_id("ngsild-gateway")
    assert gateway_id is not None
    gateway = realm.get_client(gateway_id)
    assert gateway["bearerOnly"] is True


@pytest.mark.keycloak
def test_a_realm_missing_parts_is_completed_and_nothing_else_changes(
    identity_admin: IdentityAdmin, inspect: Callable[[str], KeycloakAdmin]
) -> None:
    identity_admin.provision_collectivity("admin-partial", "Partial")
    realm = inspect("admin-partial")
    realm.delete_realm_role("researcher")
    realm.delete_group(realm.get_group_by_path("/service-donnees")["id"])
    ngsild = realm.get_client_scope_by_name("ngsild")
    assert ngsild is not None
    groups_mapper = next(m for m in realm.get_mappers_from_client_scope(ngsild["id"]) if m["name"] == "groups")
    realm.delete_mapper_from_client_scope(ngsild["id"], groups_mapper["id"])
    realm.delete_default_default_client_scope(ngsild["id"])
    realm.update_realm("admin-partial", {"displayName": "Renamed by hand"})

    completed = identity_admin.provision_collectivity("admin-partial", "Partial")
    again = identity_admin.provision_collectivity("admin-partial", "Partial")

    assert completed.action == "updated"
    assert set(completed.created) == {
        "role researcher",
        "group service-donnees",
        "role data-admin of group service-donnees",
        "mapper ngsild/groups",
        "default client scope ngsild",
    }
    assert again.action == "unchanged"
    assert realm.get_realm("admin-partial")["displayName"] == "Renamed by hand"  # completed, not reshaped


@pytest.mark.keycloak
def test_a_realm_whose_tokens_speak_for_another_collectivity_is_not_silently_changed(
    identity_admin: IdentityAdmin, inspect: Callable[[str], KeycloakAdmin]
) -> None:
    identity_admin.provision_collectivity("admin-mislabelled", "Mislabelled")
    realm = inspect("admin-mislabelled")
    ngsild = realm.get_client_scope_by_name("ngsild")
    assert ngsild is not None
    mapper = next(m for m in realm.get_mappers_from_client_scope(ngsild["id"]) if m["name"] == "organization")
    mapper["config"]["claim.value"] = "ville"
    realm.update_mapper_in_client_scope(ngsild["id"], mapper["id"], mapper)

    with pytest.raises(AdminError, match="puts organization 'ville' in tokens, not 'admin-mislabelled'"):
        identity_admin.provision_collectivity("admin-mislabelled", "Mislabelled")
