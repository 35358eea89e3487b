"""``init DIR``: a starting configuration for one collectivity, to copy and adapt.

It writes ``adapter.toml`` (one collectivity, one network-server connection, the broker, the
gateway's agreements folder), ``models/`` with one device profile and its codec copied from
the shipped ones, and ``agreements/`` with one example ODRL agreement. Every line to adapt is
marked ``CHANGE``. Nothing is asked; nothing existing is overwritten (the whole run is
refused first); ``ngsild-adapter check --config DIR/adapter.toml`` passes on what it wrote.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import click

from adapter import resources
from adapter.cli._main import main

__all__ = ["InitError", "StartingFiles", "starting_files", "write_starting_files"]

# The same rule as the loader's [[collectivity]] tenant (it is also a path segment of IRIs).
_TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")
#: The shipped profile copied as the example (a JavaScript codec, so both files are shown).
_PROFILE = "water-meter.yaml"
_CODEC = "codecs/water-meter-pulse.js"


class InitError(click.ClickException):
    """A refused option, or files already there: nothing was written."""


@dataclass(frozen=True, slots=True)
class StartingFiles:
    """What ``init`` writes: each file's path relative to DIR and its text."""

    files: tuple[tuple[str, str], ...]


_CONNECTIONS = {
    "chirpstack": """\
# The ChirpStack v4 MQTT integration of your network server.
[[connection]]
name = "{tenant}-chirpstack"
collectivity = "{tenant}"
lns = "chirpstack"
transport = "mqtt"
host = "127.0.0.1"                 # CHANGE: the MQTT broker ChirpStack publishes to
port = 1883                        # 8883 with tls = true
# application = "00000000-0000-0000-0000-000000000000"   # CHANGE: your ChirpStack application UUID
# CHANGE, in production: an MQTT account reading this collectivity's application only. The
# password is named by a variable, never written here; `check` and `listen` refuse an unset one.
# username = "adapter-{tenant}"
# password_env = "{env}_MQTT_PASSWORD"
# tls = true
""",
    "tts": """\
# The MQTT server of your The Things Stack v3 (cloud or self-hosted).
[[connection]]
name = "{tenant}-tts"
collectivity = "{tenant}"
lns = "tts"
transport = "mqtt"
host = "eu1.cloud.thethings.network"   # CHANGE: your cluster's address
tls = true                             # port 8883, the system's CAs
# CHANGE: the application id as user name and an API key (Read application traffic rights),
# named by a variable, never written here; `check` and `listen` refuse an unset one.
# username = "my-application@ttn"
# password_env = "{env}_TTS_API_KEY"
""",
}

_CONFIG = """\
# ngsild-adapter configuration of {name_comment}, written by `ngsild-adapter init`.
# Lines marked CHANGE are the ones to adapt; every key is described in docs/configuration.md.
# Check it at any time:  ngsild-adapter check --config {config_path}
# Relative paths are relative to this file.

[adapter]
models = "models"                  # your device profiles and codecs (one profile to copy is there)
state_dir = "state"                # SQLite files: pipeline state, outbox, dead letters

[[collectivity]]
tenant = "{tenant}"                # the NGSI-LD tenant of its entities (NGSILD-Tenant)
name = {name}
# identifiers = {{ siren = "000000000" }}   # CHANGE: its official identifiers

{connection}
[broker]
url = "http://127.0.0.1:1026"      # CHANGE: your Orion-LD (or any NGSI-LD broker); entities wait
                                   # in the outbox while it is unreachable

[provenance]
log_origin = "adapter.example.org" # CHANGE: your public host name (logs are <origin>/<tenant>)
# key_dir = "/var/lib/ngsild-adapter-keys"   # the signing keys; default $XDG_DATA_HOME/ngsild-adapter/keys

# A device given by hand (others come from uplinks, or a [[registry]] import):
# [[device]]
# dev_eui = "0000000000000000"     # CHANGE
# name = "Water meter - 1 rue de l'Exemple"
# location = {{ latitude = 48.11, longitude = -1.68 }}

[gateway]
policies = "agreements"            # the sharing agreements (ODRL), one .jsonld file each
# CHANGE: the Keycloak realm whose tokens the gateway trusts (docs/sharing-agreements.md).
# [[gateway.issuer]]
# issuer = "https://sso.example.org/realms/{tenant}"
# organization = "{tenant}"
"""

_PROFILE_HEADER = """\
# Copied from the profiles shipped with ngsild-adapter by `ngsild-adapter init`, to adapt to
# your devices (the format: models/README.md of the project). CHANGE:
#   profile            a name of yours, unique in this folder
#   match              the device profile names (or fPorts) your network server gives these meters
#   codec              your decoder: a JavaScript file beside (codecs/), or builtin: cayenne_lpp
#   entities           the Smart Data Models type, id pattern and attributes; a type's schema
#                      is searched in sdm/<Type>/schema.json here first, then the shipped ones
"""

