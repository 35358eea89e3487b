"""Helpers shared by the tests: the repository's paths and a pipeline over the shipped profiles."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapter.app import build_pipeline
from adapter.config import load_config
from adapter.mapping.profile import load_profiles
from adapter.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
DEMO_EVENTS = REPO / "adapter" / "demo" / "events"

#: A fixed clock a little after the fixtures' timestamps (2026-11-20).
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def demo_pipeline(tmp_path: Path | None = None) -> Pipeline:
    pipeline = build_pipeline(load_config(None), tmp_path)
    pipeline.clock = lambda: NOW
    return pipeline


def pipeline_with_test_codec(tmp_path: Path, codec: str, field: str) -> Pipeline:
    """The demo pipeline with one profile of its own: device 70b3d57ed0001a01, decoded by the
    project's test codec ``codec`` (tests/fixtures/codecs), its decoded ``field`` as no2."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(FIXTURES / "codecs" / codec, models / codec)
    (models / "test.yaml").write_text(f"""
profile: test-codec
match: {{dev_euis: ["70b3d57ed0001a01"]}}
codec: {{javascript: {codec}}}
entities:
  - type: AirQualityObserved
    id: "urn:ngsi-ld:AirQualityObserved:{{tenant}}:{{dev_eui}}"
    context: https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld
    times: [dateObserved]
    location: device
    attributes:
      no2: {{field: {field}, unit: GQ}}
""")
    pipeline = demo_pipeline(tmp_path)
    pipeline.profiles = load_profiles(models)
    return pipeline


def demo_event(name: str) -> dict[str, Any]:
    """One bundled demo event: {"lns", "connection", "topic"?, "event"?, "body"}."""
    matches = sorted(DEMO_EVENTS.glob(f"{name}*.json"))
    assert len(matches) == 1, f"no single demo event named {name}"
    spec: dict[str, Any] = json.loads(matches[0].read_text(encoding="utf-8"))
    return spec


def body_bytes(spec: dict[str, Any]) -> bytes:
    body = spec["body"]
    return body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")


def entity(result: Any, entity_type: str) -> dict[str, Any]:
    found = [e for e in result.entities if e["type"] == entity_type]
    assert len(found) == 1, f"expected one {entity_type}, got {[e['type'] for e in result.entities]}"
    return found[0]


def reference_validator(entity_type: str):  # type: ignore[no-untyped-def]
    """The pure-Python ``jsonschema`` validator of an SDM type: an implementation independent
    of the adapter's (jsonschema-rs), with formats checked."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    from adapter.mapping.schemas import default_schemas_dir, schema_aliases

    folder = default_schemas_dir()
    registry = Registry().with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT202012))
        for uri, doc in schema_aliases(folder).items()
    )
    schema = json.loads((folder / entity_type / "schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 5.0, poll: float = 0.005) -> None:
    """Wait (bounded) until ``condition()`` holds; fail the test naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(poll)
