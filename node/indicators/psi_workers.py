# SPDX-License-Identifier: Apache-2.0
"""The point arithmetic of one node's overlap checks, cached and spread over processes.

The same four operations as node/indicators/psi.py, with the same results and the same order
rules (``blind_items`` and ``reblind`` sort, the ``_each`` forms keep order), made faster in
two ways:

- This agency's own hashed points are kept between checks, in a cache bounded at ``MAX_ITEMS``
  entries (tens of megabytes), so a repeated check pays only the blinding. A hashed point is a
  public, deterministic function of the item: keeping it keeps nothing secret. Secrets and
  blinded points are never kept.
- Inputs of at least ``PARALLEL_FROM`` items are cut into chunks computed by a pool of
  ``os.cpu_count()`` worker processes (the GIL keeps threads to one core). Smaller checks stay
  in the calling thread, where starting a pool would cost more than it saves. The pool starts
  with the first large input, and ``close`` stops it.

The methods block: services call them through ``asyncio.to_thread``, so the event loop stays
free while workers compute. Workers are started with ``spawn``, not ``fork``, so they inherit
none of the node's threads, sockets or gRPC state.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from itertools import islice

from node.indicators.psi import (
    MAX_ITEMS,
    blind_points,
    check_size,
    hash_to_points,
    reblind_each,
)

PARALLEL_FROM = 5_000
CHUNKS_PER_PROCESS = 4
"""More chunks than processes, so one slow chunk does not leave the other cores idle."""


class PsiWorkers:
    """Cached, parallel PSI arithmetic for one node; thread-safe; ``close`` when done."""

    def __init__(
        self,
        *,
        processes: int | None = None,
        parallel_from: int = PARALLEL_FROM,
        cached_points: int = MAX_ITEMS,
    ) -> None:
        self._processes = processes if processes is not None else (os.cpu_count() or 1)
        self._parallel_from = parallel_from
        self._cached_points = cached_points
        self._cache: dict[bytes, bytes] = {}
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def blind_items(self, items: Sequence[bytes], secret: bytes) -> list[bytes]:
        """This agency's items' points raised to ``secret``, sorted."""
        return sorted(self.blind_each(items, secret))

    def blind_each(self, items: Sequence[bytes], secret: bytes) -> list[bytes]:
        """This agency's items' points raised to ``secret``, in the items' order."""
        return self._map(partial(blind_points, secret=secret), self._own_points(items))

    def reblind(self, points: Sequence[bytes], secret: bytes) -> list[bytes]:
        """The other side's points raised to ``secret``, sorted.

        Raises:
            OverlapError: too many points, or one that is not a valid point of the subgroup.
        """
        return sorted(self.reblind_each(points, secret))

    def reblind_each(self, points: Sequence[bytes], secret: bytes) -> list[bytes]:
        """The other side's points raised to ``secret``, in the order they came.

        Raises:
            OverlapError: too many points, or one that is not a valid point of the subgroup.
        """
        check_size(points)
        return self._map(partial(reblind_each, secret=secret), points, numbered=True)

    @property
    def cached(self) -> int:
        """How many of this agency's hashed points are kept."""
        with self._lock:
            return len(self._cache)

    def start(self) -> None:
        """Start the worker processes now rather than at the first large input."""
        pool = self._running_pool()
        if pool is not None:
            list(pool.map(math.isqrt, range(self._processes)))

    def close(self) -> None:
        """Stop the worker processes; later calls compute in the calling thread."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _own_points(self, items: Sequence[bytes]) -> list[bytes]:
        with self._lock:
            known = [self._cache.get(item) for item in items]
        missing = [item for item, point in zip(items, known, strict=True) if point is None]
        if not missing:
            return [point for point in known if point is not None]
        computed = self._map(hash_to_points, missing)
        self._remember(missing, computed)
        fresh = iter(computed)
        return [point if point is not None else next(fresh) for point in known]

    def _remember(self, items: list[bytes], points: list[bytes]) -> None:
        with self._lock:
            self._cache.update(zip(items, points, strict=True))
            excess = len(self._cache) - self._cached_points
            if excess > 0:
                # Dicts keep insertion order: the oldest entries go first.
                for item in list(islice(self._cache, excess)):
                    del self._cache[item]

    def _map(
        self,
        compute: Callable[..., list[bytes]],
        values: Sequence[bytes],
        *,
        numbered: bool = False,
    ) -> list[bytes]:
        """``compute`` over ``values`` in chunks on the pool, or at once in this thread for
        small inputs; results in the order of ``values``. ``numbered`` passes each chunk its
        first position, so an error names the point's place in the whole message."""
        pool = self._running_pool() if len(values) >= self._parallel_from else None
        if pool is None:
            return compute(values)
        size = math.ceil(len(values) / (self._processes * CHUNKS_PER_PROCESS))
        starts = range(0, len(values), size)
        futures = [
            pool.submit(compute, values[s : s + size], **({"first": s} if numbered else {}))
            for s in starts
        ]
        try:
            return [point for future in futures for point in future.result()]
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this input is computed here, and the next
            # large one starts a new pool rather than failing on the broken one for good.
            self._drop_pool(pool)
            return compute(values)

    def _drop_pool(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def _running_pool(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._pool is None and not self._closed and self._processes > 1:
                self._pool = ProcessPoolExecutor(
                    max_workers=self._processes, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool
