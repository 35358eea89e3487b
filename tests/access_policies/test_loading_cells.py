"""The cell definition of an aggregated permission (``docs/sharing-agreements.md``, "Published
cells"): every term parses into the ``Aggregation``, and every mistake is refused at load with
a message saying what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapter.access import odrl
from adapter.access.cells import District
from adapter.access.model import Area
from adapter.access.policies import PolicyError, PolicySet, check_file
from tests.access_policies.support import CATALOGUE, TENANTS, permission, spoil, write

RING = [[4.80, 45.70], [4.85, 45.70], [4.85, 45.80], [4.80, 45.80], [4.80, 45.70]]
OTHER = [[4.85, 45.70], [4.90, 45.70], [4.90, 45.80], [4.85, 45.80], [4.85, 45.70]]


def feature(name: Any, ring: Any = RING, kind: str = "Polygon") -> dict[str, Any]:
    return {"type": "Feature", "properties": {"name": name}, "geometry": {"type": kind, "coordinates": [ring]}}


def districts(*features: dict[str, Any]) -> dict[str, Any]:
    return {
        "leftOperand": "nga:aggregationDistricts",
        "operator": "eq",
        "rightOperand": {"@type": "@json", "@value": {"type": "FeatureCollection", "features": list(features)}},
    }


def term(left: str, right: Any, operator: str = "eq") -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


BASE = [
    term("nga:levelOfDetail", "aggregated"),
    term("nga:aggregationMethod", "avg"),
    term("nga:aggregationPeriod", "P1D"),
    term("nga:minGroupSize", 3, "gteq"),
]
NOISE = [
    term("nga:noiseEpsilon", 0.5),
    term("nga:sensorContribution", 0, "gteq"),
    term("nga:sensorContribution", 200, "lteq"),
]


def document(*constraints: dict[str, Any], base: list[dict[str, Any]] = BASE) -> dict[str, Any]:
    return spoil(permission=permission(action="nga:queryHistory", constraint=[*base, *constraints]))


def loaded(tmp_path: Path, *constraints: dict[str, Any]) -> Any:
    write(tmp_path, document(*constraints))
    (agreement,) = PolicySet.load(tmp_path, tenants=TENANTS, catalogue=CATALOGUE).agreements
    return agreement.permissions[0].aggregation


def refusal(tmp_path: Path, *constraints: dict[str, Any], base: list[dict[str, Any]] = BASE) -> str:
    write(tmp_path, document(*constraints, base=base))
    with pytest.raises(PolicyError) as raised:
        PolicySet.load(tmp_path, tenants=TENANTS, catalogue=CATALOGUE)
    return raised.value.what


@pytest.fixture
def with_opendp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading does not need OpenDP itself, only to know it is there."""
    monkeypatch.setattr(odrl, "noise_available", lambda: True)


def test_the_defaults_one_group_utc_dominance_2_80_percent(tmp_path: Path) -> None:
    a = loaded(tmp_path)
    assert (a.method, a.period, a.min_group_size, a.districts) == ("avg", "P1D", 3, ())
    assert (a.time_zone, a.total) == ("UTC", False)
    assert (a.dominance_top, a.dominance_share, a.noise_epsilon, a.area) == (2, 0.8, None, None)


def test_every_cell_term_parses_into_the_definition(tmp_path: Path, with_opendp: None) -> None:
    area = term("nga:area", {"@type": "@json", "@value": {"type": "Polygon", "coordinates": [RING]}})
    a = loaded(
        tmp_path,
        districts(feature("Presqu'île"), feature("Est", OTHER)),
        term("nga:aggregationTotal", True),
        term("nga:aggregationTimeZone", "Europe/Paris"),
        term("nga:dominanceSensors", 1),
        term("nga:dominanceShare", 0.6, "lteq"),
        *NOISE,
        term("nga:privacyBudget", 20, "lteq"),
        area,
    )
    ring = tuple((float(x), float(y)) for x, y in RING)
    other = tuple((float(x), float(y)) for x, y in OTHER)
    assert a.districts == (District("Presqu'île", ring), District("Est", other))
    assert (a.total, a.time_zone, a.dominance_top, a.dominance_share) == (True, "Europe/Paris", 1, 0.6)
    assert (a.noise_epsilon, a.contribution_bounds, a.privacy_budget) == (0.5, (0.0, 200.0), 20.0)
    assert a.area == Area(ring)  # the permission's area restricts the cells' sensors too


