"""One decision: which registry entry the pipeline uses for each DevEUI.

- A hand-typed ``[[device]]`` entry wins whole over any import of the same DevEUI (the
  operator said so in the file); an import that disagrees is a conflict, logged.
- An imported entry counts only while its registry is configured, for an application it
  still lists, and for the collectivity of its connection as configured now (a row written
  before the connection moved to another collectivity waits for the next import).
- Two registries listing the same DevEUI: the earlier claim (first import) keeps it. So an
  import never moves a device to another collectivity: the other collectivity gets it only
  once the first network server no longer lists it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapter.config import RegistrySettings
from adapter.mapping.entities import DeviceRecord
from adapter.registry.store import StoredDevice

__all__ = ["Conflict", "merge"]


@dataclass(frozen=True, slots=True)
class Conflict:
    """A DevEUI claimed twice: what was kept, what was ignored, and whether the claims name
    different collectivities (``foreign``: someone may be trying to take a device over)."""

    dev_eui: str
    kept: str
    ignored: str
    foreign: bool

    def message(self) -> str:
        what = "another collectivity's claim" if self.foreign else "a second entry"
        return f"device {self.dev_eui}: {self.kept} is kept, {what} from {self.ignored} is ignored"


def merge(
    configured: Mapping[str, DeviceRecord],
    stored: Sequence[StoredDevice],
    registries: Sequence[RegistrySettings],
) -> tuple[dict[str, DeviceRecord], tuple[Conflict, ...]]:
    """The registry the pipeline uses, and the conflicts found (``stored`` in the store's
    order: earliest first import first)."""
    by_name = {r.connection: r for r in registries}
    claims: dict[str, StoredDevice] = {}
    conflicts: list[Conflict] = []
    for row in stored:
        device, settings = row.device, by_name.get(row.device.source.connection)
        if settings is None or device.source.application not in settings.applications:
            continue
        if device.record.tenant != settings.collectivity:
            continue
        held = claims.get(device.dev_eui)
        if held is None:
            claims[device.dev_eui] = row
            continue
        conflicts.append(Conflict(
            device.dev_eui, _named(held), _named(row), foreign=held.device.record.tenant != device.record.tenant,
        ))
    devices = {eui: row.device.record for eui, row in claims.items()}
    for eui, record in configured.items():
        claim = claims.get(eui)
        if claim is not None and claim.device.record != record:
            foreign = record.tenant is not None and record.tenant != claim.device.record.tenant
            conflicts.append(Conflict(eui, "the [[device]] entry of the configuration", _named(claim), foreign))
        devices[eui] = record
    return devices, tuple(conflicts)


def _named(row: StoredDevice) -> str:
    source = row.device.source
    return (f"the {source.lns} registry of connection {source.connection!r} (application {source.application}, "
            f"collectivity {row.device.record.tenant})")
