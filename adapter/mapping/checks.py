"""Checks over the whole set of device profiles, for ``ngsild-adapter check``.

``load_profile`` refuses what is wrong inside one file (a mistake there stops the start);
what is checked here needs the other files, the local @context copies or the Smart Data
Models schemas: an entity id two entities would share, two profiles claiming the same
devices, a context the adapter has no copy of, a static value the schema refuses, a type
the schema wants located without a location source, a field the codec never outputs.

Each finding names the file, the key and the fix. ``error`` findings would produce refused
entities, dead letters or silently shadowed profiles; ``warning`` ones are likely mistakes
the adapter can run with.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from adapter.codecs.cayenne import CAYENNE_TYPES
from adapter.exceptions import ConfigError
from adapter.mapping.profile import DeviceProfile, EntitySpec, Match, ProfileSet
from adapter.mapping.schemas import SchemaRegistry
from adapter.ngsild.contexts import context_files

__all__ = ["Finding", "check_profiles", "profile_fields", "unchecked_codecs"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of a profile: where (file and key), what, and how to fix it."""

    level: Literal["error", "warning"]
    file: Path
    key: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}; fix: {self.fix}"

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "file": str(self.file), "key": self.key, "message": self.message, "fix": self.fix}


def check_profiles(profiles: ProfileSet, schemas: SchemaRegistry, *, contexts_dir: Path | None = None) -> list[Finding]:
    """Every finding over ``profiles``, errors first, in file order."""
    found = [
        *_contexts(profiles, contexts_dir),
        *_entity_ids(profiles),
        *_overlaps(profiles),
        *_schema_checks(profiles, schemas),
        *_codec_fields(profiles),
    ]
    return sorted(found, key=lambda f: (f.level != "error", str(f.file), f.key))


# -- contexts ------------------------------------------------------------------------------------


def _contexts(profiles: ProfileSet, contexts_dir: Path | None) -> Iterator[Finding]:
    known = context_files(contexts_dir)
    for profile in profiles:
        for i, entity in enumerate(profile.entities):
            if entity.context not in known:
                yield Finding(
                    "error",
                    profile.path,
                    f"entities[{i}].context",
                    f"no local copy of the @context {entity.context} (nothing is fetched at run time)",
                    "add the file to contexts/ and its URL to contexts/index.json, or name a listed URL",
                )


# -- entity ids ----------------------------------------------------------------------------------


def _entity_ids(profiles: ProfileSet) -> Iterator[Finding]:
    seen: dict[str, tuple[DeviceProfile, int, EntitySpec]] = {}
    for profile in profiles:
        for i, entity in enumerate(profile.entities):
            key = f"entities[{i}].id"
            first = seen.get(entity.id_template)
            if first is None:
                seen[entity.id_template] = (profile, i, entity)
                continue
            other, j, spec = first
            if other is profile:
                yield Finding(
                    "error",
                    profile.path,
                    key,
                    f"{entity.id_template} is also the id of entities[{j}]: one entity would overwrite the other",
                    "give each entity its own id pattern (e.g. with its type in the URN)",
                )
            elif spec.type != entity.type:
                # one device matches one profile, but the broker holds one entity per id: two types
                # under one pattern collide as soon as a device moves from one profile to the other
                yield Finding(
                    "error",
                    profile.path,
                    key,
                    f"{entity.id_template} is also the id pattern of {spec.type} in {other.path.name} "
                    f"(entities[{j}]), for another type ({entity.type})",
                    f"put the type in the URN: urn:ngsi-ld:{entity.type}:{{tenant}}:{{dev_eui}}",
                )


# -- overlapping matches -------------------------------------------------------------------------


def _overlap(a: Match, b: Match) -> bool:
    """Whether one device could satisfy both matches: every criterion both give must intersect."""
    for x, y in ((a.dev_euis, b.dev_euis), (a.device_profiles, b.device_profiles), (a.applications, b.applications)):
        if x and y and not (x & y):
            return False
    return all(b.tags.get(k, v) == v for k, v in a.tags.items())


_BY = {3: "its dev_euis", 2: "its device_profiles", 1: "its applications or tags"}


def _overlaps(profiles: ProfileSet) -> Iterator[Finding]:
    ordered = list(profiles)
    for i, first in enumerate(ordered):
        for second in ordered[i + 1 :]:
            if not _overlap(first.match, second.match):
                continue
            s1, s2 = first.match.specificity, second.match.specificity
            if s1 == s2:
                # ProfileSet.find keeps the first of equally specific matches: the file order decides
                yield Finding(
                    "error",
                    second.path,
                    "match",
                    f"matches devices that {first.path.name} ({first.name}) also matches, as specifically "
                    f"({_BY[s1]}): {first.name} wins, being first by file name, and {second.name} "
                    "never applies to them",
                    "make the two matches disjoint (other device_profiles, applications or tags), "
                    "or list the devices meant for one of them by dev_euis",
                )
            else:
                winner, loser = (first, second) if s1 > s2 else (second, first)
                yield Finding(
                    "warning",
                    loser.path,
                    "match",
                    f"matches devices that {winner.path.name} ({winner.name}) also matches: "
                    f"{winner.name} wins for them, matching by {_BY[winner.match.specificity]} "
                    f"(more specific than {_BY[loser.match.specificity]})",
                    "nothing if that override is meant; otherwise make the matches disjoint",
                )


