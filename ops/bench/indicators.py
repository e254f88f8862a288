# SPDX-License-Identifier: Apache-2.0
"""Indicator benchmark: private overlap counting between two agencies' sets.

Two sets of ``--items`` canonical platform accounts each, ``--shared`` of them in common, run
through the whole PSI-cardinality protocol of node/indicators/psi.py in this process (both
ends' arithmetic on one machine, no network), beside the plain baseline measured in the same
run: a hash join of the same items (SHA-256 of each, set intersection), which shares the
values themselves and so protects nothing.

Usage: python -m ops.bench.indicators [--items 100000] [--shared 5000]
"""

from __future__ import annotations

import argparse
import hashlib
import time

from node.indicators.psi import blind_items, item_bytes, new_secret, reblind, shared_count
from ops.bench.machine import describe_machine


def main(items: int, shared: int) -> None:
    mine = [item_bytes("platform_account", f"chirper:user{i}") for i in range(items)]
    start = items - shared
    theirs = [
        item_bytes("platform_account", f"chirper:user{i}") for i in range(start, start + items)
    ]
    print(describe_machine())

    began = time.perf_counter()
    a, b = new_secret(), new_secret()
    t = time.perf_counter()
    sent = blind_items(mine, a)
    step1 = time.perf_counter() - t
    t = time.perf_counter()
    doubled = reblind(sent, b)
    answer = blind_items(theirs, b)
    step2 = time.perf_counter() - t
    t = time.perf_counter()
    count = shared_count(doubled, reblind(answer, a))
    step3 = time.perf_counter() - t
    total = time.perf_counter() - began
    assert count == shared, count

    t = time.perf_counter()
    plain = len(
        {hashlib.sha256(x).digest() for x in mine} & {hashlib.sha256(x).digest() for x in theirs}
    )
    baseline = time.perf_counter() - t
    assert plain == shared

    print(f"\noverlap counting, {items:,} items a side, {shared:,} shared")
    print(f"  asker blinds its items          {step1:>8.2f} s")
    print(f"  answerer re-blinds and blinds   {step2:>8.2f} s")
    print(f"  asker re-blinds and counts      {step3:>8.2f} s")
    print(
        f"  PSI cardinality, whole protocol {total:>8.2f} s   ({total * 1000 / items:.3f} ms/item)"
    )
    print(f"  baseline: plain hash join       {baseline:>8.2f} s   (reveals every value)")
    print(
        f"  messages: {len(sent) * 32 / 1e6:.1f} MB asked, {2 * items * 32 / 1e6:.1f} MB answered"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items in each set")
    parser.add_argument("--shared", type=int, default=5_000, help="items both sets hold")
    options = parser.parse_args()
    main(options.items, options.shared)
