# SPDX-License-Identifier: Apache-2.0
"""Matching image PDQ hashes against every live pdq indicator this node holds.

The hashes live in an in-memory index (node/indicators/pdq_index.py) built from the database
and rebuilt lazily: each match first reads a cheap stamp of the sets held here (how many, the
sum of their versions, the latest change), and rebuilds only when it moved. A set stored,
extended or revoked, here or by a replica sharing the database, moves the stamp, so a revoked
set's hashes never match; an expired hash is dropped at query time. Values never reach a log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from node.forms.indicators import canonicalize_indicator
from node.indicators.pdq_index import PdqEntry, PdqHit, PdqIndex
from node.indicators.sets import IndicatorError
from node.storage import indicator_repo as repo
from node.storage.database import Database
from node.storage.engine import transaction

_LOG = logging.getLogger(__name__)

PDQ_MAX_DISTANCE = 31
MAX_QUERIES = 1000
"""Hashes one batch may ask about: a batch holds the database's worker for its duration."""

Stamp = tuple[int, int, int]


@dataclass(frozen=True, kw_only=True)
class PdqMatch:
    set_id: str
    owner: str
    value: str
    distance: int


@dataclass(frozen=True)
class _Snapshot:
    """The index, the stamp it was read under, and each live set's version and own part
    (so that the next rebuild reads only the sets that changed)."""

    stamp: Stamp | None
    index: PdqIndex
    parts: dict[str, tuple[int, PdqIndex]]


class PdqMatcher:
    def __init__(self, *, database: Database, clock: Callable[[], int]) -> None:
        self._database = database
        self._clock = clock
        self._snapshot = _Snapshot(stamp=None, index=PdqIndex(()), parts={})
        self._rebuilding = asyncio.Lock()

    async def match(
        self, queries: Sequence[str], max_distance: int = PDQ_MAX_DISTANCE
    ) -> list[list[PdqMatch]]:
        """For each query, the live hashes within ``max_distance`` bits, nearest first.

        Raises:
            FormValidationError: a query is not a PDQ hash.
            IndicatorError: a distance beyond PDQ's threshold of 31, or too many queries.
        """
        if not 0 <= max_distance <= PDQ_MAX_DISTANCE:
            raise IndicatorError(f"PDQ hashes match at a distance of {PDQ_MAX_DISTANCE} or less")
        if len(queries) > MAX_QUERIES:
            raise IndicatorError(f"at most {MAX_QUERIES} PDQ hashes are matched at once")
        canonical = [canonicalize_indicator("pdq", q) for q in queries]
        index = await self._fresh_index()
        now = self._clock()
        found = await self._database.run(
            lambda: index.search_many(canonical, max_distance=max_distance, now_ms=now)
        )
        return [[_match(hit) for hit in hits] for hits in found]

    async def _fresh_index(self) -> PdqIndex:
        stamp = await self._database.run(self._read_stamp)
        if stamp == self._snapshot.stamp:
            return self._snapshot.index
        async with self._rebuilding:
            previous = self._snapshot
            if stamp != previous.stamp:
                self._snapshot = await self._database.run(lambda: self._rebuild(previous))
                _LOG.info("PDQ index rebuilt: %d hash(es)", len(self._snapshot.index))
        return self._snapshot.index

    def _read_stamp(self) -> Stamp:
        with transaction(self._database.engine) as session:
            return repo.sets_stamp(session)

    def _rebuild(self, previous: _Snapshot) -> _Snapshot:
        """Re-read the sets whose version moved (all of them the first time), keep the parts
        of the others, drop revoked and vanished ones. The stamp and the rows are read in one
        transaction: the index is never older than its stamp (at worst newer, which costs
        one more rebuild)."""
        with transaction(self._database.engine) as session:
            stamp = repo.sets_stamp(session)
            versions = repo.live_set_versions(session)
            changed = [s for s, v in versions.items() if previous.parts.get(s, (None,))[0] != v]
            wanted = changed if previous.parts and len(changed) < len(versions) else None
            rows = repo.live_entries(session, "pdq", set_ids=wanted)
        by_set: dict[str, list[PdqEntry]] = {s: [] for s in changed}
        for set_id, owner, value, expires in rows:
            entry = PdqEntry(set_id=set_id, owner=owner, value=value, expires_ms=expires)
            by_set.setdefault(set_id, []).append(entry)
        parts = {s: previous.parts[s] for s in versions if s not in by_set}
        parts.update({s: (versions[s], PdqIndex(e)) for s, e in by_set.items() if s in versions})
        index = PdqIndex.combine([part for _, part in parts.values() if len(part)])
        return _Snapshot(stamp=stamp, index=index, parts=parts)


def _match(hit: PdqHit) -> PdqMatch:
    entry = hit.entry
    return PdqMatch(
        set_id=entry.set_id, owner=entry.owner, value=entry.value, distance=hit.distance
    )
