# SPDX-License-Identifier: Apache-2.0
"""The node's PSI arithmetic: the same results as node/indicators/psi.py, in the same order,
whether computed in the calling thread or by worker processes, with or without cached points."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
from nacl import bindings

from node.indicators.psi import (
    DOMAIN,
    OverlapError,
    blind_each,
    hash_to_points,
    item_bytes,
    new_secret,
    reblind_each,
)
from node.indicators.psi_workers import PsiWorkers


def items(count: int, first: int = 0) -> list[bytes]:
    return [item_bytes("platform_account", f"chirper:user{i}") for i in range(first, count)]


@pytest.fixture(scope="module")
def pooled() -> Iterator[PsiWorkers]:
    """Two worker processes, used from 40 items on, so small inputs go through the pool."""
    workers = PsiWorkers(processes=2, parallel_from=40)
    yield workers
    workers.close()


def test_points_match_libsodiums_edwards_to_montgomery_map() -> None:
    # The batched map must give exactly what crypto_sign_ed25519_pk_to_curve25519 gives, or
    # nodes of different versions would not find each other's items.
    sample = items(50)
    expected = [
        bindings.crypto_sign_ed25519_pk_to_curve25519(
            bindings.crypto_core_ed25519_from_uniform(hashlib.sha512(DOMAIN + item).digest()[:32])
        )
        for item in sample
    ]
    assert hash_to_points(sample) == expected
    assert hash_to_points([]) == []


@pytest.mark.parametrize("processes", [1, 2])
def test_blinding_matches_the_in_process_functions(processes: int) -> None:
    workers = PsiWorkers(processes=processes, parallel_from=40)
    try:
        secret, other = new_secret(), new_secret()
        sample = items(130)
        assert workers.blind_each(sample, secret) == blind_each(sample, secret)
        assert workers.blind_items(sample, secret) == sorted(blind_each(sample, secret))
        theirs = blind_each(items(90, 10), other)
        assert workers.reblind_each(theirs, secret) == reblind_each(theirs, secret)
        assert workers.reblind(theirs, secret) == sorted(reblind_each(theirs, secret))
    finally:
        workers.close()


def test_cached_points_give_the_same_blinding(pooled: PsiWorkers) -> None:
    secret = new_secret()
    sample = items(100)
    first = pooled.blind_each(sample, secret)
    again = pooled.blind_each([*items(120, 100), *sample], secret)
    assert again[20:] == first
    assert again[:20] == blind_each(items(120, 100), secret)


def test_the_cache_keeps_at_most_its_bound() -> None:
    workers = PsiWorkers(processes=1, cached_points=30)
    secret = new_secret()
    workers.blind_each(items(25), secret)
    sample = items(50, 25)
    assert workers.blind_each(sample, secret) == blind_each(sample, secret)
    assert workers.blind_each(items(25), secret) == blind_each(items(25), secret)
    assert workers.cached == 30


def test_a_bad_point_in_a_later_chunk_is_named_by_its_place(pooled: PsiWorkers) -> None:
    points = blind_each(items(60), new_secret())
    points[57] = bytes(32)  # small order: X25519 yields zero
    with pytest.raises(OverlapError, match="point 57 "):
        pooled.reblind_each(points, new_secret())
    points[57] = os.urandom(31)
    with pytest.raises(OverlapError, match="point 57 "):
        pooled.reblind(points, new_secret())


def test_after_close_it_computes_in_the_calling_thread() -> None:
    workers = PsiWorkers(processes=2, parallel_from=10)
    workers.start()
    workers.close()
    secret = new_secret()
    assert workers.blind_each(items(20), secret) == blind_each(items(20), secret)
    workers.close()


def test_a_dead_worker_does_not_break_later_checks() -> None:
    workers = PsiWorkers(processes=2, parallel_from=10)
    try:
        workers.start()
        # Killing a worker needs the pool's own handles on its processes.
        pool = workers._running_pool()
        assert pool is not None
        for process in list(pool._processes.values()):
            process.kill()
        secret = new_secret()
        assert workers.blind_each(items(30), secret) == blind_each(items(30), secret)
        assert workers.blind_each(items(40), secret) == blind_each(items(40), secret)
    finally:
        workers.close()
