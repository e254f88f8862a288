# SPDX-License-Identifier: Apache-2.0
"""Proofs and roots from tile roots equal those from every leaf hash, at every size."""

from __future__ import annotations

import pytest

from node.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
)
from node.audit.tiles import TiledTree, TileLevels

HASHES = [leaf_hash(i.to_bytes(4, "big")) for i in range(300)]


def levels_for(size: int, tile_height: int) -> TileLevels:
    levels = TileLevels(tile_height)
    width = 1 << tile_height
    for tile in range(size // width):
        levels.add_tile_root(root_from_leaf_hashes(HASHES[tile * width : (tile + 1) * width]))
    return levels


class CountingReader:
    def __init__(self) -> None:
        self.reads: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> list[bytes]:
        self.reads.append((start, end))
        return HASHES[start:end]


@pytest.mark.parametrize("tile_height", [1, 2, 3])
def test_every_root_and_proof_below_130_matches(tile_height: int) -> None:
    for size in range(130):
        levels = levels_for(size, tile_height)
        tree = TiledTree(levels, size, CountingReader())
        assert tree.root() == root_from_leaf_hashes(HASHES[:size])
        for index in range(size):
            assert inclusion_proof(index, size, tree.subtree) == inclusion_proof(
                index, size, lambda a, b: root_from_leaf_hashes(HASHES[a:b])
            )
        for old in range(1, size + 1):
            assert consistency_proof(old, size, tree.subtree) == consistency_proof(
                old, size, lambda a, b: root_from_leaf_hashes(HASHES[a:b])
            )


def test_a_proof_reads_at_most_two_tiles() -> None:
    levels = levels_for(300, 4)
    reader = CountingReader()
    tree = TiledTree(levels, 299, reader)
    inclusion_proof(37, 299, tree.subtree)
    assert len(reader.reads) <= 2
    assert all(end - start <= 16 for start, end in reader.reads)
    reader.reads.clear()
    consistency_proof(101, 299, TiledTree(levels, 299, reader).subtree)
    assert len(reader.reads) <= 2


def test_levels_hold_every_node_above_the_tiles() -> None:
    levels = levels_for(256, 2)  # 64 tiles of 4
    assert levels.full_tiles == 64
    assert [len(row) for row in levels.levels] == [64, 32, 16, 8, 4, 2, 1]
    assert levels.node(8, 0) == root_from_leaf_hashes(HASHES[:256])


def test_a_tree_needs_every_full_tile_below_its_size() -> None:
    with pytest.raises(ValueError, match="do not reach a tree of 12 leaves"):
        TiledTree(levels_for(10, 2), 12, CountingReader())
