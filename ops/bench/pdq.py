# SPDX-License-Identifier: Apache-2.0
"""PDQ benchmark: image hashes matched against a million stored ones.

``--hashes`` random PDQ hashes are stored as indicators of TLP:RED sets in a fresh SQLite
database (migrated as a node migrates it), then ``--queries`` hashes, each a stored one with
a few bits flipped, go through the node's matcher (node/services/pdq_matcher.py: the
in-memory index, with its freshness check against the database on every call), one at a time
and as one batch. The baseline, measured in the same run over the same hashes, is the plain
Python scan the node used before: XOR of two integers and ``int.bit_count`` for every stored
hash. Both must find the same matches.

Usage: python -m ops.bench.pdq [--hashes 1000000] [--queries 200] [--baseline-queries 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from node.ids import AgencyId
from node.indicators.sets import MAX_INDICATORS, Indicator, IndicatorSet
from node.indicators.tlp import Tlp
from node.services.pdq_matcher import PDQ_MAX_DISTANCE, PdqMatch, PdqMatcher
from node.storage import indicator_repo
from node.storage.database import Database
from node.storage.engine import create_engine, transaction, upgrade
from ops.bench.machine import describe_machine

OWNER = AgencyId("aa-cyber-unit")


def store(database: Database, hashes: list[int], *, prefix: str = "bench") -> None:
    """The hashes as indicators of as many full TLP:RED sets as they need."""
    for number, start in enumerate(range(0, len(hashes), MAX_INDICATORS)):
        chunk = hashes[start : start + MAX_INDICATORS]
        indicator_set = IndicatorSet(
            set_id=f"{prefix}-{number:04d}",
            owner=OWNER,
            version=1,
            tlp=Tlp.RED,
            recipients=(AgencyId("bb-central-authority"),),
            indicators=tuple(Indicator(type="pdq", value=f"{h:064x}") for h in chunk),
        )
        with transaction(database.engine) as session:
            indicator_repo.save_set(
                session,
                indicator_set,
                document=b"{}",
                signature=bytes(64),
                received_from=None,
                now_ms=1,
            )


def near(stored: int, rng: random.Random) -> int:
    for bit in rng.sample(range(256), rng.randrange(0, 20)):
        stored ^= 1 << bit
    return stored


def baseline(stored: list[tuple[str, int]], query: int) -> list[tuple[int, str]]:
    """The old linear scan, without the database round trip it also paid."""
    found = []
    for value, number in stored:
        distance = (number ^ query).bit_count()
        if distance <= PDQ_MAX_DISTANCE:
            found.append((distance, value))
    return sorted(found)


def as_pairs(matches: list[PdqMatch]) -> list[tuple[int, str]]:
    return sorted((m.distance, m.value) for m in matches)


async def run(hashes: int, queries: int, baseline_queries: int) -> None:
    rng = random.Random(2026)  # noqa: S311 (reproducible benchmark data, not secrets)
    numbers = [rng.getrandbits(256) for _ in range(hashes)]
    asked = [near(rng.choice(numbers), rng) for _ in range(queries)]
    asked_hex = [f"{q:064x}" for q in asked]
    print(describe_machine())
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(create_engine(f"sqlite:///{Path(tmp) / 'bench.db'}"))
        try:
            upgrade(database.engine)
            t = time.perf_counter()
            store(database, numbers)
            stored_s = time.perf_counter() - t
            matcher = PdqMatcher(database=database, clock=lambda: 0)
            await report(
                matcher,
                database=database,
                numbers=numbers,
                asked=asked,
                asked_hex=asked_hex,
                stored_s=stored_s,
                baseline_queries=baseline_queries,
            )
        finally:
            database.close()


async def report(
    matcher: PdqMatcher,
    *,
    database: Database,
    numbers: list[int],
    asked: list[int],
    asked_hex: list[str],
    stored_s: float,
    baseline_queries: int,
) -> None:
    t = time.perf_counter()
    await matcher.match(asked_hex[:1])
    build_s = time.perf_counter() - t

    t = time.perf_counter()
    single = [(await matcher.match([q]))[0] for q in asked_hex]
    single_s = time.perf_counter() - t
    t = time.perf_counter()
    batch = await matcher.match(asked_hex)
    batch_s = time.perf_counter() - t
    assert batch == single

    fresh = random.Random(1)  # noqa: S311 (reproducible benchmark data, not secrets)
    extra = [fresh.getrandbits(256) for _ in range(100)]
    await asyncio.to_thread(store, database, extra, prefix="extra")
    t = time.perf_counter()
    await matcher.match(asked_hex[:1])
    refresh_s = time.perf_counter() - t

    stored = [(f"{n:064x}", n) for n in numbers]
    checked = min(baseline_queries, len(asked))
    t = time.perf_counter()
    plain = [baseline(stored, q) for q in asked[:checked]]
    baseline_s = time.perf_counter() - t
    assert plain == [as_pairs(m) for m in single[:checked]], "the index and the scan differ"

    found = sum(len(m) for m in single)
    print(f"\nPDQ matching, {len(numbers):,} stored hashes, distance <= {PDQ_MAX_DISTANCE}")
    print(f"  storing the hashes (setup)       {stored_s:>8.2f} s")
    print(f"  building the index (first match) {build_s:>8.2f} s")
    print(f"  refresh after a new 100-hash set {refresh_s:>8.2f} s")
    print(
        f"  node matcher, one at a time      {len(asked) / single_s:>8.1f} queries/s"
        f"   ({len(asked)} queries, {found} match(es))"
    )
    print(f"  node matcher, one batch          {len(asked) / batch_s:>8.1f} queries/s")
    print(
        f"  baseline: Python XOR+bit_count   {checked / baseline_s:>8.1f} queries/s"
        f"   ({checked} queries, same matches)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, default=1_000_000, help="stored PDQ hashes")
    parser.add_argument("--queries", type=int, default=200, help="hashes matched by the node")
    parser.add_argument(
        "--baseline-queries", type=int, default=10, help="hashes matched by the plain scan"
    )
    options = parser.parse_args()
    asyncio.run(run(options.hashes, options.queries, options.baseline_queries))
