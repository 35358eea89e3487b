"""A broker with two collectivities' data, and the gateway in front of it, for the gateway tests.

The entities are the pipeline's own (sample uplinks through ``demo_pipeline``), copied for
several sensors, days and collectivities; they are written to the embedded NGSI-LD broker as
the adapter writes them. Tokens and agreements are stand-ins here (``StaticTokens``,
``TableOfGrants``): the enforcement is what is tested; the real validator and the ODRL engine
have their own tests, and the end-to-end tests put them together with Keycloak.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapter.access.model import AccessRequest, Action, Decision, Grant, Principal, SparqlDataset
from adapter.access.odrl import Catalogue
from adapter.mapping.profile import load_profiles
from adapter.mapping.entities import DEVICE_CONTEXT
from tests.support import REPO, body_bytes, demo_event, demo_pipeline

AQ_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
CONTEXTS = {"AirQualityObserved": AQ_CONTEXT, "Device": DEVICE_CONTEXT, "IndoorEnvironmentObserved": AQ_CONTEXT}
DAY0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def air_quality_entities(tenant: str, sensors: int, days: int) -> list[dict[str, Any]]:
    """``sensors`` AirQualityObserved of ``tenant`` observed once a day for ``days`` days
    (no2 = 10 * sensor + day), as the pipeline makes them (one list per write, oldest first)."""
    pipeline = demo_pipeline()
    try:
        spec = demo_event("01-chirpstack-air-quality")
        origin_tenant = "ville"
        result = pipeline.process(body_bytes(spec), lns="chirpstack", origin=pipeline_origin(origin_tenant))
    finally:
        pipeline.close()
    template = next(e for e in result.entities if e["type"] == "AirQualityObserved")
    writes = []
    for day in range(days):
        for sensor in range(sensors):
            entity = copy.deepcopy(template)
            entity["id"] = f"urn:ngsi-ld:AirQualityObserved:{tenant}:sensor{sensor}"
            moment = _iso(DAY0 + timedelta(days=day, minutes=sensor))
            for attribute in entity.values():
                if isinstance(attribute, dict) and "observedAt" in attribute:
                    attribute["observedAt"] = moment
            entity["no2"]["value"] = float(10 * sensor + day)
            entity["location"]["value"]["coordinates"] = [-1.6 - sensor * 0.01, 48.1]
            entity.pop("refDevice", None)
            writes.append(entity)
    return writes


@functools.cache
def catalogue() -> Catalogue:
    return Catalogue.from_profiles(load_profiles(REPO / "models"))


def pipeline_origin(tenant: str) -> Any:
    from adapter.uplink import Origin

    return Origin(tenant=tenant, lns_id=f"{tenant}-chirpstack")


@dataclass
class StaticTokens:
    """Bearer tokens known in advance: token -> principal; anything else is refused."""

    principals: Mapping[str, Principal]

    async def validate(self, token: str) -> Principal:
        principal = self.principals.get(token)
        if principal is None:
            raise BadToken("bad_signature")
        return principal


class BadToken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class TableOfGrants:
    """Agreements as a table: (organization, role or None, action, tenant, type) -> grant."""

    rows: Sequence[tuple[str, str | None, Action, str, str, Grant]] = field(default_factory=list)
    graphs: Mapping[str, Sequence[str]] = field(default_factory=dict)  # role -> provenance graphs for SPARQL
    tenants: frozenset[str] = frozenset({"ville", "region", "eau", "metropole"})

    def attributes(self, entity_type: str) -> frozenset[str]:
        """What the repository's device profiles make (the agreements' catalogue)."""
        return catalogue().attributes(entity_type) if entity_type in catalogue() else frozenset()

    def sparql_dataset(self, principal: Principal, *, purpose: str | None = None) -> SparqlDataset:
        graphs = tuple(sorted({g for role in principal.roles for g in self.graphs.get(role, ())}))
        return SparqlDataset(graphs, ("urn:test:agreement",) if graphs else ())

    def decide(self, principal: Principal, request: AccessRequest, *, now: datetime) -> Decision:
        grants = [
            grant
            for organization, role, action, tenant, entity_type, grant in self.rows
            if organization == principal.organization
            and (role is None or role in principal.roles)
            and action is request.action
            and tenant == request.tenant
            and entity_type == request.entity_type
        ]
        if not grants:
            return Decision(
                False,
                reason=f"no agreement grants {request.action.value} on {request.entity_type} "
                f"of {request.tenant} to {principal.organization}",
            )
        return Decision(True, grants)


def local_endpoints(*prefixes: str) -> Any:
    """A notification policy allowing these prefixes on this machine (tests' partners listen
    on 127.0.0.1, an address the gateway refuses unless told)."""
    from ipaddress import ip_network

    from adapter.gateway.endpoints import EndpointPolicy, parse_prefix

    return EndpointPolicy(tuple(parse_prefix(p) for p in prefixes), (ip_network("127.0.0.1/32"),))


#: the gateway tests' clock: a month after the sample data, so that every day's cells are published
NOW = DAY0 + timedelta(days=30)


@dataclass
class GatewayWorld:
    """The embedded broker with sample data, the gateway in front of it, and what it records."""

    http: Any  # aiohttp.test_utils.TestClient of the gateway
    log: Any  # AccessLog
    broker: Any  # NgsiLdClient writing to the broker as the adapter does
    broker_url: str
    grants: TableOfGrants
    cells: Any  # CellStore


@contextlib.asynccontextmanager
async def gateway_world(
    tmp_path: Path,
    tokens: Mapping[str, Principal],
    grants: TableOfGrants,
    *,
    sensors: Mapping[str, int] = {"region": 4, "ville": 2},
    days: int = 2,
    **context: Any,
) -> AsyncIterator[GatewayWorld]:
    """A gateway over an embedded broker holding ``air_quality_entities`` of each tenant;
    ``public_url="auto"``: on a port the broker can notify."""
    import aiohttp
    from aiohttp.test_utils import TestClient, TestServer

    from adapter.access.cells import CellStore
    from adapter.access.log import AccessLog
    from adapter.gateway.app import GatewayContext, create_gateway_app
    from adapter.ngsild.client import NgsiLdClient
    from tests.e2e.support import EmbeddedBroker

    broker = EmbeddedBroker(tmp_path / "broker.sqlite")
    await broker.start()
    log = AccessLog(":memory:")
    cells = CellStore(":memory:")
    try:
        async with aiohttp.ClientSession() as session:
            client = NgsiLdClient(broker.url, session)
            for tenant, count in sensors.items():
                for entity in air_quality_entities(tenant, count, days=days):
                    await client.batch_upsert(tenant, [entity])
            port = None
            if context.get("public_url") == "auto":  # the broker notifies the gateway on its real port
                from adapter.demo.network import free_port

                port = free_port()
                context["public_url"] = f"http://127.0.0.1:{port}"
            gateway = GatewayContext(
                StaticTokens(tokens).validate,
                grants,
                broker.url,
                session,
                CONTEXTS,
                log,
                clock=lambda: NOW,
                cells=cells,
                **context,
            )
            async with TestClient(TestServer(create_gateway_app(gateway), host="127.0.0.1", port=port)) as http:
                yield GatewayWorld(http, log, client, broker.url, grants, cells)
    finally:
        cells.close()
        log.close()
        await broker.stop()
