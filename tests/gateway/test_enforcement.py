"""The gateway narrows every request to its grant and filters every answer, whichever way the
data is asked for; what is not granted is refused with the rule that refused it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from adapter.access.model import Action, Aggregation, Area, Grant, Principal
from adapter.access.log import AccessLog
from tests.gateway.support import TableOfGrants, gateway_world

SCHOOLS = Principal(
    "https://kc/realms/ville", "svc-1", "ville", frozenset({"partner-platform"}), client_id="ecole-ventilation"
)
OFFICIAL = Principal("https://kc/realms/ville", "u-elu", "ville", frozenset({"elected-official"}), username="elu")
STRANGER = Principal("https://kc/realms/eau", "u-eau", "eau", frozenset({"building-manager"}))
ADMIN = Principal("https://kc/realms/region", "u-adm", "region", frozenset({"data-admin"}))
PREFECT = Principal("https://kc/realms/region", "u-elu", "region", frozenset({"elected-official"}))

SCHOOL_GRANT = Grant(
    "urn:agreement:region-aq-schools",
    "region",
    attributes=frozenset({"no2", "pm25", "location"}),
    coarsened=(("location", 2),),
)
# dominance off here (share 1.0): these tests are about the threshold and the means; tests/access_cells
# has the dominance rule and the published-cells tests their differencing
OFFICIAL_GRANT = Grant(
    "urn:agreement:ville-officials",
    "ville",
    attributes=frozenset({"no2"}),
    aggregation=Aggregation("avg", "P1D", 3, dominance_share=1.0),
)
AREA = Area(((-1.615, 48.0), (-1.595, 48.0), (-1.595, 48.2), (-1.615, 48.2), (-1.615, 48.0)))  # sensors 0 and 1
AREA_GRANT = Grant("urn:agreement:area", "region", area=AREA)

TOKENS = {"schools": SCHOOLS, "official": OFFICIAL, "stranger": STRANGER, "admin": ADMIN, "prefect": PREFECT}
GRANTS = TableOfGrants(
    [
        ("ville", "partner-platform", Action.READ, "region", "AirQualityObserved", SCHOOL_GRANT),
        ("ville", "partner-platform", Action.QUERY_HISTORY, "region", "AirQualityObserved", SCHOOL_GRANT),
        ("ville", "elected-official", Action.QUERY_HISTORY, "ville", "AirQualityObserved", OFFICIAL_GRANT),
        ("eau", "building-manager", Action.READ, "region", "AirQualityObserved", AREA_GRANT),
        ("region", "elected-official", Action.QUERY_HISTORY, "region", "AirQualityObserved", OFFICIAL_GRANT),
    ]
)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[TestClient, AccessLog]]:
    async with gateway_world(tmp_path, TOKENS, GRANTS) as world:
        yield world.http, world.log


def _as(token: str, tenant: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "NGSILD-Tenant": tenant, **headers}


async def test_no_token_is_401_and_a_bad_one_says_why(gateway: tuple[TestClient, AccessLog]) -> None:
    http, _ = gateway
    none = await http.get(
        "/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"}, headers={"NGSILD-Tenant": "region"}
    )
    assert none.status == 401
    bad = await http.get("/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"}, headers=_as("forged", "region"))
    assert bad.status == 401 and "bad_signature" in (await bad.json())["detail"]
    assert "invalid_token" in bad.headers["WWW-Authenticate"]


async def test_a_partner_reads_only_the_granted_attributes_coarsened(gateway: tuple[TestClient, AccessLog]) -> None:
    http, log = gateway
    answer = await http.get(
        "/ngsi-ld/v1/entities", params={"type": "AirQualityObserved", "limit": "100"}, headers=_as("schools", "region")
    )
    assert answer.status == 200
    entities = await answer.json()
    assert len(entities) == 4
    for entity in entities:
        assert set(entity) - {"id", "type", "@context", "wasDerivedFrom"} <= {"no2", "pm25", "location"}
        assert "temperature" not in entity and "no2" in entity
        lon, lat = entity["location"]["value"]["coordinates"]
        assert lon == round(lon, 2) and lat == round(lat, 2)
    (record,) = log.records("region")
    assert record.outcome == "permitted" and record.agreement == SCHOOL_GRANT.agreement
    assert record.client_id == "ecole-ventilation" and len(record.entities) == 4


async def test_asking_differently_never_yields_more(gateway: tuple[TestClient, AccessLog]) -> None:
    http, _ = gateway
    headers = _as("schools", "region")
    one = "urn:ngsi-ld:AirQualityObserved:region:sensor1"
    by_id = await (await http.get(f"/ngsi-ld/v1/entities/{one}", headers=headers)).json()
    by_attrs = await (
        await http.get(
            "/ngsi-ld/v1/entities", headers=headers, params={"type": "AirQualityObserved", "attrs": "no2", "id": one}
        )
    ).json()
    by_pattern = await (
        await http.get(
            "/ngsi-ld/v1/entities", headers=headers, params={"type": "AirQualityObserved", "idPattern": ".*sensor1$"}
        )
    ).json()
    history = await (await http.get(f"/ngsi-ld/v1/temporal/entities/{one}", headers=headers)).json()
    for seen in (by_id, by_attrs[0], by_pattern[0], history):
        assert not {"temperature", "relativeHumidity", "pm10", "o3"} & set(seen), seen
    assert set(by_attrs[0]) - {"id", "type", "@context", "wasDerivedFrom"} == {"no2"}


async def test_pick_and_omit_narrow_and_never_widen(gateway: tuple[TestClient, AccessLog]) -> None:
    http, _ = gateway
    headers = _as("schools", "region")
    base = {"type": "AirQualityObserved", "id": "urn:ngsi-ld:AirQualityObserved:region:sensor1"}
    picked = await (
        await http.get("/ngsi-ld/v1/entities", headers=headers, params={**base, "pick": "id,type,no2"})
    ).json()
    assert set(picked[0]) - {"id", "type", "@context", "wasDerivedFrom"} == {"no2"}
    widened = await http.get("/ngsi-ld/v1/entities", headers=headers, params={**base, "pick": "no2,temperature"})
    assert widened.status == 403 and "temperature" in (await widened.json())["detail"]
    omitted = await (await http.get("/ngsi-ld/v1/entities", headers=headers, params={**base, "omit": "no2"})).json()
    assert "no2" not in omitted[0] and "pm25" in omitted[0] and "temperature" not in omitted[0]


async def test_a_filter_on_an_attribute_one_cannot_read_is_refused(gateway: tuple[TestClient, AccessLog]) -> None:
    http, log = gateway
    answer = await http.get(
        "/ngsi-ld/v1/entities",
        headers=_as("schools", "region"),
        params={"type": "AirQualityObserved", "q": "temperature>10"},
    )
    assert answer.status == 403 and "temperature" in (await answer.json())["detail"]
    assert log.records("region")[0].outcome == "refused"


async def test_another_collectivity_or_type_is_denied_with_the_rule(gateway: tuple[TestClient, AccessLog]) -> None:
    http, _ = gateway
    for tenant, entity_type in (("ville", "AirQualityObserved"), ("region", "Device")):
        answer = await http.get("/ngsi-ld/v1/entities", params={"type": entity_type}, headers=_as("schools", tenant))
        assert answer.status == 403
        detail = (await answer.json())["detail"]
        assert "no agreement grants read" in detail and "sensor" not in detail  # the rule, no data


async def test_writes_are_not_offered(gateway: tuple[TestClient, AccessLog]) -> None:
    http, _ = gateway
    answer = await http.post("/ngsi-ld/v1/entityOperations/upsert", json=[], headers=_as("schools", "region"))
    assert answer.status == 403


async def test_a_client_context_cannot_rename_attributes(gateway: tuple[TestClient, AccessLog]) -> None:
    http, _ = gateway
    link = '<https://example.org/evil.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
    answer = await http.get(
        "/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"}, headers=_as("schools", "region", Link=link)
    )
    assert answer.status == 400


async def test_an_area_grant_sees_only_its_area_and_refuses_other_geo_queries(
    gateway: tuple[TestClient, AccessLog],
) -> None:
    http, _ = gateway
    inside = await (
        await http.get("/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"}, headers=_as("stranger", "region"))
    ).json()
    assert sorted(e["id"][-7:] for e in inside) == ["sensor0", "sensor1"]
    outside = await http.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:region:sensor3", headers=_as("stranger", "region")
    )
    assert outside.status == 404
    own_geo = await http.get(
        "/ngsi-ld/v1/entities",
        headers=_as("stranger", "region"),
        params={
            "type": "AirQualityObserved",
            "georel": "near;maxDistance==100000",
            "geometry": "Point",
            "coordinates": "[-1.6,48.1]",
        },
    )
    assert own_geo.status == 403


async def test_an_official_gets_published_cells_over_enough_sensors_never_one_sensor(
    gateway: tuple[TestClient, AccessLog],
) -> None:
    http, _ = gateway
    headers = _as("official", "ville")
    single = await http.get(
        "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:ville:sensor0", headers=headers
    )
    assert single.status == 403
    current = await http.get("/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"}, headers=headers)
    assert current.status == 403
    cells = await (await http.get("/ngsi-ld/v1/temporal/entities", params=_DAYS, headers=headers)).json()
    # ville has 2 sensors, fewer than the agreement's minimum group of 3: every cell says so, none has a value
    (group,) = cells
    assert group["no2"]["avg"] == []
    assert {c["status"] for c in group["no2"]["cells"]} == {"suppressed"}
    assert {c["rule"] for c in group["no2"]["cells"]} == {"threshold"}
    assert all("value" not in c and "sensors" not in c for c in group["no2"]["cells"])


async def test_the_owner_reads_who_accessed_what_as_prov(gateway: tuple[TestClient, AccessLog]) -> None:
    http, _ = gateway
    await http.get("/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"}, headers=_as("schools", "region"))
    refused = await http.get("/gateway/access", params={"tenant": "region"}, headers=_as("schools", "region"))
    assert refused.status == 403
    prov = await (await http.get("/gateway/access", params={"tenant": "region"}, headers=_as("admin", "region"))).json()
    activities = [n for n in prov["@graph"] if "prov:Activity" in n.get("@type", [])]
    assert activities and activities[0]["nga:agreement"] == [{"@id": SCHOOL_GRANT.agreement}]
    assert any(n.get("nga:client") == "ecole-ventilation" for n in prov["@graph"])


_DAYS = {
    "type": "AirQualityObserved",
    "timerel": "between",
    "timeAt": "2026-11-20T00:00:00Z",
    "endTimeAt": "2026-11-22T00:00:00Z",
}


async def test_a_published_cell_is_the_mean_over_every_sensor_of_the_day(gateway: tuple[TestClient, AccessLog]) -> None:
    http, _ = gateway
    (group,) = await (
        await http.get("/ngsi-ld/v1/temporal/entities", params=_DAYS, headers=_as("prefect", "region"))
    ).json()
    # region: 4 sensors, no2 = 10 * sensor + day, one reading a day
    expected = [sum(10 * sensor + day for sensor in range(4)) / 4 for day in range(2)]
    assert [round(v, 6) for v, _, _ in group["no2"]["avg"]] == expected
    assert [c["sensors"] for c in group["no2"]["cells"]] == [4, 4]
    assert group["id"] == "urn:ngsild-adapter:cells:region:AirQualityObserved:all"


async def test_an_iri_or_a_removed_geoproperty_cannot_sidestep_the_grant(gateway: tuple[TestClient, AccessLog]) -> None:
    http, _ = gateway
    headers = _as("schools", "region")
    iri = "https://smartdatamodels.org/dataModel.Environment/temperature>10"
    by_iri = await http.get("/ngsi-ld/v1/entities", headers=headers, params={"type": "AirQualityObserved", "q": iri})
    assert by_iri.status in (400, 403)  # not a short name: refused (by the grammar or by the grant)
    strings_are_fine = await http.get(
        "/ngsi-ld/v1/entities", headers=headers, params={"type": "AirQualityObserved", "q": 'no2>1;pm25!="a:b"'}
    )
    assert strings_are_fine.status == 200
    hidden_geo = await http.get(
        "/ngsi-ld/v1/entities",
        headers=headers,
        params={
            "type": "AirQualityObserved",
            "georel": "near;maxDistance==1000",
            "geometry": "Point",
            "coordinates": "[-1.6,48.1]",
            "geoproperty": "temperature",
        },
    )
    assert hidden_geo.status == 403


async def test_a_partner_with_raw_values_may_have_the_broker_aggregate_them(
    gateway: tuple[TestClient, AccessLog],
) -> None:
    http, _ = gateway
    answer = await http.get(
        "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:region:sensor1",
        headers=_as("schools", "region"),
        params={"aggrMethods": "avg,max", "aggrPeriodDuration": "P1D", "attrs": "no2"},
    )
    assert answer.status == 200, await answer.text()
    history = await answer.json()
    assert set(history["no2"]) >= {"avg", "max"} and "temperature" not in history
    coarsened = await http.get(
        "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:region:sensor1",
        headers=_as("schools", "region"),
        params={"aggrMethods": "avg", "aggrPeriodDuration": "P1D", "attrs": "location"},
    )
    assert coarsened.status == 403  # a mean of exact coordinates would undo the coarsening