# -- schemas -------------------------------------------------------------------------------------


def _required(schema: Mapping[str, Any]) -> set[str]:
    found = set(schema.get("required", ()))
    for part in schema.get("allOf", ()):
        if isinstance(part, Mapping):
            found |= set(part.get("required", ()))
    return found


def _schema_checks(profiles: ProfileSet, schemas: SchemaRegistry) -> Iterator[Finding]:
    for profile in profiles:
        for i, entity in enumerate(profile.entities):
            where = f"entities[{i}]"
            try:
                schema = schemas.schema(entity.type)
                validator = schemas.validator(entity.type)
            except ConfigError as exc:
                yield Finding(
                    "error",
                    profile.path,
                    f"{where}.type",
                    str(exc),
                    "copy the type's schema.json into models/sdm/<type>/, or use a type that has one",
                )
                continue
            has_location = (
                entity.location is not None or "location" in entity.static or "location" in entity.from_registry
            )
            if "location" in _required(schema) and not has_location:
                yield Finding(
                    "error",
                    profile.path,
                    f"{where}.location",
                    f"the {entity.type} schema requires a location and this entity has no location source",
                    "add location: device (the device's registered location) or location: field:<path>",
                )
            if entity.static:
                yield from _static_values(profile, where, entity, validator)


def _static_values(profile: DeviceProfile, where: str, entity: EntitySpec, validator: Any) -> Iterator[Finding]:
    # the static values alone, in key-values shape: the schema's errors about them (not the
    # ones about absent required attributes, which the pipeline fills in)
    document = {"id": f"urn:ngsi-ld:{entity.type}:check", "type": entity.type, **entity.static}
    by_key: dict[str, list[str]] = {}
    for error in validator.iter_errors(document):
        path = [str(p) for p in error.instance_path]
        if path and path[0] in entity.static:
            by_key.setdefault(path[0], []).append(f"{'/'.join(path)}: {error.message}")
    for key, messages in by_key.items():
        yield Finding(
            "error",
            profile.path,
            f"{where}.static.{key}",
            f"{'; '.join(sorted(messages))} (the {entity.type} schema)",
            "give a value of the type and form the schema declares for this attribute",
        )


# -- codec outputs -------------------------------------------------------------------------------


def profile_fields(profile: DeviceProfile) -> Iterator[tuple[str, str]]:
    """``(key, field path)`` for every decoded-data path the profile reads."""
    for i, entity in enumerate(profile.entities):
        for a in entity.attributes:
            yield f"entities[{i}].attributes.{a.name}.field", a.field
        if entity.location is not None and entity.location.startswith("field:"):
            yield f"entities[{i}].location", entity.location.removeprefix("field:")
        if entity.period is not None and entity.period.seconds_field:
            yield f"entities[{i}].period.seconds_field", entity.period.seconds_field
    if profile.device is not None and profile.device.battery is not None:
        yield "device.battery.field", profile.device.battery.field
    if profile.observed_at.startswith("field:"):
        yield "observed_at", profile.observed_at.removeprefix("field:")
    if profile.meter_change_field:
        yield "meter_change_field", profile.meter_change_field


#: what the Cayenne LPP codec can output: ``<type>_<channel>`` and, for multi-value types, ``.<component>``
_CAYENNE_NAMES = {t.name: t.components for t in CAYENNE_TYPES.values()}
_CAYENNE_FIELD = re.compile(r"(?P<name>[a-z_]+?)_(?P<channel>\d{1,3})(?:\.(?P<component>\w+))?")


def _cayenne_outputs(path: str) -> bool:
    m = _CAYENNE_FIELD.fullmatch(path)
    if m is None or m["name"] not in _CAYENNE_NAMES or int(m["channel"]) > 255:
        return False
    components = _CAYENNE_NAMES[m["name"]]
    return m["component"] in components if m["component"] else not components


def unchecked_codecs(profiles: ProfileSet) -> list[str]:
    """The profiles whose codec declares no outputs (JavaScript, the LNS's decoded object):
    their field paths cannot be checked before an uplink arrives."""
    return [p.name for p in profiles if p.codec.kind != "cayenne_lpp"]


def _codec_fields(profiles: ProfileSet) -> Iterator[Finding]:
    for profile in profiles:
        if profile.codec.kind != "cayenne_lpp":
            continue  # no declared outputs to compare with (``unchecked_codecs``)
        for key, path in profile_fields(profile):
            if not _cayenne_outputs(path):
                yield Finding(
                    "warning",
                    profile.path,
                    key,
                    f"the Cayenne LPP codec never outputs {path!r} (its fields are <type>_<channel>, "
                    f"e.g. temperature_1, or gps_3.latitude for multi-value types)",
                    "use the field name of the type and channel the device sends",
                )
