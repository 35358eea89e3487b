"""Device profiles: the declarative mapping from a device's uplinks to NGSI-LD entities.

One YAML file per profile in the models folder (see ``models/README.md`` for the format).
Files are parsed into frozen dataclasses once, at start-up; every mistake is a
``ConfigError`` naming the file and the field, so a bad profile never reaches run time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapter.exceptions import ConfigError
from adapter.mapping.units import unit
from adapter.uplink import Uplink

__all__ = [
    "AltitudeSpec",
    "AttributeSpec",
    "CodecSpec",
    "DeviceSpec",
    "DeviceProfile",
    "EntitySpec",
    "Match",
    "PeriodSpec",
    "PrivacySpec",
    "ProfileSet",
    "load_profile",
    "load_profiles",
]

_VALUE_TYPES = ("number", "integer", "string", "boolean")
_TEMPLATE_FIELDS = {"tenant", "dev_eui", "device_id", "application_id"}
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# What the Device entity carries (``adapter.mapping.entities.build_device_entity``): an altitude
# property may not take one of these names.
_DEVICE_ATTRIBUTES = frozenset(
    {
        "category",
        "controlledProperty",
        "supportedProtocol",
        "name",
        "deviceState",
        "dateLastValueReported",
        "rssi",
        "batteryLevel",
        "linkMargin",
        "location",
        "refDeviceModel",
    }
)
# Names every entity has, or that provenance adds (``wasDerivedFrom``).
_RESERVED_ATTRIBUTES = frozenset({"id", "type", "location", "wasDerivedFrom"})


@dataclass(frozen=True, slots=True)
class Match:
    """Which devices a profile applies to: every criterion given must hold."""

    dev_euis: frozenset[str] = frozenset()
    device_profiles: frozenset[str] = frozenset()
    applications: frozenset[str] = frozenset()
    tags: Mapping[str, str] = field(default_factory=dict)

    def matches(self, uplink_like: Uplink | Any) -> bool:
        if self.dev_euis and uplink_like.dev_eui not in self.dev_euis:
            return False
        if self.device_profiles and uplink_like.device_profile not in self.device_profiles:
            return False
        if self.applications and uplink_like.application_id not in self.applications:
            return False
        tags = uplink_like.tags
        return all(tags.get(k) == v for k, v in self.tags.items())

    @property
    def specificity(self) -> int:
        """A device listed by EUI beats a device-profile name, which beats an application or tags."""
        if self.dev_euis:
            return 3
        if self.device_profiles:
            return 2
        return 1


@dataclass(frozen=True, slots=True)
class CodecSpec:
    kind: str  # "cayenne_lpp", "lns_decoded" or "javascript"
    file: Path | None = None


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    name: str
    field: str  # dotted path into the decoded data
    value_type: str = "number"
    from_unit: str | None = None
    unit: str | None = None
    scale: float | None = None
    valid_range: tuple[float, float] | None = None
    value_map: Mapping[str, Any] | None = None
    required: bool = False
    cumulative: bool = False  # a meter index: never decreases without a meter change


@dataclass(frozen=True, slots=True)
class PeriodSpec:
    """An observation period ending at the observation time (dateObservedFrom/To)."""

    start_attribute: str
    end_attribute: str
    seconds: float | None = None
    seconds_field: str | None = None


@dataclass(frozen=True, slots=True)
class EntitySpec:
    type: str
    id_template: str
    context: str
    attributes: tuple[AttributeSpec, ...]
    times: tuple[str, ...] = ()  # DateTime properties set to the observation time
    period: PeriodSpec | None = None
    location: str | None = None  # "device" or "field:<path>"
    static: Mapping[str, Any] = field(default_factory=dict)
    relationships: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    from_registry: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    category: tuple[str, ...] = ("sensor",)
    controlled_property: tuple[str, ...] = ()
    battery: AttributeSpec | None = None
    device_model: str | None = None  # refDeviceModel URN


@dataclass(frozen=True, slots=True)
class PrivacySpec:
    drop: tuple[str, ...] = ()
    coarsen: Mapping[str, float] = field(default_factory=dict)  # field -> step
    pseudonymise: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AltitudeSpec:
    """What becomes of the altitude (the third coordinate) of the locations this profile writes.

    GeoJSON allows it, but some NGSI-LD brokers refuse a Point with three coordinates. ``keep``
    writes it in the Point; ``drop`` writes a 2D Point; ``property`` writes a 2D Point and the
    altitude as its own Property ``property`` (unit code MTR) of the same entity.
    """

    mode: str = "keep"  # "keep", "drop" or "property"
    property: str | None = None  # the Property's name, with mode "property"


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    name: str
    path: Path
    digest: str  # SHA-256 of the YAML file: provenance names the exact mapping used
    description: str
    match: Match
    codec: CodecSpec
    entities: tuple[EntitySpec, ...]
    device: DeviceSpec | None
    privacy: PrivacySpec
    observed_at: str = "received_at"  # or "device_time", or "field:<path>"
    max_device_time_age_s: float = 86400.0
    meter_change_field: str | None = None
    altitude: AltitudeSpec = AltitudeSpec()


class ProfileSet:
    """All loaded profiles; finds the one for a device."""

    def __init__(self, profiles: Sequence[DeviceProfile]) -> None:
        names = [p.name for p in profiles]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ConfigError(f"device profile names used twice: {', '.join(sorted(duplicates))}")
        self.profiles = tuple(profiles)

    def __iter__(self) -> Iterator[DeviceProfile]:
        return iter(self.profiles)

    def __len__(self) -> int:
        return len(self.profiles)

    def by_name(self, name: str) -> DeviceProfile:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise KeyError(name)

    def find(self, uplink_like: Uplink | Any) -> DeviceProfile | None:
        """The most specific matching profile (EUI > device profile > application/tags), or None."""
        best: DeviceProfile | None = None
        for profile in self.profiles:
            if profile.match.matches(uplink_like) and (
                best is None or profile.match.specificity > best.match.specificity
            ):
                best = profile
        return best


def load_profiles(folder: Path) -> ProfileSet:
    """Load every ``*.yaml`` profile in a folder (sorted by file name)."""
    if not folder.is_dir():
        raise ConfigError(f"models folder {folder} does not exist")
    return ProfileSet([load_profile(path) for path in sorted(folder.glob("*.yaml"))])


def load_profile(path: Path) -> DeviceProfile:
    raw_bytes = path.read_bytes()
    try:
        doc = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    reader = _Reader(path, doc, "")
    profile = DeviceProfile(
        name=reader.text("profile"),
        path=path,
        digest=hashlib.sha256(raw_bytes).hexdigest(),
        description=reader.text("description", default=""),
        match=_match(reader.sub("match")),
        codec=_codec(reader.sub("codec"), path.parent),
        entities=tuple(_entity(r) for r in reader.sub_list("entities")),
        device=_device(reader.sub("device")) if "device" in reader.doc else None,
        privacy=_privacy(reader.sub("privacy")) if "privacy" in reader.doc else PrivacySpec(),
        observed_at=_observed_at(reader),
        max_device_time_age_s=reader.number("max_device_time_age_s", default=86400.0),
        meter_change_field=reader.text("meter_change_field", default=None),
        altitude=_altitude(reader),
    )
    reader.no_unknown_keys(
        {
            "profile",
            "description",
            "match",
            "codec",
            "entities",
            "device",
            "privacy",
            "observed_at",
            "max_device_time_age_s",
            "meter_change_field",
            "altitude",
        }
    )
    if not profile.entities:
        raise ConfigError(f"{path}: 'entities' must list at least one entity")
    if any(a.cumulative for e in profile.entities for a in e.attributes) and not profile.meter_change_field:
        raise ConfigError(f"{path}: a cumulative attribute needs 'meter_change_field' (the meter-change event)")
    _check_altitude_property(profile)
    return profile


class _Reader:
    """Typed access to one YAML mapping, with errors that name the file and the key path."""

    def __init__(self, path: Path, doc: Any, where: str) -> None:
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{path}: {where or 'the file'} must be a mapping")
        self.path, self.doc, self.where = path, doc, where

    def _fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.where}{key}: {message}")

    def get(self, key: str, default: Any = ...) -> Any:
        if key not in self.doc or self.doc[key] is None:
            if default is ...:
                raise self._fail(key, "is required")
            return default
        return self.doc[key]

    def text(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, default)
        if value is not default and not isinstance(value, str):
            raise self._fail(key, "must be a string")
        return value

    def number(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, default)
        if value is not default and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise self._fail(key, "must be a number")
        return float(value) if value is not None else None

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "must be a list of strings")
        return tuple(value)

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.get(key, {})
        if not isinstance(value, Mapping):
            raise self._fail(key, "must be a mapping")
        return value

    def sub(self, key: str) -> _Reader:
        return _Reader(self.path, self.get(key, {}), f"{self.where}{key}.")

    def sub_list(self, key: str) -> list[_Reader]:
        value = self.get(key, [])
        if not isinstance(value, list):
            raise self._fail(key, "must be a list")
        return [_Reader(self.path, item, f"{self.where}{key}[{i}].") for i, item in enumerate(value)]

    def no_unknown_keys(self, known: set[str]) -> None:
        unknown = set(self.doc) - known
        if unknown:
            raise self._fail(sorted(unknown)[0], f"unknown key (expected one of: {', '.join(sorted(known))})")


def _match(r: _Reader) -> Match:
    r.no_unknown_keys({"dev_euis", "device_profiles", "applications", "tags"})
    match = Match(
        dev_euis=frozenset(e.lower() for e in r.strings("dev_euis")),
        device_profiles=frozenset(r.strings("device_profiles")),
        applications=frozenset(r.strings("applications")),
        tags={str(k): str(v) for k, v in r.mapping("tags").items()},
    )
    if not (match.dev_euis or match.device_profiles or match.applications or match.tags):
        raise r._fail("", "match needs at least one of dev_euis, device_profiles, applications, tags")
    return match


def _codec(r: _Reader, folder: Path) -> CodecSpec:
    r.no_unknown_keys({"builtin", "javascript"})
    if "javascript" in r.doc:
        file = (folder / r.text("javascript")).resolve()
        if not file.is_file():
            raise r._fail("javascript", f"codec file {file} does not exist")
        return CodecSpec("javascript", file)
    kind = r.text("builtin")
    if kind not in ("cayenne_lpp", "lns_decoded"):
        raise r._fail("builtin", f"unknown built-in codec {kind!r} (cayenne_lpp, lns_decoded)")
    return CodecSpec(kind)


def _observed_at(r: _Reader) -> str:
    value = r.text("observed_at", default="received_at")
    if value not in ("received_at", "device_time") and not value.startswith("field:"):
        raise r._fail("observed_at", "must be received_at, device_time or field:<path>")
    return str(value)


def _altitude(r: _Reader) -> AltitudeSpec:
    value = r.text("altitude", default="keep")
    if value in ("keep", "drop"):
        return AltitudeSpec(value)
    name = value.removeprefix("property:") if value.startswith("property:") else None
    if name is None:
        raise r._fail("altitude", f"must be keep, drop or property:<name>, not {value!r}")
    if not _ATTRIBUTE_NAME.match(name):
        raise r._fail("altitude", f"{name!r} is not a valid NGSI-LD attribute name")
    return AltitudeSpec("property", name)


def _check_altitude_property(profile: DeviceProfile) -> None:
    """The altitude Property must not overwrite an attribute an entity with a location already has."""
    name = profile.altitude.property
    if name is None:
        return
    where = f"{profile.path}: altitude: {name!r}"
    if name in _RESERVED_ATTRIBUTES:
        raise ConfigError(f"{where} is a name every entity has already")
    for spec in profile.entities:
        if spec.location is not None and name in _entity_attribute_names(spec):
            raise ConfigError(f"{where} is already an attribute of the {spec.type} entity")
    if profile.device is not None and name in _DEVICE_ATTRIBUTES:
        raise ConfigError(f"{where} is already an attribute of the Device entity")


def _entity_attribute_names(spec: EntitySpec) -> set[str]:
    names = {a.name for a in spec.attributes} | set(spec.times) | set(spec.static)
    names |= set(spec.relationships) | set(spec.from_registry)
    if spec.period is not None:
        names |= {spec.period.start_attribute, spec.period.end_attribute}
    return names


def _attribute(name: str, spec: Any, r: _Reader) -> AttributeSpec:
    if isinstance(spec, str):
        spec = {"field": spec}
    a = _Reader(r.path, spec, f"{r.where}{name}.")
    a.no_unknown_keys({"field", "type", "from_unit", "unit", "scale", "range", "map", "required", "cumulative"})
    value_type = a.text("type", default="number")
    if value_type not in _VALUE_TYPES:
        raise a._fail("type", f"must be one of {', '.join(_VALUE_TYPES)}")
    to_unit, from_unit = a.text("unit", default=None), a.text("from_unit", default=None)
    for code in (to_unit, from_unit):
        if code is not None:
            try:
                unit(code)
            except ConfigError as exc:
                raise a._fail("unit", str(exc)) from exc
    if from_unit and not to_unit:
        raise a._fail("from_unit", "needs 'unit' (the unit the entity carries)")
    valid_range = a.get("range", None)
    if valid_range is not None:
        if (
            not isinstance(valid_range, list)
            or len(valid_range) != 2
            or not all(isinstance(x, int | float) for x in valid_range)
            or valid_range[0] > valid_range[1]
        ):
            raise a._fail("range", "must be [min, max]")
        valid_range = (float(valid_range[0]), float(valid_range[1]))
    value_map = a.get("map", None)
    if value_map is not None:
        if not isinstance(value_map, Mapping):
            raise a._fail("map", "must map decoded values to entity values")
        value_map = {str(k): v for k, v in value_map.items()}
    return AttributeSpec(
        name=name,
        field=a.text("field"),
        value_type=value_type,
        from_unit=from_unit,
        unit=to_unit,
        scale=a.number("scale", default=None),
        valid_range=valid_range,
        value_map=value_map,
        required=bool(a.get("required", False)),
        cumulative=bool(a.get("cumulative", False)),
    )


def _entity(r: _Reader) -> EntitySpec:
    r.no_unknown_keys(
        {
            "type",
            "id",
            "context",
            "attributes",
            "times",
            "period",
            "location",
            "static",
            "relationships",
            "from_registry",
        }
    )
    id_template = r.text("id")
    used = set(re.findall(r"{(\w+)}", id_template))
    if not id_template.startswith("urn:ngsi-ld:") or not {"tenant", "dev_eui"} <= used or used - _TEMPLATE_FIELDS:
        raise r._fail(
            "id",
            "must be a urn:ngsi-ld: URN using {tenant} and {dev_eui} (and only "
            f"{', '.join(sorted(_TEMPLATE_FIELDS))}), so it is stable per device and tenant",
        )
    attributes = tuple(_attribute(str(n), s, r.sub("attributes")) for n, s in r.mapping("attributes").items())
    for a in attributes:
        if not _ATTRIBUTE_NAME.match(a.name):
            raise r._fail("attributes", f"{a.name!r} is not a valid NGSI-LD attribute name")
    period = None
    if "period" in r.doc:
        p = r.sub("period")
        p.no_unknown_keys({"from", "to", "seconds", "seconds_field"})
        period = PeriodSpec(
            start_attribute=p.text("from"),
            end_attribute=p.text("to"),
            seconds=p.number("seconds", default=None),
            seconds_field=p.text("seconds_field", default=None),
        )
        if period.seconds is None and period.seconds_field is None:
            raise p._fail("seconds", "give seconds or seconds_field")
    location = r.text("location", default=None)
    if location is not None and location != "device" and not location.startswith("field:"):
        raise r._fail("location", "must be 'device' or 'field:<path>'")
    relationships: dict[str, str | tuple[str, ...]] = {}
    for name, target in r.mapping("relationships").items():
        targets = target if isinstance(target, list) else [target]
        for t in targets:
            if not isinstance(t, str) or (t != "device" and not t.startswith("urn:")):
                raise r._fail(f"relationships.{name}", "must be 'device' or a URN template (or a list of them)")
        relationships[str(name)] = tuple(targets) if isinstance(target, list) else str(target)
    return EntitySpec(
        type=r.text("type"),
        id_template=id_template,
        context=r.text("context"),
        attributes=attributes,
        times=r.strings("times"),
        period=period,
        location=location,
        static=dict(r.mapping("static")),
        relationships=relationships,
        from_registry=r.strings("from_registry"),
    )


def _device(r: _Reader) -> DeviceSpec:
    r.no_unknown_keys({"category", "controlled_property", "battery", "model"})
    battery = _attribute("batteryLevel", r.get("battery"), r) if "battery" in r.doc else None
    return DeviceSpec(
        category=r.strings("category") or ("sensor",),
        controlled_property=r.strings("controlled_property"),
        battery=battery,
        device_model=r.text("model", default=None),
    )


def _privacy(r: _Reader) -> PrivacySpec:
    r.no_unknown_keys({"drop", "coarsen", "pseudonymise"})
    coarsen: dict[str, float] = {}
    for name, step in r.mapping("coarsen").items():
        if isinstance(step, bool) or not isinstance(step, int | float) or step <= 0:
            raise r._fail(f"coarsen.{name}", "must be a positive step")
        coarsen[str(name)] = float(step)
    return PrivacySpec(drop=r.strings("drop"), coarsen=coarsen, pseudonymise=r.strings("pseudonymise"))
