"""Agreement files are read offline, in their expanded JSON-LD form, and any mistake refuses the
file (and the whole folder) with a message naming the file and the exact problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapter.access.model import Action, Aggregation
from adapter.access.odrl import parse_agreement
from adapter.access.policies import PolicyError, PolicySet
from adapter.exceptions import ConfigError
from adapter.ngsild.contexts import context_files, load_context
from tests.access_policies.support import (
    ADMINS,
    BUILDINGS,
    CATALOGUE,
    EXAMPLES,
    OFFICIALS,
    RESEARCH,
    SCHOOLS,
    TENANTS,
    VALID,
    permission,
    spoil,
    write,
)


def load(path: Path) -> PolicySet:
    return PolicySet.load(path, tenants=TENANTS, catalogue=CATALOGUE)


def refusal(tmp_path: Path, document: dict | str) -> str:
    """The ``what`` of the PolicyError loading this one document gives (checking it names the file)."""
    path = write(tmp_path, document)
    with pytest.raises(PolicyError) as raised:
        load(tmp_path)
    assert raised.value.file == str(path)
    assert str(raised.value) == f"{path}: {raised.value.what}"
    return raised.value.what


# --- the examples -----------------------------------------------------------------------


def test_every_example_agreement_loads() -> None:
    policies = load(EXAMPLES)
    assert {a.uid for a in policies.agreements} == {SCHOOLS, BUILDINGS, OFFICIALS, RESEARCH, ADMINS}
    assert len(policies.agreements) == len(list(EXAMPLES.glob("*.jsonld")))


def test_the_examples_read_as_intended() -> None:
    policies = load(EXAMPLES)
    schools = policies.agreement(SCHOOLS)
    assert schools.assigner == "region"
    assert [str(p) for p in schools.assignees] == ["client ecole-ventilation of ville"]
    (rule,) = schools.permissions
    assert rule.actions == {Action.READ, Action.SUBSCRIBE}
    assert rule.purposes == {"ventilation-control"}
    assert rule.attributes == {
        "no2",
        "pm25",
        "pm10",
        "o3",
        "temperature",
        "relativeHumidity",
        "location",
        "dateObserved",
    }
    (officials,) = policies.agreement(OFFICIALS).permissions
    assert officials.aggregation is not None
    assert officials.aggregation == Aggregation(
        "avg",
        "P1D",
        3,
        districts=officials.aggregation.districts,
        time_zone="Europe/Paris",
        dominance_top=2,
        dominance_share=0.8,
        total=True,
    )
    assert [d.name for d in officials.aggregation.districts] == ["Rennes-ouest", "Rennes-est"]
    (research,) = policies.agreement(RESEARCH).permissions
    assert (
        research.every_type and research.removed == {"refDevice", "name"} and research.coarsened == (("location", 2),)
    )
    assert [str(p) for p in policies.agreement(RESEARCH).assignees] == [
        "role researcher of region",
        "role researcher of ville",
        "role researcher of metropole",
    ]


def test_the_examples_name_only_attributes_the_profiles_make() -> None:
    # the school list, attribute by attribute, against the AirQualityObserved profile
    assert {"no2", "pm25", "pm10", "o3", "temperature", "relativeHumidity", "location", "dateObserved"} <= (
        CATALOGUE.attributes("AirQualityObserved")
    )
    assert "Device" in CATALOGUE and {"batteryLevel", "deviceState", "rssi"} <= CATALOGUE.attributes("Device")


def test_the_odrl_context_is_a_local_copy() -> None:
    assert context_files()["http://www.w3.org/ns/odrl.jsonld"].name == "odrl.jsonld"
    terms = load_context("http://www.w3.org/ns/odrl.jsonld")["@context"]
    assert terms["odrl"] == "http://www.w3.org/ns/odrl/2/"
    assert terms["leftOperand"] == {"@type": "@vocab", "@id": "odrl:leftOperand"}


def test_every_compact_spelling_the_contexts_allow_means_the_same(tmp_path: Path) -> None:
    """Full IRIs, prefixed names and terms of one's own inline context are all the same agreement."""
    odrl, nga = "http://www.w3.org/ns/odrl/2/", "https://w3id.org/ngsild-adapter/ns#"
    expanded = {
        "@context": [],
        "@id": VALID["uid"],
        "@type": odrl + "Agreement",
        odrl + "assigner": {"@id": "urn:ngsild-adapter:organization:region"},
        odrl + "assignee": {"@id": "urn:ngsild-adapter:organization:ville"},
        odrl + "permission": {
            odrl + "target": {
                "@type": odrl + "AssetCollection",
                nga + "tenant": "region",
                nga + "entityType": "AirQualityObserved",
            },
            odrl + "action": {"@id": odrl + "read"},
            odrl + "constraint": {
                odrl + "leftOperand": {"@id": odrl + "purpose"},
                odrl + "operator": {"@id": odrl + "eq"},
                odrl + "rightOperand": "ventilation-control",
            },
        },
    }
    aliases = spoil(
        **{
            "@context": [
                *VALID["@context"],
                {
                    "sharedWith": {"@id": "odrl:assignee", "@type": "@id"},
                    "Tenant": "nga:tenant",
                    "Types": "nga:entityType",
                },
            ],
            "assignee": None,
            "sharedWith": "urn:ngsild-adapter:organization:ville",
            "permission": permission(target={"Tenant": "region", "Types": ["AirQualityObserved"]}),
        }
    )
    agreements = [
        parse_agreement(write(tmp_path, doc, f"{i}.jsonld"), tenants=TENANTS, catalogue=CATALOGUE)
        for i, doc in enumerate((VALID, expanded, aliases))
    ]
    assert agreements[0].permissions == agreements[1].permissions == agreements[2].permissions
    assert agreements[0].assignees == agreements[1].assignees == agreements[2].assignees


