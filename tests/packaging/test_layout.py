"""pyproject.toml ships what adapter.resources reads, and every package of adapter/.

The wheel test proves it end to end (slowly); these say which line is wrong, in milliseconds.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

from adapter import resources
from tests.support import REPO

SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    found = set()
    for module in (REPO / "adapter").rglob("*.py"):
        if "__pycache__" not in module.parts:
            found.add(".".join(module.parent.relative_to(REPO).parts))
    return found


def _glob_match(relative: str, pattern: str) -> bool:
    # setuptools globs package data: a * stays within one folder
    parts, wanted = relative.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))


def _shipped(package: str, relative: str) -> bool:
    return any(_glob_match(relative, pattern) for pattern in SETUPTOOLS["package-data"].get(package, []))


def test_every_package_of_adapter_is_listed() -> None:
    listed = set(SETUPTOOLS["packages"])
    missing = _packages_on_disk() - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_the_mapped_folders_are_the_ones_resources_reads() -> None:
    mapped = {name.removeprefix("adapter._shipped."): folder for name, folder in SETUPTOOLS["package-dir"].items()}
    assert mapped == dict(resources.SHIPPED)
    assert {f"adapter._shipped.{name}" for name in mapped} <= set(SETUPTOOLS["packages"])


def test_the_checkout_reads_the_repository_folders() -> None:
    # In a checkout adapter/_shipped is empty: the top-level folders are read in place.
    assert resources.contexts_dir() == REPO / "contexts"
    assert resources.shipped_schemas_dir() == REPO / "models" / "sdm"
    assert resources.realm_template() == REPO / "compose" / "keycloak" / "ville-realm.json"
    assert resources.demo_agreements_dir() == REPO / "compose" / "policies"
    assert resources.package_root() == REPO


def test_every_context_of_the_index_ships() -> None:
    index = json.loads((REPO / "contexts" / "index.json").read_text(encoding="utf-8"))
    for name in {"index.json", *index.values()}:
        assert _shipped("adapter._shipped.contexts", name), name


def test_every_profile_codec_and_schema_ships() -> None:
    models = REPO / "models"
    files = [p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file()]
    needed = [
        f for f in files if f.endswith((".yaml", ".js")) or f.endswith("schema.json") or f.startswith("sdm/_common/")
    ]
    assert needed and all(_shipped("adapter._shipped.models", f) for f in needed), [
        f for f in needed if not _shipped("adapter._shipped.models", f)
    ]


def test_the_demo_files_ship() -> None:
    demo = REPO / "adapter" / "demo"
    for path in [demo / "config.toml", *sorted((demo / "events").glob("*.json"))]:
        assert _shipped("adapter.demo", path.relative_to(demo).as_posix()), path
    for path in (REPO / "compose" / "keycloak").glob("*-realm.json"):
        assert _shipped("adapter._shipped.keycloak", path.name), path
    for path in (REPO / "compose" / "policies").glob("*.jsonld"):
        assert _shipped("adapter._shipped.policies", path.name), path
    for path in (REPO / "adapter" / "provenance" / "queries").glob("*.rq"):
        assert _shipped("adapter.provenance.queries", path.name), path


def test_a_broken_installation_names_where_it_looked(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Neither the wheel's folder nor a checkout beside the package: one clear error.
    monkeypatch.setattr(resources, "package_root", lambda: tmp_path)
    try:
        resources.contexts_dir()
    except resources.ShippedDataMissing as exc:
        assert str(tmp_path / "contexts") in str(exc) and "_shipped" in str(exc)
    else:
        raise AssertionError("a missing shipped folder must be an error")
