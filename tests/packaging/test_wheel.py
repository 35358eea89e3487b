"""The wheel, installed into a fresh virtualenv, works with no checkout anywhere near it.

Built from a copy of the sources (the checkout gets no build/ folder), installed with
``--no-deps`` into a new virtualenv in a temporary folder, and run from another temporary
folder: ``init``, ``check``, ``map`` on a bundled sample, ``samples``, ``policy check``.

The dependencies are not downloaded again: the new environment reads them from this
environment's site-packages through a ``.pth`` line. That folder holds the pinned versions
pyproject.toml names (``pip check`` in the new environment proves the wheel's requirements
are met by them), and no copy of ``adapter``: the editable install of ``make setup`` reaches
the checkout only through its own ``.pth`` hook, which Python runs for site folders alone,
never for a folder a ``.pth`` line adds. The first test asserts it: ``adapter`` and every data
folder resolve inside the new environment, and the checkout is not on ``sys.path``.
Installing the dependencies from PyPI instead would take minutes (grpcio, pyoxigraph,
cryptography...) and test PyPI more than the package. Building still needs the build backend
(setuptools>=77, fetched by pip's isolated build from its configured index or find-links, then
cached); a build that cannot get it fails with pip's own message.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO

BUILD_TIMEOUT_S = 300
COMMAND_TIMEOUT_S = 120


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    site_packages: Path
    work: Path
    env: dict[str, str]

    def run(
        self, *args: str, program: str = "ngsild-adapter", cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / program), *args],
            cwd=cwd or self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, f"ngsild-adapter {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result


def _step(what: str, command: Sequence[str], **kwargs: object) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({' '.join(command)}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def _copy_sources(target: Path) -> None:
    """What the build reads: pyproject.toml, the README, the package and the mapped folders."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, target / name)
    for folder in ["adapter", *setuptools["package-dir"].values()]:
        shutil.copytree(REPO / folder, target / folder, ignore=ignore, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    _copy_sources(root / "src")
    _step(
        "building the wheel",
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(root / "src")],
    )
    (wheel,) = (root / "dist").glob("ngsild_adapter-*.whl")
    venv = root / "venv"
    _step("creating the virtualenv", [sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _step(
        "installing the wheel",
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
    )
    site_packages = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # this environment's dependencies, after the new environment's own site-packages
    (site_packages / "zz_project_dependencies.pth").write_text(
        "".join(f"{folder}\n" for folder in site.getsitepackages()), encoding="utf-8"
    )
    _step("checking the wheel's requirements", [sys.executable, "-m", "pip", "--python", str(python), "check"])
    home = root / "home"
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "LANG": "C.UTF-8",
    }  # nothing else: no PYTHONPATH, no NGSILD_ADAPTER_* of this test run
    work = root / "work"
    work.mkdir()
    return Installed(wheel, venv, site_packages, work, env)


def test_the_wheel_carries_the_data_and_no_checkout_files(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for needed in (
        "adapter/_shipped/contexts/index.json",
        "adapter/_shipped/contexts/odrl.jsonld",
        "adapter/_shipped/models/water-meter.yaml",
        "adapter/_shipped/models/codecs/water-meter-pulse.js",
        "adapter/_shipped/models/sdm/AirQualityObserved/schema.json",
        "adapter/_shipped/models/sdm/_common/common-schema.json",
        "adapter/_shipped/keycloak/ville-realm.json",
        "adapter/_shipped/policies/ville-data-admins.jsonld",
        "adapter/demo/config.toml",
        "adapter/demo/events/01-chirpstack-air-quality.json",
        "adapter/provenance/queries/lineage.rq",
        "adapter/cli/init.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "compose/", "models/", "contexts/", "benchmarks/"))]


def test_everything_resolves_inside_the_new_environment(installed: Installed) -> None:
    probe = (
        "import json, sys, adapter, adapter.resources as r; print(json.dumps({'adapter': adapter.__file__, "
        "'data': [str(f()) for f in (r.contexts_dir, r.shipped_models_dir, r.shipped_schemas_dir, r.realms_dir, "
        "r.demo_agreements_dir, r.demo_config, r.demo_events_dir, r.queries_dir)], 'path': sys.path}))"
    )
    found = json.loads(installed.run("-c", probe, program="python").stdout)
    inside = str(installed.site_packages / "adapter")
    assert found["adapter"].startswith(inside)
    assert all(Path(p).exists() and p.startswith(inside) for p in found["data"]), found["data"]
    assert str(REPO) not in found["path"] and "" in found["path"]  # "" is the working folder, not the checkout


def test_init_then_check_passes(installed: Installed) -> None:
    installed.ok("init", "site", "--tenant", "eau", "--name", "Régie des eaux", "--lns", "chirpstack")
    report = json.loads(installed.ok("check", "--config", "site/adapter.toml").stdout)
    assert report["status"] == "ok" and report["collectivities"] == ["eau"]
    assert report["profiles"] == {"water-meter": "water-meter.yaml"}
    again = installed.run("init", "site")
    assert again.returncode == 1 and "already exist" in again.stderr and "Traceback" not in again.stderr


def test_map_a_bundled_sample(installed: Installed) -> None:
    events = installed.site_packages / "adapter" / "demo" / "events"
    demo = json.loads(installed.ok("map", str(events / "01-chirpstack-air-quality.json")).stdout)
    assert (demo["status"], demo["tenant"]) == ("mapped", "ville")
    assert [e["type"] for e in demo["entities"]] == ["AirQualityObserved", "Device"]
    if not (installed.work / "site").exists():
        installed.ok("init", "site", "--tenant", "eau")
    # the collectivity's own configuration and profile, on the water meter's sample
    own = json.loads(
        installed.ok(
            "map",
            "--config",
            "site/adapter.toml",
            "--connection",
            "eau-chirpstack",
            str(events / "03-chirpstack-webhook-water-meter.json"),
        ).stdout
    )
    assert (own["status"], own["tenant"]) == ("mapped", "eau")
    assert own["entities"][0]["id"] == "urn:ngsi-ld:WaterConsumptionObserved:eau:70b3d57ed0003c03"


def test_samples_prints_one_json_line_per_sample(installed: Installed) -> None:
    result = installed.ok("samples")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    shipped = sorted(p.name for p in (installed.site_packages / "adapter" / "demo" / "events").glob("*.json"))
    assert sorted(line["sample"] for line in lines) == shipped
    assert json.loads(result.stderr.strip().splitlines()[-1])["printed"] == len(lines)


def test_policy_check_reads_the_local_odrl_context(installed: Installed) -> None:
    if not (installed.work / "site").exists():
        installed.ok("init", "site", "--tenant", "eau")
    own = installed.ok(
        "policy", "check", "--config", "site/adapter.toml", "site/agreements/example-building-managers.jsonld"
    )
    assert "Role building-manager of eau may read" in own.stdout
    shipped = installed.site_packages / "adapter" / "_shipped" / "policies" / "ville-buildings-managers.jsonld"
    assert "IndoorEnvironmentObserved" in installed.ok("policy", "check", str(shipped)).stdout


def test_an_unknown_type_names_both_schema_folders(installed: Installed) -> None:
    installed.ok("init", "typo", "--tenant", "eau")
    profile = installed.work / "typo" / "models" / "water-meter.yaml"
    profile.write_text(
        profile.read_text(encoding="utf-8").replace("type: WaterConsumptionObserved", "type: WaterConsumptionObservd"),
        encoding="utf-8",
    )
    result = installed.run("check", "--config", "typo/adapter.toml")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    message = result.stdout + result.stderr
    assert "WaterConsumptionObservd" in message
    assert str(installed.work / "typo" / "models" / "sdm") in message
    assert str(installed.site_packages / "adapter" / "_shipped" / "models" / "sdm") in message
