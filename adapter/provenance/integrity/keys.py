"""A collectivity's log signing key on disk: created on first run, readable by its owner only.

Why these rules: the private key is all that makes a checkpoint the collectivity's own word, so
it must never land in a repository (commits are copied everywhere and kept forever) nor be
readable by other local users. Hence:

* the key file is refused inside a Git work tree;
* it is created with mode 0600, in a directory created with mode 0700, under a temporary name
  and then linked into place: no moment when it is readable by others or half written, and two
  processes starting together end up with the same key, never two;
* at load time, a key file that group or others may read is refused (as ssh does): it must be
  considered leaked.

The file holds the signer key string of ``note`` (``PRIVATE+KEY+<name>+...``), the format Go's
``sumdb/note`` reads, so the key can be used with the standard tools too. The same rules keep
the other secrets of the key directory (the pseudonym keys of ``adapter.provenance.pseudonyms``):
``write_secret`` and ``read_secret``.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from adapter.exceptions import ConfigError
from adapter.provenance.integrity.note import KeyFormatError, NoteSigner

__all__ = [
    "default_key_directory",
    "ephemeral_keys",
    "key_directory",
    "load_or_create_signer",
    "load_signer",
    "read_secret",
    "write_secret",
    "write_signer",
]


def _refuse_inside_repository(path: Path) -> None:
    for directory in path.absolute().parents:
        if (directory / ".git").exists():
            raise ConfigError(f"{path}: a private key must be kept outside any repository ({directory})")


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` (a secret, one line) to the new file ``path``: mode 0600, in a directory
    created with mode 0700, complete or not at all.

    Raises ``FileExistsError`` if ``path`` exists: a key is never overwritten; ``ConfigError``
    inside a Git work tree.
    """
    _refuse_inside_repository(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    finally:
        temporary.unlink()
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_secret(path: Path) -> str:
    """The secret in ``path`` (stripped), refused with ``ConfigError`` if group or others may
    access the file (it must be considered leaked) or if it lies inside a Git work tree.

    Raises ``FileNotFoundError`` when there is no such file.
    """
    _refuse_inside_repository(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: group or others may access this private key; it is refused")
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a key file: {exc}") from exc


def write_signer(path: Path, signer: NoteSigner) -> None:
    """Write ``signer``'s key to the new file ``path`` (mode 0600).

    Raises ``FileExistsError`` if ``path`` exists: a key is never overwritten.
    """
    write_secret(path, signer.skey)


def load_signer(path: Path, name: str | None = None) -> NoteSigner:
    """Read the key in ``path``; if ``name`` is given, the key must carry that name.

    Raises ``ConfigError`` if the file is readable by group or others, malformed, or named
    otherwise.
    """
    try:
        signer = NoteSigner.from_skey(read_secret(path))
    except KeyFormatError as exc:
        raise ConfigError(f"{path}: not a note signer key: {exc}") from exc
    if name is not None and signer.name != name:
        raise ConfigError(f"{path}: key is named {signer.name!r}, not {name!r}")
    return signer


def load_or_create_signer(path: Path, name: str) -> NoteSigner:
    """The key in ``path``, generated there with ``name`` if the file does not exist yet."""
    if not path.exists():
        try:
            write_signer(path, NoteSigner.generate(name))
        except FileExistsError:
            pass  # another process created it first: use theirs
    return load_signer(path, name)


_TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def key_directory(directory: Path, origin_prefix: str) -> Callable[[str], NoteSigner]:
    """Each collectivity's signer, from ``directory/<tenant>.key`` (created on first use).

    The log of collectivity ``ville`` is named ``<origin_prefix>/ville`` in its checkpoints.
    """
    signers: dict[str, NoteSigner] = {}

    def signer_for(tenant: str) -> NoteSigner:
        signer = signers.get(tenant)
        if signer is None:
            if not _TENANT_NAME.fullmatch(tenant):
                raise ConfigError(f"collectivity name {tenant!r} cannot name a key file")
            signer = signers[tenant] = load_or_create_signer(directory / f"{tenant}.key", f"{origin_prefix}/{tenant}")
        return signer

    return signer_for


def ephemeral_keys(origin_prefix: str) -> Callable[[str], NoteSigner]:
    """Signers generated in memory and never saved: for pipelines whose state is in memory too."""
    signers: dict[str, NoteSigner] = {}

    def signer_for(tenant: str) -> NoteSigner:
        if tenant not in signers:
            signers[tenant] = NoteSigner.generate(f"{origin_prefix}/{tenant}")
        return signers[tenant]

    return signer_for


def default_key_directory() -> Path:
    """``$XDG_DATA_HOME/ngsild-adapter/keys`` (``~/.local/share/...`` by default): outside any checkout."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ngsild-adapter" / "keys"
