"""Device registries of the network servers, imported into the adapter's device registry.

Instead of typing each device's name, tags and location in ``[[device]]``, a ``[[registry]]``
entry of the configuration names a connection, its network server's API and applications:
ChirpStack v4 over gRPC (``chirpstack``), The Things Stack v3 over HTTP (``tts``). The
importer lists their devices every ``interval_s``, cleans what they say (``model``), keeps
the last good import in ``<state_dir>/registry.sqlite`` (``store``) and merges it with the
hand-typed entries, which win (``merge``). Imported devices always belong to the
collectivity of their connection.

Modules: ``base`` (the source interface), ``chirpstack``, ``tts`` (one per network server),
``model``, ``store``, ``merge``, ``importer``, ``exceptions``.
"""

from __future__ import annotations

from adapter.registry.base import DeviceListing, RegistryClient
from adapter.registry.exceptions import (
    DeviceRefused,
    RegistryAnswerError,
    RegistryAuthFailed,
    RegistryError,
    RegistryNotFound,
    RegistryUnavailable,
)
from adapter.registry.importer import ApplicationReport, RegistryImporter, open_clients, registry_devices, store_path
from adapter.registry.merge import Conflict, merge
from adapter.registry.model import ImportedDevice, ImportSource, clean_tags, clean_text, imported_device
from adapter.registry.store import ImportStatus, RegistryStore, StoredDevice

__all__ = [
    "ApplicationReport",
    "Conflict",
    "DeviceListing",
    "DeviceRefused",
    "ImportSource",
    "ImportStatus",
    "ImportedDevice",
    "RegistryAnswerError",
    "RegistryAuthFailed",
    "RegistryClient",
    "RegistryError",
    "RegistryImporter",
    "RegistryNotFound",
    "RegistryStore",
    "RegistryUnavailable",
    "StoredDevice",
    "clean_tags",
    "clean_text",
    "imported_device",
    "merge",
    "open_clients",
    "registry_devices",
    "store_path",
]
