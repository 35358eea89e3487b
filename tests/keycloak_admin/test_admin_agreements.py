"""Granting and revoking sharing agreements: a file is checked as the gateway loads it, its
assignee must exist in Keycloak, then it is copied into (or removed from) the gateway's folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.access.admin import AdminError, AdminResult, IdentityAdmin
from adapter.access.odrl import Catalogue
from adapter.access.policies import PolicySet
from adapter.mapping.profile import load_profiles

pytestmark = pytest.mark.keycloak

REPO = Path(__file__).resolve().parents[2]
SCHOOLS = REPO / "compose" / "policies" / "region-air-quality-to-ville-schools.jsonld"
TENANTS = frozenset({"ville", "region", "eau", "metropole", "lyon"})  # lyon: no realm
CATALOGUE = Catalogue.from_profiles(load_profiles(REPO / "models"))
UID = "urn:ngsild-adapter:agreement:region-air-quality-to-metropole-schools"


def agreement(folder: Path, assignee: str, name: str = "region-air-quality-to-metropole-schools.jsonld") -> Path:
    """The shipped schools agreement, for ``assignee`` (a copy in ``folder``)."""
    document = json.loads(SCHOOLS.read_text(encoding="utf-8"))
    document.update(uid=UID, assignee=assignee)
    path = folder / name
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(where agreements are written, the gateway's agreements folder)."""
    drafts, policies = tmp_path / "drafts", tmp_path / "policies"
    drafts.mkdir()
    policies.mkdir()
    return drafts, policies


def test_an_agreement_for_a_registered_partner_is_granted_then_revoked(
    identity_admin: IdentityAdmin, partner: AdminResult, folders: tuple[Path, Path]
) -> None:
    drafts, policies = folders
    file = agreement(drafts, "urn:ngsild-adapter:client:metropole:ecoles-metropole")

    granted = identity_admin.grant_agreement(file, policies, tenants=TENANTS, catalogue=CATALOGUE)

    assert granted.action == "created"
    assert granted.path == policies / file.name
    assert (policies / file.name).read_bytes() == file.read_bytes()
    assert granted.description[0] == (f"Agreement {UID}: region shares data with client ecoles-metropole of metropole.")
    assert "the gateway applies it within seconds" in granted.message
    loaded = PolicySet.load(policies, tenants=TENANTS, catalogue=CATALOGUE)  # what the gateway will read
    assert [a.uid for a in loaded.agreements] == [UID]

    again = identity_admin.grant_agreement(file, policies, tenants=TENANTS, catalogue=CATALOGUE)
    revoked = identity_admin.revoke_agreement(UID, policies)
    revoked_again = identity_admin.revoke_agreement(UID, policies)

    assert again.action == "unchanged" and "already granted" in again.message
    assert revoked.action == "removed" and "the gateway applies it within seconds" in revoked.message
    assert list(policies.iterdir()) == []
    assert revoked_again.action == "unchanged" and "already revoked?" in revoked_again.message


def test_a_revised_agreement_replaces_the_file_of_the_same_name_and_revokes_by_file_name(
    identity_admin: IdentityAdmin, partner: AdminResult, folders: tuple[Path, Path]
) -> None:
    drafts, policies = folders
    first = agreement(drafts, "urn:ngsild-adapter:client:metropole:ecoles-metropole")
    identity_admin.grant_agreement(first, policies, tenants=TENANTS, catalogue=CATALOGUE)
    revised = agreement(drafts, "urn:ngsild-adapter:role:metropole:building-manager")

    updated = identity_admin.grant_agreement(revised, policies, tenants=TENANTS, catalogue=CATALOGUE)
    revoked = identity_admin.revoke_agreement("region-air-quality-to-metropole-schools", policies)

    assert updated.action == "updated"
    assert revoked.action == "removed" and revoked.subject == f"agreement {UID}"
    assert list(policies.iterdir()) == []


def test_the_same_agreement_under_another_file_name_is_refused(
    identity_admin: IdentityAdmin, partner: AdminResult, folders: tuple[Path, Path]
) -> None:
    drafts, policies = folders
    assignee = "urn:ngsild-adapter:client:metropole:ecoles-metropole"
    identity_admin.grant_agreement(agreement(drafts, assignee), policies, tenants=TENANTS, catalogue=CATALOGUE)

    with pytest.raises(AdminError, match="is already in force as .*revoke it first"):
        identity_admin.grant_agreement(
            agreement(drafts, assignee, name="copy.jsonld"), policies, tenants=TENANTS, catalogue=CATALOGUE
        )


def test_a_bad_agreement_file_is_refused_with_the_policy_error(
    identity_admin: IdentityAdmin, folders: tuple[Path, Path]
) -> None:
    drafts, policies = folders
    file = agreement(drafts, "urn:ngsild-adapter:client:metropole:ecoles-metropole")
    document = json.loads(file.read_text(encoding="utf-8"))
    document["permission"][0]["action"] = ["read", "nga:delete"]
    file.write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(AdminError) as caught:
        identity_admin.grant_agreement(file, policies, tenants=TENANTS, catalogue=CATALOGUE)

    assert str(caught.value) == (
        f"agreement refused: {file}: permission 1: unknown action 'nga:delete' "
        "(known: nga:queryHistory, nga:sparqlQuery, nga:subscribe, odrl:read)"
    )
    assert list(policies.iterdir()) == []


@pytest.mark.parametrize(
    ("assignee", "problem"),
    [
        (
            "urn:ngsild-adapter:client:metropole:unknown-platform",
            "realm metropole has no client unknown-platform: register the partner first",
        ),
        ("urn:ngsild-adapter:role:metropole:mayor", "realm metropole has no role mayor"),
        ("urn:ngsild-adapter:organization:lyon", "Keycloak has no realm lyon: provision it first"),
    ],
)
def test_an_assignee_keycloak_does_not_know_is_refused(
    identity_admin: IdentityAdmin,
    metropole: tuple[AdminResult, AdminResult],
    folders: tuple[Path, Path],
    assignee: str,
    problem: str,
) -> None:
    drafts, policies = folders
    file = agreement(drafts, assignee)

    with pytest.raises(AdminError) as caught:
        identity_admin.grant_agreement(file, policies, tenants=TENANTS, catalogue=CATALOGUE)

    assert str(caught.value).startswith(f"{file}: assignee {assignee}: ")
    assert problem in str(caught.value)
    assert list(policies.iterdir()) == []


def test_a_missing_agreements_folder_is_refused(
    identity_admin: IdentityAdmin, partner: AdminResult, tmp_path: Path
) -> None:
    file = agreement(tmp_path, "urn:ngsild-adapter:client:metropole:ecoles-metropole")

    with pytest.raises(AdminError, match="the agreements folder .* does not exist"):
        identity_admin.grant_agreement(file, tmp_path / "nowhere", tenants=TENANTS, catalogue=CATALOGUE)
