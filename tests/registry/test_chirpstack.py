"""ChirpStack v4's registry over gRPC, against a stand-in server built from the official
``chirpstack-api`` service definitions (no real ChirpStack runs here; see ``standins``)."""

from __future__ import annotations

import grpc
import pytest

from adapter.registry import ImportSource, RegistryAuthFailed, RegistryNotFound, RegistryUnavailable
from adapter.registry.chirpstack import ChirpStackRegistry, grpc_target
from adapter.registry.exceptions import RegistryAnswerError
from adapter.uplink import Location
from tests.registry.conftest import CS_APP, CS_TOKEN, NOW, chirpstack_settings
from tests.registry.standins import ChirpStackStandIn, chirpstack_device


def _source(application: str = CS_APP) -> ImportSource:
    return ImportSource("chirpstack", "metropole-chirpstack", application, NOW)


async def test_every_page_is_read_and_each_device_belongs_to_the_connections_collectivity(
    chirpstack: tuple[ChirpStackStandIn, str],
) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [
        chirpstack_device(f"70b3d57ed000{i:04x}", f"AQ station {i:03d}", tags={"district": f"D{i % 7}"})
        for i in range(250)
    ]
    client = ChirpStackRegistry(chirpstack_settings(url))
    try:
        listing = await client.list_devices(_source(), "metropole")
    finally:
        await client.close()
    assert [offset for _, _, offset in standin.requests] == [0, 100, 200]
    assert {app for app, _, _ in standin.requests} == {CS_APP}
    assert len(listing.devices) == 250 and listing.skipped == ()
    first = next(d for d in listing.devices if d.dev_eui == "70b3d57ed0000007")
    assert first.record.name == "AQ station 007"
    assert first.record.tenant == "metropole"
    assert first.record.attributes == {"district": "D0"}
    assert first.source == _source()


async def test_the_api_token_goes_in_the_authorization_metadata(chirpstack: tuple[ChirpStackStandIn, str]) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [chirpstack_device("70b3d57ed0000001", "one")]
    client = ChirpStackRegistry(chirpstack_settings(url, token="not-the-token"))
    try:
        with pytest.raises(RegistryAuthFailed) as refused:
            await client.list_devices(_source(), "metropole")
    finally:
        await client.close()
    assert "UNAUTHENTICATED" in str(refused.value) and "not-the-token" not in str(refused.value)
    assert CS_TOKEN not in str(refused.value)


async def test_an_unset_token_is_said_without_calling_chirpstack(chirpstack: tuple[ChirpStackStandIn, str]) -> None:
    standin, url = chirpstack
    client = ChirpStackRegistry(chirpstack_settings(url, token=None))
    with pytest.raises(RegistryAuthFailed, match="METROPOLE_CHIRPSTACK_API_TOKEN .* not set"):
        await client.list_devices(_source(), "metropole")
    assert standin.requests == []


async def test_an_unknown_application_is_not_found(chirpstack: tuple[ChirpStackStandIn, str]) -> None:
    _, url = chirpstack
    client = ChirpStackRegistry(chirpstack_settings(url))
    try:
        with pytest.raises(RegistryNotFound, match=CS_APP):
            await client.list_devices(_source(), "metropole")
    finally:
        await client.close()


async def test_an_unreachable_chirpstack_is_unavailable() -> None:
    standin = ChirpStackStandIn(token=CS_TOKEN)
    server, url = await standin.serve()
    await server.stop(None)  # nothing listens on that port any more
    client = ChirpStackRegistry(chirpstack_settings(url))
    try:
        with pytest.raises(RegistryUnavailable, match="UNAVAILABLE"):
            await client.list_devices(_source(), "metropole")
    finally:
        await client.close()


async def test_a_list_longer_than_max_devices_is_refused_whole(chirpstack: tuple[ChirpStackStandIn, str]) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [chirpstack_device(f"70b3d57ed000{i:04x}", f"d{i}") for i in range(12)]
    client = ChirpStackRegistry(chirpstack_settings(url, max_devices=10))
    try:
        with pytest.raises(RegistryAnswerError, match="12 devices, more than max_devices = 10"):
            await client.list_devices(_source(), "metropole")
    finally:
        await client.close()


async def test_a_page_larger_than_asked_is_refused_whatever_its_total_count(
    chirpstack: tuple[ChirpStackStandIn, str],
) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [chirpstack_device(f"70b3d57ed000{i:04x}", f"d{i}") for i in range(150)]
    standin.lying_total = 1
    client = ChirpStackRegistry(chirpstack_settings(url, max_devices=120))
    try:
        with pytest.raises(RegistryAnswerError, match="a page of 150 devices"):
            await client.list_devices(_source(), "metropole")
    finally:
        await client.close()


async def test_location_tags_give_the_location_and_bad_devices_are_skipped_not_fatal(
    chirpstack: tuple[ChirpStackStandIn, str],
) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [
        chirpstack_device(
            "70B3-D57E-D000-0001",
            "located",
            tags={"latitude": "45.7605", "longitude": "4.8597", "altitude": "170", "refPointOfInterest": "urn:x:1"},
        ),
        chirpstack_device("70b3d57ed0000002", "off the map", tags={"latitude": "95", "longitude": "4.8"}),
        chirpstack_device("not-an-eui", "broken"),
    ]
    client = ChirpStackRegistry(chirpstack_settings(url))
    try:
        listing = await client.list_devices(_source(), "metropole")
    finally:
        await client.close()
    by_eui = {d.dev_eui: d for d in listing.devices}
    assert set(by_eui) == {"70b3d57ed0000001", "70b3d57ed0000002"}
    assert by_eui["70b3d57ed0000001"].record.location == Location(45.7605, 4.8597, 170.0, "registry")
    assert by_eui["70b3d57ed0000001"].record.attributes == {"refPointOfInterest": "urn:x:1"}
    assert by_eui["70b3d57ed0000002"].record.location is None  # out of range: no location, tags kept as they are
    assert by_eui["70b3d57ed0000002"].record.attributes == {"latitude": "95", "longitude": "4.8"}
    assert len(listing.skipped) == 1 and "'not-an-eui'" in listing.skipped[0]


async def test_a_failing_chirpstack_is_unavailable(chirpstack: tuple[ChirpStackStandIn, str]) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = []
    standin.failing = grpc.StatusCode.UNAVAILABLE
    client = ChirpStackRegistry(chirpstack_settings(url))
    try:
        with pytest.raises(RegistryUnavailable):
            await client.list_devices(_source(), "metropole")
    finally:
        await client.close()


def test_api_urls_become_grpc_targets() -> None:
    assert grpc_target("http://chirpstack:8080") == ("chirpstack:8080", False)
    assert grpc_target("http://chirpstack") == ("chirpstack:8080", False)
    assert grpc_target("https://cs.example.org") == ("cs.example.org:443", True)
    assert grpc_target("https://[::1]:8443") == ("[::1]:8443", True)
    with pytest.raises(ValueError):
        grpc_target("chirpstack:8080")
