# SPDX-License-Identifier: Apache-2.0
"""The durable outbox machine on a real database (SQLite and PostgreSQL) with a scripted
attempt: delivery, backoff on transient failures, giving up, lease expiry and take-over, and
no row attempted twice by replicas claiming at the same time."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from node.errors import ComityError, ErrorKind
from node.ids import AgencyId
from node.indicators.sets import IndicatorSet
from node.indicators.tlp import Tlp
from node.services.outbox import (
    Lease,
    Outbox,
    OutboxWorker,
    OwedState,
    RetryPolicy,
    Wording,
)
from node.storage import indicator_repo, leased, offer_repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import IndicatorOffer

SET_ID = "0b5e7c1a-2222-4222-8222-222222222222"
POLICY = RetryPolicy(base_s=1.0, cap_s=8.0)
LEASE_MS = 30_000
START_MS = 1_000_000

Script = Callable[[str], Awaitable[None]]


class DownError(ComityError):
    kind = ErrorKind.UNAVAILABLE
    code = "down"


class RefusedError(ComityError):
    kind = ErrorKind.PRECONDITION
    code = "refused"


class BrokenError(ComityError):
    kind = ErrorKind.INTERNAL
    code = "broken"


async def delivered(_: str) -> None:
    return None


class Clock:
    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        return self.now_ms


class FakeKind:
    """Offers of one set version, one per recipient, sent by ``script`` (the fake attempt)."""

    def __init__(self, script: Script = delivered) -> None:
        self.script = script
        self.attempted: list[str] = []

    def claim_due(
        self, session: Session, *, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[str]:
        rows = leased.claim_due(
            session, IndicatorOffer, owner=owner, now_ms=now_ms, lease_ms=lease_ms, limit=limit
        )
        return [row.recipient for row in rows]

    async def attempt(self, item: str) -> str:
        self.attempted.append(item)
        await self.script(item)
        return f"ack from {item}"

    def record_delivered(self, session: Session, item: str, proof: str, *, now_ms: int) -> bool:
        assert proof == f"ack from {item}"
        offer_repo.mark_delivered(session, set_id=SET_ID, recipient=item, version=1, now_ms=now_ms)
        return True

    def record_retry(
        self,
        session: Session,
        item: str,
        *,
        now_ms: int,
        error: str,
        delay_ms: Callable[[int], int],
    ) -> None:
        offer = session.get(IndicatorOffer, (SET_ID, item))
        assert offer is not None
        offer_repo.schedule_retry(
            session,
            set_id=SET_ID,
            recipient=item,
            version=1,
            now_ms=now_ms,
            delay_ms=delay_ms(offer.attempts),
            error=error,
        )

    def record_failed(self, session: Session, item: str, *, now_ms: int, error: str) -> None:
        offer_repo.mark_failed(
            session, set_id=SET_ID, recipient=item, version=1, now_ms=now_ms, error=error
        )

    def unexpected(self, item: str) -> ComityError:
        return BrokenError(f"local fault offering to {item}")

    def wording(self, item: str) -> Wording:
        return Wording(
            attempt=f"offering to {item}",
            failed=f"offer to {item} failed",
            delivered=f"offer passed to {item}",
            record=f"the offer to {item}",
        )


@pytest.fixture
def database(engine: Engine) -> Iterator[Database]:
    held = IndicatorSet(
        set_id=SET_ID,
        owner=AgencyId("aa-unit"),
        version=1,
        tlp=Tlp.GREEN,
        recipients=(),
        clients={},
        created_ms=1,
    )
    with transaction(engine) as session:
        indicator_repo.save_set(
            session, held, document=b"{}", signature=b"\x00" * 64, received_from=None, now_ms=1
        )
    database = Database(engine)
    yield database
    database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def owe(database: Database, *recipients: str) -> None:
    with transaction(database.engine) as session:
        for recipient in recipients:
            offer_repo.owe(session, set_id=SET_ID, recipient=recipient, version=1, now_ms=START_MS)


def offer(database: Database, recipient: str) -> IndicatorOffer:
    with transaction(database.engine) as session:
        row = session.get(IndicatorOffer, (SET_ID, recipient))
        assert row is not None
        return row


def outbox(
    database: Database, clock: Clock, kind: FakeKind, owner: str = "replica-1"
) -> Outbox[str, str]:
    return Outbox(
        kind,
        database=database,
        clock=clock,
        lease=Lease(owner=owner, lease_ms=LEASE_MS),
        policy=POLICY,
    )


def failing(error: ComityError | Exception) -> Script:
    async def script(_: str) -> None:
        raise error

    return script


# --- the policy ------------------------------------------------------------------------------


def test_backoff_doubles_with_equal_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)  # noqa: S311 (jitter, not secrets)
    for attempts, ceiling_ms in [(0, 1000), (1, 2000), (2, 4000), (3, 8000), (40, 8000)]:
        delays = {POLICY.delay_ms(attempts, rng) for _ in range(50)}
        assert all(ceiling_ms / 2 <= d <= ceiling_ms for d in delays)
        assert len(delays) > 1  # jittered


def test_only_transient_kinds_are_retried() -> None:
    assert POLICY.retries(DownError("x"))
    assert POLICY.retries(BrokenError("x"))
    assert not POLICY.retries(RefusedError("x"))
    assert not RetryPolicy(transient=frozenset()).retries(DownError("x"))


# --- one attempt -----------------------------------------------------------------------------


async def test_success_closes_the_row_and_logs_it(
    database: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    owe(database, "bb")
    kind = FakeKind()
    assert await outbox(database, clock, kind).attempt_due(10) == 1
    row = offer(database, "bb")
    assert (row.status, row.attempts, row.claimed_by) == (leased.DELIVERED, 1, None)
    assert kind.attempted == ["bb"]
    assert "offer passed to bb" in caplog.messages


async def test_transient_failure_is_retried_after_a_growing_delay(
    database: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    owe(database, "bb")
    kind = FakeKind(failing(DownError("peer down")))
    box = outbox(database, clock, kind)
    assert await box.attempt_due(10) == 1
    row = offer(database, "bb")
    assert (row.status, row.attempts, row.claimed_by) == (leased.PENDING, 1, None)
    assert row.last_error == "peer down [down]"
    first_delay = row.next_attempt_at_ms - START_MS
    assert 500 <= first_delay <= 1000
    assert "offer to bb failed (down), will retry" in caplog.messages

    assert await box.attempt_due(10) == 0  # not due yet
    clock.now_ms = row.next_attempt_at_ms
    assert await box.attempt_due(10) == 1
    again = offer(database, "bb")
    assert again.attempts == 2
    assert 1000 <= again.next_attempt_at_ms - clock.now_ms <= 2000

    kind.script = delivered
    clock.now_ms = again.next_attempt_at_ms
    assert await box.attempt_due(10) == 1
    assert offer(database, "bb").status == leased.DELIVERED
    assert kind.attempted == ["bb"] * 3


async def test_permanent_failure_gives_up_for_good(
    database: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    owe(database, "bb")
    kind = FakeKind(failing(RefusedError("key revoked")))
    box = outbox(database, clock, kind)
    result = await box.attempt(*await box.claim(10))
    assert result.state is OwedState.FAILED
    assert isinstance(result.error, RefusedError)
    row = offer(database, "bb")
    assert (row.status, row.attempts, row.last_error) == (
        leased.FAILED,
        1,
        "key revoked [refused]",
    )
    assert "offer to bb failed (refused), giving up" in caplog.messages
    clock.now_ms += 10 * LEASE_MS
    assert await box.attempt_due(10) == 0
    assert kind.attempted == ["bb"]


async def test_a_local_fault_is_recorded_as_the_kinds_error_and_retried(
    database: Database, clock: Clock
) -> None:
    owe(database, "bb")
    box = outbox(database, clock, FakeKind(failing(RuntimeError("bug"))))
    result = await box.attempt(*await box.claim(10))
    assert (result.state, result.recorded) == (OwedState.PENDING, True)
    assert offer(database, "bb").last_error == "local fault offering to bb [broken]"


async def test_an_outcome_that_cannot_be_stored_leaves_the_claim_to_expire(
    database: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    owe(database, "bb")
    kind = FakeKind(failing(DownError("peer down")))
    box = outbox(database, clock, kind)
    (item,) = await box.claim(10)

    def unreachable(session: Session, item: str, **_: object) -> None:
        raise DownError("database away")

    monkeypatch.setattr(kind, "record_retry", unreachable)
    result = await box.attempt(item)
    assert (result.state, result.recorded) == (OwedState.PENDING, False)
    row = offer(database, "bb")
    assert (row.attempts, row.claimed_by) == (0, "replica-1")


# --- leases and replicas ---------------------------------------------------------------------


async def test_a_dead_replicas_claim_is_taken_over_when_its_lease_ends(
    database: Database, clock: Clock
) -> None:
    owe(database, "bb")
    dead, survivor = FakeKind(), FakeKind()
    assert await outbox(database, clock, dead, owner="replica-1").claim(10) == ["bb"]
    # replica-1 dies holding the claim: nobody else may attempt the row while it lasts.
    taker = outbox(database, clock, survivor, owner="replica-2")
    clock.now_ms += LEASE_MS - 1
    assert await taker.attempt_due(10) == 0
    clock.now_ms += 2
    assert await taker.attempt_due(10) == 1
    assert survivor.attempted == ["bb"]
    assert dead.attempted == []
    assert offer(database, "bb").status == leased.DELIVERED


async def test_replicas_claiming_at_once_never_attempt_a_row_twice(
    engine: Engine, database: Database, clock: Clock
) -> None:
    recipients = [f"peer-{i:02d}" for i in range(24)]
    owe(database, *recipients)
    # On PostgreSQL a second replica is another process: its own threads and connections.
    # SQLite serves one process, whose one database thread runs every claim in turn.
    other_database = Database(engine) if engine.dialect.name == "postgresql" else database
    try:
        kinds = [FakeKind(), FakeKind(), FakeKind()]
        boxes = [
            outbox(database, clock, kinds[0], owner="replica-1"),
            outbox(other_database, clock, kinds[1], owner="replica-2"),
            outbox(database, clock, kinds[2], owner="replica-3"),
        ]
        for _ in range(6):
            await asyncio.gather(*(box.attempt_due(3) for box in boxes))
    finally:
        if other_database is not database:
            other_database.close()
    attempted = Counter(item for kind in kinds for item in kind.attempted)
    assert sorted(attempted) == recipients
    assert set(attempted.values()) == {1}
    assert all(offer(database, r).status == leased.DELIVERED for r in recipients)


# --- the background worker ----------------------------------------------------------------------


async def test_worker_attempts_new_work_when_woken_and_due_work_when_polling(
    database: Database, clock: Clock
) -> None:
    kind = FakeKind()
    box = outbox(database, clock, kind)
    woken = OutboxWorker(
        claim=box.claim, attempt=box.attempt, max_in_flight=4, poll_interval_s=60.0, what="offers"
    )
    woken.start(name="test-woken")
    try:
        await asyncio.sleep(0.05)  # the first claim finds nothing; the next poll is far away
        owe(database, "bb")
        woken.wake()
        await wait_until(lambda: offer(database, "bb").status == leased.DELIVERED)
    finally:
        await woken.stop(grace_s=1.0)

    polling = OutboxWorker(
        claim=box.claim, attempt=box.attempt, max_in_flight=4, poll_interval_s=0.02, what="offers"
    )
    polling.start(name="test-polling")
    try:
        await asyncio.sleep(0.05)
        owe(database, "cc")  # nobody wakes the worker: its poll finds the row
        await wait_until(lambda: offer(database, "cc").status == leased.DELIVERED)
    finally:
        await polling.stop(grace_s=1.0)
    assert kind.attempted == ["bb", "cc"]


async def test_worker_keeps_at_most_max_in_flight_and_lets_them_finish_on_stop(
    database: Database, clock: Clock
) -> None:
    recipients = [f"peer-{i}" for i in range(5)]
    owe(database, *recipients)
    release = asyncio.Event()
    running, most = 0, 0

    async def slow(_: str) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    kind = FakeKind(slow)
    box = outbox(database, clock, kind)
    worker = OutboxWorker(
        claim=box.claim, attempt=box.attempt, max_in_flight=2, poll_interval_s=0.01, what="offers"
    )
    worker.start(name="test-bounded")
    await wait_until(lambda: running == 2)
    await asyncio.sleep(0.05)
    assert (most, worker.has_slot()) == (2, False)
    release.set()
    await wait_until(lambda: len(kind.attempted) == len(recipients))
    await worker.stop(grace_s=1.0)
    assert most == 2
    assert all(offer(database, r).status == leased.DELIVERED for r in recipients)


async def test_cancelling_the_worker_cancels_its_attempts(database: Database, clock: Clock) -> None:
    owe(database, "bb")
    started = asyncio.Event()

    async def hang(_: str) -> None:
        started.set()
        await asyncio.Event().wait()

    box = outbox(database, clock, FakeKind(hang))
    worker = OutboxWorker(
        claim=box.claim, attempt=box.attempt, max_in_flight=2, poll_interval_s=0.01, what="offers"
    )
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # the cancelled attempt finishes
    row = offer(database, "bb")
    assert (row.status, row.attempts, row.claimed_by) == (leased.PENDING, 0, "replica-1")


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
