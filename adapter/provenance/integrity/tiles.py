"""C2SP tlog-tiles (c2sp.org/tlog-tiles): the log published as static, cacheable resources.

Why tiles: instead of computing proofs on request, the log serves its Merkle tree as immutable
files that any HTTP server, CDN or mirror can hold, and from which clients (Go's
``sumdb/tlog``, witnesses, monitors, our own verifier) compute every proof they need. The
checkpoint is the only mutable resource.

Resources, each named by a path relative to the log's URL prefix:

``tile/<L>/<N>[.p/<W>]``
    A hash tile: the 256 consecutive hashes of tree level 8 * L starting at index 256 * N
    (each the root of a complete subtree of 256**L leaves), 32 bytes each, concatenated. A
    partial tile ``.p/<W>`` holds the first W (1 to 255) of them, as at the right edge of a tree.
``tile/entries/<N>[.p/<W>]``
    An entry bundle: entries 256 * N onwards, each prefixed with its length as a big-endian
    uint16.

``<N>`` is written in 3-digit groups, all but the last prefixed with ``x`` (1234067 is
``x001/x234/067``), so that a file system can hold the resources as they are.

Everything is read from the tree's stored hashes and entries: nothing is recomputed.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from adapter.exceptions import AdapterError
from adapter.provenance.integrity.storage import MerkleStore

__all__ = [
    "MAX_ENTRY_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "EntryBundle",
    "HashTile",
    "InvalidTilePath",
    "TileNotFound",
    "parse_path",
    "read_resource",
    "resources",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
#: The largest entry an entry bundle can hold (its length is a uint16).
MAX_ENTRY_SIZE = 0xFFFF
_MAX_LEVEL = 63

_PATH = re.compile(
    r"tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


class InvalidTilePath(AdapterError, ValueError):
    """A path that is not a tlog-tiles resource path, or not in its canonical form."""


class TileNotFound(AdapterError, LookupError):
    """A well-formed resource that the tree, at the size asked for, does not have (yet)."""


def _index_path(index: int) -> str:
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _width_suffix(width: int) -> str:
    return "" if width == TILE_WIDTH else f".p/{width}"


def _check(index: int, width: int) -> None:
    if index < 0 or not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"no tile of index {index} and width {width}")


@dataclass(frozen=True)
class HashTile:
    """Hashes ``256 * index`` to ``256 * index + width - 1`` of tree level ``8 * level``."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        _check(self.index, self.width)
        if not 0 <= self.level <= _MAX_LEVEL:
            raise ValueError(f"no tile level {self.level}")

    @property
    def path(self) -> str:
        """The resource path, as clients request it."""
        return f"tile/{self.level}/{_index_path(self.index)}{_width_suffix(self.width)}"

    @property
    def min_tree_size(self) -> int:
        """The smallest tree size that has this tile."""
        return (TILE_WIDTH * self.index + self.width) << (TILE_HEIGHT * self.level)


@dataclass(frozen=True)
class EntryBundle:
    """Entries ``256 * index`` to ``256 * index + width - 1``."""

    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        _check(self.index, self.width)

    @property
    def path(self) -> str:
        """The resource path, as clients request it."""
        return f"tile/entries/{_index_path(self.index)}{_width_suffix(self.width)}"

    @property
    def min_tree_size(self) -> int:
        """The smallest tree size that has this bundle."""
        return TILE_WIDTH * self.index + self.width


def parse_path(path: str) -> HashTile | EntryBundle:
    """The resource at ``path``; ``InvalidTilePath`` unless ``path`` is in canonical form."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise InvalidTilePath(f"not a tile path: {path!r}")
    index = int(match["index"].replace("x", "").replace("/", ""))
    width = int(match["width"] or TILE_WIDTH)
    level = match["level"]
    if match["width"] and width >= TILE_WIDTH:
        raise InvalidTilePath(f"a partial tile is narrower than {TILE_WIDTH}: {path!r}")
    if level != "entries" and int(level) > _MAX_LEVEL:
        raise InvalidTilePath(f"tile levels stop at {_MAX_LEVEL}: {path!r}")
    resource: HashTile | EntryBundle
    if level == "entries":
        resource = EntryBundle(index, width)
    else:
        resource = HashTile(int(level), index, width)
    # Leading x000 groups would name the same tile twice; only one path may.
    if resource.path != path:
        raise InvalidTilePath(f"not the canonical path of its tile: {path!r}")
    return resource


def resources(tree_size: int, since: int = 0) -> list[HashTile | EntryBundle]:
    """What to publish when the tree grows from ``since`` to ``tree_size`` leaves.

    Full tiles and bundles completed in between, and the partial ones at the right edge of the
    tree of ``tree_size`` (which the checkpoint of that size needs). With ``since=0``: all of them.
    """
    if not 0 <= since <= tree_size:
        raise ValueError(f"the tree cannot grow from {since} to {tree_size}")
    found: list[HashTile | EntryBundle] = []
    level = 0
    while tree_size >> (TILE_HEIGHT * level):
        old = since >> (TILE_HEIGHT * level)
        new = tree_size >> (TILE_HEIGHT * level)
        if old != new:
            for index in range(old // TILE_WIDTH, new // TILE_WIDTH):
                found.append(HashTile(level, index))
                if level == 0:
                    found.append(EntryBundle(index))
            if new % TILE_WIDTH:
                found.append(HashTile(level, new // TILE_WIDTH, new % TILE_WIDTH))
                if level == 0:
                    found.append(EntryBundle(new // TILE_WIDTH, new % TILE_WIDTH))
        level += 1
    return found


def read_resource(store: MerkleStore, path: str, tree_size: int) -> bytes:
    """The content of the resource at ``path`` for the tree of ``tree_size`` leaves.

    ``tree_size`` is the size of the latest published checkpoint: resources beyond it are not
    served. Raises ``InvalidTilePath`` or ``TileNotFound``.
    """
    if not 0 <= tree_size <= store.size():
        raise ValueError(f"the tree has never had size {tree_size}")
    resource = parse_path(path)
    if resource.min_tree_size > tree_size:
        raise TileNotFound(f"{path}: not in the tree of size {tree_size}")
    start = TILE_WIDTH * resource.index
    if isinstance(resource, EntryBundle):
        entries = store.read_entries(start, start + resource.width)
        if any(len(entry) > MAX_ENTRY_SIZE for entry in entries):
            raise ValueError(f"{path}: an entry is too large for an entry bundle")
        return b"".join(struct.pack(">H", len(entry)) + entry for entry in entries)
    level = TILE_HEIGHT * resource.level
    keys = [(level, start + offset) for offset in range(resource.width)]
    return b"".join(store.read_hashes(keys))
