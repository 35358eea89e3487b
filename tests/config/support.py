"""A small valid configuration to break one table at a time."""

from __future__ import annotations

from pathlib import Path

from tests.support import REPO

MINIMAL = f"""
[adapter]
models = "{REPO / "models"}"

[[collectivity]]
tenant = "ville"
name = "Ville"

[[connection]]
name = "ville-lns"
collectivity = "ville"
lns = "chirpstack"
transport = "webhook"
allow_unauthenticated = true
"""

#: one entry of each array of tables, and each table, as it is appended to MINIMAL
BLOCKS = {
    "adapter": None,  # already in MINIMAL
    "collectivity": None,
    "connection": None,
    "device": '[[device]]\ndev_eui = "70b3d57ed0001a01"\n',
    "registry": '[[registry]]\nconnection = "ville-lns"\nurl = "http://cs:8080"\n'
    'applications = ["5e0e9a6a-3f6c-4b1e-9a39-2b1f5d1c8e11"]\ntoken_env = "CS_TOKEN"\n',
    "broker": "[broker]\n",
    "outbox": "[outbox]\n",
    "http": "[http]\n",
    "provenance": "[provenance]\n",
    "gateway": "[gateway]\n",
    "gateway.issuer": '[[gateway.issuer]]\nissuer = "https://kc.example/realms/ville"\n',
}


def write(folder: Path, text: str) -> Path:
    path = folder / "adapter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def with_key(table: str, line: str) -> str:
    """MINIMAL with ``line`` added to the (first entry of the) table ``table``."""
    block = BLOCKS[table]
    if block is None:
        header = {"adapter": "[adapter]\n", "collectivity": "[[collectivity]]\n", "connection": "[[connection]]\n"}[
            table
        ]
        return MINIMAL.replace(header, header + line + "\n", 1)
    return MINIMAL + "\n" + block + line + "\n"
