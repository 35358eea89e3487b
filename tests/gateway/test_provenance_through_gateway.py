"""The provenance API through the gateway: a partner gets the lineage and the verification of
the values its agreement lets it read, without the device's names; whole records go only to
those who may read the collectivity's personal graph; the signed logs are public.

Real parts: the provenance world of ``tests/provenance_e2e`` (uplinks processed, delivered to
the embedded broker, logs signed, index built), the adapter's provenance HTTP surface, the
shipped agreements plus one partner agreement, and the gateway in front."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.access.policies import PolicySet
from adapter.app import provenance_http_routes
from adapter.config import DEFAULT_PERSONAL_ATTRIBUTES
from adapter.access.log import AccessLog
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.access.decide import RECORD_REFUSAL
from adapter.mapping.profile import load_profiles
from adapter.provenance.indexer import RdfIndexer
from adapter.provenance.integrity.note import NoteVerifier
from adapter.provenance.queries import load_query
from adapter.provenance.remote import HttpEvidence, RemoteRefused
from adapter.provenance.runtime import ProvenanceRuntime, entity_contexts
from adapter.provenance.verify import Verification, verify_value
from tests.access_policies.support import CATALOGUE, CONTEXT, EXAMPLES, TENANTS, person
from tests.gateway.support import StaticTokens
from tests.provenance_e2e.support import AQ_ENTITY, DEVICES, World, no2_of, observed_at_of, record_index
from tests.support import REPO

PARTNER_AGREEMENT = "urn:ngsild-adapter:agreement:ville-no2-to-metropole"
PRINCIPALS = {
    "partner": person("metropole"),
    "admin": person("ville", "data-admin"),
    "official": person("ville", "elected-official"),
    "manager": person("ville", "building-manager"),
}
ENTITY = AQ_ENTITY.format(eui=DEVICES[0])
VALUE = {"entity": ENTITY, "attr": "no2", "observedAt": observed_at_of(0, 2).isoformat()}


@dataclass
class Setting:
    gateway: TestClient
    adapter: TestClient
    access: AccessLog
    record: int
    runtime: ProvenanceRuntime
    access_file: Path
    world: World


def agreements(folder: Path) -> Path:
    """The shipped agreements, and the city's NO2 shared with the metropole."""
    for example in EXAMPLES.glob("*.jsonld"):
        shutil.copy(example, folder / example.name)
    (folder / "partner.jsonld").write_text(
        json.dumps(
            {
                "@context": CONTEXT,
                "@type": "Agreement",
                "uid": PARTNER_AGREEMENT,
                "assigner": "urn:ngsild-adapter:organization:ville",
                "assignee": "urn:ngsild-adapter:organization:metropole",
                "permission": [
                    {
                        "target": {
                            "@type": "AssetCollection",
                            "nga:tenant": "ville",
                            "nga:entityType": "AirQualityObserved",
                            "nga:attribute": "no2",
                        },
                        "action": "read",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return folder


@pytest.fixture
async def setting(world_template: World, tmp_path: Path) -> AsyncIterator[Setting]:
    world = world_template.copy(tmp_path / "w")
    folder = tmp_path / "policies"
    folder.mkdir()
    policies = PolicySet.load(
        agreements(folder), tenants=TENANTS, catalogue=CATALOGUE, personal_attributes=DEFAULT_PERSONAL_ATTRIBUTES
    )
    access = AccessLog(tmp_path / "access.sqlite")
    async with world.running() as (runtime, broker):
        app = web.Application()
        app.add_routes(provenance_http_routes(runtime, world.config()))
        async with TestClient(TestServer(app, host="127.0.0.1")) as adapter, aiohttp.ClientSession() as session:
            context = GatewayContext(
                StaticTokens(PRINCIPALS).validate,
                policies,
                broker.url,
                session,
                entity_contexts(load_profiles(REPO / "models")),
                access,
                adapter_url=str(adapter.make_url("/")),
            )
            async with TestClient(TestServer(create_gateway_app(context), host="127.0.0.1")) as gateway:
                yield Setting(
                    gateway, adapter, access, record_index(runtime, 0, 2), runtime, tmp_path / "access.sqlite", world
                )
    access.close()


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {who}"}


async def test_a_partner_gets_the_lineage_of_a_value_it_reads_without_what_names_or_places_the_device(
    setting: Setting,
) -> None:
    answer = await setting.gateway.get("/provenance/ville/lineage", params=VALUE, headers=bearer("partner"))
    assert answer.status == 200, await answer.text()
    lineage = await answer.json()
    assert lineage["value"]["value"] == no2_of(0, 2) and lineage["record"] == setting.record
    assert lineage["steps"] and lineage["software"]["version"]  # how the value was made
    assert lineage["value"]["entity"] == ENTITY  # the id it asked about (an id of the broker's, which it reads)
    text = json.dumps({**lineage, "value": {**lineage["value"], "entity": None}}).lower()
    assert DEVICES[0].lower() not in text and "device" not in lineage["uplink"] and "gateways" not in lineage
    assert "fCnt" not in lineage["uplink"] and all("broker" not in d for d in lineage["deliveries"])
    direct = await (await setting.adapter.get("/provenance/ville/lineage", params=VALUE)).json()
    assert direct["uplink"]["device"]["devEui"] == DEVICES[0]  # the adapter has it: the gateway took it out
    assert direct["gateways"]


async def test_a_partner_verifies_a_value_it_reads(setting: Setting) -> None:
    answer = await setting.gateway.get("/provenance/ville/verify", params=VALUE, headers=bearer("partner"))
    assert answer.status == 200
    report = await answer.json()
    assert report["holds"] is True, report
    assert DEVICES[0].lower() not in json.dumps({**report, "entity": None}).lower()  # the details name the device


async def test_a_value_outside_the_agreement_has_no_provenance_for_the_partner(setting: Setting) -> None:
    answer = await setting.gateway.get(
        "/provenance/ville/lineage", params={**VALUE, "attr": "temperature"}, headers=bearer("partner")
    )
    assert answer.status == 403
    assert (await answer.json())["detail"] == f"agreement {PARTNER_AGREEMENT} does not grant attribute temperature"
    (refusal,) = [r for r in setting.access.records("ville") if r.outcome == "refused"]
    assert refusal.organization == "metropole"


async def test_officials_and_other_roles_get_no_single_value(setting: Setting) -> None:
    official = await setting.gateway.get("/provenance/ville/lineage", params=VALUE, headers=bearer("official"))
    assert official.status == 403 and "aggregated indicators only" in (await official.json())["detail"]
    manager = await setting.gateway.get("/provenance/ville/verify", params=VALUE, headers=bearer("manager"))
    assert (
        manager.status == 403 and "no agreement grants read on AirQualityObserved" in (await manager.json())["detail"]
    )
    anonymous = await setting.gateway.get("/provenance/ville/lineage", params=VALUE)
    assert anonymous.status == 401


async def test_whole_records_go_to_those_who_read_the_personal_graph(setting: Setting) -> None:
    path = f"/provenance/ville/uplinks/{setting.record}/record"
    refused = await setting.gateway.get(path, headers=bearer("partner"))
    assert refused.status == 403 and (await refused.json())["detail"] == RECORD_REFUSAL
    chain = await setting.gateway.get(f"/provenance/ville/devices/{DEVICES[0]}/records/0", headers=bearer("partner"))
    assert chain.status == 403
    allowed = await setting.gateway.get(path, headers=bearer("admin"))
    assert allowed.status == 200
    assert await allowed.read() == await (await setting.adapter.get(path)).read()
    assert allowed.headers["Repr-Digest"].startswith("sha-256=:")
    admin = await (await setting.gateway.get("/provenance/ville/lineage", params=VALUE, headers=bearer("admin"))).json()
    assert "deviceId" in admin["uplink"]["device"]


async def test_the_signed_logs_are_public_through_the_gateway(setting: Setting) -> None:
    through = await setting.gateway.get("/logs/ville/checkpoint")
    assert through.status == 200
    assert await through.read() == await (await setting.adapter.get("/logs/ville/checkpoint")).read()
    key = await setting.gateway.get("/logs/ville/key")
    assert (await key.text()).startswith("test.example/logs/ville+")


async def test_every_provenance_read_is_recorded_with_its_agreement(setting: Setting) -> None:
    await setting.gateway.get("/provenance/ville/lineage", params=VALUE, headers=bearer("partner"))
    (record,) = [r for r in setting.access.records("ville") if r.outcome == "permitted"]
    assert record.agreement == PARTNER_AGREEMENT and list(record.entities) == [ENTITY]
    assert record.path.startswith("/provenance/ville/lineage?")  # what the gateway asked, as it built it


async def remote_verification(setting: Setting, token: str) -> Verification:
    key = NoteVerifier.from_vkey((await (await setting.gateway.get("/logs/ville/key")).text()).strip())
    async with aiohttp.ClientSession() as session:
        evidence = HttpEvidence(session, str(setting.gateway.make_url("")), pinned_key=key, token=token)
        return await verify_value(
            evidence, "ville", ENTITY, "no2", observed_at_of(0, 2), value=str(no2_of(0, 2)), record=setting.record
        )


async def test_the_city_admin_verifies_a_value_independently_through_the_gateway(setting: Setting) -> None:
    result = await remote_verification(setting, "admin")
    assert result.holds, [c for c in result.checks if c.status != "ok"]


async def test_a_partner_without_the_personal_graph_is_told_why_it_cannot_verify_independently(
    setting: Setting,
) -> None:
    with pytest.raises(RemoteRefused, match="refused \\(403\\) a whole provenance record"):
        await remote_verification(setting, "partner")


async def test_the_city_answers_who_accessed_what_over_sparql(setting: Setting) -> None:
    await setting.gateway.get("/provenance/ville/lineage", params=VALUE, headers=bearer("partner"))
    await setting.gateway.get("/provenance/ville/verify", params=VALUE, headers=bearer("manager"))  # refused
    assert setting.runtime.store is not None
    db = sqlite3.connect(setting.world.folder / "state" / "state.sqlite", isolation_level=None)
    assert setting.runtime.indexer is not None  # its pseudonym keys: the world's index stays as it is
    indexer = RdfIndexer(
        setting.runtime.ledger,
        db,
        setting.runtime.store,
        personal=DEFAULT_PERSONAL_ATTRIBUTES,
        access_log=setting.access_file,
        pseudonyms=setting.runtime.indexer.pseudonyms,
    )
    assert await indexer.catch_up() == 2
    now = datetime.now(UTC)
    query = load_query("accesses", start=now - timedelta(hours=1), end=now + timedelta(hours=1))
    answer = await setting.gateway.post(
        "/sparql", data={"query": query}, headers={**bearer("admin"), "Accept": "application/sparql-results+json"}
    )
    assert answer.status == 200, await answer.text()
    rows = [{k: v["value"] for k, v in row.items()} for row in (await answer.json())["results"]["bindings"]]
    partner, manager = rows
    assert partner["graph"] == "urn:ngsild-adapter:graph:ville:access"
    assert (partner["organization"], partner["outcome"], partner["agreements"], partner["entities"]) == (
        "urn:ngsild-adapter:organization:metropole",
        "permitted",
        PARTNER_AGREEMENT,
        ENTITY,
    )
    assert (manager["outcome"], manager.get("entities", "")) == ("refused", "")
    assert "no agreement grants" in manager["reason"]
    # the partner has no graph to query; the SPARQL accesses themselves are recorded too
    assert (await setting.gateway.post("/sparql", data={"query": query}, headers=bearer("partner"))).status == 403
    assert await indexer.catch_up() == 2
    assert await indexer.catch_up() == 0
    indexer.close()


async def test_a_record_number_cannot_point_the_lineage_at_another_observation(setting: Setting) -> None:
    other = record_index(setting.runtime, 0, 4)  # the same sensor, another time
    answer = await setting.gateway.get(
        "/provenance/ville/lineage", params={**VALUE, "record": str(other)}, headers=bearer("partner")
    )
    assert answer.status == 400 and (await answer.json())["detail"].startswith("record: unknown parameter")
    decided = await setting.gateway.get("/provenance/ville/lineage", params=VALUE, headers=bearer("partner"))
    assert (await decided.json())["record"] == setting.record  # the one of the observation decided on
