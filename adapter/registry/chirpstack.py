"""ChirpStack v4's device registry, through its gRPC API (the official ``chirpstack-api`` stubs).

``DeviceService.List`` per application, ``limit``/``offset`` pages until ``total_count``:
each ``DeviceListItem`` carries the DevEUI, name, description and tags, all this import
needs, so no ``Get`` per device is made. Device variables are not read (they hold codec
settings and, often, secrets). ChirpStack v4 stores no device location (its API has none):
the tags ``latitude`` and ``longitude`` (decimal degrees, and ``altitude`` in metres) give
one when both are valid, and are not kept as attributes.

The API token goes in the ``authorization: Bearer <token>`` metadata of every call, as
ChirpStack requires; ``url`` is ChirpStack's API address, ``http://host:8080`` for a plain
channel, ``https://host:port`` for TLS (``ca_file`` to trust a private CA).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import grpc
from chirpstack_api.api import device_pb2, device_pb2_grpc

from adapter.config import RegistrySettings
from adapter.registry.base import DeviceListing
from adapter.registry.exceptions import (
    DeviceRefused,
    RegistryAnswerError,
    RegistryAuthFailed,
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
)
from adapter.registry.model import ImportedDevice, ImportSource, clean_text, imported_device, registry_location

__all__ = ["ChirpStackRegistry", "grpc_target"]

#: devices asked for per page (ChirpStack's web interface asks for 10 to 100)
PAGE = 100
_LOCATION_TAGS = ("latitude", "longitude", "altitude")
_AUTH = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
_UNAVAILABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}


def grpc_target(url: str) -> tuple[str, bool]:
    """``host:port`` and whether TLS is used, from ``http://host[:port]`` or ``https://...``
    (ports 8080 and 443 by default)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a ChirpStack API url is http://host:port or https://host:port, not {url!r}")
    tls = parts.scheme == "https"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or (443 if tls else 8080)}", tls


class ChirpStackRegistry:
    """The devices of ChirpStack applications, over one gRPC channel (opened on first use)."""

    lns = "chirpstack"

    def __init__(self, settings: RegistrySettings) -> None:
        self._settings = settings
        self._target, self._tls = grpc_target(settings.url)
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> device_pb2_grpc.DeviceServiceStub:
        if self._channel is None:
            if self._tls:
                ca = self._settings.ca_file.read_bytes() if self._settings.ca_file is not None else None
                credentials = grpc.ssl_channel_credentials(root_certificates=ca)
                self._channel = grpc.aio.secure_channel(self._target, credentials)
            else:
                self._channel = grpc.aio.insecure_channel(self._target)
        return device_pb2_grpc.DeviceServiceStub(self._channel)

    async def list_devices(self, source: ImportSource, tenant: str) -> DeviceListing:
        """Every device of the application, page after page; raises ``RegistryError``."""
        settings, application = self._settings, source.application
        where = f"ChirpStack {self._target} application {application}"
        if not settings.token:
            raise RegistryAuthFailed(f"{where}: the variable {settings.token_env} holding the API token is not set")
        try:
            stub = self._stub()
        except OSError as exc:  # the CA file could not be read
            raise RegistryUnavailable(f"{where}: cannot read the CA file: {exc.strerror}") from exc
        metadata = (("authorization", f"Bearer {settings.token}"),)
        devices: dict[str, ImportedDevice] = {}
        skipped: list[str] = []
        offset = 0
        for _ in range(settings.max_devices // PAGE + 2):  # bounded, whatever total_count says
            request = device_pb2.ListDevicesRequest(application_id=application, limit=PAGE, offset=offset)
            try:
                answer = await stub.List(request, metadata=metadata, timeout=settings.timeout_s)
            except grpc.aio.AioRpcError as exc:
                raise _translated(exc, where) from exc
            if answer.total_count > settings.max_devices:
                raise RegistryAnswerError(
                    f"{where}: {answer.total_count} devices, more than max_devices = {settings.max_devices}"
                )
            if (
                len(answer.result) > PAGE or offset + len(answer.result) > settings.max_devices
            ):  # whatever total_count says
                raise RegistryAnswerError(
                    f"{where}: a page of {len(answer.result)} devices (asked for {PAGE}) at offset {offset}: more than "
                    f"max_devices = {settings.max_devices} or than a page holds"
                )
            for item in answer.result:
                try:
                    device, dropped = _device(item, source, tenant)
                except DeviceRefused as exc:
                    skipped.append(str(exc))
                    continue
                devices.setdefault(device.dev_eui, device)  # a device listed twice (the list moved): the first
                skipped += [f"device {device.dev_eui}: tag {d} dropped" for d in dropped]
            offset += len(answer.result)
            if offset >= answer.total_count:
                return DeviceListing(tuple(devices.values()), tuple(skipped))
            if not answer.result:
                break
        raise RegistryAnswerError(f"{where}: the device list ended before its total count (it changed while read)")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def _device(
    item: device_pb2.DeviceListItem, source: ImportSource, tenant: str
) -> tuple[ImportedDevice, tuple[str, ...]]:
    tags = dict(item.tags)
    location = registry_location(tags.get("latitude"), tags.get("longitude"), tags.get("altitude"))
    if location is not None:
        for key in _LOCATION_TAGS:
            tags.pop(key, None)
    return imported_device(
        dev_eui=item.dev_eui,
        tenant=tenant,
        source=source,
        name=item.name,
        description=item.description,
        tags=tags,
        location=location,
    )


def _translated(exc: grpc.aio.AioRpcError, where: str) -> RegistryError:
    """The registry error of a gRPC status (the token never appears: ChirpStack does not echo it)."""
    code = exc.code()
    detail = clean_text(exc.details(), 200) or "no detail"
    message = f"{where}: {code.name} ({detail})"
    if code in _AUTH:
        return RegistryAuthFailed(f"{message}: check the API token")
    if code is grpc.StatusCode.NOT_FOUND:
        return RegistryNotFound(message)
    if code in _UNAVAILABLE:
        return RegistryUnavailable(message)
    return RegistryAnswerError(message)
