"""Properties of the import, for any answer a network server gives:

- hostile strings in names, descriptions and tags never reach the registry unsanitised (shown
  on the model for any text, and once through the real gRPC path of the ChirpStack stand-in);
- an import never moves a device to another collectivity, and every imported entry belongs
  to the collectivity of its connection, whatever the answers say.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Mapping
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.config import RegistrySettings
from adapter.mapping.entities import DeviceRecord
from adapter.registry import DeviceListing, ImportSource, RegistryImporter, RegistryStore, imported_device
from adapter.registry.chirpstack import ChirpStackRegistry
from adapter.registry.exceptions import RegistryUnavailable
from adapter.registry.model import DESCRIPTION_MAX, NAME_MAX, TAG_KEY, TAG_VALUE_MAX, TAGS_MAX
from tests.registry.conftest import CS_APP, NOW, chirpstack_settings
from tests.registry.standins import ChirpStackStandIn, chirpstack_device

HOSTILE = [
    "\u202eevil\u202c",
    "a\x00b",
    "line\nbreak\r\n",
    "zero\u200bwidth",
    "\ufeffbom",
    "tab\there",
    "<script>alert(1)</script>",
    "\x1b[31mred",
    "\u2028sep\u2029",
    "\ue000private",
    "  spaced   out  ",
]
text = st.one_of(
    st.text(max_size=600), st.sampled_from(HOSTILE), st.lists(st.sampled_from(HOSTILE), max_size=6).map("".join)
)


def assert_clean(value: str | None, limit: int) -> None:
    """What every string of the registry satisfies."""
    if value is None:
        return
    assert 0 < len(value) <= limit
    assert value == value.strip() and "  " not in value
    for char in value:
        assert char == " " or unicodedata.category(char)[0] in "LMNPS", repr(char)


def assert_record_clean(record: DeviceRecord) -> None:
    assert_clean(record.name, NAME_MAX)
    assert len(record.attributes) <= TAGS_MAX + 1  # the tags, and the description
    for key, value in record.attributes.items():
        assert TAG_KEY.fullmatch(key), key
        assert_clean(value, DESCRIPTION_MAX if key == "description" else TAG_VALUE_MAX)


@settings(derandomize=True, database=None, max_examples=300, deadline=None)
@given(name=text, description=text, tags=st.dictionaries(text, text, max_size=80))
def test_hostile_strings_never_reach_the_registry_unsanitised(
    name: str, description: str, tags: dict[str, str]
) -> None:
    source = ImportSource("tts", "region-tts", "app", NOW)
    device, dropped = imported_device(
        dev_eui="70b3d57ed0000001", tenant="region", source=source, name=name, description=description, tags=tags
    )
    assert_record_clean(device.record)
    assert device.record.tenant == "region"
    assert len(device.record.attributes) - ("description" in device.record.attributes) + len(dropped) <= len(tags)


async def test_hostile_strings_over_the_real_grpc_path_are_cleaned(chirpstack: tuple[ChirpStackStandIn, str]) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [
        chirpstack_device(
            "70b3d57ed0000001",
            "\u202eAQ\x00 station\n\u200b",
            description="<b>x</b>\x1b[0m",
            tags={"ref Bad": "x", "refPointOfInterest": "not an iri", "site": "\ufeffnord\u2028", "@context": "x"},
        )
    ]
    client = ChirpStackRegistry(chirpstack_settings(url))
    try:
        listing = await client.list_devices(
            ImportSource("chirpstack", "metropole-chirpstack", CS_APP, NOW), "metropole"
        )
    finally:
        await client.close()
    (device,) = listing.devices
    assert device.record.name == "AQ station"
    assert device.record.attributes == {"site": "nord", "description": "<b>x</b>[0m"}
    assert len(listing.skipped) == 3


# -- collectivities ------------------------------------------------------------------------

EUIS = [f"70b3d57ed00000{i:02x}" for i in range(6)]
REGISTRIES = [
    RegistrySettings("metropole-cs", "chirpstack", "metropole", "http://cs", (CS_APP,), "T1", "t"),
    RegistrySettings("eau-tts", "tts", "eau", "https://tts", ("eau-app",), "T2", "t"),
]


class Scripted:
    """A registry client that answers what the test scripted for the current step."""

    lns = "scripted"

    def __init__(self) -> None:
        self.answer: list[tuple[str, str]] | None = []  # (dev_eui, a collectivity the answer claims), None: down

    async def list_devices(self, source: ImportSource, tenant: str) -> DeviceListing:
        if self.answer is None:
            raise RegistryUnavailable("down")
        # the claimed collectivity goes where an answer could try to put one: the tags
        return DeviceListing(
            tuple(
                imported_device(
                    dev_eui=eui,
                    tenant=tenant,
                    source=source,
                    name=eui,
                    tags={"tenant": claimed, "collectivity": claimed},
                )[0]
                for eui, claimed in self.answer
            )
        )

    async def close(self) -> None:
        pass


answers = st.one_of(
    st.none(),
    st.lists(
        st.tuples(st.sampled_from(EUIS), st.sampled_from(["metropole", "eau", "x"])),
        max_size=6,
        unique_by=lambda t: t[0],
    ),
)
typed_devices = st.dictionaries(st.sampled_from(EUIS), st.sampled_from([None, "metropole", "eau"]), max_size=3)


@settings(derandomize=True, database=None, max_examples=150, deadline=None)
@given(typed=typed_devices, steps=st.lists(st.tuples(answers, answers), min_size=1, max_size=6))
def test_an_import_never_moves_a_device_to_another_collectivity(
    typed: dict[str, str | None],
    steps: list[tuple[object, object]],
) -> None:
    configured = {eui: DeviceRecord(eui, name="typed", tenant=tenant) for eui, tenant in typed.items()}
    clients = {"metropole-cs": Scripted(), "eau-tts": Scripted()}
    clock = [NOW]
    importer = RegistryImporter(REGISTRIES, configured, RegistryStore(":memory:"), clients, clock=lambda: clock[0])
    before: Mapping[str, DeviceRecord] = importer.devices()
    listed: dict[str, set[str]] = {"metropole-cs": set(), "eau-tts": set()}
    for first, second in steps:
        clock[0] += timedelta(hours=1)
        for name, answer in (("metropole-cs", first), ("eau-tts", second)):
            clients[name].answer = answer  # type: ignore[assignment]
            if answer is not None:
                listed[name] = {eui for eui, _ in answer}  # type: ignore[attr-defined]
        asyncio.run(importer.refresh())
        after = importer.devices()
        holder = {"metropole": "metropole-cs", "eau": "eau-tts"}
        for eui, record in after.items():
            if eui in configured:
                assert record == configured[eui]  # hand-typed entries win whole
                continue
            assert record.tenant in holder and eui in listed[holder[record.tenant]]  # the tenant is the connection's
            previous = before.get(eui)
            if previous is not None and previous.tenant != record.tenant:
                # it changed hands only because the first network server no longer lists it
                assert previous.tenant in holder and eui not in listed[holder[previous.tenant]]
        before = after


@settings(derandomize=True, database=None, max_examples=150, deadline=None)
@given(typed=typed_devices, steps=st.lists(st.tuples(answers, answers), min_size=1, max_size=6))
def test_a_network_server_decides_only_for_its_own_collectivitys_events(
    typed: dict[str, str | None],
    steps: list[tuple[object, object]],
) -> None:
    """DevEUIs are public: a network server listing another collectivity's devices must not make
    that collectivity's uplinks ForeignDevice, nor name its devices. For every event, only a
    hand-typed entry or an import of the event's own collectivity applies."""
    configured = {eui: DeviceRecord(eui, name="typed", tenant=tenant) for eui, tenant in typed.items()}
    clients = {"metropole-cs": Scripted(), "eau-tts": Scripted()}
    clock = [NOW]
    importer = RegistryImporter(REGISTRIES, configured, RegistryStore(":memory:"), clients, clock=lambda: clock[0])
    ever: dict[str, set[str]] = {"metropole": set(), "eau": set()}
    for first, second in steps:
        clock[0] += timedelta(hours=1)
        for name, tenant, answer in (("metropole-cs", "metropole", first), ("eau-tts", "eau", second)):
            clients[name].answer = answer  # type: ignore[assignment]
            if answer is not None:
                ever[tenant] |= {eui for eui, _ in answer}  # type: ignore[attr-defined]
        asyncio.run(importer.refresh())
        directory = importer.devices()
        for tenant in ("metropole", "eau"):
            for eui in EUIS:
                record = directory.for_event(tenant, eui)
                if eui in configured:
                    assert record == configured[eui]
                elif record is not None:
                    assert record.tenant == tenant and eui in ever[tenant]


