"""A local Mosquitto broker for the demo and the tests (Debian's ``mosquitto`` binary).

Each broker gets a free port on 127.0.0.1, its own configuration and its own persistence
folder, so it never touches a system broker and sessions survive a restart exactly as in
production. It is stopped with SIGTERM, which lets Mosquitto save its sessions first.

With a ``TlsListener`` it also opens a TLS listener on a second free port (the way an LNS's
broker is reached on 8883), with its own authentication: a client certificate signed by the
given CA (``require_certificate``), its subject's CN as user name, and/or a password file.
The plaintext listener stays anonymous, for the tests' publishers (the network server's side).
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapter.demo.network import free_port
from adapter.exceptions import AdapterError

__all__ = ["MosquittoBroker", "MosquittoError", "TlsListener"]

MOSQUITTO = Path("/usr/sbin/mosquitto")
HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def _mosquitto_binary() -> Path:
    if MOSQUITTO.is_file():
        return MOSQUITTO
    found = shutil.which("mosquitto")
    if found is None:
        raise MosquittoError(f"the Mosquitto broker is not installed ({MOSQUITTO} not found): run `make setup`")
    return Path(found)


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


class MosquittoError(AdapterError):
    """Mosquitto is missing or did not start."""


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener's settings (Mosquitto's ``cafile``, ``certfile``, ``keyfile``...).

    ``passwords`` (user name -> password) become a password file made with Mosquitto's own
    ``mosquitto_passwd``; with neither passwords nor ``use_identity_as_username`` a client
    certificate alone does not log in, since the listener refuses anonymous clients."""

    ca_file: Path  # the CA that signs the client certificates
    cert_file: Path  # the server's certificate (chain) and key
    key_file: Path
    require_certificate: bool = True
    use_identity_as_username: bool = False
    passwords: Mapping[str, str] = field(default_factory=dict)


class MosquittoBroker:
    """A Mosquitto process on a fixed free port that can be stopped and started again."""

    def __init__(self, workdir: Path, tls: TlsListener | None = None) -> None:
        self.binary = _mosquitto_binary()
        self.host = HOST
        self.port = free_port(HOST)
        self.tls = tls
        self.tls_port = free_port(HOST) if tls is not None else None
        self.workdir = workdir
        self.log_file = workdir / "mosquitto.log"
        self.config_file = workdir / "mosquitto.conf"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def tls_address(self) -> tuple[str, int]:
        """The TLS listener's ``(host, port)``; only for a broker made with a ``TlsListener``."""
        if self.tls_port is None:
            raise MosquittoError("this broker has no TLS listener")
        return self.host, self.tls_port

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        # `user` keeps Mosquitto from dropping root to a "mosquitto" user that could not
        # write the persistence file in this root-owned temporary folder.
        self.config_file.write_text(
            # per listener: the TLS listener authenticates, the plaintext one stays anonymous
            ("per_listener_settings true\n" if self.tls is not None else "") + f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n" + self._tls_config() +
            # Mosquitto's default (1000) drops QoS 1 messages once a slow subscriber's queue
            # is full; an LNS broker feeding the adapter must keep them all.
            "max_queued_messages 0\n"
            "max_queued_bytes 0\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "persistence_file mosquitto.db\n"
            f"log_dest file {self.log_file}\n"
            "log_type all\n"
            f"user {getpass.getuser()}\n",
            encoding="utf-8",
        )

    def _tls_config(self) -> str:
        tls = self.tls
        if tls is None:
            return ""
        lines = [
            f"listener {self.tls_port} {self.host}",
            f"cafile {tls.ca_file}",
            f"certfile {tls.cert_file}",
            f"keyfile {tls.key_file}",
            "tls_version tlsv1.2",  # the lowest version accepted
            f"require_certificate {str(tls.require_certificate).lower()}",
            f"use_identity_as_username {str(tls.use_identity_as_username).lower()}",
            "allow_anonymous false",
        ]
        if tls.passwords:
            lines.append(f"password_file {self._password_file(tls.passwords)}")
        return "\n".join(lines) + "\n"

    def _password_file(self, passwords: Mapping[str, str]) -> Path:
        """A password file hashed by ``mosquitto_passwd`` (shipped with the broker)."""
        tool = shutil.which("mosquitto_passwd") or str(self.binary.parent.parent / "bin" / "mosquitto_passwd")
        path = self.workdir / "passwd"
        path.write_text("", encoding="utf-8")
        for user, password in passwords.items():
            done = subprocess.run([tool, "-b", str(path), user, password], capture_output=True, check=False)
            if done.returncode != 0:
                raise MosquittoError(f"mosquitto_passwd failed: {done.stderr.decode(errors='replace').strip()}")
        return path

    def start(self) -> None:
        if self.running:
            return
        self._process = subprocess.Popen(
            [str(self.binary), "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(_accepts_connections(port) for port in (self.port, self.tls_port) if port is not None):
            if self._process.poll() is not None:
                raise MosquittoError(f"mosquitto exited with code {self._process.returncode}:\n{self._diagnostics()}")
            if time.monotonic() > deadline:
                self.stop()
                raise MosquittoError(f"mosquitto did not listen on {self.host}:{self.port} within {START_TIMEOUT_S} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Terminate the broker (SIGTERM: it saves its sessions to the persistence file first)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def _diagnostics(self) -> str:
        stderr = self._process.stderr.read().decode(errors="replace") if self._process and self._process.stderr else ""
        log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return f"{stderr}\n{log[-4000:]}"
