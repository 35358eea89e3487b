"""A local Mosquitto broker for the demo and the tests (Debian's ``mosquitto`` binary).

Each broker gets a free port on 127.0.0.1, its own configuration and its own persistence
folder, so it never touches a system broker and sessions survive a restart exactly as in
production. It is stopped with SIGTERM, which lets Mosquitto save its sessions first.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

from adapter.demo.network import free_port
from adapter.exceptions import AdapterError

__all__ = ["MosquittoBroker", "MosquittoError"]

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


class MosquittoBroker:
    """A Mosquitto process on a fixed free port that can be stopped and started again."""

    def __init__(self, workdir: Path) -> None:
        self.binary = _mosquitto_binary()
        self.host = HOST
        self.port = free_port(HOST)
        self.workdir = workdir
        self.log_file = workdir / "mosquitto.log"
        self.config_file = workdir / "mosquitto.conf"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        # `user` keeps Mosquitto from dropping root to a "mosquitto" user that could not
        # write the persistence file in this root-owned temporary folder.
        self.config_file.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
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

    def start(self) -> None:
        if self.running:
            return
        self._process = subprocess.Popen(
            [str(self.binary), "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts_connections(self.port):
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
