"""Smart Data Models schemas: the user's models folder first, then the shipped ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapter.exceptions import ConfigError
from adapter.mapping.schemas import SchemaRegistry, default_schemas_dir, schema_folders


def test_the_shipped_folder_is_searched_once_for_the_shipped_models() -> None:
    assert schema_folders(default_schemas_dir().parent) == (default_schemas_dir(),)
    assert schema_folders(None) == (default_schemas_dir(),)


def test_a_type_found_nowhere_names_every_folder_searched(tmp_path: Path) -> None:
    registry = SchemaRegistry.for_models(tmp_path)
    with pytest.raises(ConfigError) as caught:
        registry.validator("BikeHireDockingStation")
    message = str(caught.value)
    assert str(tmp_path / "sdm") in message and str(default_schemas_dir()) in message


def test_the_users_schema_wins_and_the_shipped_ones_stay(tmp_path: Path) -> None:
    # the user's stricter WaterConsumptionObserved, and their own new type
    own = tmp_path / "sdm"
    shutil.copytree(default_schemas_dir() / "WaterConsumptionObserved", own / "WaterConsumptionObserved")
    schema = json.loads((own / "WaterConsumptionObserved" / "schema.json").read_text(encoding="utf-8"))
    schema["required"] = [*schema.get("required", []), "mustBeThere"]
    (own / "WaterConsumptionObserved" / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
    (own / "Counter").mkdir()
    (own / "Counter" / "schema.json").write_text(
        json.dumps(
            {"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["id", "type", "count"]}
        )
    )
    registry = SchemaRegistry.for_models(tmp_path)
    entity = {"id": "urn:ngsi-ld:WaterConsumptionObserved:eau:1", "type": "WaterConsumptionObserved"}
    assert any("mustBeThere" in e for e in registry.errors(entity))
    assert not any("mustBeThere" in e for e in SchemaRegistry().errors(entity))
    assert registry.errors({"id": "urn:x:1", "type": "Counter", "count": {"type": "Property", "value": 3}}) == []
    assert registry.errors({"id": "urn:x:1", "type": "Counter"}) != []
    assert "AirQualityObserved" in registry.known_types() and "Counter" in registry.known_types()
    assert registry.errors({"id": "urn:x:2", "type": "AirQualityObserved"}) == SchemaRegistry().errors(
        {"id": "urn:x:2", "type": "AirQualityObserved"}
    )


def test_an_unreadable_schema_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "sdm" / "Broken").mkdir(parents=True)
    (tmp_path / "sdm" / "Broken" / "schema.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="schema of Broken at .* cannot be read"):
        SchemaRegistry.for_models(tmp_path).schema("Broken")
