"""Build NGSI-LD entities (normalized form) from decoded values and a device profile.

Pure functions: the same uplink, values and profile always give the same entities.
Checks that need memory across uplinks (a meter index that must not go down) are left
to the pipeline, which gets the cumulative values back in ``MappedEntities``.

A location is a GeoJSON Point, with the altitude as third coordinate when known, unless the
profile's ``altitude`` option drops it or moves it to its own Property (``AltitudeSpec``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from adapter.exceptions import MappingError
from adapter.mapping.profile import AltitudeSpec, AttributeSpec, DeviceProfile, EntitySpec
from adapter.mapping.units import convert
from adapter.ngsild.contexts import ADAPTER_CONTEXT, CORE_CONTEXT
from adapter.uplink import DeviceStatus, Location, Uplink

__all__ = [
    "DEVICE_CONTEXT",
    "CumulativeValue",
    "DeviceDirectory",
    "DeviceRecord",
    "MappedEntities",
    "build_device_entity",
    "build_entities",
    "device_entity_id",
    "get_path",
    "iso",
    "observation_time",
]

DEVICE_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Device/master/context.jsonld"


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """What the device registry (configuration) knows of one device."""

    dev_eui: str
    name: str | None = None
    location: Location | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    tenant: str | None = None


class DeviceDirectory(Mapping[str, DeviceRecord]):
    """The device registry as the pipeline consults it: hand-typed ``[[device]]`` entries and
    entries imported from the network servers (``adapter.registry``), which weigh differently.

    A hand-typed entry binds its DevEUI to its collectivity: an event of that device coming
    from another collectivity's connection is refused (``ForeignDevice``). An imported entry
    speaks only for the events of its own collectivity: a DevEUI is public (every join request
    carries it), so a network server listing another collectivity's device must not be able to
    take it over. As a mapping (for counts and listings) it holds the hand-typed entries, then
    the first import of each other DevEUI.
    """

    def __init__(
        self, configured: Mapping[str, DeviceRecord], imported: Mapping[tuple[str, str], DeviceRecord]
    ) -> None:
        self.configured = dict(configured)
        self.imported = {key: record for key, record in imported.items() if key[1] not in self.configured}
        self._view = dict(self.configured)
        for (_, eui), record in self.imported.items():
            self._view.setdefault(eui, record)

    def for_event(self, tenant: str, dev_eui: str) -> DeviceRecord | None:
        """The entry an event of ``tenant``'s connection uses: the hand-typed one (whose
        collectivity may refuse the event), else ``tenant``'s own import, if any."""
        return self.configured.get(dev_eui) or self.imported.get((tenant, dev_eui))

    def __getitem__(self, dev_eui: str) -> DeviceRecord:
        return self._view[dev_eui]

    def __iter__(self) -> Iterator[str]:
        return iter(self._view)

    def __len__(self) -> int:
        return len(self._view)


@dataclass(frozen=True, slots=True)
class CumulativeValue:
    entity_id: str
    attribute: str
    value: float


@dataclass(frozen=True, slots=True)
class MappedEntities:
    entities: tuple[dict[str, Any], ...]
    out_of_range: tuple[tuple[str, str], ...] = ()  # (entity id, attribute) of each flagged value
    cumulative: tuple[CumulativeValue, ...] = ()


def iso(moment: datetime) -> str:
    """NGSI-LD DateTime: UTC with a Z, milliseconds kept when present."""
    # One uplink formats its observation time for each of its entities: formatted once.
    global _last_iso
    last = _last_iso[0]
    if last.tzinfo is moment.tzinfo and last == moment and last.fold == moment.fold:  # same tzinfo: same fields
        return _last_iso[1]
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    text = text.replace("+00:00", "Z")
    _last_iso = (moment, text)
    return text


_last_iso: tuple[datetime, str] = (datetime(1970, 1, 1, tzinfo=UTC), "1970-01-01T00:00:00Z")


def get_path(data: Mapping[str, Any], path: str) -> Any:
    if type(data) is dict and "." not in path:  # the usual case: a top-level field of the decoded data
        return data.get(path)
    current: Any = data
    for part in path.split("."):
        if (type(current) is dict or isinstance(current, Mapping)) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def device_entity_id(tenant: str, dev_eui: str) -> str:
    return f"urn:ngsi-ld:Device:{tenant}:{dev_eui}"


def observation_time(uplink: Uplink, data: Mapping[str, Any], profile: DeviceProfile) -> tuple[datetime, str]:
    """When the values were observed, and where that time came from.

    The device's own clock is used only when the profile says it is trustworthy and the
    time is plausible (not after reception, not older than ``max_device_time_age_s``);
    otherwise the network server's receive time.
    """
    candidate: datetime | None = None
    if profile.observed_at == "device_time":
        candidate = uplink.device_time
    elif profile.observed_at.startswith("field:"):
        raw = get_path(data, profile.observed_at.removeprefix("field:"))
        candidate = _parse_device_time(raw)
    if candidate is not None:
        age = uplink.received_at - candidate
        if timedelta(seconds=-5) <= age <= timedelta(seconds=profile.max_device_time_age_s):
            return candidate, "device"
    return uplink.received_at, "network_server"


