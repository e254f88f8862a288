# SPDX-License-Identifier: Apache-2.0
"""Indicator benchmark: private overlap counting between two agencies' sets.

Two sets of ``--items`` canonical platform accounts each, ``--shared`` of them in common, run
through the whole PSI-cardinality protocol of node/indicators/psi.py as the nodes run it
(node/indicators/psi_workers.py: both ends' arithmetic on one machine, each end with its own
worker processes and cache of its own hashed points, no network), twice: a first check with
empty caches and a repeated one. Beside them, the plain baseline measured in the same
run: a hash join of the same items (SHA-256 of each, set intersection), which shares the
values themselves and so protects nothing.

Usage: python -m ops.bench.indicators [--items 100000] [--shared 5000] [--processes N]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass

from node.indicators.psi import (
    check_distinct,
    check_reason,
    input_digest,
    item_bytes,
    new_secret,
    shared_count,
)
from node.indicators.psi_workers import PsiWorkers
from ops.bench.machine import describe_machine


@dataclass(frozen=True)
class CheckTimes:
    asker_blinds: float
    answerer_answers: float
    asker_counts: float

    @property
    def total(self) -> float:
        return self.asker_blinds + self.answerer_answers + self.asker_counts


def main(items: int, shared: int, processes: int | None) -> None:
    mine = [item_bytes("platform_account", f"chirper:user{i}") for i in range(items)]
    start = items - shared
    theirs = [
        item_bytes("platform_account", f"chirper:user{i}") for i in range(start, start + items)
    ]
    print(describe_machine())

    asker, answerer = PsiWorkers(processes=processes), PsiWorkers(processes=processes)
    try:
        t = time.perf_counter()
        asker.start()
        answerer.start()
        started = time.perf_counter() - t
        cold = check(asker, answerer, mine, theirs, shared)
        warm = check(asker, answerer, mine, theirs, shared)
    finally:
        asker.close()
        answerer.close()

    t = time.perf_counter()
    plain = len(
        {hashlib.sha256(x).digest() for x in mine} & {hashlib.sha256(x).digest() for x in theirs}
    )
    baseline = time.perf_counter() - t
    assert plain == shared

    print(f"\noverlap counting, {items:,} items a side, {shared:,} shared")
    print(f"  starting both nodes' worker processes {started:>6.2f} s")
    report("first check (no cached points)", cold, items)
    report("repeated check (own points cached)", warm, items)
    print(f"  baseline: plain hash join             {baseline:>6.2f} s   (reveals every value)")
    print(f"  messages: {items * 32 / 1e6:.1f} MB asked, {2 * items * 32 / 1e6:.1f} MB answered")


def check(
    asker: PsiWorkers, answerer: PsiWorkers, mine: list[bytes], theirs: list[bytes], shared: int
) -> CheckTimes:
    """One whole count-mode check, as OverlapService runs it, both ends in this process."""
    a, b = new_secret(), new_secret()
    t = time.perf_counter()
    sent = asker.blind_items(mine, a)
    step1 = time.perf_counter() - t
    t = time.perf_counter()
    # The answerer's checks before it counts the check (node/services/overlap.py), and the
    # digest its audit leaf commits to.
    check_reason("benchmark")
    check_distinct(sent)
    input_digest(sent)
    doubled = answerer.reblind(sent, b)
    answer = answerer.blind_items(theirs, b)
    step2 = time.perf_counter() - t
    t = time.perf_counter()
    count = shared_count(doubled, asker.reblind_each(answer, a))
    step3 = time.perf_counter() - t
    assert count == shared, count
    return CheckTimes(step1, step2, step3)


def report(title: str, times: CheckTimes, items: int) -> None:
    print(f"  {title}")
    print(f"    asker blinds its items              {times.asker_blinds:>6.2f} s")
    print(f"    answerer checks, re-blinds, blinds  {times.answerer_answers:>6.2f} s")
    print(f"    asker re-blinds and counts          {times.asker_counts:>6.2f} s")
    print(
        f"    whole protocol                      {times.total:>6.2f} s   "
        f"({times.total * 1000 / items:.3f} ms/item)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items in each set")
    parser.add_argument("--shared", type=int, default=5_000, help="items both sets hold")
    parser.add_argument(
        "--processes", type=int, default=None, help="worker processes a side (default: cores)"
    )
    options = parser.parse_args()
    main(options.items, options.shared, options.processes)
