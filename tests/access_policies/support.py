"""What the sharing-agreement tests share: the demo collectivities, the catalogue of the shipped
device profiles, the example agreements, principals, and a valid agreement to spoil."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.access.model import Principal
from adapter.access.policies import Catalogue
from adapter.config import load_config
from adapter.mapping.profile import load_profiles
from tests.support import REPO

EXAMPLES = REPO / "compose" / "policies"
TENANTS = frozenset(load_config(None).collectivities)  # ville, metropole, region, eau
CATALOGUE = Catalogue.from_profiles(load_profiles(REPO / "models"))
NOW = datetime(2025, 6, 2, 8, 30, tzinfo=UTC)

SCHOOLS = "urn:ngsild-adapter:agreement:region-air-quality-to-ville-schools"
BUILDINGS = "urn:ngsild-adapter:agreement:ville-buildings-managers"
OFFICIALS = "urn:ngsild-adapter:agreement:ville-elected-officials"
RESEARCH = "urn:ngsild-adapter:agreement:region-research"
ADMINS = "urn:ngsild-adapter:agreement:ville-data-admins"

CONTEXT = ["http://www.w3.org/ns/odrl.jsonld", {"nga": "https://w3id.org/ngsild-adapter/ns#"}]

#: A valid agreement: ``spoil`` copies it with one mistake.
VALID: dict[str, Any] = {
    "@context": CONTEXT,
    "@type": "Agreement",
    "uid": "urn:ngsild-adapter:agreement:test",
    "assigner": "urn:ngsild-adapter:organization:region",
    "assignee": "urn:ngsild-adapter:organization:ville",
    "permission": [
        {
            "target": {"@type": "AssetCollection", "nga:tenant": "region", "nga:entityType": "AirQualityObserved"},
            "action": "read",
            "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "ventilation-control"}],
        }
    ],
}


def person(organization: str, *roles: str, client: str | None = "portail") -> Principal:
    """A user of ``organization`` with ``roles``, logged in through the ``portail`` web client."""
    return Principal(
        issuer=f"https://sso.example.org/realms/{organization}",
        subject=f"user-of-{organization}",
        organization=organization,
        roles=frozenset(roles),
        client_id=client,
    )


def machine(organization: str, client: str) -> Principal:
    """A partner platform: a client-credentials token of ``client`` in ``organization``."""
    return Principal(
        issuer=f"https://sso.example.org/realms/{organization}",
        subject=f"service-account-{client}",
        organization=organization,
        client_id=client,
    )


def spoil(**changes: Any) -> dict[str, Any]:
    """``VALID`` with top-level keys replaced (a value of None removes the key)."""
    document = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def permission(**changes: Any) -> list[dict[str, Any]]:
    """``VALID``'s permission list, its one permission changed (a value of None removes the key)."""
    rule = copy.deepcopy(VALID["permission"][0])
    for key, value in changes.items():
        if value is None:
            rule.pop(key, None)
        else:
            rule[key] = value
    return [rule]


def write(folder: Path, document: dict[str, Any] | str, name: str = "agreement.jsonld") -> Path:
    path = folder / name
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=2), encoding="utf-8")
    return path