def _parse_device_time(raw: Any) -> datetime | None:
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw) and raw > 0:
        return datetime.fromtimestamp(raw, UTC)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else None
    return None


def build_entities(
    uplink: Uplink,
    data: Mapping[str, Any],
    profile: DeviceProfile,
    record: DeviceRecord | None,
    observed_at: datetime,
) -> MappedEntities:
    """The profile's entities for one uplink, plus the Device entity if the profile has one."""
    entities: list[dict[str, Any]] = []
    flagged: list[tuple[str, str]] = []
    cumulative: list[CumulativeValue] = []
    observed = iso(observed_at)
    for spec in profile.entities:
        entity = _build_one(uplink, data, spec, record, observed_at, observed, flagged, cumulative, profile.altitude)
        if entity is not None:
            entities.append(entity)
    if not entities:
        fields = sorted({a.field for e in profile.entities for a in e.attributes})
        raise MappingError(
            "missing_value",
            f"profile {profile.name}: the decoded data {sorted(data)} holds none of the mapped fields {fields}",
        )
    if profile.device is not None:
        entities.append(build_device_entity(uplink, profile, record, data, observed_at))
    return MappedEntities(tuple(entities), tuple(flagged), tuple(cumulative))


def _build_one(
    uplink: Uplink,
    data: Mapping[str, Any],
    spec: EntitySpec,
    record: DeviceRecord | None,
    observed_at: datetime,
    observed: str,
    flagged: list[tuple[str, str]],
    cumulative: list[CumulativeValue],
    altitude: AltitudeSpec,
) -> dict[str, Any] | None:
    entity_id = spec.id_template.format(
        tenant=uplink.origin.tenant,
        dev_eui=uplink.dev_eui,
        device_id=uplink.device_id,
        application_id=uplink.application_id,
    )
    entity: dict[str, Any] = {"id": entity_id, "type": spec.type}
    measured = 0
    for attr in spec.attributes:
        raw = get_path(data, attr.field)
        if raw is None:
            if attr.required:
                raise MappingError(
                    "missing_value", f"{spec.type}.{attr.name} needs decoded field {attr.field!r}, absent"
                )
            continue
        value = _convert_value(raw, attr, spec.type)
        prop: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed}
        if attr.unit:
            prop["unitCode"] = attr.unit
        if (
            attr.valid_range
            and isinstance(value, int | float)
            and not (attr.valid_range[0] <= value <= attr.valid_range[1])
        ):
            # Kept, not dropped: a sensor reading outside the physical range is evidence too.
            prop["qualityFlag"] = {"type": "Property", "value": "outOfRange"}
            prop["validRange"] = {"type": "Property", "value": list(attr.valid_range)}
            flagged.append((entity_id, attr.name))
        if attr.cumulative:
            cumulative.append(CumulativeValue(entity_id, attr.name, float(value)))
        entity[attr.name] = prop
        measured += 1
    if measured == 0:
        return None
    for name in spec.times:
        entity[name] = _datetime_property(observed)
    if spec.period is not None:
        seconds = spec.period.seconds
        if spec.period.seconds_field is not None:
            found = get_path(data, spec.period.seconds_field)
            if isinstance(found, int | float) and not isinstance(found, bool) and found > 0:
                seconds = float(found)
        if seconds is None:
            raise MappingError("missing_value", f"{spec.type}: no observation period ({spec.period.seconds_field})")
        entity[spec.period.start_attribute] = _datetime_property(iso(observed_at - timedelta(seconds=seconds)))
        entity[spec.period.end_attribute] = _datetime_property(observed)
    location = _location(uplink, data, spec, record)
    if location is not None:
        _set_location(entity, location, altitude)
    for name, value in spec.static.items():
        entity[name] = {"type": "Property", "value": value}
    for name in spec.from_registry:
        value = (record.attributes if record else {}).get(name)
        if value is None:
            raise MappingError(
                "missing_value",
                f"{spec.type}.{name} comes from the device registry, which has none for {uplink.dev_eui}",
            )
        entity[name] = _relationship(value) if name.startswith("ref") else {"type": "Property", "value": value}
    device_id = device_entity_id(uplink.origin.tenant, uplink.dev_eui)
    for name, target in spec.relationships.items():
        targets = target if isinstance(target, tuple) else (target,)
        objects = [device_id if t == "device" else _fill(t, uplink) for t in targets]
        entity[name] = _relationship(objects if isinstance(target, tuple) else objects[0])
    entity["@context"] = [spec.context, ADAPTER_CONTEXT, CORE_CONTEXT]
    return entity