def test_the_definition_in_plain_words(tmp_path: Path, with_opendp: None) -> None:
    path = write(
        tmp_path,
        document(
            districts(feature("Nord"), feature("Sud", OTHER)),
            term("nga:aggregationTotal", True),
            term("nga:dominanceSensors", 1),
            *NOISE,
            term("nga:privacyBudget", 10, "lteq"),
        ),
    )
    assert check_file(path, TENANTS, CATALOGUE)[2:] == [
        "Only aggregates, as published cells: the avg of each district (Nord and Sud) and their total, per calendar "
        "day (P1D, UTC).",
        "A cell is published only once its period is over, when at least 3 sensors contributed and the largest "
        "contribution makes at most 80% of it; otherwise it is suppressed, as is any cell the total would reveal.",
        "Sensors outside every district are in no cell.",
        "Published values carry Laplace noise (epsilon 0.5 per cell, each sensor's contribution clamped to [0, 200]); "
        "a reader may spend at most epsilon 10.",
    ]


@pytest.mark.parametrize(
    ("period", "accepted"),
    [("PT1H", True), ("P1W", True), ("P1M", True), ("PT15M", False), ("P2D", False), ("PT24H", False), ("P1Y", False)],
)
def test_only_calendar_periods_are_cells(tmp_path: Path, period: str, accepted: bool) -> None:
    base = [*BASE[:2], term("nga:aggregationPeriod", period), BASE[3]]
    if accepted:
        write(tmp_path, document(base=base))
        PolicySet.load(tmp_path, tenants=TENANTS, catalogue=CATALOGUE)
        return
    assert refusal(tmp_path, base=base) == (
        f"permission 1: constraint 3: nga:aggregationPeriod is one of PT1H (clock hours), P1D (calendar days), "
        f"P1W (ISO weeks, from Monday), P1M (calendar months), not '{period}': cells are calendar periods, aligned "
        "and never overlapping"
    )


@pytest.mark.parametrize("method", ["min", "max"])
def test_min_and_max_are_refused_they_publish_one_sensors_reading(tmp_path: Path, method: str) -> None:
    base = [BASE[0], term("nga:aggregationMethod", method), *BASE[2:]]
    assert refusal(tmp_path, base=base).startswith(
        f"permission 1: constraint 2: nga:aggregationMethod {method} is refused: the {method} of a cell is one "
        "sensor's exact reading"
    )


def test_an_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, term("nga:aggregationTimeZone", "Europe/Lutece")) == (
        "permission 1: constraint 5: nga:aggregationTimeZone: unknown time zone 'Europe/Lutece' (an IANA name such "
        "as Europe/Paris or UTC, known to this machine's zone database)"
    )
    assert "IANA time zone name" in refusal(tmp_path, term("nga:aggregationTimeZone", 2))


@pytest.mark.parametrize(
    ("features", "what"),
    [
        (
            [feature("Nord", RING[:-1])],
            "feature 1 (Nord): the ring must be closed, of at least 4 [longitude, latitude] positions in range",
        ),
        ([feature("Nord", [[4.8, 45.7], [4.9, 45.7], [4.8, 45.7]])], "feature 1 (Nord): the ring must be closed"),
        ([feature("Nord", [[400, 45.7], [4.9, 45.7], [4.9, 45.8], [400, 45.7]])], "feature 1 (Nord): the ring must be"),
        ([feature("Nord"), feature("Nord", OTHER)], "feature 2: the district name 'Nord' is given twice"),
        ([feature("total")], "feature 1: 'total' is the name of a group of its own (all, total): name the district"),
        ([feature("")], "feature 1 must be a GeoJSON Feature with a non-empty properties.name"),
        ([feature("N" * 101)], "feature 1: a district name is at most 100 printable characters"),
        ([feature("Nord\nSud")], "feature 1: a district name is at most 100 printable characters"),
        ([{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [RING]}}], "feature 1 must be a GeoJSON"),
        (
            [feature("Nord", [RING], "MultiPolygon")],
            "feature 1 (Nord): the geometry must be a GeoJSON Polygon with one "
            "ring (holes and MultiPolygons are not supported)",
        ),
        ([], "needs a GeoJSON FeatureCollection as a JSON literal"),
    ],
)
def test_wrong_districts_are_refused(tmp_path: Path, features: list[dict[str, Any]], what: str) -> None:
    assert refusal(tmp_path, districts(*features)).startswith(
        f"permission 1: constraint 5: nga:aggregationDistricts{'' if what.startswith('needs') else ':'} {what}"
    )