def test_an_empty_folder_grants_nothing(tmp_path: Path) -> None:
    assert load(tmp_path).agreements == ()


# --- one refusal per kind of mistake ----------------------------------------------------


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, '{"@context": [}') == "not valid JSON: Expecting value at line 1 column 15"


def test_json_without_a_context_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, "[1, 2]") == "not a JSON-LD agreement: a JSON object with an @context is expected"


def test_a_context_without_a_local_copy_is_refused_not_fetched(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(**{"@context": ["https://example.org/odrl.jsonld", {}]})) == (
        "not valid JSON-LD: no local copy of the context https://example.org/odrl.jsonld "
        "(nothing is fetched: add it to contexts/ and contexts/index.json)"
    )


def test_a_misspelt_term_is_refused_rather_than_dropped(tmp_path: Path) -> None:
    rules = permission(constraint=None)
    rules[0]["constrant"] = VALID["permission"][0]["constraint"]
    assert refusal(tmp_path, spoil(permission=rules)) == (
        "permission 1: unknown term 'constrant' (neither the ODRL context nor the agreement's @context defines it)"
    )


def test_the_nga_prefix_must_be_declared(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(**{"@context": "http://www.w3.org/ns/odrl.jsonld"})) == (
        'uses nga: terms without declaring the prefix: add {"nga": "https://w3id.org/ngsild-adapter/ns#"} '
        "to the @context"
    )


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="the agreements folder does not exist"):
        load(tmp_path / "policies")


def test_a_policy_that_is_not_an_agreement_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(**{"@type": "Offer"})) == (
        "has type odrl:Offer: a sharing agreement must be an odrl:Agreement"
    )


def test_a_relative_uid_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(uid="agreement-1")) == (
        "uid must be an absolute IRI (e.g. urn:ngsild-adapter:agreement:name), not 'agreement-1'"
    )


def test_an_unknown_action_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(permission=permission(action=["read", "modify"]))) == (
        "permission 1: unknown action 'odrl:modify' (known: nga:queryHistory, nga:sparqlQuery, nga:subscribe, odrl:read)"
    )


def test_the_catch_all_use_action_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(permission=permission(action="use"))).startswith(
        "permission 1: odrl:use is too broad: name the actions"
    )


def test_an_unknown_tenant_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(assignee="urn:ngsild-adapter:organization:departement")) == (
        "assignee: urn:ngsild-adapter:organization:departement: unknown tenant 'departement' "
        "(collectivities: eau, metropole, region, ville)"
    )
    target = {"nga:tenant": "departement", "nga:entityType": "AirQualityObserved"}
    assert refusal(tmp_path, spoil(permission=permission(target=target))) == (
        "permission 1: target: nga:tenant: unknown tenant 'departement' (collectivities: eau, metropole, region, ville)"
    )


def test_a_collectivity_cannot_share_another_ones_data(tmp_path: Path) -> None:
    target = {"nga:tenant": "ville", "nga:entityType": "AirQualityObserved"}
    assert refusal(tmp_path, spoil(permission=permission(target=target))) == (
        "permission 1: target: nga:tenant ville is not the assigner (region): a collectivity shares only its own data"
    )


def test_an_unknown_entity_type_is_refused(tmp_path: Path) -> None:
    target = {"nga:tenant": "region", "nga:entityType": "AirQualityObservation"}
    what = refusal(tmp_path, spoil(permission=permission(target=target)))
    assert what.startswith(
        "permission 1: target: unknown entity type 'AirQualityObservation' (the device profiles "
        "make: ACMeasurement, AirQualityObserved, Device, "
    )


def test_an_unknown_attribute_is_refused(tmp_path: Path) -> None:
    target = {"nga:tenant": "region", "nga:entityType": "AirQualityObserved", "nga:attribute": ["no2", "NO2"]}
    assert refusal(tmp_path, spoil(permission=permission(target=target))) == (
        "permission 1: target: unknown attribute 'NO2': none of AirQualityObserved has it"
    )
    duty = [{"action": "nga:removeAttribute", "nga:attribute": "owner"}]
    assert refusal(tmp_path, spoil(permission=permission(duty=duty))) == (
        "permission 1: duty 1: unknown attribute 'owner': none of AirQualityObserved has it"
    )


