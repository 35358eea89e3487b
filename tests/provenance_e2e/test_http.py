"""The provenance HTTP surface, read as a partner reads it: keys, signed tree heads, tiles,
proofs, records, PROV-O, lineage, the verifier and SPARQL, all from one running server."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from hashlib import sha256
from pathlib import Path

import aiohttp
import pytest
import rdflib
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.app import provenance_http_routes
from adapter.provenance.integrity.canonical import canonicalize
from adapter.provenance.integrity.checkpoint import open_checkpoint
from adapter.provenance.integrity.log import verify_record
from adapter.provenance.integrity.merkle import leaf_hash
from adapter.provenance.integrity.note import NoteSigner, NoteVerifier
from adapter.provenance.integrity.tiles import TILE_WIDTH
from adapter.provenance.remote import HttpEvidence
from adapter.provenance.verify import Verification, verify_value
from tests.provenance_e2e.support import (
    AQ_ENTITY,
    DEVICES,
    World,
    no2_of,
    observed_at_of,
    record_index,
)

PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")


@pytest.fixture
async def http(world_template: World, tmp_path: Path) -> AsyncIterator[tuple[TestClient, int]]:
    world = world_template.copy(tmp_path / "w")
    async with world.running() as (runtime, _):
        app = web.Application()
        app.add_routes(provenance_http_routes(runtime, world.config()))
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client, record_index(runtime, 0, 2)


async def test_a_partner_checks_a_record_with_the_published_key_and_proof(http: tuple[TestClient, int]) -> None:
    client, index = http
    vkey = await (await client.get("/logs/ville/key")).text()
    key = NoteVerifier.from_vkey(vkey.strip())
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    jwk = next(k for k in jwks["keys"] if k["ngsild-adapter:tenant"] == "ville")
    assert (jwk["kty"], jwk["crv"], jwk["kid"]) == ("OKP", "Ed25519", key.key_id.hex())
    assert base64.urlsafe_b64decode(jwk["x"] + "=") == key.public_key
    note = await (await client.get("/logs/ville/checkpoint")).read()
    checkpoint = open_checkpoint(note, key.name, [key])
    answer = await client.get(f"/provenance/ville/uplinks/{index}/record")
    text = await answer.text()
    assert answer.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(sha256(text.encode()).digest()).decode()}:"
    record = json.loads(text)
    assert canonicalize(record) == text.encode()  # served byte for byte in canonical form
    proof = await (await client.get(f"/logs/ville/proof/inclusion?index={index}&size={checkpoint.size}")).json()
    verify_record(record, index, [base64.b64decode(h) for h in proof["proof"]], note, key.name, [key])


async def test_tiles_hold_the_record_digests_under_the_signed_head(http: tuple[TestClient, int]) -> None:
    client, index = http
    key = NoteVerifier.from_vkey((await (await client.get("/logs/ville/key")).text()).strip())
    checkpoint = open_checkpoint(await (await client.get("/logs/ville/checkpoint")).read(), key.name, [key])
    assert checkpoint.size < TILE_WIDTH  # the world is small: one partial tile of each kind
    entries = await client.get(f"/logs/ville/tile/entries/000.p/{checkpoint.size}")
    assert entries.status == 200
    bundle = await entries.read()
    digests = [bundle[i + 2 : i + 34] for i in range(0, len(bundle), 34)]
    record = json.loads(await (await client.get(f"/provenance/ville/uplinks/{index}/record")).text())
    assert digests[index] == sha256(canonicalize(record)).digest()
    hashes = await (await client.get(f"/logs/ville/tile/0/000.p/{checkpoint.size}")).read()
    assert hashes[32 * index : 32 * index + 32] == leaf_hash(digests[index])
    beyond = await client.get(f"/logs/ville/tile/entries/000.p/{checkpoint.size + 1}")
    assert beyond.status == 404  # nothing beyond what a signed head covers


# rdflib's own JSON-LD parser uses its deprecated ConjunctiveGraph internally
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
async def test_prov_o_record_by_content_negotiation(http: tuple[TestClient, int]) -> None:
    client, index = http
    uplink = rdflib.URIRef(f"urn:ngsild-adapter:ville:uplink:{index}")
    turtle = await client.get(f"/provenance/ville/uplinks/{index}", headers={"Accept": "text/turtle"})
    assert turtle.content_type == "text/turtle"
    graph = rdflib.Graph().parse(data=await turtle.text(), format="turtle")
    assert (uplink, rdflib.RDF.type, PROV.Entity) in graph
    derived = set(graph.subjects(PROV.wasDerivedFrom, uplink))
    assert derived, "no attribute value is derived from the uplink"
    jsonld = await client.get(f"/provenance/ville/uplinks/{index}", headers={"Accept": "application/ld+json"})
    assert jsonld.content_type == "application/ld+json"
    assert len(rdflib.Graph().parse(data=await jsonld.text(), format="json-ld")) == len(graph)
    refused = await client.get(f"/provenance/ville/uplinks/{index}", headers={"Accept": "image/png"})
    assert refused.status == 406
    assert (await client.get("/provenance/ville/uplinks/99999")).status == 404


async def test_lineage_and_verify_of_one_value(http: tuple[TestClient, int]) -> None:
    client, index = http
    params = {"entity": AQ_ENTITY.format(eui=DEVICES[0]), "attr": "no2", "observedAt": observed_at_of(0, 2).isoformat()}
    lineage = await (await client.get("/provenance/ville/lineage", params=params)).json()
    assert json.dumps(lineage).count(str(no2_of(0, 2))) >= 1
    verified = await (await client.get("/provenance/ville/verify", params=params)).json()
    assert verified["holds"] is True and verified["record"] == index
    forged = await (await client.get("/provenance/ville/verify", params={**params, "value": "0.5"})).json()
    assert forged["holds"] is False


async def test_sparql_answers_over_the_index(http: tuple[TestClient, int]) -> None:
    client, index = http
    query = "SELECT (COUNT(DISTINCT ?u) AS ?n) WHERE { ?u <http://www.w3.org/ns/prov#wasAttributedTo> ?device }"
    answer = await client.get("/sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json"})
    assert answer.status == 200, await answer.text()
    rows = (await answer.json())["results"]["bindings"]
    assert int(rows[0]["n"]["value"]) == index + (await _records_after(client, index))
    update = await client.post(
        "/sparql", data="INSERT DATA { <urn:a> <urn:b> <urn:c> }", headers={"Content-Type": "application/sparql-update"}
    )
    assert update.status in (400, 403)


async def _records_after(client: TestClient, index: int) -> int:
    """Records numbered above ``index`` (every record of the world is an uplink)."""
    n = index + 1
    while (await client.get(f"/provenance/ville/uplinks/{n}/record")).status == 200:
        n += 1
    return n - index


async def _remote_verify(
    client: TestClient, index: int, key: NoteVerifier | None, value: str | None = None
) -> Verification:
    """What a partner runs: evidence from the server's published resources, the pinned key only."""
    async with aiohttp.ClientSession() as session:
        evidence = HttpEvidence(session, str(client.make_url("")), pinned_key=key)
        return await verify_value(
            evidence,
            "ville",
            AQ_ENTITY.format(eui=DEVICES[0]),
            "no2",
            observed_at_of(0, 2),
            value=value if value is not None else str(no2_of(0, 2)),
            record=index,
        )


async def test_a_partner_verifies_from_the_published_resources_with_a_pinned_key(http: tuple[TestClient, int]) -> None:
    client, index = http
    key = NoteVerifier.from_vkey((await (await client.get("/logs/ville/key")).text()).strip())
    result = await _remote_verify(client, index, key)
    assert result.holds, result.to_json()
    assert [c.name for c in result.checks] == ["record", "value", "digest", "signature", "inclusion", "chain"]
    forged_value = await _remote_verify(client, index, key, value="0.5")
    assert not forged_value.holds


async def test_a_server_with_another_key_fails_the_pinned_signature(http: tuple[TestClient, int]) -> None:
    client, index = http
    impostor = NoteSigner.generate("test.example/logs/ville").verifier  # same name, another key
    result = await _remote_verify(client, index, impostor)
    assert not result.holds
    assert {c.name for c in result.checks if c.status == "failed"} == {"signature"}
