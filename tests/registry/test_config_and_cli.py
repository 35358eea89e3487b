"""``[[registry]]`` in the configuration, and ``ngsild-adapter registry import|list`` (against
the ChirpStack gRPC stand-in built from the official definitions)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapter.cli import main
from adapter.config import load_config
from adapter.exceptions import ConfigError
from tests.registry.conftest import CS_APP, CS_TOKEN
from tests.registry.standins import ChirpStackStandIn, chirpstack_device

BASE = """
[adapter]
state_dir = "{state}"

[[collectivity]]
tenant = "metropole"
name = "Métropole"

[[collectivity]]
tenant = "region"
name = "Région"

[[connection]]
name = "metropole-chirpstack"
collectivity = "metropole"
lns = "chirpstack"

[[connection]]
name = "region-tts"
collectivity = "region"
lns = "tts"
application = "region-air"
"""


def _config(tmp_path: Path, registries: str) -> Path:
    path = tmp_path / "adapter.toml"
    path.write_text(BASE.format(state=tmp_path / "state") + registries, encoding="utf-8")
    return path


def test_a_registry_takes_its_connections_lns_and_collectivity(tmp_path: Path) -> None:
    config = load_config(
        _config(
            tmp_path,
            f"""
[[registry]]
connection = "metropole-chirpstack"
url = "https://cs.example:8080/"
applications = ["{CS_APP}"]
token_env = "CS_TOKEN"
ca_file = "ca.pem"
interval_s = 900

[[registry]]
connection = "region-tts"
url = "https://eu1.cloud.thethings.network"
token_env = "TTS_KEY"
""",
        ),
        env={"CS_TOKEN": "secret"},
    )
    chirpstack, tts = config.registries
    assert (chirpstack.lns, chirpstack.collectivity, chirpstack.url, chirpstack.token) == (
        "chirpstack",
        "metropole",
        "https://cs.example:8080",
        "secret",
    )
    assert chirpstack.ca_file == (tmp_path / "ca.pem").resolve() and chirpstack.interval_s == 900
    assert (tts.lns, tts.collectivity, tts.applications, tts.token) == ("tts", "region", ("region-air",), None)
    assert "secret" not in repr(chirpstack)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('connection = "nope"\nurl = "http://x"\ntoken_env = "T"', "not a declared"),
        (
            'connection = "metropole-chirpstack"\nurl = "http://x"\ntoken_env = "T"\napplications = ["not-a-uuid"]',
            "application UUIDs",
        ),
        ('connection = "metropole-chirpstack"\nurl = "http://x"\ntoken_env = "T"', "non-empty list"),
        ('connection = "region-tts"\nurl = "ftp://x"\ntoken_env = "T"', "url must be"),
        ('connection = "region-tts"\nurl = "https://x/api/v3?evil"\ntoken_env = "T"', "url must be"),
        ('connection = "region-tts"\nurl = "https://x"', "token_env"),
        ('connection = "region-tts"\nurl = "https://x"\ntoken_env = "T"\ninterval_s = 1', "interval_s >= 10"),
        ('connection = "region-tts"\nurl = "https://x"\ntoken_env = "T"\ncollectivity = "metropole"', "unknown key"),
        (
            'connection = "region-tts"\nurl = "https://x"\ntoken_env = "T"\n[[registry]]\nconnection = "region-tts"\n'
            'url = "https://y"\ntoken_env = "T"',
            "one [[registry]] per connection",
        ),
    ],
)
def test_a_wrong_registry_entry_is_a_clear_error(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(_config(tmp_path, f"\n[[registry]]\n{entry}\n"), env={})


async def test_registry_import_once_then_list(chirpstack: tuple[ChirpStackStandIn, str], tmp_path: Path) -> None:
    standin, url = chirpstack
    standin.applications[CS_APP] = [chirpstack_device("70b3d57ed0000001", "Part-Dieu", tags={"site": "nord"})]
    config = _config(
        tmp_path,
        f"""
[[registry]]
connection = "metropole-chirpstack"
url = "{url}"
applications = ["{CS_APP}"]
token_env = "CS_TOKEN"
""",
    )
    runner = CliRunner(env={"CS_TOKEN": CS_TOKEN})

    def invoke(*args: str):
        return runner.invoke(main, [*args, "--config", str(config)], catch_exceptions=False)

    # the CLI runs its own event loop: in a thread, while this loop serves the stand-in
    result = await asyncio.to_thread(invoke, "registry", "import", "--once")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["applications"] == [
        {"registry": "metropole-chirpstack", "application": CS_APP, "status": "imported", "devices": 1, "skipped": []}
    ]
    listed = json.loads((await asyncio.to_thread(invoke, "registry", "list")).output)
    (device,) = listed["devices"]
    assert device["collectivity"] == "metropole" and device["attributes"] == {"site": "nord"}
    assert device["source"]["lns"] == "chirpstack" and device["source"]["application"] == CS_APP
    assert listed["imports"][0]["error"] is None

    standin.token = "rotated"  # ChirpStack now refuses the old token: exit 1, the import kept
    failed = await asyncio.to_thread(invoke, "registry", "import", "--once")
    assert failed.exit_code == 1
    assert json.loads(failed.output)["applications"][0]["kept"] == 1
    assert "Traceback" not in failed.output