_CODEC_HEADER = """\
// Copied from the codecs shipped with ngsild-adapter by `ngsild-adapter init`.
// CHANGE: your devices' decoder (TTN Device Repository `decodeUplink`, or ChirpStack's
// `Decode`/`decodeUplink`); the field names it returns are the ones the profile maps.
"""

_AGREEMENTS_README = """\
Sharing agreements of {tenant}, one W3C ODRL 2.2 file (.jsonld) per agreement.

example-building-managers.jsonld is an example written by `ngsild-adapter init`: the
collectivity's building managers (a Keycloak realm role) read its water meters and devices.
CHANGE it (uid, title, assignee, entity types, actions, level of detail) or remove it, then
check each file:

    ngsild-adapter policy check --config {config_path} agreements/FILE.jsonld

The format and every rule: docs/sharing-agreements.md of the project.
"""


def _agreement(tenant: str) -> str:
    document = {
        "@context": ["http://www.w3.org/ns/odrl.jsonld", {"nga": "https://w3id.org/ngsild-adapter/ns#"}],
        "@type": "Agreement",
        "uid": f"urn:ngsild-adapter:agreement:{tenant}-building-managers",
        "profile": "https://w3id.org/ngsild-adapter/odrl-profile",
        "dct:title": "Example (CHANGE): the building managers follow the water meters of the collectivity",
        "assigner": f"urn:ngsild-adapter:organization:{tenant}",
        "assignee": f"urn:ngsild-adapter:role:{tenant}:building-manager",
        "permission": [
            {
                "target": {
                    "@type": "AssetCollection",
                    "nga:tenant": tenant,
                    "nga:entityType": ["WaterConsumptionObserved", "Device"],
                },
                "action": ["read", "nga:queryHistory"],
                "constraint": [{"leftOperand": "nga:levelOfDetail", "operator": "eq", "rightOperand": "raw"}],
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def starting_files(tenant: str, name: str, lns: str, config_path: str = "adapter.toml") -> StartingFiles:
    """The files of a starting configuration (refuses a tenant or a name the loader would refuse)."""
    if not _TENANT.fullmatch(tenant):
        raise InitError(f"--tenant {tenant!r}: 1 to 50 of a-z, 0-9, _ and -, starting with a letter or digit")
    if not name.strip() or len(name) > 200 or not name.isprintable():
        raise InitError("--name: 1 to 200 printable characters")
    if lns not in _CONNECTIONS:
        raise InitError(f"--lns {lns!r}: one of {', '.join(sorted(_CONNECTIONS))}")
    env = "NGSILD_ADAPTER_" + tenant.upper().replace("-", "_")
    models = resources.shipped_models_dir()
    # json.dumps of printable text is a valid TOML basic string (the same escapes)
    config = _CONFIG.format(
        tenant=tenant,
        name=json.dumps(name, ensure_ascii=False),
        name_comment=name,
        connection=_CONNECTIONS[lns].format(tenant=tenant, env=env),
        config_path=config_path,
    )
    return StartingFiles(
        files=(
            ("adapter.toml", config),
            (f"models/{_PROFILE}", _PROFILE_HEADER + (models / _PROFILE).read_text(encoding="utf-8")),
            (f"models/{_CODEC}", _CODEC_HEADER + (models / _CODEC).read_text(encoding="utf-8")),
            ("agreements/example-building-managers.jsonld", _agreement(tenant)),
            ("agreements/README.txt", _AGREEMENTS_README.format(tenant=tenant, config_path=config_path)),
        )
    )


def write_starting_files(folder: Path, files: StartingFiles) -> list[Path]:
    """Write ``files`` under ``folder``, or nothing at all when one of them exists already."""
    targets = [(folder / relative, text) for relative, text in files.files]
    existing = [str(path) for path, _ in targets if path.exists() or path.is_symlink()]
    if existing:
        raise InitError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: nothing was "
            "written (init never overwrites; choose an empty folder)"
        )
    written = []
    try:
        for path, text in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as out:  # "x": never replaces a file created meanwhile
                out.write(text)
            written.append(path)
    except OSError as exc:
        raise InitError(f"cannot write {exc.filename or folder}: {exc.strerror or exc}") from exc
    return written


@main.command()
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--tenant", default="ville", show_default=True, help="The collectivity's NGSI-LD tenant.")
@click.option("--name", default="Ville - services techniques", show_default=True, help="The collectivity's name.")
@click.option(
    "--lns",
    type=click.Choice(sorted(_CONNECTIONS)),
    default="chirpstack",
    show_default=True,
    help="Its network server.",
)
def init(folder: Path, tenant: str, name: str, lns: str) -> None:
    """Write a starting configuration for one collectivity into DIR: adapter.toml, models/ (one
    device profile and its codec to copy) and agreements/ (one example agreement). Lines to
    adapt say CHANGE; existing files are never overwritten."""
    config_path = str(folder / "adapter.toml")
    written = write_starting_files(folder, starting_files(tenant, name, lns, config_path))
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: adapt the lines marked CHANGE, then  ngsild-adapter check --config {config_path}")
