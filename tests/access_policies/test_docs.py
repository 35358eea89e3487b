"""docs/sharing-agreements.md stays true: its example is the shipped file, its description is what
``check_file`` prints, and every ``nga:`` term the parser accepts is documented."""

from __future__ import annotations

import json
import re

from adapter.access import odrl, policies
from adapter.access.policies import check_file
from tests.access_policies.support import CATALOGUE, EXAMPLES, TENANTS
from tests.support import REPO

DOC = (REPO / "docs" / "sharing-agreements.md").read_text(encoding="utf-8")
EXAMPLE = EXAMPLES / "region-air-quality-to-ville-schools.jsonld"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


def test_the_complete_example_is_the_shipped_file() -> None:
    assert json.loads(blocks("json")[0]) == json.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_the_documented_description_is_what_check_file_says() -> None:
    assert blocks("text")[0].splitlines() == check_file(EXAMPLE, TENANTS, CATALOGUE)


def test_the_published_cells_section_describes_the_shipped_officials_agreement() -> None:
    section = DOC.split("## Published cells")[1].split("\n## ")[0]
    (described,) = re.findall(r"```text\n(.*?)```", section, flags=re.DOTALL)
    officials = EXAMPLES / "ville-elected-officials.jsonld"
    assert described.splitlines() == check_file(officials, TENANTS, CATALOGUE)[2:]
    shipped = json.loads(officials.read_text(encoding="utf-8"))["permission"][0]["constraint"]
    (written,) = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
    documented = json.loads("{" + written.replace("[[...]]", "[]") + "}")["constraint"]

    def without_rings(constraints: list) -> list:  # the doc elides the districts' coordinates
        for c in constraints:
            if c["leftOperand"] == "nga:aggregationDistricts":
                for feature in c["rightOperand"]["@value"]["features"]:
                    feature["geometry"]["coordinates"] = []
        return constraints

    assert without_rings(documented) == without_rings(shipped)


def test_every_nga_term_the_parser_knows_is_documented() -> None:
    source = (REPO / "adapter" / "access" / "odrl.py").read_text(encoding="utf-8")
    terms = set(re.findall(r'NGA \+ "(\w+)"', source))
    assert len(terms) >= 14
    vocabulary = DOC.split("### The `nga:` vocabulary")[1].split("\n## ")[0]
    for term in sorted(terms):
        assert f"| `nga:{term}` |" in vocabulary, term


def test_public_names_are_listed_and_sorted() -> None:
    for module in (odrl, policies):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
