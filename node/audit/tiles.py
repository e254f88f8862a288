# SPDX-License-Identifier: Apache-2.0
"""Subtree hashes of a large log without reading all of it: tile roots in memory.

The log's leaf hashes are grouped in tiles of ``2**height`` leaves (256 by default, as in C2SP
tlog-tiles). The root of every full tile is computed once, stored, and kept in memory together
with every node above it (for a million leaves: about 7,800 hashes, 250 KB). A subtree hash
needed by a proof or a checkpoint is then either one of those nodes, or is computed from the
leaf hashes of a single tile, read on demand. A proof at any size costs one or two tile reads
and a few hundred hashes instead of reading the whole log. Leaves are append-only, so a full
tile's root never changes. Pure: reading tiles is the caller's callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from node.audit.merkle import EMPTY_ROOT, node_hash, split_point

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
FULL_TILES_CACHED = 64
"""Tiles whose inner nodes a node keeps between proofs (64 of 16 KB)."""

ReadLeafHashes = Callable[[int, int], Sequence[bytes]]
"""Leaf hashes [start, end) from the store."""


class TileLevels:
    """Every full tile's root and the nodes above them: ``levels[k][i]`` is the hash of the
    perfect subtree of height ``tile_height + k`` whose leftmost leaf is ``i << (height)``."""

    def __init__(self, tile_height: int = TILE_HEIGHT) -> None:
        self.tile_height = tile_height
        self.width = 1 << tile_height
        self.levels: list[list[bytes]] = [[]]

    @property
    def full_tiles(self) -> int:
        return len(self.levels[0])

    def add_tile_root(self, root: bytes) -> None:
        """Append the next full tile's root; complete every parent it finishes."""
        level, node = 0, root
        while True:
            if level == len(self.levels):
                self.levels.append([])
            row = self.levels[level]
            row.append(node)
            if len(row) % 2:
                return
            node = node_hash(row[-2], row[-1])
            level += 1

    def node(self, height: int, index: int) -> bytes:
        """A stored node at ``height`` ≥ the tile height."""
        return self.levels[height - self.tile_height][index]


class TiledTree:
    """Subtree hashes of the tree of ``size`` leaves, for one proof or checkpoint."""

    def __init__(
        self,
        levels: TileLevels,
        size: int,
        read: ReadLeafHashes,
        cache: dict[int, list[list[bytes]]] | None = None,
    ) -> None:
        """``levels`` must hold every full tile below ``size``. ``cache`` keeps tiles' insides
        beyond this tree: leaves never change, so a tile's inside is reused as long as it
        holds the same number of leaves."""
        if levels.full_tiles < size >> levels.tile_height:
            raise ValueError(f"the tile levels do not reach a tree of {size} leaves")
        self._levels = levels
        self._size = size
        self._read = read
        self._cache = cache if cache is not None else {}

    def root(self) -> bytes:
        return self.subtree(0, self._size) if self._size else EMPTY_ROOT

    def subtree(self, start: int, end: int) -> bytes:
        """The hash of leaves [start, end), a range of the RFC 6962 recursion (start is a
        multiple of the largest power of two below end - start)."""
        n = end - start
        height = n.bit_length() - 1
        if n == 1 << height:
            if height >= self._levels.tile_height:
                return self._levels.node(height, start >> height)
            return self._inside_tile(start >> self._levels.tile_height)[height][
                (start & (self._levels.width - 1)) >> height
            ]
        k = split_point(n)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, end))

    def _inside_tile(self, tile: int) -> list[list[bytes]]:
        """Every perfect subtree inside one tile, by height, from its leaf hashes (read once
        per tree): ``[leaf hashes, pairs, fours, …]``."""
        first = tile * self._levels.width
        count = min(self._levels.width, self._size - first)
        rows = self._cache.get(tile)
        if rows is None or len(rows[0]) != count:
            row = list(self._read(first, first + count))
            rows = [row]
            while len(row) > 1:
                row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
                rows.append(row)
            if len(self._cache) >= FULL_TILES_CACHED:
                self._cache.clear()
            # A partial tile is cached too: the log's right edge, until the log grows.
            self._cache[tile] = rows
        return rows
