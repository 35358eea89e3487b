"""``describe`` and ``check_file`` say in plain words what an agreement grants: what
``ngsild-adapter policy check FILE`` prints for the person who signs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.access.policies import PolicyError, PolicySet, check_file
from tests.access_policies.support import (
    ADMINS,
    BUILDINGS,
    CATALOGUE,
    CONTEXT,
    EXAMPLES,
    OFFICIALS,
    RESEARCH,
    SCHOOLS,
    TENANTS,
    write,
)

POLICIES = PolicySet.load(EXAMPLES, tenants=TENANTS, catalogue=CATALOGUE)


def test_the_school_agreement_in_plain_words() -> None:
    assert POLICIES.describe(SCHOOLS) == [
        f"Agreement {SCHOOLS}: region shares data with client ecole-ventilation of ville.",
        "Client ecole-ventilation of ville may read and subscribe to region's AirQualityObserved, only the "
        "attributes dateObserved, location, no2, o3, pm10, pm25, relativeHumidity and temperature.",
        "Only for the purpose ventilation-control.",
        "Raw values.",
    ]


def test_the_other_examples_in_plain_words() -> None:
    assert POLICIES.describe(BUILDINGS)[1:] == [
        "Role building-manager of ville may read, query the history of and subscribe to ville's Device and "
        "IndoorEnvironmentObserved.",
        "Raw values.",
    ]
    assert POLICIES.describe(OFFICIALS)[1:] == [
        "Role elected-official of ville may query the history of ville's AirQualityObserved and "
        "WaterConsumptionObserved, only the attributes no2, o3, pm10, pm25, relativeHumidity, temperature and "
        "waterConsumption.",
        "Only aggregates, as published cells: the avg of each district (Rennes-ouest and Rennes-est) and their "
        "total, per calendar day (P1D, Europe/Paris).",
        "A cell is published only once its period is over, when at least 3 sensors contributed and the 2 largest "
        "contributions make at most 80% of it; otherwise it is suppressed, as is any cell the total would reveal.",
        "Sensors outside every district are in no cell.",
    ]
    assert POLICIES.describe(RESEARCH) == [
        f"Agreement {RESEARCH}: region shares data with role researcher of region, role researcher of ville and "
        "role researcher of metropole.",
        "Role researcher of region, role researcher of ville and role researcher of metropole may query over SPARQL "
        "all of region's data.",
        "Raw values.",
        "Attributes name and refDevice are removed.",
        "Attribute location is coarsened to 2 decimals.",
    ]
    assert POLICIES.describe(ADMINS)[1:] == [
        "Permission 1: Role data-admin of ville may read all of ville's data.",
        "Raw values.",
        "Permission 2: Role data-admin of ville may query over SPARQL all of ville's data.",
        "Raw values.",
    ]


def test_check_file_describes_a_good_file_and_refuses_a_bad_one(tmp_path: Path) -> None:
    example = EXAMPLES / "region-air-quality-to-ville-schools.jsonld"
    assert check_file(example, TENANTS, CATALOGUE) == POLICIES.describe(SCHOOLS)
    bad = write(tmp_path, example.read_text(encoding="utf-8").replace('"read"', '"readd"'))
    with pytest.raises(PolicyError, match="permission 1: unknown action 'readd'"):
        check_file(bad, TENANTS, CATALOGUE)


def test_several_permissions_and_every_condition_are_spelled_out(tmp_path: Path) -> None:
    ring = [[4.8, 45.7], [4.9, 45.7], [4.9, 45.8], [4.8, 45.7]]
    document = {
        "@context": CONTEXT,
        "@type": "Agreement",
        "uid": "urn:ngsild-adapter:agreement:eau-study",
        "assigner": "urn:ngsild-adapter:organization:eau",
        "assignee": ["urn:ngsild-adapter:organization:metropole", "urn:ngsild-adapter:client:region:observatoire"],
        "permission": [
            {
                "target": {"nga:entityType": "WaterConsumptionObserved"},
                "action": ["nga:queryHistory"],
                "constraint": [
                    {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["leak-detection", "planning"]},
                    {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": "2025-01-01T00:00:00Z"},
                    {
                        "leftOperand": "nga:area",
                        "operator": "eq",
                        "rightOperand": {"@type": "@json", "@value": {"type": "Polygon", "coordinates": [ring]}},
                    },
                ],
                "duty": [
                    {"action": "nga:removeAttribute", "nga:attribute": "refDevice"},
                    {"action": "nga:coarsenAttribute", "nga:attribute": "location", "nga:decimals": 1},
                ],
            },
            {
                "target": {"nga:tenant": "eau", "nga:entityType": "Device", "nga:attribute": "batteryLevel"},
                "action": "read",
                "constraint": [{"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2026-01-01T00:00:00Z"}],
            },
        ],
    }
    assert check_file(write(tmp_path, document), TENANTS, CATALOGUE) == [
        "Agreement urn:ngsild-adapter:agreement:eau-study: eau shares data with organization metropole and client "
        "observatoire of region.",
        "Permission 1: Organization metropole and client observatoire of region may query the history of eau's "
        "WaterConsumptionObserved.",
        "Only for one of the purposes leak-detection or planning.",
        "Raw values.",
        "Only observations from 2025-01-01T00:00:00Z on.",
        "Only observations located inside the agreement's polygon (3 corners).",
        "Attribute refDevice is removed.",
        "Attribute location is coarsened to 1 decimal.",
        "Permission 2: Organization metropole and client observatoire of region may read eau's Device, only the "
        "attributes batteryLevel.",
        "Raw values.",
        "Only observations until 2026-01-01T00:00:00Z.",
    ]


def test_describing_an_unknown_agreement_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        POLICIES.describe("urn:ngsild-adapter:agreement:none")
