"""C2SP tlog-tiles: resource paths, the resources a tree size has, and their contents."""

from __future__ import annotations

import struct

import pytest

from adapter.provenance.integrity.merkle import MerkleTree, leaf_hash
from adapter.provenance.integrity.storage import MemoryStore
from adapter.provenance.integrity.tiles import (
    EntryBundle,
    HashTile,
    InvalidTilePath,
    TileNotFound,
    parse_path,
    read_resource,
    resources,
)
from tests.provenance.support import big_entry


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        (HashTile(0, 0), "tile/0/000"),
        (HashTile(0, 1234067), "tile/0/x001/x234/067"),
        (HashTile(1, 999), "tile/1/999"),
        (HashTile(2, 1000, 17), "tile/2/x001/000.p/17"),
        (HashTile(63, 5, 255), "tile/63/005.p/255"),
        (EntryBundle(0, 1), "tile/entries/000.p/1"),
        (EntryBundle(1_000_000), "tile/entries/x001/x000/000"),
    ],
)
def test_paths(resource: HashTile | EntryBundle, path: str) -> None:
    assert resource.path == path
    assert parse_path(path) == resource


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1",
        "tile/0/0000",
        "tile/0/x000/001",
        "tile/0/001/x234",
        "tile/00/000",
        "tile/64/000",
        "tile/0/000.p/0",
        "tile/0/000.p/007",
        "tile/0/000.p/256",
        "tile/entries/000.p/256",
        "tile/0/000/",
        "/tile/0/000",
        "tile/data/000",
        "tile/8/0/000",
        "checkpoint",
    ],
)
def test_non_canonical_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidTilePath):
        parse_path(path)


def test_resources_of_the_specification_examples() -> None:
    tiles = resources(70_000)
    hash_tiles = [t for t in tiles if isinstance(t, HashTile)]
    bundles = [t for t in tiles if isinstance(t, EntryBundle)]
    assert sum(1 for t in hash_tiles if t.level == 0 and t.width == 256) == 273
    assert [t for t in hash_tiles if t.width < 256] == [
        HashTile(0, 273, 112),
        HashTile(1, 1, 17),
        HashTile(2, 0, 1),
    ]
    assert [t for t in hash_tiles if t.level == 1] == [HashTile(1, 0), HashTile(1, 1, 17)]
    assert bundles == [*(EntryBundle(i) for i in range(273)), EntryBundle(273, 112)]
    assert set(resources(256)) == {HashTile(0, 0), EntryBundle(0), HashTile(1, 0, 1)}
    assert resources(0) == []


def test_resources_to_publish_as_the_tree_grows() -> None:
    assert set(resources(300, since=256)) == {HashTile(0, 1, 44), EntryBundle(1, 44)}
    assert set(resources(512, since=300)) == {HashTile(0, 1), EntryBundle(1), HashTile(1, 0, 2)}
    assert resources(300, since=300) == []
    published: set[HashTile | EntryBundle] = set()
    for old, new in [(0, 10), (10, 256), (256, 700), (700, 70_000)]:
        published |= set(resources(new, since=old))
    assert set(resources(70_000)) <= published
    with pytest.raises(ValueError):
        resources(5, since=6)


def test_hash_tiles_hold_the_subtree_hashes_of_their_level(big_tree: MerkleTree) -> None:
    size = big_tree.size()
    level0 = read_resource(big_tree.store, "tile/0/001", size)
    assert level0 == b"".join(leaf_hash(big_entry(i)) for i in range(256, 512))
    partial = read_resource(big_tree.store, "tile/0/273.p/112", size)
    assert partial == b"".join(leaf_hash(big_entry(i)) for i in range(273 * 256, size))
    level1 = read_resource(big_tree.store, "tile/1/000", size)
    assert len(level1) == 256 * 32
    for i in (0, 1, 200, 255):
        subtree = MerkleTree(MemoryStore())
        subtree.extend(big_entry(j) for j in range(256 * i, 256 * (i + 1)))
        assert level1[32 * i : 32 * (i + 1)] == subtree.root()
    assert read_resource(big_tree.store, "tile/2/000.p/1", size) == big_tree.root(65536)


def test_entry_bundles_prefix_each_entry_with_its_length(big_tree: MerkleTree) -> None:
    bundle = read_resource(big_tree.store, "tile/entries/000", big_tree.size())
    expected = b"".join(struct.pack(">H", len(big_entry(i))) + big_entry(i) for i in range(256))
    assert bundle == expected
    assert bundle.startswith(b"\x00\x00\x00\x04\x00\x00\x00\x01")


def test_resources_beyond_the_published_size_are_not_served() -> None:
    tree = MerkleTree(MemoryStore())
    tree.extend(b"e%d" % i for i in range(600))
    assert len(read_resource(tree.store, "tile/0/001.p/44", 300)) == 44 * 32
    assert len(read_resource(tree.store, "tile/1/000.p/1", 300)) == 32
    for path in ["tile/0/001", "tile/0/001.p/45", "tile/entries/001.p/45", "tile/1/000.p/2"]:
        with pytest.raises(TileNotFound):
            read_resource(tree.store, path, 300)
    with pytest.raises(ValueError):
        read_resource(tree.store, "tile/0/000", 601)


def test_entries_too_large_for_a_bundle_are_refused() -> None:
    tree = MerkleTree(MemoryStore())
    tree.extend([b"small", bytes(0x10000)])
    assert len(read_resource(tree.store, "tile/0/000.p/2", 2)) == 64
    with pytest.raises(ValueError):
        read_resource(tree.store, "tile/entries/000.p/2", 2)
