"""The periodic import: persisted, merged with [[device]] entries, robust to failures, wired
into ``listen``. Against the ChirpStack gRPC stand-in built from the official definitions and
the TTS HTTP stand-in (``standins``); time is driven by the test (fake clocks, no sleeping)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import aiohttp
import grpc
import pytest

from adapter.app import AdapterService, build_pipeline
from adapter.config import load_config
from adapter.mapping.entities import DeviceRecord
from adapter.registry import RegistryImporter, RegistryStore, open_clients, registry_devices, store_path
from tests.registry.conftest import CS_APP, CS_TOKEN, NOW, TTS_APP, chirpstack_settings, tts_settings
from tests.registry.standins import ChirpStackStandIn, TtsStandIn, chirpstack_device, tts_device

EUI_A, EUI_B, EUI_C = "70b3d57ed0000a01", "70b3d57ed0000b02", "70b3d57ed0000c03"


class Clock:
    """The test's clock: UTC stamps and a monotonic reading that move only when told."""

    def __init__(self) -> None:
        self.now, self.seconds = NOW, 0.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.seconds += seconds


async def test_an_import_is_kept_across_restarts_and_a_failure_keeps_the_last_good_one(
    chirpstack: tuple[ChirpStackStandIn, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [chirpstack_device(EUI_A, "Part-Dieu"), chirpstack_device(EUI_B, "Bellecour")]
    settings = [chirpstack_settings(url)]
    clock = Clock()
    async with aiohttp.ClientSession() as session:
        store = RegistryStore(tmp_path / "registry.sqlite")
        importer = RegistryImporter(settings, {}, store, open_clients(settings, session), clock=lambda: clock.now)
        (report,) = await importer.refresh()
        assert report.error is None and report.devices == 2
        await importer.close()
        store.close()

        # a restart: a new importer over the same file, ChirpStack now failing
        standin.failing = grpc.StatusCode.UNAVAILABLE
        clock.advance(3600)
        store = RegistryStore(tmp_path / "registry.sqlite")
        seen: list[dict[str, DeviceRecord]] = []
        importer = RegistryImporter(
            settings,
            {},
            store,
            open_clients(settings, session),
            clock=lambda: clock.now,
            on_change=lambda devices: seen.append(dict(devices)),
        )
        assert set(importer.devices()) == {EUI_A, EUI_B}  # before any import: the stored one
        with caplog.at_level(logging.WARNING, logger="adapter.registry"):
            (report,) = await importer.refresh()
        assert report.error is not None and report.kept == 2
        assert set(seen[-1]) == {EUI_A, EUI_B} and seen[-1][EUI_A].name == "Part-Dieu"
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].exc_info is None
        assert "UNAVAILABLE" in warnings[0].getMessage() and "2 devices of the last good import are kept" in (
            warnings[0].getMessage()
        )
        (status,) = store.statuses()
        assert status.succeeded_at == NOW and status.attempted_at == NOW + timedelta(seconds=3600)

        # back up: a device deleted in ChirpStack leaves the registry, a renamed one follows
        standin.failing = None
        standin.applications[CS_APP] = [chirpstack_device(EUI_A, "Part-Dieu (moved)")]
        await importer.refresh()
        assert set(seen[-1]) == {EUI_A} and seen[-1][EUI_A].name == "Part-Dieu (moved)"
        (stored,) = store.devices()
        assert stored.first_imported_at == NOW and stored.device.source.imported_at == clock.now
        await importer.close()
        store.close()


async def test_hand_typed_devices_win_and_the_conflict_is_logged(
    chirpstack: tuple[ChirpStackStandIn, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [chirpstack_device(EUI_A, "from ChirpStack"), chirpstack_device(EUI_B, "other")]
    typed = {
        EUI_A: DeviceRecord(EUI_A, name="typed by hand", tenant="eau"),
        EUI_C: DeviceRecord(EUI_C, name="only typed"),
    }
    settings = [chirpstack_settings(url)]
    async with aiohttp.ClientSession() as session:
        store = RegistryStore(":memory:")
        importer = RegistryImporter(settings, typed, store, open_clients(settings, session))
        with caplog.at_level(logging.INFO, logger="adapter.registry"):
            await importer.refresh()
            devices = importer.devices()
            assert importer.devices() == devices
        await importer.close()
    assert devices[EUI_A] == typed[EUI_A] and devices[EUI_C] == typed[EUI_C]
    assert devices[EUI_B].name == "other" and devices[EUI_B].tenant == "metropole"
    conflicts = [r for r in caplog.records if "[[device]] entry" in r.getMessage()]
    assert len(conflicts) == 1  # logged once, although the registry was merged twice
    assert conflicts[0].levelno == logging.WARNING and "another collectivity's claim" in conflicts[0].getMessage()


async def test_the_periodic_refresh_follows_each_registrys_interval(
    chirpstack: tuple[ChirpStackStandIn, str],
    tts: tuple[TtsStandIn, str],
) -> None:
    cs, cs_url = chirpstack
    tts_standin, tts_url = tts
    cs.applications[CS_APP] = [chirpstack_device(EUI_A, "cs")]
    tts_standin.applications[TTS_APP] = [tts_device("b", EUI_B.upper(), TTS_APP, name="tts")]
    settings = [chirpstack_settings(cs_url), tts_settings(tts_url)]  # every 3600 s and every 600 s
    clock = Clock()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:  # the test's sleep: the clock jumps, nothing waits
        sleeps.append(seconds)
        if len(sleeps) == 7:
            raise asyncio.CancelledError
        clock.advance(seconds)

    async with aiohttp.ClientSession() as session:
        importer = RegistryImporter(
            settings,
            {},
            RegistryStore(":memory:"),
            open_clients(settings, session),
            clock=lambda: clock.now,
            monotonic=lambda: clock.seconds,
        )
        with pytest.raises(asyncio.CancelledError):
            await importer.run(sleep=sleep)
        await importer.close()
    assert sleeps == [600.0] * 7
    assert len(cs.requests) == 2  # at 0 and at 3600
    assert len(tts_standin.requests) == 7  # at 0, 600, ... 3600
    devices = importer.devices()
    assert (devices[EUI_A].tenant, devices[EUI_B].tenant) == ("metropole", "region")


async def test_listen_starts_with_the_stored_import_and_takes_each_new_one(
    chirpstack: tuple[ChirpStackStandIn, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [chirpstack_device(EUI_A, "first name")]
    config_file = tmp_path / "adapter.toml"
    config_file.write_text(
        f"""
[adapter]
models = "{Path(__file__).resolve().parents[2] / "models"}"
state_dir = "{tmp_path / "state"}"

[[collectivity]]
tenant = "metropole"
name = "Métropole"

[[connection]]
name = "metropole-chirpstack"
collectivity = "metropole"
lns = "chirpstack"
transport = "webhook"
allow_unauthenticated = true

[[registry]]
connection = "metropole-chirpstack"
url = "{url}"
applications = ["{CS_APP}"]
token_env = "METROPOLE_CHIRPSTACK_API_TOKEN"
interval_s = 3600

[[device]]
dev_eui = "{EUI_C}"
name = "typed"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("METROPOLE_CHIRPSTACK_API_TOKEN", CS_TOKEN)
    config = load_config(config_file)
    (registry,) = config.registries
    assert (registry.lns, registry.collectivity, registry.token) == ("chirpstack", "metropole", CS_TOKEN)

    async with aiohttp.ClientSession() as session:  # an earlier `registry import --once`
        store = RegistryStore(store_path(config.state_dir))
        importer = RegistryImporter(config.registries, config.devices, store, open_clients(config.registries, session))
        await importer.refresh()
        await importer.close()
        store.close()
    pipeline = build_pipeline(config, config.state_dir)
    try:
        assert set(pipeline.devices) == {EUI_A, EUI_C} and pipeline.devices[EUI_A].tenant == "metropole"
    finally:
        pipeline.close()

    standin.applications[CS_APP] = [chirpstack_device(EUI_A, "renamed in ChirpStack")]
    async with AdapterService(config, http_port=0) as service:
        assert service.pipeline is not None and service.registry is not None
        assert service.pipeline.devices[EUI_A].name in ("first name", "renamed in ChirpStack")
        await service.registry.refresh()  # the test decides when a period has passed
        assert service.pipeline.devices[EUI_A].name == "renamed in ChirpStack"
        assert service.pipeline.devices[EUI_C].name == "typed"
    assert registry_devices(config, None) == config.devices
