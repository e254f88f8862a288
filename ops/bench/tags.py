# SPDX-License-Identifier: Apache-2.0
"""Tag benchmark: exact lookups of blinded group tags among millions stored.

Stores ``--tags`` tags (keyed BLAKE2b of synthetic platform accounts, node/indicators/groups.py)
as one member's log in a sharing group, in the node's own ``group_tag`` table of a SQLite file
migrated like a node's database (WAL, ``synchronous=FULL``), inserted in batches through
SQLAlchemy Core. Then looks up ``--lookups`` tags, half of them stored and half not, through
``group_repo.publishers_of_tags`` — the query ``comity groups matches`` runs — once as one call
for all of them (how the node asks) and once as one call per tag, beside the plain baseline
measured in the same run: membership tests in a Python set holding the same tags in memory.

Usage: python -m ops.bench.tags [--tags 10000000] [--lookups 10000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import Engine

from node.ids import AgencyId
from node.indicators.groups import Group, TagEntry, new_group_key, tag
from node.storage import group_repo
from node.storage.engine import create_engine, transaction, upgrade
from node.storage.tables import GroupTagRow
from ops.bench.machine import describe_machine

GROUP_ID = "5d0c1f1e-0f1e-4b7a-9c3d-2e1f0a9b8c7d"
PUBLISHER = AgencyId("bb-central-authority")
BATCH = 50_000
TAG_INDEX = next(i for i in GroupTagRow.__table__.indexes if i.name == "ix_group_tag_tag")  # type: ignore[attr-defined]


def account(n: int) -> str:
    return f"chirper:user{n}"


def tags_of(key: bytes, numbers: Iterable[int]) -> Iterator[bytes]:
    for n in numbers:
        yield tag(key, GROUP_ID, "platform_account", account(n))


def store(engine: Engine, key: bytes, count: int) -> float:
    """Insert ``count`` tags as one publisher's log; seconds taken."""
    group = Group(
        group_id=GROUP_ID,
        name="bench",
        owner=AgencyId("aa-cyber-unit"),
        members=(AgencyId("aa-cyber-unit"), PUBLISHER),
        epoch=1,
    )
    began = time.perf_counter()
    with transaction(engine) as session:
        group_repo.save_group(session, group, key=key, now_ms=0)
    # A bulk load: entries arrive in the primary key's order, and the tag index is built
    # once at the end (sorting beats ten million random B-tree inserts); the table and its
    # indexes end up exactly as the migrations make them.
    TAG_INDEX.drop(engine)
    for start in range(0, count, BATCH):
        numbers = range(start, min(start + BATCH, count))
        entries = [
            TagEntry(seq=n + 1, epoch=1, tag=t)
            for n, t in zip(numbers, tags_of(key, numbers), strict=True)
        ]
        with transaction(engine) as session:
            group_repo.append_entries(
                session, group_id=GROUP_ID, publisher=PUBLISHER, entries=entries
            )
        done = numbers.stop
        rate = done / (time.perf_counter() - began)
        print(f"\r  stored {done:>12,} of {count:,} tags ({rate:,.0f}/s)", end="", flush=True)
    print("\n  building the tag index", flush=True)
    TAG_INDEX.create(engine)
    return time.perf_counter() - began


def lookup_sample(key: bytes, count: int, lookups: int) -> list[bytes]:
    """Half stored tags, half tags of accounts never stored, shuffled."""
    rng = random.Random(7)  # noqa: S311 (a reproducible sample, not a secret)
    present = rng.sample(range(count), lookups // 2)
    absent = range(count, count + lookups - len(present))
    sample = [*tags_of(key, present), *tags_of(key, absent)]
    rng.shuffle(sample)
    return sample


def time_lookups(engine: Engine, sample: list[bytes]) -> tuple[float, float, int]:
    """Seconds for one call with every tag, seconds for one call per tag, tags found."""
    with transaction(engine) as session:
        began = time.perf_counter()
        found = group_repo.publishers_of_tags(session, group_id=GROUP_ID, epoch=1, tags=sample)
        batched = time.perf_counter() - began
        began = time.perf_counter()
        for one in sample:
            group_repo.publishers_of_tags(session, group_id=GROUP_ID, epoch=1, tags=[one])
        single = time.perf_counter() - began
    return batched, single, len(found)


def main(count: int, lookups: int, directory: Path) -> None:
    print(describe_machine())
    path = directory / "tags.db"
    path.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    key = new_group_key()
    print(f"\nstoring {count:,} tags in {path}")
    stored_s = store(engine, key, count)
    size_mb = sum(p.stat().st_size for p in directory.glob("tags.db*")) / 1e6
    sample = lookup_sample(key, count, lookups)
    batched, single, found = time_lookups(engine, sample)
    assert found == lookups // 2, found
    engine.dispose()

    held = set(tags_of(key, range(count)))
    began = time.perf_counter()
    in_memory = sum(1 for t in sample if t in held)
    baseline = time.perf_counter() - began
    assert in_memory == found

    print(f"\n{lookups:,} exact lookups among {count:,} stored tags ({found:,} found)")
    print(f"  stored in                        {stored_s:>9.1f} s   (database {size_mb:,.0f} MB)")
    print(f"  node query, one call for all     {batched * 1000:>9.1f} ms")
    print(f"  node query, one call per tag     {single * 1000:>9.1f} ms")
    print(f"  baseline: Python set lookups     {baseline * 1000:>9.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000_000, help="tags stored")
    parser.add_argument("--lookups", type=int, default=10_000, help="tags looked up")
    parser.add_argument("--dir", type=Path, help="where the SQLite file goes (default: a temp dir)")
    options = parser.parse_args()
    if options.dir is not None:
        main(options.tags, options.lookups, options.dir)
    else:
        with tempfile.TemporaryDirectory() as temporary:
            main(options.tags, options.lookups, Path(temporary))
