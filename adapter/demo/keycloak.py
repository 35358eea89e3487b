"""A local Keycloak for the demo and the tests: the real server, in dev mode, on 127.0.0.1.

The gateway trusts tokens from several collectivities, and what the tests check (signatures
against a realm's JWKS, the claims our mappers add, identity brokering between realms) is
Keycloak's behaviour, so they run the real server rather than a fake. ``.ci/install-keycloak``
(``make setup``) fetches the pinned distribution from Maven Central into a cache outside the
repository; :class:`KeycloakServer` runs it:

- on a free HTTP port and a free management port (``/health/ready``), both on 127.0.0.1, with
  ``--hostname`` set to that URL so every token's ``iss`` is stable;
- with the realm files of ``compose/keycloak/`` (the ones the production compose imports),
  rendered into the server's own folder (see :func:`render_realm`) and imported at start;
- with its H2 database, transaction logs and imported realms in ``workdir``, never in the
  shared distribution nor in the repository, so two servers never see each other's state;
- with a bootstrap admin whose password is drawn for each server.

Usage::

    with KeycloakServer(tmp_path) as server:  # start() blocks until ready (bounded: 120 s)
        form = {"grant_type": "client_credentials", "client_id": "ecole-ventilation", ...}
        async with session.post(server.token_url("ville"), data=form) as response: ...
        keys_at = server.jwks_url("ville")
        # the bootstrap admin: server.admin_username, server.admin_password
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from adapter import resources
from adapter.demo.network import LOOPBACK, free_port
from adapter.exceptions import AdapterError

__all__ = [
    "KEYCLOAK_VERSION",
    "REALMS_DIR",
    "KeycloakError",
    "KeycloakServer",
    "find_java_home",
    "find_keycloak_home",
    "render_realm",
]

#: Keep in step with VERSION in .ci/install-keycloak.
KEYCLOAK_VERSION = "26.7.3"
#: The realm files, shared with the production compose.
REALMS_DIR = resources.realms_dir()
HOME_ENV = "NGSILD_ADAPTER_KEYCLOAK_HOME"
JAVA_HOMES = (Path("/usr/lib/jvm/temurin-25-jdk-amd64"), Path("/usr/lib/jvm/java-17-openjdk-amd64"))
# A start with the three realms takes ~15-20 s on 2 cores after `make setup` (its warm-up
# builds the distribution for dev mode), 45-60 s without.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.5

# ${NAME} or ${NAME:default}, NAME in capitals: the placeholders of Keycloak's realm import.
# Lower-case ones (`${profileScopeConsentText}`) are message keys and
# `${CLAIM.preferred_username}` a mapper's template: both are Keycloak's own and stay.
_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::([^}]*))?\}")


class KeycloakError(AdapterError):
    """Keycloak is not installed, or did not start (the message ends with its last log lines)."""


def find_keycloak_home(env: Mapping[str, str] | None = None) -> Path:
    """The unpacked distribution: ``$NGSILD_ADAPTER_KEYCLOAK_HOME``, or the cache that
    ``.ci/install-keycloak`` fills."""
    env = os.environ if env is None else env
    if env.get(HOME_ENV):
        home = Path(env[HOME_ENV])
    else:
        cache = Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME", str(Path.home()))) / ".cache")
        home = cache / "ngsild-adapter" / f"keycloak-{KEYCLOAK_VERSION}"
    if not (home / "bin" / "kc.sh").is_file():
        raise KeycloakError(f"Keycloak {KEYCLOAK_VERSION} is not installed in {home} (no bin/kc.sh): run `make setup`")
    return home


def find_java_home() -> Path:
    """Temurin 25 (the JDK the project runs Keycloak on), else Java 17."""
    for home in JAVA_HOMES:
        if (home / "bin" / "java").is_file():
            return home
    raise KeycloakError(f"no JDK for Keycloak: none of {', '.join(map(str, JAVA_HOMES))} has bin/java")


def _java_major(java_home: Path) -> int:
    release = java_home / "release"
    if release.is_file():
        found = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(errors="replace"), re.MULTILINE)
        if found:
            return int(found.group(1))
    return 0


def render_realm(text: str, keycloak_url: str) -> str:
    """A realm file as the dev server imports it.

    The realm files hold placeholders that Keycloak's import resolves from the environment:
    ``${KEYCLOAK_URL}`` (the server's public URL, needed by the identity-provider endpoints
    and the brokering client's redirect URI) and ``${VAR:dev-only-value}`` (passwords and
    secrets). The production compose sets those variables. Here ``${KEYCLOAK_URL}`` becomes
    this server's URL, whose port is only known at start, and every other placeholder its
    dev-only default, whatever the caller's environment holds: the tests always see the same
    realms.
    """

    def resolve(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name == "KEYCLOAK_URL":
            return keycloak_url
        return match.group(0) if default is None else default

    rendered = _PLACEHOLDER.sub(resolve, text)
    json.loads(rendered)  # a substituted value must not have broken the JSON
    return rendered


class KeycloakServer:
    """Keycloak in dev mode on 127.0.0.1, with the realms of ``realms_dir`` imported at start.

    ``url``, :meth:`issuer`, :meth:`token_url` and :meth:`jwks_url` are known before
    :meth:`start`. ``admin_username`` / ``admin_password`` are the bootstrap admin of the
    ``master`` realm (the password is random for each server). After a start, ``realms``
    names the imported realms and ``start_seconds`` how long the start took; ``log_file``
    holds the server's output. A stopped server can start again: its database in ``workdir``
    keeps what it had (realms are imported only when missing).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        realms_dir: Path = REALMS_DIR,
        home: Path | None = None,
        java_home: Path | None = None,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self.home = find_keycloak_home() if home is None else home
        self.java_home = find_java_home() if java_home is None else java_home
        self.workdir = workdir
        self.realms_dir = realms_dir
        self.start_timeout = start_timeout
        self.host = LOOPBACK
        self.port = free_port(LOOPBACK)
        self.management_port = free_port(LOOPBACK)
        self.admin_username = "admin"
        self.admin_password = secrets.token_urlsafe(24)
        self.log_file = workdir / "keycloak.log"
        self.import_dir = workdir / "import"
        self.realms: tuple[str, ...] = ()
        self.start_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:{self.management_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def issuer(self, realm: str) -> str:
        return f"{self.url}/realms/{realm}"

    def token_url(self, realm: str) -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/token"

    def auth_url(self, realm: str) -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/auth"

    def jwks_url(self, realm: str) -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/certs"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _prepare_realms(self) -> None:
        files = sorted(self.realms_dir.glob("*-realm.json"))
        if not files:
            raise KeycloakError(f"no realm file (*-realm.json) in {self.realms_dir}")
        self.import_dir.mkdir(parents=True, exist_ok=True)
        realms = []
        for source in files:
            rendered = render_realm(source.read_text(encoding="utf-8"), self.url)
            (self.import_dir / source.name).write_text(rendered, encoding="utf-8")
            realms.append(json.loads(rendered)["realm"])
        self.realms = tuple(realms)

    def _environment(self) -> dict[str, str]:
        # KC_*, QUARKUS_* and the legacy KEYCLOAK_ADMIN* variables are Keycloak configuration:
        # the caller's must not change this server (a KC_DB in a developer's shell would point
        # it at their database).
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KC_", "QUARKUS_", "KEYCLOAK_ADMIN")) and k not in ("JAVA_OPTS", "JAVA_OPTS_APPEND")
        }
        env["JAVA_HOME"] = str(self.java_home)
        env["KC_BOOTSTRAP_ADMIN_USERNAME"] = self.admin_username
        env["KC_BOOTSTRAP_ADMIN_PASSWORD"] = self.admin_password
        # The JVM's ahead-of-time cache, when `NGSILD_ADAPTER_KEYCLOAK_AOT=1 make setup` recorded
        # one (JDK 25+): ~25% faster starts. The JVM ignores a stale one.
        major = _java_major(self.java_home)
        aot_cache = self.home / f"ngsild-adapter-jdk{major}.aot"
        if major >= 25 and aot_cache.is_file():
            env["JAVA_OPTS_APPEND"] = f"-XX:AOTCache={aot_cache}"
        return env

    def _command(self) -> list[str]:
        return [
            str(self.home / "bin" / "kc.sh"),
            "start-dev",
            # The only build-time option: .ci/install-keycloak builds the distribution with
            # exactly this one, any other would rebuild it (~30 s) at the next start.
            "--health-enabled=true",
            f"--http-host={self.host}",
            f"--http-port={self.port}",
            f"--http-management-port={self.management_port}",
            f"--hostname={self.url}",
            f"--db-url=jdbc:h2:file:{self.workdir / 'h2' / 'keycloakdb'};NON_KEYWORDS=VALUE",
            # The folder `--import-realm` would set (the shared distribution's data/import),
            # pointed at this server's own rendered copies. Keycloak imports them at start,
            # skipping a realm that already exists.
            f"-Dkeycloak.migration.dir={self.import_dir}",
            f"-Dquarkus.transaction-manager.object-store.directory={self.workdir / 'transaction-logs'}",
        ]

    def start(self) -> None:
        """Start Keycloak and wait until it is ready and serves every imported realm."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._prepare_realms()
        started = time.monotonic()
        with self.log_file.open("ab") as log:
            self._process = process = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # its own process group: stop() can kill kc.sh and the JVM together
                start_new_session=True,
            )
        try:
            self._wait_until_ready(process, started)
        except BaseException:
            # Keycloak runs in its own session, out of reach of the terminal's Ctrl-C: never
            # leave it behind, whatever interrupted the wait.
            self.stop()
            raise

    def _wait_until_ready(self, process: subprocess.Popen[bytes], started: float) -> None:
        deadline = started + self.start_timeout
        while not self._ready():
            if process.poll() is not None:
                raise KeycloakError(
                    f"Keycloak exited with code {process.returncode} while starting:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise KeycloakError(
                    f"Keycloak was not ready within {self.start_timeout:.0f} s on {self.url} (the first start on a "
                    f"2-core machine takes 30-60 s without `make setup`'s warm-up; see {self.log_file}):\n"
                    f"{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL_S)
        self.start_seconds = time.monotonic() - started
        missing = [realm for realm in self.realms if not self._serves_realm(realm)]
        if missing:
            raise KeycloakError(f"Keycloak started without the realm(s) {', '.join(missing)}:\n{self.log_tail()}")

    def _ready(self) -> bool:
        return _http_ok(f"{self.management_url}/health/ready")

    def _serves_realm(self, realm: str) -> bool:
        return _http_ok(f"{self.issuer(realm)}/.well-known/openid-configuration")

    def stop(self) -> None:
        """SIGTERM (Keycloak shuts down cleanly), then SIGKILL to the process group after a timeout."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is not None:
            return
        # kc.sh forwards SIGTERM to the JVM it started and waits for it to exit.
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            # kc.sh is not reaped yet, so its pid (the group id) cannot have been reused.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log (for error messages)."""
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


# Loopback requests never go through a proxy of the caller's environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as response:
            status: int = response.status
    except (urllib.error.URLError, OSError):
        return False
    return 200 <= status < 300