def _convert_value(raw: Any, attr: AttributeSpec, entity_type: str) -> Any:
    where = f"{entity_type}.{attr.name} (field {attr.field!r})"
    if attr.value_map is not None:
        key = str(raw).lower() if isinstance(raw, bool) else str(raw)
        if key not in attr.value_map:
            raise MappingError("bad_value", f"{where}: {raw!r} is not one of {sorted(attr.value_map)}")
        return attr.value_map[key]
    if attr.value_type == "string":
        if not isinstance(raw, str):
            raise MappingError("bad_value", f"{where}: expected a string, got {raw!r}")
        return raw
    if attr.value_type == "boolean":
        if not isinstance(raw, bool):
            raise MappingError("bad_value", f"{where}: expected a boolean, got {raw!r}")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise MappingError("bad_value", f"{where}: expected a number, got {raw!r}")
    if not math.isfinite(raw):
        raise MappingError("non_finite_value", f"{where}: {raw} is not a finite number")
    value: float = raw
    if attr.scale is not None:
        value = value * attr.scale
    if attr.from_unit and attr.unit:
        value = convert(value, attr.from_unit, attr.unit)
    if attr.value_type == "integer":
        return int(round(value))
    if value is raw:
        return raw
    # Scaling leaves binary noise (0.1 * 3 = 0.30000000000000004); 10 significant digits is
    # beyond any LoRaWAN sensor's resolution.
    return float(f"{value:.10g}")


def _fill(template: str, uplink: Uplink) -> str:
    return template.format(
        tenant=uplink.origin.tenant,
        dev_eui=uplink.dev_eui,
        device_id=uplink.device_id,
        application_id=uplink.application_id,
    )


def _datetime_property(value: str) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": value}}


def _relationship(target: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def _set_location(entity: dict[str, Any], location: Location, altitude: AltitudeSpec) -> None:
    """``location`` as a GeoJSON Point; its altitude kept, dropped or set apart per the profile."""
    coordinates = [location.longitude, location.latitude]
    if location.altitude is not None:
        if altitude.mode == "keep":
            coordinates.append(location.altitude)
        elif altitude.property is not None:  # mode "property"
            entity[altitude.property] = {"type": "Property", "value": location.altitude, "unitCode": "MTR"}
    entity["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": coordinates}}


def _location(
    uplink: Uplink, data: Mapping[str, Any], spec: EntitySpec, record: DeviceRecord | None
) -> Location | None:
    if spec.location is None:
        return None
    if spec.location.startswith("field:"):
        found = get_path(data, spec.location.removeprefix("field:"))
        if isinstance(found, Mapping):
            lat, lon = found.get("latitude"), found.get("longitude")
            if (
                isinstance(lat, int | float)
                and isinstance(lon, int | float)
                and -90 <= lat <= 90
                and -180 <= lon <= 180
            ):
                alt = found.get("altitude")
                # a boolean is not an altitude, nor is an infinite one (which no broker stores)
                if isinstance(alt, bool) or not isinstance(alt, int | float) or not math.isfinite(alt):
                    alt = None
                return Location(float(lat), float(lon), float(alt) if alt is not None else None, "gps")
    # The registry is what the owner surveyed; the LNS location may be a rough estimate.
    if record is not None and record.location is not None:
        return record.location
    return uplink.location


def build_device_entity(
    event: Uplink | DeviceStatus,
    profile: DeviceProfile,
    record: DeviceRecord | None,
    data: Mapping[str, Any] | None,
    observed_at: datetime,
) -> dict[str, Any]:
    """The Smart Data Models ``Device`` entity of the sensor, as this event updates it."""
    spec = profile.device
    assert spec is not None
    observed = iso(observed_at)
    entity: dict[str, Any] = {
        "id": device_entity_id(event.origin.tenant, event.dev_eui),
        "type": "Device",
        "category": {"type": "Property", "value": list(spec.category)},
        "controlledProperty": {"type": "Property", "value": list(spec.controlled_property)},
        "supportedProtocol": {"type": "Property", "value": ["lora"]},
        "name": {"type": "Property", "value": (record.name if record and record.name else event.device_id)},
        "deviceState": {"type": "Property", "value": "ok", "observedAt": observed},
        "dateLastValueReported": _datetime_property(observed),
    }
    if isinstance(event, Uplink):
        rssis = [g.rssi for g in event.gateways if g.rssi is not None]
        if rssis:
            entity["rssi"] = {"type": "Property", "value": max(rssis), "unitCode": "2N", "observedAt": observed}
        if spec.battery is not None and data is not None:
            raw = get_path(data, spec.battery.field)
            if raw is not None:
                level = _convert_value(raw, spec.battery, "Device")
                entity["batteryLevel"] = {"type": "Property", "value": level, "observedAt": observed}
        location = record.location if record and record.location else event.location
    else:
        if event.battery_level is not None:
            entity["batteryLevel"] = {
                "type": "Property",
                "value": round(event.battery_level / 100, 4),
                "observedAt": observed,
            }
        if event.margin is not None:
            entity["linkMargin"] = {"type": "Property", "value": event.margin, "unitCode": "2N", "observedAt": observed}
        location = record.location if record and record.location else None
    if location is not None:
        _set_location(entity, location, profile.altitude)
    if spec.device_model:
        entity["refDeviceModel"] = _relationship(spec.device_model)
    entity["@context"] = [DEVICE_CONTEXT, ADAPTER_CONTEXT, CORE_CONTEXT]
    return entity