def test_districts_must_be_a_json_literal_and_at_most_a_hundred(tmp_path: Path) -> None:
    plain = term("nga:aggregationDistricts", "Nord")
    assert refusal(tmp_path, plain).startswith(
        "permission 1: constraint 5: nga:aggregationDistricts needs a GeoJSON FeatureCollection as a JSON literal"
    )
    many = districts(*(feature(f"d{i}") for i in range(101)))
    assert refusal(tmp_path, many) == (
        "permission 1: constraint 5: nga:aggregationDistricts names 101 districts: at most 100"
    )


@pytest.mark.parametrize(
    ("constraint", "what"),
    [
        (
            term("nga:dominanceShare", 0, "lteq"),
            "nga:dominanceShare is the share k of the (n, k) dominance rule: above 0 "
            "and at most 1 (1 turns the rule off), not 0",
        ),
        (term("nga:dominanceShare", 1.5, "lteq"), "nga:dominanceShare is the share k"),
        (term("nga:dominanceShare", "most", "lteq"), "nga:dominanceShare is a share above 0 and at most 1"),
        (
            term("nga:dominanceSensors", 0),
            "nga:dominanceSensors is the number n of the (n, k) dominance rule: a whole number from 1 to 10",
        ),
        (term("nga:dominanceSensors", 1.5), "nga:dominanceSensors is the number n"),
        (term("nga:aggregationTotal", "yes"), "nga:aggregationTotal is true or false, not 'yes'"),
        (term("nga:noiseEpsilon", -1), "nga:noiseEpsilon is a positive number (epsilon per cell), not -1"),
        (term("nga:privacyBudget", 0, "lteq"), "nga:privacyBudget is a positive number"),
    ],
)
def test_terms_out_of_range_are_refused(tmp_path: Path, constraint: dict[str, Any], what: str) -> None:
    assert refusal(tmp_path, constraint).startswith(f"permission 1: constraint 5: {what}")


def test_dominance_share_is_an_upper_bound(tmp_path: Path) -> None:
    assert refusal(tmp_path, term("nga:dominanceShare", 0.8)) == (
        "permission 1: constraint 5: operator 'odrl:eq' is not allowed with nga:dominanceShare (allowed: lteq)"
    )


def test_terms_that_do_not_fit_together_are_refused(tmp_path: Path, with_opendp: None) -> None:
    assert refusal(tmp_path, term("nga:aggregationTotal", True)) == (
        "permission 1: nga:aggregationTotal needs nga:aggregationDistricts: without districts the one cell of all "
        "sensors is already the total"
    )
    assert refusal(tmp_path, term("nga:noiseEpsilon", 0.5)) == (
        "permission 1: noise needs nga:noiseEpsilon and both bounds of nga:sensorContribution (gteq and lteq); "
        "missing: nga:sensorContribution gteq, nga:sensorContribution lteq"
    )
    assert refusal(tmp_path, term("nga:privacyBudget", 3, "lteq")).startswith(
        "permission 1: noise needs nga:noiseEpsilon and both bounds"
    )
    reversed_bounds = [NOISE[0], term("nga:sensorContribution", 10, "gteq"), term("nga:sensorContribution", 5, "lteq")]
    assert refusal(tmp_path, *reversed_bounds) == (
        "permission 1: nga:sensorContribution: the lower bound (10) must be below the upper one (5)"
    )
    assert refusal(
        tmp_path,
        *NOISE,
        districts(feature("a"), feature("b", OTHER)),
        term("nga:aggregationTotal", True),
        term("nga:privacyBudget", 0.6, "lteq"),
    ) == (
        "permission 1: nga:privacyBudget 0.6 is less than what one period of one attribute costs (epsilon 1): "
        "nothing could ever be read"
    )


def test_noise_without_opendp_is_refused_naming_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(odrl, "noise_available", lambda: False)
    assert refusal(tmp_path, *NOISE) == (
        "permission 1: nga:noiseEpsilon needs OpenDP, which is not installed here (pip install opendp==0.16.0)"
    )


def test_cell_terms_need_the_aggregated_level(tmp_path: Path) -> None:
    raw = [term("nga:levelOfDetail", "raw")]
    assert refusal(tmp_path, term("nga:aggregationTimeZone", "UTC"), districts(feature("a")), base=raw) == (
        "permission 1: nga:aggregationDistricts, nga:aggregationTimeZone need nga:levelOfDetail eq aggregated"
    )
    assert refusal(tmp_path, term("nga:dominanceSensors", 1), base=[]) == (
        "permission 1: nga:dominanceSensors needs nga:levelOfDetail eq aggregated"
    )
