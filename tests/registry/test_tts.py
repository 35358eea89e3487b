"""The Things Stack v3's registry over its HTTP API, against a stand-in answering as TTS
documents it (``standins.tts_app``)."""

from __future__ import annotations

import aiohttp
import pytest

from adapter.registry import DeviceListing, ImportSource, RegistryAuthFailed, RegistryNotFound, RegistryUnavailable
from adapter.registry import tts as tts_module
from adapter.registry.exceptions import RegistryAnswerError
from adapter.registry.tts import TtsRegistry
from adapter.uplink import Location
from tests.registry.conftest import NOW, TTS_APP, TTS_KEY, tts_settings
from tests.registry.standins import TtsStandIn, tts_device


def _source() -> ImportSource:
    return ImportSource("tts", "region-tts", TTS_APP, NOW)


async def _list(url: str, key: str | None = TTS_KEY) -> DeviceListing:
    async with aiohttp.ClientSession() as session:
        return await TtsRegistry(tts_settings(url, key=key), session).list_devices(_source(), "region")


async def test_every_page_is_read_with_the_field_mask_and_the_total_count(tts: tuple[TtsStandIn, str]) -> None:
    standin, url = tts
    standin.applications[TTS_APP] = [
        tts_device(f"aq-{i:03d}", f"70B3D57ED000{i:04X}", TTS_APP, name=f"Air {i}", attributes={"site": f"s{i % 3}"})
        for i in range(230)
    ]
    listing = await _list(url)
    assert [r["page"] for r in standin.requests] == ["1", "2", "3"]
    assert {r["field_mask"] for r in standin.requests} == {"name,description,attributes,locations"}
    assert {r["limit"] for r in standin.requests} == {"100"}
    assert len(listing.devices) == 230
    device = next(d for d in listing.devices if d.device_id == "aq-004")
    assert device.dev_eui == "70b3d57ed0000004"
    assert device.record.name == "Air 4" and device.record.tenant == "region"
    assert device.record.attributes == {"site": "s1"}


async def test_the_user_location_description_and_a_device_without_eui(tts: tuple[TtsStandIn, str]) -> None:
    standin, url = tts
    standin.applications[TTS_APP] = [
        tts_device(
            "school-1",
            "70B3D57ED0001A01",
            TTS_APP,
            name="École Jules Ferry",
            description="Salle 12",
            location={"latitude": 48.1147, "longitude": -1.6794, "altitude": 40},
        ),
        tts_device("abp-node", None, TTS_APP, name="ABP without EUI"),
    ]
    listing = await _list(url)
    (device,) = listing.devices
    assert device.record.location == Location(48.1147, -1.6794, 40.0, "registry")
    assert device.record.attributes == {"description": "Salle 12"}
    assert device.description == "Salle 12"
    assert listing.skipped == ("device abp-node of application 'region-air' has no DevEUI",)


async def test_an_empty_application_answers_an_object_without_the_key(tts: tuple[TtsStandIn, str]) -> None:
    standin, url = tts
    standin.applications[TTS_APP] = []
    listing = await _list(url)
    assert listing.devices == () and len(standin.requests) == 1


@pytest.mark.parametrize(
    ("status", "error"), [(503, RegistryUnavailable), (429, RegistryUnavailable), (400, RegistryAnswerError)]
)
async def test_http_failures_are_registry_errors(tts: tuple[TtsStandIn, str], status: int, error: type) -> None:
    standin, url = tts
    standin.status = status
    with pytest.raises(error, match=f"HTTP {status}"):
        await _list(url)


async def test_a_refused_key_and_an_unknown_application(tts: tuple[TtsStandIn, str]) -> None:
    _, url = tts
    with pytest.raises(RegistryAuthFailed, match="HTTP 401") as refused:
        await _list(url, key="NNSXS.WRONG")
    assert "NNSXS" not in str(refused.value)
    with pytest.raises(RegistryNotFound, match="HTTP 404"):
        await _list(url)


@pytest.mark.parametrize("body", [b"<html>proxy error</html>", b"[]", b'{"end_devices": {"a": 1}}'])
async def test_an_answer_of_another_shape_is_refused(tts: tuple[TtsStandIn, str], body: bytes) -> None:
    standin, url = tts
    standin.body = body
    with pytest.raises(RegistryAnswerError):
        await _list(url)


async def test_an_oversized_answer_is_refused(tts: tuple[TtsStandIn, str], monkeypatch: pytest.MonkeyPatch) -> None:
    standin, url = tts
    standin.applications[TTS_APP] = [
        tts_device(f"d-{i}", f"70B3D57ED000{i:04X}", TTS_APP, name="x" * 90) for i in range(20)
    ]
    monkeypatch.setattr(tts_module, "MAX_PAGE_BYTES", 1024)
    with pytest.raises(RegistryAnswerError, match="more than 1024"):
        await _list(url)


async def test_an_unreachable_server_is_unavailable(unused_tcp_port: int) -> None:
    with pytest.raises(RegistryUnavailable):
        await _list(f"http://127.0.0.1:{unused_tcp_port}")
