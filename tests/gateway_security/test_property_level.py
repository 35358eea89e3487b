"""API3, broken property-level authorization: a partner must learn nothing of an attribute its
agreement withholds or coarsens, whichever part of a request names it (``q`` in every form of
the grammar, ``attrs``, ``pick``, ``omit``, notified and watched attributes, geo-queries and their
``geoproperty``, ``timeproperty``), on every route that takes it (GET, POST of a query, the
temporal forms, subscriptions). Each is refused (403 naming the rule, or 400 when the grammar
refuses it), never answered with a filtered yes/no."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gateway_security.support import ENTITIES, SENSOR, TEMPORAL, TYPE, as_, attacked, subscribing, subscription

# every form names temperature (not granted to the schools) or location (granted, coarsened)
HIDDEN_Q = [
    "temperature>10",
    'temperature=~".*"',
    'temperature~="1.*"',
    'temperature!~="x"',
    "no2>1,temperature>1",
    "(no2>=0|temperature>10)",
    "!temperature",
    "temperature",
    "temperature.observedAt>2000-01-01T00:00:00Z",
    "no2>=0;(pm25>=0|temperature==10..11)",
    "temperature[a]==1",
    "no2==0,10;temperature!=3",
    "no2>=0&temperature>10",
    "( temperature > 10 )",
    "no2>=0;temperature>10.5",
    "location==1",
    "location.coordinates==1",
    "((no2>=0;pm25>=0)|(temperature<0;no2<0))",
    "temperature!=12;temperature!=13",
    'temperature.unitCode=="CEL"',
    "https://smartdatamodels.org/dataModel.Environment/temperature>1",
    "ex:temperature>1",
    "TEMPERATURE>1",
]


@pytest.mark.parametrize("q", HIDDEN_Q)
async def test_a_q_naming_a_withheld_or_coarsened_attribute_is_refused_on_every_route(tmp_path: Path, q: str) -> None:
    async with attacked(tmp_path, **subscribing()) as world:
        http = world.http
        answers = [
            await http.get(ENTITIES, params={"type": TYPE, "q": q}, headers=as_("schools")),
            await http.get(TEMPORAL, params={"type": TYPE, "q": q}, headers=as_("schools")),
            await http.post(
                "/ngsi-ld/v1/entityOperations/query",
                headers=as_("schools"),
                json={"type": "Query", "entities": [{"type": TYPE}], "q": q},
            ),
            await http.post(
                "/ngsi-ld/v1/temporal/entityOperations/query",
                headers=as_("schools"),
                json={"type": "Query", "entities": [{"type": TYPE}], "q": q},
            ),
            await http.post("/ngsi-ld/v1/subscriptions", headers=as_("schools"), json=subscription(q=q)),
        ]
        statuses = [a.status for a in answers]
        assert all(s in (400, 403) for s in statuses), (q, statuses)
        if q == "TEMPERATURE>1":  # names are case-sensitive: an attribute nobody granted
            assert set(statuses) == {403}


@pytest.mark.parametrize(
    "params",
    [
        {"attrs": "no2,temperature"},
        {"pick": "temperature"},
        {"omit": "temperature"},
        {"attrs": "relativeHumidity"},
        {"pick": "id,type,o3"},
        {"attrs": "https://smartdatamodels.org/dataModel.Environment/temperature"},
    ],
)
async def test_naming_an_attribute_not_granted_is_refused_not_dropped(tmp_path: Path, params: dict[str, str]) -> None:
    async with attacked(tmp_path) as world:
        answer = await world.http.get(ENTITIES, params={"type": TYPE, **params}, headers=as_("schools"))
        assert answer.status in (400, 403), await answer.text()
        by_id = await world.http.get(f"{ENTITIES}/{SENSOR.format(0)}", params=params, headers=as_("schools"))
        assert by_id.status in (400, 403)


async def test_watching_or_being_notified_of_a_hidden_attribute_is_refused(tmp_path: Path) -> None:
    async with attacked(tmp_path, **subscribing()) as world:
        for body in (
            subscription(watchedAttributes=["temperature"]),
            subscription(watchedAttributes=["location"]),  # coarsened: its exact changes would show
            subscription(notification={"attributes": ["temperature"], "endpoint": {"uri": "http://127.0.0.1:9/n"}}),
        ):
            answer = await world.http.post("/ngsi-ld/v1/subscriptions", headers=as_("schools"), json=body)
            assert answer.status == 403, (body, await answer.text())


NEAR = {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": "[-1.6,48.1]"}
WITHIN = {
    "georel": "within",
    "geometry": "Polygon",
    "coordinates": json.dumps([[[-1.605, 48.0], [-1.59, 48.0], [-1.59, 48.2], [-1.605, 48.2], [-1.605, 48.0]]]),
}


@pytest.mark.parametrize("partner", ["schools", "nolocation"])  # location coarsened / removed
@pytest.mark.parametrize("geo", [NEAR, WITHIN, {**NEAR, "geoproperty": "location"}, {**WITHIN, "geoproperty": "no2"}])
async def test_any_geo_query_is_refused_when_location_is_not_raw(
    tmp_path: Path, partner: str, geo: dict[str, str]
) -> None:
    async with attacked(tmp_path, partner, **subscribing()) as world:
        http = world.http
        geo_q = {k: (json.loads(v) if k == "coordinates" else v) for k, v in geo.items()}
        answers = [
            await http.get(ENTITIES, params={"type": TYPE, **geo}, headers=as_(partner)),
            await http.get(TEMPORAL, params={"type": TYPE, **geo}, headers=as_(partner)),
            await http.post(
                "/ngsi-ld/v1/entityOperations/query",
                headers=as_(partner),
                json={"type": "Query", "entities": [{"type": TYPE}], "geoQ": geo_q},
            ),
            await http.post("/ngsi-ld/v1/subscriptions", headers=as_(partner), json=subscription(geoQ=geo_q)),
        ]
        assert [a.status for a in answers] == [403, 403, 403, 403], [await a.text() for a in answers]


async def test_a_coarsened_location_is_coarse_in_every_format(tmp_path: Path) -> None:
    async with attacked(tmp_path) as world:
        for options in ("normalized", "keyValues", "concise"):
            answer = await world.http.get(
                ENTITIES, params={"type": TYPE, "options": options, "attrs": "location"}, headers=as_("schools")
            )
            assert answer.status == 200
            for entity in await answer.json():
                location = entity["location"]
                geometry = location["value"] if options == "normalized" else location
                assert all(round(c, 2) == c for c in geometry["coordinates"]), (options, geometry)


async def test_a_time_window_cannot_be_escaped(tmp_path: Path) -> None:
    async with attacked(tmp_path, "windowed") as world:
        http = world.http
        for params in (
            {"timeproperty": "modifiedAt", "timerel": "after", "timeAt": "2000-01-01T00:00:00Z"},
            {"timeproperty": "createdAt", "timerel": "after", "timeAt": "2000-01-01T00:00:00Z"},
            {"q": "no2>=0"},
            {"count": "true"},
            {"options": "sysAttrs"},
            {"aggrMethods": "max", "aggrPeriodDuration": "P1D"},
        ):
            answer = await http.get(TEMPORAL, params={"type": TYPE, **params}, headers=as_("windowed"))
            assert answer.status == 403, (params, await answer.text())
        # asked for all of time, the history holds the window's first day only
        history = await (
            await http.get(
                TEMPORAL,
                params={"type": TYPE, "timerel": "after", "timeAt": "2000-01-01T00:00:00Z"},
                headers=as_("windowed"),
            )
        ).json()
        instants = [i["observedAt"] for e in history for name, a in e.items() if isinstance(a, list) for i in a]
        assert instants and max(instants) < "2026-11-21"
        # the current values were observed after the window: none of them is shown, in any format
        for options in ("normalized", "keyValues", "concise"):
            current = await http.get(ENTITIES, params={"type": TYPE, "options": options}, headers=as_("windowed"))
            assert current.status == 200 and await current.json() == []
        assert (await http.get(f"{ENTITIES}/{SENSOR.format(0)}", headers=as_("windowed"))).status == 404


async def test_under_a_window_no_geo_query_places_the_sensors(tmp_path: Path) -> None:
    async with attacked(tmp_path, "windowed", **subscribing()) as world:
        for path in (ENTITIES, TEMPORAL):
            answer = await world.http.get(path, params={"type": TYPE, **NEAR}, headers=as_("windowed"))
            assert answer.status == 403
        geo_q = {k: (json.loads(v) if k == "coordinates" else v) for k, v in NEAR.items()}
        subscribed = await world.http.post(
            "/ngsi-ld/v1/subscriptions", headers=as_("windowed"), json=subscription(geoQ=geo_q)
        )
        assert subscribed.status == 403


async def test_under_an_area_a_sensor_once_outside_is_left_out_of_the_history(tmp_path: Path) -> None:
    import copy

    from tests.gateway.support import DAY0, air_quality_entities

    async with attacked(tmp_path, "area") as world:
        moved = copy.deepcopy(air_quality_entities("region", 3, days=1)[2])  # sensor2, outside the area
        moved["location"]["value"]["coordinates"] = [-1.60, 48.1]  # now inside
        for attribute in moved.values():
            if isinstance(attribute, dict) and "observedAt" in attribute:
                attribute["observedAt"] = (DAY0.replace(day=23)).isoformat().replace("+00:00", "Z")
        await world.broker.batch_upsert("region", [moved])
        for params in (
            {"attrs": "no2"},
            {"attrs": "no2,location"},
            {},
            {"idPattern": ".*sensor2$"},
            {"timerel": "after", "timeAt": "2026-11-01T00:00:00Z"},
        ):
            answer = await world.http.get(TEMPORAL, params={"type": TYPE, **params}, headers=as_("area"))
            assert answer.status == 200, await answer.text()
            ids = sorted(e["id"][-7:] for e in await answer.json())
            assert ids == ([] if "idPattern" in params else ["sensor0", "sensor1"]), (params, ids)
            if "location" not in params.get("attrs", "location"):
                assert all("location" not in e for e in await answer.json())  # asked for the check only
        current = await world.http.get(ENTITIES, params={"type": TYPE}, headers=as_("area"))
        assert "sensor2" in {e["id"][-7:] for e in await current.json()}  # inside now: its current value is


async def test_a_count_counts_only_entities_with_a_granted_attribute(tmp_path: Path) -> None:
    async with attacked(tmp_path, "nolocation") as world:
        hidden = {
            "id": "urn:ngsi-ld:AirQualityObserved:region:hidden",
            "type": TYPE,
            "temperature": {"type": "Property", "value": 1.0, "observedAt": "2026-11-20T08:00:00Z"},
        }
        await world.broker.batch_upsert("region", [hidden])
        answer = await world.http.get(
            ENTITIES, params={"type": TYPE, "count": "true", "attrs": "no2"}, headers=as_("nolocation")
        )
        entities = await answer.json()
        assert int(answer.headers["NGSILD-Results-Count"]) == len(entities) == 4
        probe = await world.http.get(
            ENTITIES, params={"type": TYPE, "count": "true", "idPattern": "hidden"}, headers=as_("nolocation")
        )
        assert probe.headers["NGSILD-Results-Count"] == "0"