def test_an_unknown_left_operand_is_refused(tmp_path: Path) -> None:
    constraint = [{"leftOperand": "recipient", "operator": "eq", "rightOperand": "x"}]
    assert refusal(tmp_path, spoil(permission=permission(constraint=constraint))) == (
        "permission 1: constraint 1: unknown leftOperand 'odrl:recipient' (known: nga:aggregationDistricts, "
        "nga:aggregationMethod, nga:aggregationPeriod, nga:aggregationTimeZone, nga:aggregationTotal, nga:area, "
        "nga:dominanceSensors, nga:dominanceShare, nga:levelOfDetail, nga:minGroupSize, nga:noiseEpsilon, "
        "nga:privacyBudget, nga:sensorContribution, odrl:dateTime, odrl:purpose)"
    )


def test_an_unknown_operator_is_refused(tmp_path: Path) -> None:
    constraint = [{"leftOperand": "purpose", "operator": "isNoneOf", "rightOperand": "marketing"}]
    assert refusal(tmp_path, spoil(permission=permission(constraint=constraint))) == (
        "permission 1: constraint 1: operator 'odrl:isNoneOf' is not allowed with odrl:purpose (allowed: eq, isAnyOf)"
    )


def test_an_agreement_without_permission_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(permission=None)) == "has no permission: an agreement must grant at least one"
    assert refusal(tmp_path, spoil(permission=[])) == "has no permission: an agreement must grant at least one"


def test_an_assignee_of_no_known_party_form_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(assignee="https://ville.example.org/people/alice")) == (
        "assignee: 'https://ville.example.org/people/alice' is not a known party form "
        "(urn:ngsild-adapter:organization:{tenant}, urn:ngsild-adapter:role:{tenant}:{role} "
        "or urn:ngsild-adapter:client:{tenant}:{clientId})"
    )


def test_prohibitions_are_refused_not_ignored(tmp_path: Path) -> None:
    assert refusal(tmp_path, spoil(prohibition=VALID["permission"])) == (
        "prohibitions are not supported: access is denied unless a permission grants it"
    )


def test_aggregation_terms_need_the_aggregated_level(tmp_path: Path) -> None:
    constraint = [
        {"leftOperand": "nga:levelOfDetail", "operator": "eq", "rightOperand": "aggregated"},
        {"leftOperand": "nga:aggregationMethod", "operator": "eq", "rightOperand": "avg"},
    ]
    assert refusal(tmp_path, spoil(permission=permission(constraint=constraint))) == (
        "permission 1: nga:levelOfDetail aggregated needs nga:aggregationPeriod, nga:minGroupSize"
    )


def test_an_area_must_be_a_geojson_polygon_literal(tmp_path: Path) -> None:
    polygon = {"type": "Polygon", "coordinates": [[[4.8, 45.7], [4.9, 45.7], [4.9, 45.8], [4.8, 45.7]]]}
    constraint = [{"leftOperand": "nga:area", "operator": "eq", "rightOperand": polygon}]
    assert refusal(tmp_path, spoil(permission=permission(constraint=constraint))).startswith(
        "permission 1: constraint 1: nga:area needs a GeoJSON Polygon as a JSON literal"
    )


def test_a_time_window_needs_a_time_zone(tmp_path: Path) -> None:
    constraint = [{"leftOperand": "dateTime", "operator": "gteq", "rightOperand": "2025-01-01T00:00:00"}]
    assert refusal(tmp_path, spoil(permission=permission(constraint=constraint))) == (
        "permission 1: constraint 1: odrl:dateTime needs a date and time with a time zone "
        "(e.g. 2025-01-01T00:00:00Z), not '2025-01-01T00:00:00'"
    )


def test_one_wrong_file_refuses_the_whole_folder(tmp_path: Path) -> None:
    for example in EXAMPLES.glob("*.jsonld"):
        write(tmp_path, example.read_text(encoding="utf-8"), example.name)
    write(tmp_path, spoil(permission=permission(action="print")), "zz-wrong.jsonld")
    with pytest.raises(PolicyError, match=re.escape("zz-wrong.jsonld: permission 1: unknown action 'odrl:print'")):
        load(tmp_path)


def test_two_files_with_the_same_uid_are_refused(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.jsonld")
    second = write(tmp_path, VALID, "b.jsonld")
    with pytest.raises(PolicyError) as raised:
        load(tmp_path)
    assert raised.value.file == str(second)
    assert raised.value.what == f"uid {VALID['uid']} is already the uid of {tmp_path / 'a.jsonld'}"


def test_a_policy_error_is_a_configuration_error() -> None:
    assert issubclass(PolicyError, ConfigError)


def test_sparql_cannot_be_narrowed_by_what_a_graph_cannot_enforce(tmp_path: Path) -> None:
    # VALID's permission names an entity type: a graph holds every type, so SPARQL cannot honour it
    assert refusal(tmp_path, spoil(permission=permission(action=["read", "nga:sparqlQuery"]))) == (
        "permission 1: nga:sparqlQuery opens a collectivity's whole graph, which cannot be narrowed by entity types: "
        "give SPARQL a permission of its own (only removed and coarsened attributes and purposes apply to it)"
    )
