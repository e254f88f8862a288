# SPDX-License-Identifier: Apache-2.0
"""An in-memory index of PDQ hashes, compared a million at a time.

A PDQ hash is 256 bits; two images are near when the Hamming distance of their hashes is at
most 31. The index keeps the hashes as four columns of 64-bit words (one contiguous array per
quarter of the hash), so one query is four vectorised XORs and popcounts over contiguous
memory instead of a Python loop over every stored hash: the same distances, exactly, at a
fraction of the cost (``ops/bench/pdq.py``). Entries carry their expiry, checked at query time,
so an expired hash stops matching without a rebuild. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PDQ_BITS = 256
WORDS = PDQ_BITS // 64
NEVER = np.iinfo(np.int64).max
"""The expiry of an entry that does not expire."""

PDQ_MIN_QUALITY = 50
"""PDQ's guidance: hashes of quality 49 or less match too loosely to act on."""


def too_weak_to_keep(indicator_type: str, quality: int | None) -> bool:
    """Whether an indicator is a PDQ hash whose stated quality is below PDQ_MIN_QUALITY.

    Such hashes are left out of a set before it is stored; a hash without a stated quality is
    kept.
    """
    return indicator_type == "pdq" and quality is not None and quality < PDQ_MIN_QUALITY


@dataclass(frozen=True, kw_only=True)
class PdqEntry:
    set_id: str
    owner: str
    value: str
    """64 lower-case hexadecimal characters (canonical form)."""
    expires_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class PdqHit:
    entry: PdqEntry
    distance: int


class PdqIndex:
    """The hashes of ``entries``, searchable by Hamming distance."""

    def __init__(self, entries: Sequence[PdqEntry]) -> None:
        self.entries = tuple(entries)
        words = hash_words([e.value for e in self.entries])
        self.columns = [np.ascontiguousarray(words[:, i]) for i in range(WORDS)]
        """Word ``i`` of every hash, one contiguous array per word."""
        self.expires = np.array(
            [NEVER if e.expires_ms is None else e.expires_ms for e in self.entries],
            dtype=np.int64,
        )

    @classmethod
    def combine(cls, parts: Sequence[PdqIndex]) -> PdqIndex:
        """One index over the entries of ``parts`` (each set's own, say), without converting
        any hash again: a changed set costs its own hashes, not everyone's."""
        combined = cls(())
        if parts:
            combined.entries = tuple(e for part in parts for e in part.entries)
            combined.columns = [
                np.concatenate([part.columns[i] for part in parts]) for i in range(WORDS)
            ]
            combined.expires = np.concatenate([part.expires for part in parts])
        return combined

    def __len__(self) -> int:
        return len(self.entries)

    def search(self, query: str, *, max_distance: int, now_ms: int) -> list[PdqHit]:
        """Entries within ``max_distance`` bits of ``query`` and not expired at ``now_ms``,
        nearest first (ties by set id, then value)."""
        if not self.entries:
            return []
        target = hash_words([query])[0]
        # The first half of the hash first: its distance never exceeds the whole one's, and
        # two unrelated hashes differ in about 64 of those 128 bits, so almost every entry is
        # ruled out before the second half is read.
        first = _distance(self.columns[:2], target[:2])
        candidates = np.flatnonzero((first <= max_distance) & (self.expires > now_ms))
        rest = [column[candidates] for column in self.columns[2:]]
        distances = first[candidates] + _distance(rest, target[2:])
        near = candidates[distances <= max_distance]
        hits = [
            PdqHit(entry=self.entries[i], distance=int(d))
            for i, d in zip(near, distances[distances <= max_distance], strict=True)
        ]
        return sorted(hits, key=lambda h: (h.distance, h.entry.set_id, h.entry.value))

    def search_many(
        self, queries: Sequence[str], *, max_distance: int, now_ms: int
    ) -> list[list[PdqHit]]:
        """``search`` for each of ``queries``, in order."""
        return [self.search(q, max_distance=max_distance, now_ms=now_ms) for q in queries]

    def distances(self, query: str) -> npt.NDArray[np.uint16]:
        """The Hamming distance from ``query`` to every entry, in entry order."""
        return _distance(self.columns, hash_words([query])[0])


def _distance(
    columns: Sequence[npt.NDArray[np.uint64]], words: npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint16]:
    """Bits set in ``column ^ word``, summed over the columns given, for every row."""
    rows = len(columns[0]) if columns else 0
    scratch = np.empty(rows, dtype=np.uint64)
    bits = np.empty(rows, dtype=np.uint8)
    total = np.zeros(rows, dtype=np.uint16)
    for column, word in zip(columns, words, strict=True):
        np.bitwise_xor(column, word, out=scratch)
        np.bitwise_count(scratch, out=bits)
        total += bits
    return total


def hash_words(values: Sequence[str]) -> npt.NDArray[np.uint64]:
    """Canonical hex PDQ hashes as an (N, 4) array of 64-bit words, most significant first.

    Raises:
        ValueError: a value is not 64 hexadecimal characters.
    """
    if any(len(v) != PDQ_BITS // 4 for v in values):
        raise ValueError("a PDQ hash is 64 hexadecimal characters")
    raw = bytes.fromhex("".join(values))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, WORDS)
