"""Fixtures of the registry import tests: the ChirpStack gRPC stand-in, the TTS HTTP stand-in,
and registry settings pointing at them (see ``standins`` for what each reproduces)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestServer

from adapter.config import RegistrySettings
from tests.registry.standins import ChirpStackStandIn, TtsStandIn, tts_app

CS_APP = "5e0e9a6a-3f6c-4b1e-9a39-2b1f5d1c8e11"
CS_OTHER_APP = "0b7a1f52-8f8d-4c3e-a7d2-6c1b4e9f0a22"
TTS_APP = "region-air"
CS_TOKEN = "chirpstack-api-token-of-metropole"
TTS_KEY = "NNSXS.TTS-API-KEY-OF-REGION"
NOW = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)


def chirpstack_settings(
    url: str,
    *,
    token: str | None = CS_TOKEN,
    applications: tuple[str, ...] = (CS_APP,),
    connection: str = "metropole-chirpstack",
    collectivity: str = "metropole",
    max_devices: int = 10_000,
) -> RegistrySettings:
    return RegistrySettings(
        connection=connection,
        lns="chirpstack",
        collectivity=collectivity,
        url=url,
        applications=applications,
        token_env="METROPOLE_CHIRPSTACK_API_TOKEN",
        token=token,
        interval_s=3600,
        timeout_s=10,
        max_devices=max_devices,
    )


def tts_settings(
    url: str, *, key: str | None = TTS_KEY, applications: tuple[str, ...] = (TTS_APP,)
) -> RegistrySettings:
    return RegistrySettings(
        connection="region-tts",
        lns="tts",
        collectivity="region",
        url=url,
        applications=applications,
        token_env="REGION_TTS_API_KEY",
        token=key,
        interval_s=600,
        timeout_s=10,
    )


@pytest.fixture
async def chirpstack() -> AsyncIterator[tuple[ChirpStackStandIn, str]]:
    """The ChirpStack stand-in (a real gRPC server from the official definitions) and its url."""
    standin = ChirpStackStandIn(token=CS_TOKEN)
    server, url = await standin.serve()
    try:
        yield standin, url
    finally:
        await server.stop(None)


@pytest.fixture
async def tts() -> AsyncIterator[tuple[TtsStandIn, str]]:
    """The TTS HTTP stand-in on 127.0.0.1 and its base url."""
    standin = TtsStandIn(key=TTS_KEY)
    server = TestServer(tts_app(standin), host="127.0.0.1")
    await server.start_server()
    try:
        yield standin, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
