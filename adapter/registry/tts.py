"""The Things Stack v3's device registry, through its HTTP API (the Identity Server's
``EndDeviceRegistry.List``).

``GET {url}/api/v3/applications/{application}/devices?field_mask=name,description,attributes,locations``
with ``limit`` and ``page`` (pages count from 1; TTS takes 0 as the first page too), and the
total in the ``X-Total-Count`` header. The answer is ``{"end_devices": [...]}`` (the key is
left out when there is none); each device has ``ids`` (``device_id``, ``dev_eui`` in hex,
``application_ids``), ``name``, ``description``, ``attributes`` (string to string, TTS's
tags) and ``locations`` (keyed by origin: ``user`` is the one set in the registry, preferred;
else the first whose ``source`` is ``SOURCE_REGISTRY``). A device without a DevEUI (possible
for ABP) is skipped and named in the report.

The API key goes in ``Authorization: Bearer <key>``; it needs the right to read the
application's devices (``RIGHT_APPLICATION_DEVICES_READ``).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from adapter.config import RegistrySettings
from adapter.httpclient import read_limited
from adapter.registry.base import DeviceListing
from adapter.registry.exceptions import (
    DeviceRefused,
    RegistryAnswerError,
    RegistryAuthFailed,
    RegistryNotFound,
    RegistryUnavailable,
)
from adapter.registry.model import ImportedDevice, ImportSource, imported_device, registry_location
from adapter.uplink import Location

__all__ = ["TtsRegistry"]

PAGE = 100
FIELD_MASK = "name,description,attributes,locations"
#: one page of 100 devices is a few tens of KiB; an answer beyond this is refused
MAX_PAGE_BYTES = 4 * 1024 * 1024
_TOTAL = re.compile(r"[0-9]{1,9}")


class TtsRegistry:
    """The devices of TTS applications, over the adapter's shared ``aiohttp`` session."""

    lns = "tts"

    def __init__(self, settings: RegistrySettings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session
        self._ssl: ssl.SSLContext | bool = True
        self._ssl_ready = False

    def _tls(self) -> ssl.SSLContext | bool:
        if not self._ssl_ready:
            if self._settings.ca_file is not None:
                self._ssl = ssl.create_default_context(cafile=str(self._settings.ca_file))
            self._ssl_ready = True
        return self._ssl

    async def list_devices(self, source: ImportSource, tenant: str) -> DeviceListing:
        """Every device of the application, page after page; raises ``RegistryError``."""
        settings, application = self._settings, source.application
        where = f"The Things Stack {URL(settings.url).host} application {application}"
        if not settings.token:
            raise RegistryAuthFailed(f"{where}: the variable {settings.token_env} holding the API key is not set")
        url = URL(settings.url).joinpath("api", "v3", "applications", application, "devices")
        devices: dict[str, ImportedDevice] = {}
        skipped: list[str] = []
        seen = 0
        for page in range(1, settings.max_devices // PAGE + 3):  # bounded, whatever the total says
            listed, total = await self._page(url, page, where)
            if total is not None and total > settings.max_devices:
                raise RegistryAnswerError(f"{where}: {total} devices, more than max_devices = {settings.max_devices}")
            for raw in listed:
                try:
                    device, dropped = _device(raw, source, tenant)
                except DeviceRefused as exc:
                    skipped.append(str(exc))
                    continue
                devices.setdefault(device.dev_eui, device)
                skipped += [f"device {device.dev_eui}: tag {d} dropped" for d in dropped]
            seen += len(listed)
            if (total is not None and seen >= total) or (total is None and len(listed) < PAGE):
                return DeviceListing(tuple(devices.values()), tuple(skipped))
            if not listed:
                break
            if seen > settings.max_devices:
                raise RegistryAnswerError(f"{where}: more than max_devices = {settings.max_devices} devices")
        raise RegistryAnswerError(f"{where}: the device list ended before its total count (it changed while read)")

    async def _page(self, url: URL, page: int, where: str) -> tuple[list[Any], int | None]:
        settings = self._settings
        params = {"field_mask": FIELD_MASK, "limit": str(PAGE), "page": str(page)}
        headers = {"Authorization": f"Bearer {settings.token}", "Accept": "application/json"}
        try:
            tls = self._tls()
        except OSError as exc:
            raise RegistryUnavailable(f"{where}: cannot read the CA file: {exc.strerror or exc}") from exc
        try:
            async with self._session.get(
                url,
                params=params,
                headers=headers,
                ssl=tls,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=settings.timeout_s),
            ) as response:
                if response.status in (401, 403):
                    raise RegistryAuthFailed(f"{where}: HTTP {response.status}: check the API key and its rights")
                if response.status == 404:
                    raise RegistryNotFound(f"{where}: HTTP 404, no such application")
                if response.status == 429 or response.status >= 500:
                    raise RegistryUnavailable(f"{where}: HTTP {response.status}")
                if response.status != 200:
                    raise RegistryAnswerError(f"{where}: HTTP {response.status}")
                body = await _bounded(response, where)
                total_header = response.headers.get("X-Total-Count")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise RegistryUnavailable(f"{where}: {type(exc).__name__}: {exc}") from exc
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RegistryAnswerError(f"{where}: the answer is not JSON") from exc
        listed = answer.get("end_devices", []) if isinstance(answer, dict) else None
        if not isinstance(listed, list):
            raise RegistryAnswerError(f"{where}: the answer is not an object with an end_devices list")
        total = None
        if total_header is not None:
            if not _TOTAL.fullmatch(total_header.strip()):
                raise RegistryAnswerError(f"{where}: X-Total-Count {total_header[:20]!r} is not a count")
            total = int(total_header)
        return listed, total

    async def close(self) -> None:
        """Nothing to release: the session belongs to the caller."""


async def _bounded(response: aiohttp.ClientResponse, where: str) -> bytes:
    if response.content_length is not None and response.content_length > MAX_PAGE_BYTES:
        raise RegistryAnswerError(f"{where}: an answer of {response.content_length} bytes, more than {MAX_PAGE_BYTES}")
    body = await read_limited(response, MAX_PAGE_BYTES)
    if body is None:
        raise RegistryAnswerError(f"{where}: an answer of more than {MAX_PAGE_BYTES} bytes")
    return body


def _location(locations: Any) -> Location | None:
    if not isinstance(locations, Mapping):
        return None
    candidates = [locations.get("user")]
    candidates += [
        v
        for k, v in sorted((k, v) for k, v in locations.items() if isinstance(k, str) and k != "user")
        if isinstance(v, Mapping) and v.get("source") == "SOURCE_REGISTRY"
    ]
    for found in candidates:
        if isinstance(found, Mapping):
            location = registry_location(found.get("latitude"), found.get("longitude"), found.get("altitude"))
            if location is not None:
                return location
    return None


def _device(raw: Any, source: ImportSource, tenant: str) -> tuple[ImportedDevice, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise DeviceRefused(f"an entry of application {source.application!r} is not a device object")
    ids = raw.get("ids")
    ids = ids if isinstance(ids, Mapping) else {}
    return imported_device(
        dev_eui=ids.get("dev_eui"),
        tenant=tenant,
        source=source,
        name=raw.get("name"),
        description=raw.get("description"),
        tags=raw.get("attributes"),
        location=_location(raw.get("locations")),
        device_id=ids.get("device_id"),
    )
