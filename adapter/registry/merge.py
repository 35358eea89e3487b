"""One decision: which registry entry the pipeline uses for each DevEUI.

- A hand-typed ``[[device]]`` entry wins whole over any import of the same DevEUI (the
  operator said so in the file); an import that disagrees is a conflict, logged.
- An imported entry counts only while its registry is configured, for an application it
  still lists, and for the collectivity of its connection as configured now (a row written
  before the connection moved to another collectivity waits for the next import).
- An imported entry speaks only for the events of its own collectivity (``DeviceDirectory``):
  a network server listing another collectivity's device (DevEUIs are public) names it for
  its own events and changes nothing for the other's. So an import never moves a device to
  another collectivity, and never makes another collectivity's events ``ForeignDevice``.
- Two registries of one collectivity listing the same DevEUI: the earlier claim (first
  import) keeps it. Registries of two collectivities listing it: each keeps its own, and the
  conflict is logged as foreign (someone may be trying to take a device over).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapter.config import RegistrySettings
from adapter.mapping.entities import DeviceDirectory, DeviceRecord
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
) -> tuple[DeviceDirectory, tuple[Conflict, ...]]:
    """The registry the pipeline uses, and the conflicts found (``stored`` in the store's
    order: earliest first import first)."""
    by_name = {r.connection: r for r in registries}
    claims: dict[tuple[str, str], StoredDevice] = {}  # (collectivity, DevEUI) -> the claim kept
    first: dict[str, StoredDevice] = {}  # DevEUI -> its first claim, of any collectivity
    conflicts: list[Conflict] = []
    for row in stored:
        device, settings = row.device, by_name.get(row.device.source.connection)
        if settings is None or device.source.application not in settings.applications:
            continue
        if device.record.tenant != settings.collectivity:
            continue
        earlier = first.setdefault(device.dev_eui, row)
        if earlier is not row and earlier.device.record.tenant != settings.collectivity:
            conflicts.append(Conflict(device.dev_eui, _named(earlier), _named(row), foreign=True))
        held = claims.setdefault((settings.collectivity, device.dev_eui), row)
        if held is not row:
            conflicts.append(Conflict(device.dev_eui, _named(held), _named(row), foreign=False))
    for eui, record in configured.items():
        for (_, claimed), claim in claims.items():
            if claimed == eui and claim.device.record != record:
                foreign = record.tenant is not None and record.tenant != claim.device.record.tenant
                conflicts.append(Conflict(eui, "the [[device]] entry of the configuration", _named(claim), foreign))
    directory = DeviceDirectory(configured, {key: row.device.record for key, row in claims.items()})
    return directory, tuple(conflicts)


def _named(row: StoredDevice) -> str:
    source = row.device.source
    return (
        f"the {source.lns} registry of connection {source.connection!r} (application {source.application}, "
        f"collectivity {row.device.record.tenant})"
    )
