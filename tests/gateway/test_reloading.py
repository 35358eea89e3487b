"""Agreements granted or revoked in the folder take effect without restarting the gateway; a
broken file keeps the agreements in force."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from adapter.access.model import AccessRequest, Action, Principal
from adapter.config import load_config
from adapter.gateway.service import ReloadingPolicies
from tests.support import REPO

SCHOOLS = Principal(
    "https://sso/realms/ville", "svc", "ville", frozenset({"partner-platform"}), client_id="ecole-ventilation"
)
REQUEST = AccessRequest(Action.READ, "region", "AirQualityObserved", purpose="ventilation-control")
AGREEMENT = REPO / "compose" / "policies" / "region-air-quality-to-ville-schools.jsonld"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_grant_revoke_and_a_broken_file(tmp_path: Path) -> None:
    clock = Clock()
    policies = ReloadingPolicies(load_config(None), tmp_path, check_every_s=5, clock=clock)
    now = datetime.now(UTC)
    assert not policies.decide(SCHOOLS, REQUEST, now=now).permitted
    shutil.copy(AGREEMENT, tmp_path / AGREEMENT.name)  # granted
    assert not policies.decide(SCHOOLS, REQUEST, now=now).permitted  # not looked at again yet
    clock.now = 6
    assert policies.decide(SCHOOLS, REQUEST, now=now).permitted
    (tmp_path / "broken.jsonld").write_text("{ not json")
    clock.now = 12
    assert policies.decide(SCHOOLS, REQUEST, now=now).permitted  # the agreements in force stay
    (tmp_path / "broken.jsonld").unlink()
    (tmp_path / AGREEMENT.name).unlink()  # revoked
    clock.now = 18
    assert not policies.decide(SCHOOLS, REQUEST, now=now).permitted
