"""The principals and agreements of the attack-class tests, and the gateway they attack.

One partner per kind of narrowing, all of the city (``ville``) reading the region's air quality:
attributes with a coarsened location (``schools``), a time window (``windowed``), an area
(``area``), a removed location (``nolocation``); the city's elected official with an aggregated
grant (``official``); a principal with no agreement (``stranger``). Stand-in tokens and
agreements (``tests.gateway.support``): what is attacked is the gateway's enforcement; the
Keycloak module (tests/keycloak/test_attack_classes.py) repeats a form of each class with real
tokens and the shipped agreements.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapter.access.model import Action, Aggregation, Area, Grant, Principal
from tests.gateway.support import DAY0, GatewayWorld, TableOfGrants, gateway_world, local_endpoints

TYPE = "AirQualityObserved"
ENTITIES = "/ngsi-ld/v1/entities"
TEMPORAL = "/ngsi-ld/v1/temporal/entities"
SENSOR = "urn:ngsi-ld:AirQualityObserved:region:sensor{}"
WINDOW_END = (DAY0 + timedelta(days=1)).replace(hour=0)  # the first day of the sample data only
AREA = Area(((-1.615, 48.0), (-1.595, 48.0), (-1.595, 48.2), (-1.615, 48.2), (-1.615, 48.0)))  # sensors 0, 1


def _principal(name: str, organization: str = "ville", role: str = "partner-platform") -> Principal:
    return Principal(
        f"https://kc/realms/{organization}", f"sub-{name}", organization, frozenset({role}), client_id=name
    )


PRINCIPALS = {name: _principal(name) for name in ("schools", "windowed", "area", "nolocation")}
PRINCIPALS["official"] = _principal("official", role="elected-official")
PRINCIPALS["stranger"] = _principal("stranger", organization="eau")
PRINCIPALS["regionofficial"] = _principal("regionofficial", organization="region", role="elected-official")

GRANTS = {
    "schools": Grant(
        "urn:agreement:schools",
        "region",
        attributes=frozenset({"no2", "pm25", "location"}),
        coarsened=(("location", 2),),
    ),
    "windowed": Grant(
        "urn:agreement:windowed", "region", attributes=frozenset({"no2", "pm25", "location"}), not_after=WINDOW_END
    ),
    "area": Grant("urn:agreement:area", "region", attributes=frozenset({"no2", "location"}), area=AREA),
    "nolocation": Grant("urn:agreement:nolocation", "region", removed=frozenset({"location", "temperature"})),
    "official": Grant(
        "urn:agreement:official",
        "region",
        attributes=frozenset({"no2", "pm25"}),
        aggregation=Aggregation("avg", "P1D", 3, dominance_share=1.0),
    ),
}
CLIENT_OF_GRANT = {"official": "elected-official"}


def table() -> TableOfGrants:
    rows = []
    for name, grant in GRANTS.items():
        role = CLIENT_OF_GRANT.get(name, "partner-platform")
        actions = (
            (Action.QUERY_HISTORY,) if grant.aggregation else (Action.READ, Action.QUERY_HISTORY, Action.SUBSCRIBE)
        )
        rows += [("ville", role, action, "region", TYPE, grant) for action in actions]
    return TableOfGrants(rows)


def _table_for(name: str) -> TableOfGrants:
    """The agreements with only ``name``'s partner-platform grant (each partner has the same role)."""
    all_rows = table().rows
    keep = [r for r in all_rows if r[5] is GRANTS[name] or r[1] != "partner-platform"]
    return TableOfGrants(keep)


def as_(name: str, tenant: str = "region", **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}", "NGSILD-Tenant": tenant, **headers}


@contextlib.asynccontextmanager
async def attacked(tmp_path: Path, partner: str = "schools", **context: Any) -> AsyncIterator[GatewayWorld]:
    """The gateway with ``partner``'s agreement in force (and the official's), over the sample data."""
    tokens = {name: p for name, p in PRINCIPALS.items()}
    async with gateway_world(tmp_path, tokens, _table_for(partner), **context) as world:
        yield world


def subscription(endpoint: str = "http://127.0.0.1:9/notify", **members: Any) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": TYPE}],
        "notification": {"endpoint": {"uri": endpoint}},
        **members,
    }


def subscribing(**context: Any) -> dict[str, Any]:
    """What a gateway needs to take subscriptions in these tests (the partner is never called)."""
    from adapter.gateway.subscriptions import SubscriptionStore

    return {
        "subscriptions": SubscriptionStore(":memory:"),
        "public_url": "http://127.0.0.1:9",
        "endpoints": local_endpoints("http://127.0.0.1:9/"),
        **context,
    }
