# SPDX-License-Identifier: Apache-2.0
"""Audit-log benchmark: appends, proofs at a million leaves, a full auditor verification.

Each figure stands beside a baseline measured in the same run on the same database:

- appends: events logged one by one through ``record_event`` (leaf, salted commitments,
  openings, the head row), and as whole batches through ``append_leaves``, in transactions of
  ``--batch``, beside plain inserts of rows of the same size in transactions of that size;
- proofs: inclusion and consistency proofs served by the node's AuditService over a log of
  ``--leaves`` leaves (tile roots in memory, at most two tiles read), beside one indexed read
  of a single leaf hash, the least any stored proof can cost; their verification beside one
  SHA-256 of a leaf;
- auditor: every leaf read in pages of 1,000 (the Audit service's path) and run through the
  auditor's checks (parse, canonical form, dates, streaming root), in a child process so that
  its peak memory is its own, beside a child that only reads the pages and hashes each leaf.

Usage: python -m ops.bench.audit [--leaves 1000000] [--appends 20000] [--batch 1000]
       [--proofs 1000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import random
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from nacl.signing import SigningKey
from rich.progress import Progress
from sqlalchemy import Engine, insert, text, update

from node.audit.leaf import Leaf, OpeningName, PublicFields, build_leaf, hour_of
from node.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from node.audit.note import Checkpoint, split_note
from node.audit.verify import LogVerifier
from node.forms.registry import schemas_dir
from node.ids import AgencyId, ExchangeId
from node.services.audit import (
    MAX_LEAVES_PER_CALL,
    AuditService,
    append_leaves,
    record_event,
)
from node.storage.database import Database
from node.storage.engine import create_engine, transaction, upgrade
from node.storage.tables import AuditHead, AuditLeaf
from node.timeutil import now_ms
from ops.bench.machine import describe_machine

FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()
LOAD_CHUNK = 20_000


def main(options: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="comity-audit-bench-") as tmp:
        url = options.database_url or f"sqlite:///{Path(tmp) / 'appends.db'}"
        print(describe_machine())
        _appends(url, options.appends, options.batch)
        url = options.database_url or f"sqlite:///{Path(tmp) / 'log.db'}"
        _load(url, options.leaves)
        _proofs(url, options.leaves, options.proofs)
        _auditor(url, options.leaves)


def _fresh_engine(url: str) -> Engine:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)
    with engine.begin() as connection:  # a previous run's leaves, on a shared database
        for table in ("audit_opening", "audit_tile", "audit_cosignature", "audit_checkpoint"):
            connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (fixed names)
        connection.execute(text("DELETE FROM audit_leaf"))
        connection.execute(update(AuditHead).values(size=0))
    return engine


def _appends(url: str, count: int, batch: int) -> None:
    engine = _fresh_engine(url)
    started = time.perf_counter()
    for first in range(0, count, batch):
        with transaction(engine) as session:
            for i in range(first, min(count, first + batch)):
                record_event(
                    session,
                    event="request.sent",
                    request_type="preservation",
                    form_json=FORM,
                    sender=AgencyId("aa-cyber-unit"),
                    recipient=AgencyId("bb-central-authority"),
                    exchange_id=ExchangeId(str(uuid.UUID(int=i))),
                    instant_ms=now_ms(),
                    envelope_digest=bytes(32),
                )
    logged = count / (time.perf_counter() - started)
    started = time.perf_counter()
    for first in range(0, count, batch):
        with transaction(engine) as session:
            append_leaves(
                session,
                [(_public(i), _sensitive(i)) for i in range(first, min(count, first + batch))],
                now_ms=now_ms(),
            )
    batched = count / (time.perf_counter() - started)
    with engine.begin() as connection:
        size = len(connection.execute(text("SELECT leaf FROM audit_leaf LIMIT 1")).scalar_one())
        connection.execute(text("CREATE TABLE bench_plain (idx BIGINT PRIMARY KEY, data BLOB)"))
    started = time.perf_counter()
    for first in range(0, count, batch):
        with engine.begin() as connection:
            rows = [{"i": i, "d": bytes(size)} for i in range(first, min(count, first + batch))]
            connection.execute(text("INSERT INTO bench_plain VALUES (:i, :d)"), rows)
    plain = count / (time.perf_counter() - started)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE bench_plain"))
    engine.dispose()
    print(f"\nappends ({count:,} leaves of {size} bytes, {batch} per transaction)")
    print(f"  one record_event per leaf     {logged:>10,.0f} leaves/s   ratio {logged / plain:.2f}")
    print(
        f"  append_leaves, whole batches  {batched:>10,.0f} leaves/s   ratio {batched / plain:.2f}"
    )
    print(f"  baseline: plain row inserts   {plain:>10,.0f} rows/s")


def _public(i: int) -> PublicFields:
    return PublicFields(
        event="request.sent",
        request_type="preservation",
        legal_basis="budapest-art29",
        sender="aa-cyber-unit",
        recipient="bb-central-authority",
        exchange_id=str(uuid.UUID(int=i)),
        hour=hour_of(now_ms()),
    )


def _sensitive(i: int) -> dict[OpeningName, str]:
    """What record_event commits to for the example form."""
    return {
        OpeningName.EXACT_TIME_MS: str(now_ms()),
        OpeningName.CASE_REFERENCE: "EE-CYB-2026-0417",
        OpeningName.ENVELOPE_DIGEST: bytes(32).hex(),
        OpeningName.REQUESTING_UNIT: "Police and Border Guard Board / Cybercrime Bureau",
        OpeningName.JUSTIFICATION: f"request {i}",
    }


def _synthetic_leaves(count: int) -> Iterator[bytes]:
    """Canonical leaves differing in their exchange id: cheap to make, real to verify."""
    public = PublicFields(
        event="request.received",
        request_type="preservation",
        legal_basis="budapest-art29",
        sender="aa-cyber-unit",
        recipient="bb-central-authority",
        exchange_id="",
        hour=hour_of(now_ms()),
    )
    template, _ = build_leaf(public, {OpeningName.CASE_REFERENCE: "EE-CYB-2026-0417"})
    for i in range(count):
        leaf = Leaf(
            public=replace(public, exchange_id=str(uuid.UUID(int=i))),
            commitments=template.commitments,
        )
        yield leaf.to_bytes()


def _load(url: str, count: int) -> None:
    engine = _fresh_engine(url)
    started = time.perf_counter()
    leaves = _synthetic_leaves(count)
    now = now_ms()
    with Progress(transient=True) as progress:
        task = progress.add_task(f"loading a log of {count:,} leaves", total=count)
        for first in range(0, count, LOAD_CHUNK):
            rows = []
            for i in range(first, min(count, first + LOAD_CHUNK)):
                data = next(leaves)
                rows.append(
                    {"idx": i, "leaf": data, "leaf_hash": leaf_hash(data), "created_at_ms": now}
                )
            with engine.begin() as connection:
                connection.execute(insert(AuditLeaf), rows)
            progress.update(task, completed=first + len(rows))
    with engine.begin() as connection:
        connection.execute(update(AuditHead).values(size=count))
    engine.dispose()
    print(f"\nloaded a log of {count:,} leaves in {time.perf_counter() - started:.0f} s")


def _proofs(url: str, size: int, count: int) -> None:
    database = Database(create_engine(url))
    audit = AuditService(
        database=database, key=SigningKey.generate(), agency_id=AgencyId("bench"), clock=now_ms
    )
    rng = random.Random(7)  # noqa: S311 (benchmark sample, not secrets)
    started = time.perf_counter()
    note = asyncio.run(audit.signed_checkpoint())
    first = time.perf_counter() - started
    root = Checkpoint.parse(split_note(note)[0]).root

    indices = [rng.randrange(size) for _ in range(count)]
    olds = [rng.randrange(1, size) for _ in range(count)]

    async def prove_all() -> tuple[list[float], list[float], list[list[bytes]], list[list[bytes]]]:
        inclusion, consistency, ip, cp = [], [], [], []
        for index, old in zip(indices, olds, strict=True):
            t = time.perf_counter()
            ip.append(await audit.inclusion_proof(index=index, size=size))
            inclusion.append(time.perf_counter() - t)
            t = time.perf_counter()
            cp.append(await audit.consistency_proof(old_size=old, new_size=size))
            consistency.append(time.perf_counter() - t)
        return inclusion, consistency, ip, cp

    inclusion, consistency, inclusion_proofs, consistency_proofs = asyncio.run(prove_all())
    read = _timed(count, lambda i: _read_one(database.engine, indices[i]))
    leaf = next(_synthetic_leaves(1))
    with database.engine.connect() as connection:
        leaves = {
            i: connection.execute(
                text("SELECT leaf FROM audit_leaf WHERE idx = :i"), {"i": i}
            ).scalar_one()
            for i in set(indices)
        }
    verify_in = _timed(
        count,
        lambda i: verify_inclusion(
            leaf=leaves[indices[i]],
            index=indices[i],
            size=size,
            proof=inclusion_proofs[i],
            root=root,
        ),
    )
    old_roots = asyncio.run(_old_roots(audit, sorted(set(olds))))
    verify_co = _timed(
        count,
        lambda i: verify_consistency(
            old_size=olds[i],
            old_root=old_roots[olds[i]],
            new_size=size,
            new_root=root,
            proof=consistency_proofs[i],
        ),
    )
    hashing = _timed(count, lambda _i: hashlib.sha256(b"\x00" + leaf).digest())
    database.close()
    print(f"\nproofs at {size:,} leaves ({count:,} each, random indices; median per proof)")
    print(f"  first checkpoint (computes and stores every tile root)  {first:>9.2f} s")
    print(f"  inclusion proof, served        {_ms(inclusion):>9.3f} ms")
    print(f"  consistency proof, served      {_ms(consistency):>9.3f} ms")
    print(f"  baseline: one indexed read     {_ms(read):>9.3f} ms")
    print(f"  inclusion proof, verified      {_ms(verify_in):>9.3f} ms")
    print(f"  consistency proof, verified    {_ms(verify_co):>9.3f} ms")
    print(f"  baseline: one SHA-256 of a leaf {_ms(hashing):>8.3f} ms")


async def _old_roots(audit: AuditService, sizes: list[int]) -> dict[int, bytes]:
    """The roots of the earlier trees, as a verifier holding their checkpoints knows them."""
    return {size: await audit.root(size) for size in sizes}


def _read_one(engine: Engine, index: int) -> None:
    with engine.connect() as connection:
        connection.execute(
            text("SELECT leaf_hash FROM audit_leaf WHERE idx = :i"), {"i": index}
        ).scalar_one()


def _timed(count: int, work: Callable[[int], object]) -> list[float]:
    times = []
    for i in range(count):
        t = time.perf_counter()
        work(i)
        times.append(time.perf_counter() - t)
    return times


def _ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def _auditor(url: str, size: int) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        verified = pool.apply(_audit_child, (url, size, True))
    with context.Pool(1) as pool:
        hashed = pool.apply(_audit_child, (url, size, False))
    print(f"\nauditor over {size:,} leaves (pages of {MAX_LEAVES_PER_CALL:,}; child processes)")
    print(f"  full verification    {verified[0]:>8.1f} s   peak memory {verified[1]:>6.0f} MiB")
    print(f"  baseline: read+hash  {hashed[0]:>8.1f} s   peak memory {hashed[1]:>6.0f} MiB")


def _audit_child(url: str, size: int, verify: bool) -> tuple[float, float]:
    """Seconds and peak resident memory (MiB) of reading every leaf, verifying or hashing."""
    database = Database(create_engine(url))
    audit = AuditService(
        database=database, key=SigningKey.generate(), agency_id=AgencyId("bench"), clock=now_ms
    )
    checkpoint = Checkpoint.parse(split_note(asyncio.run(audit.signed_checkpoint()))[0])
    started = time.perf_counter()
    log = LogVerifier(checkpoint, keep_leaves=False)

    async def read_all() -> None:
        for start in range(0, size, MAX_LEAVES_PER_CALL):
            page = await audit.leaves(start=start, end=min(size, start + MAX_LEAVES_PER_CALL))
            for data in page:
                if verify:
                    log.add(data)
                else:
                    hashlib.sha256(b"\x00" + data).digest()

    asyncio.run(read_all())
    if verify:
        log.finish(previous=None)
    seconds = time.perf_counter() - started
    database.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, peak


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000, help="size of the big log")
    parser.add_argument("--appends", type=int, default=20_000, help="leaves appended")
    parser.add_argument("--batch", type=int, default=1_000, help="leaves per transaction")
    parser.add_argument("--proofs", type=int, default=1_000, help="proofs of each kind")
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: SQLite files)")
    main(parser.parse_args())