def test_a_device_listed_by_another_collectivitys_network_server_stays_its_owners() -> None:
    """The reviewer's attack: eau's network server lists metropole's device first; metropole's
    events keep their own entry (once imported) and are never refused as foreign."""
    from adapter.pipeline import Pipeline

    clients = {"metropole-cs": Scripted(), "eau-tts": Scripted()}
    importer = RegistryImporter(REGISTRIES, {}, RegistryStore(":memory:"), clients, clock=lambda: NOW)
    clients["eau-tts"].answer, clients["metropole-cs"].answer = [(EUIS[0], "eau")], []
    asyncio.run(importer.refresh())
    directory = importer.devices()
    assert directory.for_event("metropole", EUIS[0]) is None
    pipeline = Pipeline.__new__(Pipeline)  # only the registry lookup is exercised
    pipeline.devices = directory
    from adapter.uplink import Origin

    class Event:
        dev_eui = EUIS[0]
        origin = Origin(tenant="metropole", lns_id="metropole-cs")

    assert pipeline._registered(Event()) is None  # type: ignore[arg-type]  # not ForeignDevice
    clients["metropole-cs"].answer = [(EUIS[0], "metropole")]
    asyncio.run(importer.refresh())
    record = importer.devices().for_event("metropole", EUIS[0])
    assert record is not None and record.tenant == "metropole"
    assert importer.devices().for_event("eau", EUIS[0]).tenant == "eau"  # type: ignore[union-attr]
