# SPDX-License-Identifier: Apache-2.0
"""The durable outbox: owe → claim under lease → attempt → record → retry or give up.

Whatever a node owes another agency (a request or a later message of an exchange, an
indicator set version, a sighting report) is written as a row in the transaction that made it
owed; this machine takes it from there, the same way for every kind. A row is attempted only
under a claim (an owner and a lease end): claims skip rows under a live lease and, on
PostgreSQL, rows another replica is claiming right now (``FOR UPDATE SKIP LOCKED``), so
replicas sharing one database attempt each row once at a time, and a replica that dies loses
its claims when their lease ends. An outcome is recorded in the kind's own rows, guarded
against a replica that recorded first. A failure the :class:`RetryPolicy` counts as
transient is tried again after an exponential, jittered, capped delay; any other failure gives
up for good and keeps the reason. :class:`OutboxWorker` makes attempts in the background.

A kind of owed item plugs in through :class:`OwedKind`: request delivery
(``services/delivery.py``), indicator set offers (``services/set_offers.py``) and sighting
reports (``services/sighting_reports.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from sqlmodel import Session

from node.errors import ComityError, ErrorKind
from node.storage import leased
from node.storage.database import Database
from node.storage.engine import transaction

_LOG = logging.getLogger(__name__)

# Failures a later attempt may cure: the peer or the network is down or busy, or the peer
# answered with something broken. Anything else is a refusal of this item for good.
RETRYABLE = frozenset({ErrorKind.UNAVAILABLE, ErrorKind.OVERLOADED, ErrorKind.INTERNAL})

Item = TypeVar("Item")
Proof = TypeVar("Proof")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Which failures are transient, and how long to wait before trying one again:
    exponential backoff with "equal jitter" (half fixed, half random), capped."""

    base_s: float = 0.5
    cap_s: float = 60.0
    transient: frozenset[ErrorKind] = RETRYABLE

    def retries(self, error: ComityError) -> bool:
        """Whether a later attempt may cure ``error``; if not, the item is given up."""
        return error.kind in self.transient

    def delay_ms(self, attempts: int, rng: random.Random) -> int:
        """The wait after the attempt that follows ``attempts`` earlier ones."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(attempts, 30))
        return int(1000 * (ceiling / 2 + rng.uniform(0, ceiling / 2)))


@dataclass(frozen=True, kw_only=True)
class Lease:
    """Who claims rows, and for how long: a claim outlives any single attempt."""

    owner: str
    """Identifies this replica in claims: several replicas may share one database."""
    lease_ms: int = 30_000

    def claim(self, now_ms: int) -> tuple[str, int]:
        """(owner, lease end) of a claim taken at ``now_ms``."""
        return self.owner, now_ms + self.lease_ms


async def release_earlier_claims(database: Database, *, replica: str, owner: str) -> int:
    """Release the claims that earlier runs of this replica left on pending rows of every
    kind (request deliveries, set offers, sighting reports), so a restarted node attempts them
    at once instead of after their leases end; how many were released. Only for a caller that
    knows those runs are dead (``node/replica.py``)."""

    def release() -> int:
        with transaction(database.engine) as session:
            return sum(leased.release_claims(session, replica=replica, keep=owner).values())

    return await database.run(release)


class OwedState(Enum):
    DELIVERED = "delivered"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class AttemptResult:
    """How one attempt ended: delivered, pending (tried again later) or failed for good.
    ``recorded`` is False when the outcome could not be stored (the row stays claimed until
    its lease ends, then it is tried again)."""

    state: OwedState
    error: ComityError | None = None
    recorded: bool = True


@dataclass(frozen=True, kw_only=True)
class Wording:
    """How the log names one item (ids, versions, agencies; never case content)."""

    attempt: str
    """The attempt, as in "<attempt> failed unexpectedly"."""
    failed: str
    """A failed attempt, followed by the error code and whether it is retried."""
    delivered: str
    """The whole line logged once the other agency has the item."""
    record: str
    """What was to be recorded, as in "cannot record <record>: <code>"."""


class OwedKind(Protocol[Item, Proof]):
    """One kind of owed item. The record methods run in the machine's transaction: a retry
    or a give-up leaves alone a row that is no longer pending (another replica closed it) or
    that became owed anew meanwhile."""

    def claim_due(
        self, session: Session, *, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[Item]:
        """Claim up to ``limit`` due items for ``owner`` until ``now_ms + lease_ms``."""
        ...

    async def attempt(self, item: Item) -> Proof:
        """Send ``item``; what the other agency answered proves it arrived.

        Raises:
            ComityError: the attempt failed; the policy decides whether it is retried.
        """
        ...

    def record_delivered(self, session: Session, item: Item, proof: Proof, *, now_ms: int) -> bool:
        """Close the item; False when another replica recorded it first (nothing to log)."""
        ...

    def record_retry(
        self,
        session: Session,
        item: Item,
        *,
        now_ms: int,
        error: str,
        delay_ms: Callable[[int], int],
    ) -> None:
        """Count a failed attempt and set the next one ``delay_ms(attempts so far)`` ahead."""
        ...

    def record_failed(self, session: Session, item: Item, *, now_ms: int, error: str) -> None:
        """Count a failed attempt and give the item up for good."""
        ...

    def unexpected(self, item: Item) -> ComityError:
        """The error recorded for a local fault (a bug, not the other agency's answer)."""
        ...

    def wording(self, item: Item) -> Wording: ...


class Outbox(Generic[Item, Proof]):
    """Claims, attempts and records items of one kind; shared by all the replica's callers."""

    def __init__(
        self,
        kind: OwedKind[Item, Proof],
        *,
        database: Database,
        clock: Callable[[], int],
        lease: Lease,
        policy: RetryPolicy,
        log: logging.Logger = _LOG,
    ) -> None:
        self._kind = kind
        self._database = database
        self._clock = clock
        self.lease = lease
        self._policy = policy
        self._log = log
        self._rng = random.Random()  # noqa: S311 (jitter, not secrets)

    async def claim(self, limit: int) -> list[Item]:
        """Claim up to ``limit`` due items for this replica, under its lease."""
        now = self._clock()

        def claim() -> list[Item]:
            with transaction(self._database.engine) as session:
                return self._kind.claim_due(
                    session,
                    owner=self.lease.owner,
                    now_ms=now,
                    lease_ms=self.lease.lease_ms,
                    limit=limit,
                )

        return await self._database.run(claim)

    async def attempt_due(self, limit: int) -> int:
        """Claim due items and attempt them all; returns how many were attempted."""
        due = await self.claim(limit)
        await asyncio.gather(*(self.attempt(item) for item in due))
        return len(due)

    async def attempt(self, item: Item) -> AttemptResult:
        """Attempt a claimed item and record the outcome.

        Raises:
            ComityError: the delivery could not be recorded (the database is unreachable);
                the row stays claimed until its lease ends, then it is tried again.
        """
        try:
            proof = await self._kind.attempt(item)
        except ComityError as e:
            return await self._record_failure(item, e)
        except Exception:  # noqa: BLE001 (one bad item must not stop the others)
            self._log.exception("%s failed unexpectedly", self._kind.wording(item).attempt)
            return await self._record_failure(item, self._kind.unexpected(item))
        await self._record_delivered(item, proof)
        return AttemptResult(state=OwedState.DELIVERED)

    async def _record_delivered(self, item: Item, proof: Proof) -> None:
        def record() -> bool:
            now = self._clock()
            with transaction(self._database.engine) as session:
                return self._kind.record_delivered(session, item, proof, now_ms=now)

        if await self._database.run(record):
            self._log.info("%s", self._kind.wording(item).delivered)

    async def _record_failure(self, item: Item, error: ComityError) -> AttemptResult:
        retry = self._policy.retries(error)
        wording = self._kind.wording(item)
        self._log.warning(
            "%s (%s)%s", wording.failed, error.code, ", will retry" if retry else ", giving up"
        )
        state = OwedState.PENDING if retry else OwedState.FAILED
        try:
            await self._database.run(lambda: self._store_failure(item, error, retry=retry))
        except ComityError as e:
            # The row stays claimed until its lease runs out, then it is tried again.
            self._log.warning("cannot record %s: %s", wording.record, e.code)
            return AttemptResult(state=state, error=error, recorded=False)
        return AttemptResult(state=state, error=error)

    def _store_failure(self, item: Item, error: ComityError, *, retry: bool) -> None:
        now, reason = self._clock(), error.diagnostics()
        with transaction(self._database.engine) as session:
            if retry:
                self._kind.record_retry(
                    session, item, now_ms=now, error=reason, delay_ms=self._delay_ms
                )
            else:
                self._kind.record_failed(session, item, now_ms=now, error=reason)

    def _delay_ms(self, attempts: int) -> int:
        return self._policy.delay_ms(attempts, self._rng)


class OutboxWorker(Generic[Item]):
    """Attempts due items in the background, at most ``max_in_flight`` at once: it claims
    when woken (new work stored, a slot freed) and every ``poll_interval_s`` otherwise."""

    def __init__(
        self,
        *,
        claim: Callable[[int], Awaitable[list[Item]]],
        attempt: Callable[[Item], Coroutine[Any, Any, object]],
        max_in_flight: int,
        poll_interval_s: float,
        what: str,
        log: logging.Logger = _LOG,
    ) -> None:
        self._claim = claim
        self._attempt = attempt
        self._max_in_flight = max_in_flight
        self._poll_interval_s = poll_interval_s
        self._what = what
        self._log = log
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._in_flight: set[asyncio.Task[object]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self, name: str) -> None:
        self._task = asyncio.create_task(self.run(), name=name)

    async def stop(self, grace_s: float) -> None:
        """Stop claiming; give attempts in flight ``grace_s`` to finish (their rows stay
        pending if they do not, and are tried again after the lease runs out)."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def has_slot(self) -> bool:
        """Whether an attempt started now would run at once."""
        return len(self._in_flight) < self._max_in_flight and not self._stopping

    def attempt_now(self, item: Item) -> None:
        """Attempt an item its caller claimed already: no claim, no wait for the next poll."""
        task = asyncio.create_task(self._attempt(item))
        self._in_flight.add(task)
        task.add_done_callback(self._done)

    def wake(self) -> None:
        """Something became due: claim now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        """Claim and attempt until stopped; cancelling it cancels the attempts in flight."""
        try:
            while not self._stopping:
                self._wakeup.clear()
                if await self._claim_free_slots() and self.has_slot():
                    continue  # there may be more due right now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_interval_s)
        except asyncio.CancelledError:
            for task in self._in_flight:
                task.cancel()
            raise

    async def _claim_free_slots(self) -> int:
        slots = self._max_in_flight - len(self._in_flight)
        if slots <= 0:
            return 0
        try:
            claimed = await self._claim(slots)
        except ComityError as e:
            self._log.warning("cannot claim %s: %s", self._what, e.code)
            return 0
        for item in claimed:
            self.attempt_now(item)
        return len(claimed)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._in_flight.discard(task)
        self._wakeup.set()  # a slot is free
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, ComityError):
            # The outcome could not be stored: the row is tried again when its lease ends.
            self._log.warning("cannot finish an attempt among %s: %s", self._what, error.code)
        elif error is not None:
            self._log.error("an attempt among %s failed", self._what, exc_info=error)
