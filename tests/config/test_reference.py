"""docs/configuration.md and docs/cli.md say what the loader and the commands do now."""

from __future__ import annotations

import re

from adapter.cli import reference as cli_reference
from adapter.config import TABLES
from adapter.config import reference as config_reference
from tests.support import REPO

CONFIGURATION = REPO / "docs" / "configuration.md"
CLI = REPO / "docs" / "cli.md"


def documented_keys(page: str) -> dict[str, set[str]]:
    """``{table: keys}`` as the page's tables list them (``## `[broker]` `` then ``| `key` |`` rows)."""
    found: dict[str, set[str]] = {}
    table = None
    for line in page.splitlines():
        heading = re.fullmatch(r"## `\[\[?([a-z.]+)\]\]?`", line)
        if heading:
            table = found.setdefault(heading[1], set())
        elif line.startswith("## "):
            table = None
        elif table is not None and (row := re.match(r"\| `([a-z_]+)` \|", line)):
            table.add(row[1])
    return found


def test_every_key_the_loader_accepts_is_documented_and_nothing_else() -> None:
    documented = documented_keys(CONFIGURATION.read_text(encoding="utf-8"))
    accepted = {t.name: set(t.allowed) for t in TABLES}
    missing = {
        t: sorted(keys - documented.get(t, set())) for t, keys in accepted.items() if keys - documented.get(t, set())
    }
    extra = {
        t: sorted(keys - accepted.get(t, set())) for t, keys in documented.items() if keys - accepted.get(t, set())
    }
    regenerate = "regenerate: python -m adapter.config.reference > docs/configuration.md"
    assert not missing, f"accepted by the loader, missing from docs/configuration.md: {missing}; {regenerate}"
    assert not extra, f"documented in docs/configuration.md, refused by the loader: {extra}; {regenerate}"


def test_the_configuration_page_is_the_generated_one() -> None:
    assert CONFIGURATION.read_text(encoding="utf-8") == config_reference.render(), (
        "docs/configuration.md is stale: python -m adapter.config.reference > docs/configuration.md"
    )


def test_every_documented_key_has_a_type_a_default_and_a_meaning() -> None:
    for table in TABLES:
        for key in table.keys:
            assert key.kind and key.default and len(key.meaning) > 10, (table.name, key.name)


def test_the_cli_page_is_what_help_prints_now() -> None:
    assert CLI.read_text(encoding="utf-8") == cli_reference.render(), (
        "docs/cli.md differs from the commands' --help: python -m adapter.cli.reference > docs/cli.md"
    )


def test_the_cli_page_has_every_command() -> None:
    page = CLI.read_text(encoding="utf-8")
    for name in ("listen", "serve", "gateway", "broker", "check", "deadletter list", "registry import"):
        assert f"## `ngsild-adapter {name}`" in page
