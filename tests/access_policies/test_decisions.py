"""What each role of the example agreements gets, and what nobody gets: decisions read like the
gateway's questions ("may this token subscribe to the region's air quality?")."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapter.access.model import AccessRequest, Action, Area, Grant
from adapter.access.policies import PolicySet, visible_attributes
from adapter.config import DEFAULT_PERSONAL_ATTRIBUTES as PERSONAL
from tests.access_policies.support import (
    ADMINS,
    BUILDINGS,
    CATALOGUE,
    CONTEXT,
    EXAMPLES,
    NOW,
    OFFICIALS,
    RESEARCH,
    SCHOOLS,
    TENANTS,
    machine,
    person,
    write,
)

POLICIES = PolicySet.load(EXAMPLES, tenants=TENANTS, catalogue=CATALOGUE, personal_attributes=PERSONAL)
AIR = "AirQualityObserved"
INDOOR = "IndoorEnvironmentObserved"


def ask(principal, action: Action, tenant: str, entity_type: str, purpose: str | None = None, policies=POLICIES):
    return policies.decide(principal, AccessRequest(action, tenant, entity_type, purpose), now=NOW)


# --- building managers -----------------------------------------------------------------


def test_a_building_manager_follows_the_city_classrooms_raw() -> None:
    manager = person("ville", "building-manager")
    for action in (Action.READ, Action.QUERY_HISTORY, Action.SUBSCRIBE):
        for entity_type in (INDOOR, "Device"):
            decision = ask(manager, action, "ville", entity_type)
            assert decision.permitted and decision.agreements == (BUILDINGS,)
            (grant,) = decision.grants
            assert grant == Grant(agreement=BUILDINGS, assigner="ville")  # every attribute, raw, no narrowing


def test_a_building_manager_sees_nothing_of_the_region() -> None:
    decision = ask(person("ville", "building-manager"), Action.READ, "region", INDOOR)
    assert not decision.permitted and decision.grants == ()
    assert decision.reason == (
        "no agreement grants read on IndoorEnvironmentObserved of region to organization ville (client portail)"
    )


def test_a_role_belongs_to_its_organization() -> None:
    # "building-manager" in the region's realm is not the city's building manager
    assert not ask(person("region", "building-manager"), Action.READ, "ville", INDOOR).permitted


def test_a_building_manager_gets_no_other_city_data() -> None:
    assert not ask(person("ville", "building-manager"), Action.READ, "ville", "WaterConsumptionObserved").permitted
    assert not ask(person("ville", "building-manager"), Action.SPARQL_QUERY, "ville", INDOOR).permitted


# --- elected officials -------------------------------------------------------------------


def test_an_elected_official_gets_only_daily_averages_of_three_sensors_or_more() -> None:
    official = person("ville", "elected-official")
    for entity_type in (AIR, "WaterConsumptionObserved"):
        decision = ask(official, Action.QUERY_HISTORY, "ville", entity_type)
        assert decision.permitted and decision.agreements == (OFFICIALS,)
        for grant in decision.grants:
            assert grant.aggregation is not None
            a = grant.aggregation
            assert (a.method, a.period, a.min_group_size, a.time_zone) == ("avg", "P1D", 3, "Europe/Paris")
            assert [d.name for d in a.districts] == ["Rennes-ouest", "Rennes-est"] and a.total
    (grant,) = ask(official, Action.QUERY_HISTORY, "ville", "WaterConsumptionObserved").grants
    assert grant.attributes == {"waterConsumption"}  # not where the meters are


def test_an_elected_official_cannot_read_current_values() -> None:
    decision = ask(person("ville", "elected-official"), Action.READ, "ville", AIR)
    assert not decision.permitted
    assert decision.reason.startswith("no agreement grants read on AirQualityObserved of ville")


# --- the school ventilation client of the city ----------------------------------------------


def test_the_school_client_subscribes_to_region_air_quality_for_ventilation_control() -> None:
    school = machine("ville", "ecole-ventilation")
    decision = ask(school, Action.SUBSCRIBE, "region", AIR, purpose="ventilation-control")
    assert decision.permitted and decision.agreements == (SCHOOLS,)
    (grant,) = decision.grants
    assert grant.assigner == "region" and grant.aggregation is None
    assert visible_attributes(grant, CATALOGUE.attributes(AIR)) == {
        "no2",
        "pm25",
        "pm10",
        "o3",
        "temperature",
        "relativeHumidity",
        "location",
        "dateObserved",
    }  # not refDevice, not typeofLocation


def test_the_school_client_must_declare_its_purpose() -> None:
    school = machine("ville", "ecole-ventilation")
    without = ask(school, Action.SUBSCRIBE, "region", AIR)
    assert not without.permitted
    assert without.reason == f"agreement {SCHOOLS} requires purpose ventilation-control (the request declares none)"
    other = ask(school, Action.SUBSCRIBE, "region", AIR, purpose="marketing")
    assert other.reason == f"agreement {SCHOOLS} requires purpose ventilation-control (the request declares another)"


def test_the_school_client_gets_no_history_and_nothing_else() -> None:
    school = machine("ville", "ecole-ventilation")
    assert not ask(school, Action.QUERY_HISTORY, "region", AIR, purpose="ventilation-control").permitted
    assert not ask(school, Action.READ, "region", "WeatherObserved", purpose="ventilation-control").permitted
    assert not ask(school, Action.READ, "ville", AIR, purpose="ventilation-control").permitted


def test_only_that_client_of_the_city_gets_it() -> None:
    assert not ask(person("ville"), Action.SUBSCRIBE, "region", AIR, purpose="ventilation-control").permitted
    # the same client id in another collectivity's realm is another client
    assert not ask(
        machine("metropole", "ecole-ventilation"), Action.SUBSCRIBE, "region", AIR, purpose="ventilation-control"
    ).permitted


# --- researchers -------------------------------------------------------------------------------


def test_a_researcher_of_a_listed_organization_queries_the_region_shared_graph_only() -> None:
    for organization in ("region", "ville", "metropole"):
        dataset = POLICIES.sparql_dataset(person(organization, "researcher"))
        # the research agreement removes personal fields: the personal graph stays closed
        assert dataset.graphs == ("urn:ngsild-adapter:graph:region",)
        assert dataset.agreements == (RESEARCH,)
    assert POLICIES.sparql_dataset(person("eau", "researcher")).graphs == ()
    assert POLICIES.sparql_dataset(person("ville", "building-manager")).graphs == ()


def test_the_city_data_admins_query_both_graphs_of_the_city_and_nothing_else() -> None:
    dataset = POLICIES.sparql_dataset(person("ville", "data-admin"))
    assert dataset.graphs == (
        "urn:ngsild-adapter:graph:ville",
        "urn:ngsild-adapter:graph:ville:access",
        "urn:ngsild-adapter:graph:ville:personal",
    )
    assert POLICIES.sparql_dataset(person("region", "data-admin")).graphs == ()


def test_an_agreement_removing_what_the_shared_graph_holds_opens_nothing() -> None:
    # an operator who keeps refDevice in the shared graph: the store could not honour the removal
    policies = PolicySet.load(
        EXAMPLES, tenants=TENANTS, catalogue=CATALOGUE, personal_attributes=PERSONAL - {"refDevice"}
    )
    dataset = policies.sparql_dataset(person("ville", "researcher"))
    assert dataset.graphs == ()
    (why,) = dataset.refusals
    assert why == (
        f"agreement {RESEARCH} keeps refDevice out of SPARQL answers, but the shared graph of region "
        "holds it: the operator lists it in [provenance] personal_attributes"
    )


def test_a_sparql_permission_with_a_purpose_needs_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        agreement(
            "study",
            "urn:ngsild-adapter:organization:region",
            {},
            "nga:sparqlQuery",
            [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "air-study"}],
        ),
    )
    policies = PolicySet.load(tmp_path, tenants=TENANTS, catalogue=CATALOGUE, personal_attributes=PERSONAL)
    assert policies.sparql_dataset(person("region")).graphs == ()
    assert "requires purpose air-study" in policies.sparql_dataset(person("region")).refusals[0]
    assert policies.sparql_dataset(person("metropole"), purpose="air-study").graphs == ()  # not an assignee
    assert policies.sparql_dataset(person("region"), purpose="air-study").graphs == (
        "urn:ngsild-adapter:graph:region",
        "urn:ngsild-adapter:graph:region:access",
        "urn:ngsild-adapter:graph:region:personal",
    )


def test_who_accessed_what_stays_with_the_collectivity(tmp_path: Path) -> None:
    # another organization trusted with everything still does not see who else read the data
    write(tmp_path, agreement("all", "urn:ngsild-adapter:organization:metropole", {}, "nga:sparqlQuery", []))
    policies = PolicySet.load(tmp_path, tenants=TENANTS, catalogue=CATALOGUE, personal_attributes=PERSONAL)
    assert policies.sparql_dataset(person("metropole")).graphs == (
        "urn:ngsild-adapter:graph:region",
        "urn:ngsild-adapter:graph:region:personal",
    )


def test_a_researcher_gets_coarse_locations_and_no_personal_fields() -> None:
    researcher = person("ville", "researcher")
    (weather,) = ask(researcher, Action.SPARQL_QUERY, "region", "WeatherObserved").grants
    assert weather.agreement == RESEARCH
    assert weather.removed == {"refDevice"} and weather.coarsened == (("location", 2),)
    (device,) = ask(researcher, Action.SPARQL_QUERY, "region", "Device").grants
    assert device.removed == {"name"} and device.coarsened == (("location", 2),)
    assert not ask(researcher, Action.READ, "region", "WeatherObserved").permitted


# --- data administrators -----------------------------------------------------------------------------


def test_a_data_admin_reads_everything_of_the_city_and_nothing_else() -> None:
    admin = person("ville", "data-admin")
    for entity_type in CATALOGUE.types:
        decision = ask(admin, Action.READ, "ville", entity_type)
        assert decision.agreements == (ADMINS,) and decision.grants[0].attributes is None
        assert not ask(admin, Action.READ, "region", entity_type).permitted
    assert not ask(admin, Action.QUERY_HISTORY, "ville", AIR).permitted


# --- nobody else --------------------------------------------------------------------------------------------


def test_a_principal_without_agreement_is_denied_with_a_reason() -> None:
    nobody = machine("eau", "facturation")
    for tenant in sorted(TENANTS):
        for action in Action:
            decision = ask(nobody, action, tenant, AIR)
            assert not decision.permitted and decision.grants == ()
            assert decision.reason == (
                f"no agreement grants {action.value} on AirQualityObserved of {tenant} to organization eau "
                "(client facturation)"
            )


def test_an_organization_does_not_see_its_own_data_without_an_agreement() -> None:
    assert not ask(person("ville"), Action.READ, "ville", AIR).permitted


def test_unknown_collectivities_and_types_are_denied() -> None:
    admin = person("ville", "data-admin")
    assert ask(admin, Action.READ, "departement", AIR).reason == "'departement' is not a collectivity of this gateway"
    assert ask(admin, Action.READ, "ville", "Alert").reason == "no device profile makes entity type 'Alert'"


def test_now_must_carry_a_time_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        POLICIES.decide(person("ville"), AccessRequest(Action.READ, "ville", AIR), now=datetime(2025, 1, 1))


# --- narrowing carried by the grants, and their order ----------------------------------------------------------


def agreement(uid: str, assignee: str, target: dict, action, constraint: list, duty: list | None = None) -> dict:
    rule: dict = {
        "target": {"@type": "AssetCollection", "nga:tenant": "region", **target},
        "action": action,
        "constraint": constraint,
    }
    if duty:
        rule["duty"] = duty
    return {
        "@context": CONTEXT,
        "@type": "Agreement",
        "uid": f"urn:ngsild-adapter:agreement:{uid}",
        "assigner": "urn:ngsild-adapter:organization:region",
        "assignee": assignee,
        "permission": [rule],
    }


def test_grants_are_ordered_raw_first_then_wider(tmp_path: Path) -> None:
    for example in EXAMPLES.glob("*.jsonld"):
        write(tmp_path, example.read_text(encoding="utf-8"), example.name)
    city = "urn:ngsild-adapter:organization:ville"
    aggregated = [
        {"leftOperand": "nga:levelOfDetail", "operator": "eq", "rightOperand": "aggregated"},
        {"leftOperand": "nga:aggregationMethod", "operator": "eq", "rightOperand": "sum"},
        {"leftOperand": "nga:aggregationPeriod", "operator": "eq", "rightOperand": "PT1H"},
        {"leftOperand": "nga:minGroupSize", "operator": "gteq", "rightOperand": 2},
    ]
    write(tmp_path, agreement("a-hourly", city, {"nga:entityType": AIR}, "nga:subscribe", aggregated), "a.jsonld")
    write(
        tmp_path,
        agreement("b-no2", city, {"nga:entityType": AIR, "nga:attribute": "no2"}, "nga:subscribe", []),
        "b.jsonld",
    )
    policies = PolicySet.load(tmp_path, tenants=TENANTS, catalogue=CATALOGUE)
    decision = ask(
        machine("ville", "ecole-ventilation"), Action.SUBSCRIBE, "region", AIR, "ventilation-control", policies=policies
    )
    assert decision.agreements == (
        SCHOOLS,  # raw, 8 attributes
        "urn:ngsild-adapter:agreement:b-no2",  # raw, 1 attribute
        "urn:ngsild-adapter:agreement:a-hourly",  # every attribute, but aggregated
    )


def test_time_window_and_area_travel_in_the_grant(tmp_path: Path) -> None:
    ring = [[4.80, 45.70], [4.90, 45.70], [4.90, 45.80], [4.80, 45.80], [4.80, 45.70]]
    constraint = [
        {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": "2025-01-01T00:00:00Z"},
        {
            "leftOperand": "dateTime",
            "operator": "lteq",
            "rightOperand": {"@value": "2025-12-31T23:59:59+01:00", "@type": "xsd:dateTime"},
        },
        {
            "leftOperand": "nga:area",
            "operator": "eq",
            "rightOperand": {"@type": "@json", "@value": {"type": "Polygon", "coordinates": [ring]}},
        },
    ]
    write(
        tmp_path,
        agreement(
            "window",
            "urn:ngsild-adapter:organization:metropole",
            {"nga:entityType": AIR},
            ["read", "nga:subscribe"],
            constraint,
        ),
    )
    policies = PolicySet.load(tmp_path, tenants=TENANTS, catalogue=CATALOGUE)
    (grant,) = ask(person("metropole"), Action.READ, "region", AIR, policies=policies).grants
    assert grant.not_before == datetime(2025, 1, 1, tzinfo=UTC)
    assert grant.not_after == datetime(2025, 12, 31, 22, 59, 59, tzinfo=UTC)
    assert grant.area == Area(tuple((lon, lat) for lon, lat in ring))

    later = datetime(2026, 3, 1, tzinfo=UTC)
    subscription = policies.decide(person("metropole"), AccessRequest(Action.SUBSCRIBE, "region", AIR), now=later)
    assert not subscription.permitted
    assert subscription.reason == (
        "agreement urn:ngsild-adapter:agreement:window covers observations until 2025-12-31T22:59:59Z only: "
        "a subscription would receive none"
    )
    assert policies.decide(person("metropole"), AccessRequest(Action.READ, "region", AIR), now=later).permitted
