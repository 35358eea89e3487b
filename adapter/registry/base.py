"""The interface every device-registry source implements, and what one listing returns.

A source (``chirpstack.py``, ``tts.py``) knows one network server's API: it lists the devices
of one application, page after page, and parses each into an ``ImportedDevice`` through
``adapter.registry.model.imported_device``. It raises a ``RegistryError`` when the listing
cannot be had whole: a partial listing is never returned, so an import replaces an
application's entries only with a complete answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from adapter.registry.model import ImportedDevice, ImportSource

__all__ = ["DeviceListing", "RegistryClient"]


@dataclass(frozen=True, slots=True)
class DeviceListing:
    """The whole device list of one application: the devices kept, and what was skipped."""

    devices: tuple[ImportedDevice, ...]
    #: one line per device refused or tag dropped, for the import's report and log
    skipped: tuple[str, ...] = ()


class RegistryClient(Protocol):
    #: the network server kind, as in ``[[connection]] lns``
    lns: str

    async def list_devices(self, source: ImportSource, tenant: str) -> DeviceListing:
        """Every device of ``source.application``, as entries of ``tenant``; raises
        ``RegistryError`` when the listing cannot be had whole."""
        ...

    async def close(self) -> None:
        """Release the connection (a gRPC channel, nothing for a shared HTTP session)."""
        ...
