"""The identity administrators' commands, as the README walks through them, against the real
Keycloak: idempotent, secrets shown once, agreements checked before they reach the gateway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapter.cli import main
from adapter.demo.keycloak import KeycloakServer
from tests.support import REPO

pytestmark = pytest.mark.keycloak


def test_provision_register_add_grant_revoke(keycloak: KeycloakServer, tmp_path: Path) -> None:
    runner = CliRunner(
        env={
            "NGSILD_ADAPTER_KEYCLOAK_URL": keycloak.url,
            "NGSILD_ADAPTER_KEYCLOAK_ADMIN": keycloak.admin_username,
            "NGSILD_ADAPTER_KEYCLOAK_ADMIN_PASSWORD": keycloak.admin_password,
        }
    )
    first = runner.invoke(main, ["admin", "provision", "syndicat", "--name", "Syndicat d'énergie"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(main, ["admin", "provision", "syndicat", "--name", "Syndicat d'énergie"])
    assert again.exit_code == 0 and ("unchanged" in again.output.lower() or "nothing" in again.output.lower())
    partner = runner.invoke(main, ["admin", "partner", "ville", "plateforme-meteo"])
    assert partner.exit_code == 0 and "client secret" in partner.output
    twice = runner.invoke(main, ["admin", "partner", "ville", "plateforme-meteo"])
    assert twice.exit_code == 0 and "client secret" not in twice.output  # never shown again
    user = runner.invoke(
        main, ["admin", "user", "ville", "m.durand", "--role", "elected-official", "--email", "m.durand@ville.example"]
    )
    assert user.exit_code == 0, user.output

    policies = tmp_path / "policies"
    policies.mkdir()
    agreement = json.loads((REPO / "compose" / "policies" / "region-air-quality-to-ville-schools.jsonld").read_text())
    agreement["uid"] = "urn:ngsild-adapter:agreement:region-air-quality-to-plateforme-meteo"
    text = json.dumps(agreement).replace("client:ville:ecole-ventilation", "client:ville:plateforme-meteo")
    source = tmp_path / "meteo.jsonld"
    source.write_text(text)
    config = tmp_path / "adapter.toml"
    config.write_text(
        f'[adapter]\nmodels = "{REPO / "models"}"\nstate_dir = "{tmp_path / "state"}"\n'
        + "".join(f'[[collectivity]]\ntenant = "{t}"\nname = "{t}"\n' for t in ("ville", "region", "eau", "metropole"))
        + f'[gateway]\npolicies = "{policies}"\n'
    )
    granted = runner.invoke(main, ["admin", "grant", "--config", str(config), str(source)])
    assert granted.exit_code == 0, granted.output
    assert (policies / "meteo.jsonld").is_file()
    unknown = json.loads(text.replace("plateforme-meteo", "nobody-registered"))
    unknown["uid"] = "urn:ngsild-adapter:agreement:unknown-client"
    (tmp_path / "unknown.jsonld").write_text(json.dumps(unknown))
    refused = runner.invoke(main, ["admin", "grant", "--config", str(config), str(tmp_path / "unknown.jsonld")])
    assert refused.exit_code != 0 and "nobody-registered" in refused.output
    revoked = runner.invoke(main, ["admin", "revoke", "--config", str(config), agreement["uid"]])
    assert revoked.exit_code == 0 and not (policies / "meteo.jsonld").exists()
