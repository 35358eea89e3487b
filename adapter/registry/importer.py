"""The periodic import: every configured registry, every ``interval_s``, into the store.

``RegistryImporter.refresh`` is one step: for each application of each registry due, list
its devices (``adapter.registry.chirpstack`` or ``.tts``); a complete listing replaces that
application's entries in the store, a failure leaves them as they were and is logged as one
warning (no traceback), tried again at the next period. After the step the merged registry
(``adapter.registry.merge``) goes to ``on_change``: ``listen`` gives it to the pipeline.
``run`` repeats the step on its own clock and sleep, both injectable, so tests decide when
a period passes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from adapter.config import AdapterConfig, RegistrySettings
from adapter.mapping.entities import DeviceDirectory, DeviceRecord
from adapter.registry.base import RegistryClient
from adapter.registry.exceptions import RegistryError
from adapter.registry.merge import merge
from adapter.registry.model import ImportSource
from adapter.registry.store import RegistryStore

__all__ = ["ApplicationReport", "RegistryImporter", "open_clients", "registry_devices", "store_path"]

log = logging.getLogger(__name__)


def store_path(state_dir: Path) -> Path:
    return state_dir / "registry.sqlite"


@dataclass(frozen=True, slots=True)
class ApplicationReport:
    """What one application's import did: ``devices`` imported, or the ``error`` that kept the
    last good import in place (``kept`` devices)."""

    registry: str
    application: str
    devices: int = 0
    skipped: tuple[str, ...] = ()
    error: str | None = None
    kept: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"registry": self.registry, "application": self.application}
        if self.error is None:
            out.update(status="imported", devices=self.devices, skipped=list(self.skipped))
        else:
            out.update(status="failed", error=self.error, kept=self.kept)
        return out


def open_clients(registries: Sequence[RegistrySettings], session: aiohttp.ClientSession) -> dict[str, RegistryClient]:
    """One client per registry, by its connection name (TTS shares ``session``)."""
    from adapter.registry.chirpstack import ChirpStackRegistry
    from adapter.registry.tts import TtsRegistry

    clients: dict[str, RegistryClient] = {}
    for settings in registries:
        clients[settings.connection] = (
            ChirpStackRegistry(settings) if settings.lns == "chirpstack" else TtsRegistry(settings, session)
        )
    return clients


def registry_devices(config: AdapterConfig, state_dir: Path | None) -> Mapping[str, DeviceRecord]:
    """The registry a pipeline starts with: the ``[[device]]`` entries and the last good
    imports kept in ``state_dir`` (none without state or ``[[registry]]``)."""
    if state_dir is None or not config.registries:
        return config.devices
    store = RegistryStore(store_path(state_dir))
    try:
        devices, _ = merge(config.devices, store.devices(), config.registries)
    finally:
        store.close()
    return devices


class RegistryImporter:
    """Imports the configured registries into ``store`` and hands the merged registry on.

    ``clients`` maps each registry's connection name to its ``RegistryClient``; ``clock``
    stamps the imports (UTC), ``monotonic`` paces ``run``.
    """

    def __init__(
        self,
        registries: Sequence[RegistrySettings],
        configured: Mapping[str, DeviceRecord],
        store: RegistryStore,
        clients: Mapping[str, RegistryClient],
        *,
        on_change: Callable[[Mapping[str, DeviceRecord]], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registries = tuple(registries)
        self.configured = configured
        self.store = store
        self.clients = clients
        self.on_change = on_change
        self.clock = clock
        self.monotonic = monotonic
        self._next: dict[str, float] = {r.connection: float("-inf") for r in self.registries}
        self._logged: set[tuple[str, str, str]] = set()
        gone = store.forget([(r.connection, a) for r in self.registries for a in r.applications])
        if gone:
            log.info(
                "device registry: %d imported devices of registries or applications no longer configured dropped", gone
            )

    def devices(self) -> DeviceDirectory:
        """The merged registry (``adapter.registry.merge``); each conflict is logged once."""
        devices, conflicts = merge(self.configured, self.store.devices(), self.registries)
        for conflict in conflicts:
            key = (conflict.dev_eui, conflict.kept, conflict.ignored)
            if key not in self._logged:
                self._logged.add(key)
                (log.warning if conflict.foreign else log.info)("device registry: %s", conflict.message())
        return devices

    async def refresh(self, names: Iterable[str] | None = None) -> list[ApplicationReport]:
        """Import every application of the registries named (all when None), then hand the
        merged registry to ``on_change``. Never raises for a network server's failure."""
        wanted = set(names) if names is not None else None
        reports = []
        for settings in self.registries:
            if wanted is None or settings.connection in wanted:
                for application in settings.applications:
                    reports.append(await self._import(settings, application))
        if self.on_change is not None:
            self.on_change(self.devices())
        return reports

    async def _import(self, settings: RegistrySettings, application: str) -> ApplicationReport:
        at = self.clock()
        source = ImportSource(settings.lns, settings.connection, application, at)
        client = self.clients[settings.connection]
        try:
            listing = await client.list_devices(source, settings.collectivity)
        except RegistryError as exc:
            return self._failed(settings, application, str(exc), at)
        except Exception as exc:  # a bug must not stop the adapter either: said in one line
            log.debug("device registry import of %s failed", settings.connection, exc_info=True)
            return self._failed(settings, application, f"unexpected {type(exc).__name__}: {exc}", at)
        self.store.replace(settings.connection, application, listing.devices, at)
        for line in listing.skipped:
            log.info("device registry %s: %s", settings.connection, line)
        log.info(
            "device registry %s: %d devices imported from application %s",
            settings.connection,
            len(listing.devices),
            application,
        )
        return ApplicationReport(settings.connection, application, len(listing.devices), listing.skipped)

    def _failed(self, settings: RegistrySettings, application: str, error: str, at: datetime) -> ApplicationReport:
        self.store.failed(settings.connection, application, error, at)
        kept = sum(
            1
            for s in self.store.devices()
            if s.device.source.connection == settings.connection and s.device.source.application == application
        )
        log.warning(
            "device registry import failed: %s; the %d devices of the last good import are kept, next try in %g s",
            error,
            kept,
            settings.interval_s,
        )
        return ApplicationReport(settings.connection, application, error=error, kept=kept)

    def due(self) -> list[str]:
        """The registries whose period has come (all of them before the first step)."""
        now = self.monotonic()
        return [r.connection for r in self.registries if self._next[r.connection] <= now]

    async def step(self) -> list[ApplicationReport]:
        """Import the registries that are due, and schedule their next import."""
        names = self.due()
        if not names:
            return []
        reports = await self.refresh(names)
        now = self.monotonic()
        for settings in self.registries:
            if settings.connection in names:
                self._next[settings.connection] = now + settings.interval_s
        return reports

    async def run(self, *, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        """Import each registry every ``interval_s``, until cancelled."""
        if not self.registries:
            return
        while True:
            try:
                await self.step()
            except Exception as exc:  # the store itself failed (disk full...): said, tried next period
                log.error("device registry import could not be stored: %s: %s", type(exc).__name__, exc)
                now = self.monotonic()
                for settings in self.registries:
                    self._next[settings.connection] = max(self._next[settings.connection], now + settings.interval_s)
            await sleep(max(0.0, min(self._next.values()) - self.monotonic()))

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
