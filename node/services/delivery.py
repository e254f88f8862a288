# SPDX-License-Identifier: Apache-2.0
"""Delivery through the durable outbox: at-least-once sending, exactly-once effect.

Filing a request writes the envelope and its outbox row in the same transaction as the state
change. The :class:`DeliveryWorker` claims due rows (with a lease, so a replica that dies
loses its claim), delivers them, and marks a row delivered only in the transaction that
stores the peer's verified receipt. Transient failures are retried with exponential backoff,
jitter and a cap; refusals that no retry can cure fail the delivery for good. The receiver
de-duplicates on the message id, so a delivery repeated after a crash changes nothing there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.trace import Tracer
from sqlmodel import Session

from node import wire
from node.crypto.envelope import verify_receipt
from node.errors import (
    ComityError,
    ErrorKind,
    MalformedError,
    UnknownAgencyError,
)
from node.faults import kill_point
from node.ids import AgencyId, MessageId
from node.members import Directory
from node.model.envelope import SignedReceipt
from node.model.request import Direction, RequestState
from node.services.audit import record_event
from node.services.lifecycle import due_at
from node.services.peers import PeerTransport
from node.storage import exchange_repo, repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import Exchange, Message, Outbox
from node.telemetry import context_from_carrier, span_attributes

_LOG = logging.getLogger(__name__)

# Failures a later attempt may cure: the peer or the network is down or busy, or the peer
# answered with something broken. Anything else is a refusal of this message for good.
RETRYABLE = frozenset({ErrorKind.UNAVAILABLE, ErrorKind.OVERLOADED, ErrorKind.INTERNAL})


class DeliveryExpiredError(ComityError):
    """The envelope expired before any attempt reached the peer."""

    kind = ErrorKind.PRECONDITION
    code = "expired_before_delivery"


class UnexpectedDeliveryError(ComityError):
    """A local fault while delivering (not the peer's); retried."""

    kind = ErrorKind.INTERNAL
    code = "delivery_error"


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter": half fixed, half random, capped."""

    base_s: float = 0.5
    cap_s: float = 60.0

    def delay_ms(self, attempts: int, rng: random.Random) -> int:
        ceiling = min(self.cap_s, self.base_s * 2 ** min(attempts, 30))
        return int(1000 * (ceiling / 2 + rng.uniform(0, ceiling / 2)))


@dataclass(frozen=True, kw_only=True)
class DeliverySettings:
    owner: str
    """Identifies this replica in claims: several replicas may share one database."""
    retry: RetryPolicy = RetryPolicy()
    lease_ms: int = 30_000
    max_in_flight: int = 16
    poll_interval_s: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A delivery this worker holds: what it needs to attempt it without reading it again."""

    message_id: MessageId
    recipient: AgencyId
    envelope: bytes
    digest: bytes
    expires_at_ms: int
    attempts: int
    trace_context: str | None


class DeliveryWorker:
    """Claims due deliveries, delivers them, records the outcome. One per node replica."""

    def __init__(
        self,
        *,
        settings: DeliverySettings,
        database: Database,
        directory: Directory,
        transport: PeerTransport,
        agency_id: AgencyId,
        clock: Callable[[], int],
        tracer: Tracer,
    ) -> None:
        self._settings = settings
        self._database = database
        self._directory = directory
        self._transport = transport
        self._me = agency_id
        self._clock = clock
        self._tracer = tracer
        self._rng = random.Random()  # noqa: S311 (jitter, not secrets)
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="comity-delivery")

    async def stop(self, grace_s: float) -> None:
        """Stop claiming; give deliveries in flight ``grace_s`` to finish (their rows stay
        pending if they do not, and are retried after the lease runs out)."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def claim_owner(self) -> str | None:
        """This worker's owner id if it has a free slot for a delivery to start right away,
        else None (the delivery then waits for the worker's next claim)."""
        if len(self._in_flight) >= self._settings.max_in_flight or self._stopping:
            return None
        return self._settings.owner

    @property
    def lease_ms(self) -> int:
        return self._settings.lease_ms

    def attempt_now(self, claim: Claim) -> None:
        """Start a delivery that was claimed for this worker when it was stored: no claim
        transaction, no wait for the next poll."""
        task = asyncio.create_task(self._attempt(claim))
        self._in_flight.add(task)
        task.add_done_callback(self._done)

    def wake(self) -> None:
        """Something became due: claim now rather than at the next poll."""
        self._wakeup.set()

    def expect(self, message_id: str) -> asyncio.Future[None]:
        """A future resolved when ``message_id`` is delivered, or failing with the reason it
        failed for good. Register it before the outbox row commits, so no outcome is missed."""
        future = self._waiters.get(message_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiters[message_id] = future
        return future

    def forget(self, message_id: str) -> None:
        future = self._waiters.pop(message_id, None)
        if future is not None and not future.done():
            future.cancel()

    # --- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                claimed = await self._claim()
            except ComityError as e:
                _LOG.warning("cannot claim deliveries: %s", e.code)
                claimed = []
            for claim in claimed:
                task = asyncio.create_task(self._attempt(claim))
                self._in_flight.add(task)
                task.add_done_callback(self._done)
            if claimed and len(self._in_flight) < self._settings.max_in_flight:
                continue  # there may be more due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._settings.poll_interval_s)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wakeup.set()  # a slot is free

    async def _claim(self) -> list[Claim]:
        slots = self._settings.max_in_flight - len(self._in_flight)
        if slots <= 0:
            return []
        now = self._clock()

        def claim() -> list[Claim]:
            with transaction(self._database.engine) as session:
                rows = repo.claim_due(
                    session,
                    owner=self._settings.owner,
                    now_ms=now,
                    lease_ms=self._settings.lease_ms,
                    limit=slots,
                )
                return [_load_claim(session, row) for row in rows]

        return await self._database.run(claim)

    # --- one attempt -------------------------------------------------------------------------

    async def _attempt(self, claim: Claim) -> None:
        with self._tracer.start_as_current_span(
            "comity.deliver",
            context=context_from_carrier(claim.trace_context),
            attributes=span_attributes(
                message_id=claim.message_id, recipient=claim.recipient, attempt=claim.attempts + 1
            ),
        ):
            await self._attempt_in_span(claim)

    async def _attempt_in_span(self, claim: Claim) -> None:
        try:
            receipt = await self._deliver(claim)
        except ComityError as e:
            await self._record_failure(claim, e)
        except Exception:  # noqa: BLE001 (one bad delivery must not stop the others)
            _LOG.exception("delivery of message %s failed unexpectedly", claim.message_id)
            await self._record_failure(
                claim, UnexpectedDeliveryError("unexpected error; see the log")
            )
        else:
            kill_point("deliver.before_record")
            await self._database.run(lambda: self._record_receipt(claim, receipt))
            self._resolve(claim.message_id, None)

    async def _deliver(self, claim: Claim) -> SignedReceipt:
        if self._clock() >= claim.expires_at_ms:
            raise DeliveryExpiredError("the envelope expired before it could be delivered")
        member = self._directory.find(claim.recipient)
        if member is None:
            raise UnknownAgencyError(f"{claim.recipient} is no longer a federation member")
        try:
            sealed = wire.envelope_from_bytes(claim.envelope)
        except MalformedError as e:  # our own stored bytes: corrupt storage, not the peer
            raise UnexpectedDeliveryError(f"stored envelope does not parse: {e.message}") from e
        receipt = await self._transport.deliver(member, sealed)
        verify_receipt(
            receipt,
            receiver_signing_keys=member.signing_keys,
            message_id=sealed.header.message_id,
            exchange_id=sealed.header.exchange_id,
            sender=self._me,
            receiver=member.agency_id,
            envelope_digest=claim.digest,
        )
        return receipt

    def _record_receipt(self, claim: Claim, receipt: SignedReceipt) -> None:
        now = self._clock()
        with transaction(self._database.engine) as session:
            if not repo.mark_delivered(session, message_id=claim.message_id, now_ms=now):
                return  # another replica recorded it first; its receipt is the same
            exchange_repo.set_message_receipt(
                session,
                message_id=claim.message_id,
                receipt=wire.receipt_to_bytes(receipt),
                verified=True,
            )
            message = exchange_repo.get_message(session, claim.message_id)
            exchange = exchange_repo.get_exchange(session, receipt.body.exchange_id, lock=True)
            if exchange is None or message is None or not _is_request(exchange, message):
                return  # a lifecycle message: its state change was made when it was sent
            if exchange.state in {RequestState.SUBMITTED, RequestState.DELIVERY_FAILED}:
                exchange_repo.set_exchange_state(
                    session, exchange_id=exchange.id, state=RequestState.DELIVERED, now_ms=now
                )
            # The deadline runs from receipt, as the receiver counts it.
            due = due_at(exchange, receipt.body.received_at_ms)
            exchange_repo.set_due_at(session, exchange_id=exchange.id, due_at_ms=due)
            record_event(
                session,
                event="receipt.received",
                request_type=exchange.request_type,
                form_json=exchange.form_json,
                sender=receipt.body.sender,
                recipient=receipt.body.receiver,
                exchange_id=receipt.body.exchange_id,
                instant_ms=now,
                envelope_digest=claim.digest,
                promised_leaf=receipt.body.audit_leaf_index,
            )
        _LOG.info("delivered message %s to %s", claim.message_id, claim.recipient)

    async def _record_failure(self, claim: Claim, error: ComityError) -> None:
        retry = error.kind in RETRYABLE
        _LOG.warning(
            "delivery of message %s to %s failed (%s)%s",
            claim.message_id,
            claim.recipient,
            error.code,
            ", will retry" if retry else ", giving up",
        )
        try:
            if retry:
                await self._database.run(lambda: self._schedule_retry(claim, error))
                return
            await self._database.run(lambda: self._fail(claim, error))
        except ComityError as e:
            # The row stays claimed until its lease runs out, then it is tried again.
            _LOG.warning("cannot record the outcome for %s: %s", claim.message_id, e.code)
            return
        self._resolve(claim.message_id, error)

    def _schedule_retry(self, claim: Claim, error: ComityError) -> None:
        now = self._clock()
        with transaction(self._database.engine) as session:
            row = repo.get_outbox(session, claim.message_id)
            attempts = row.attempts if row is not None else 0
            repo.schedule_retry(
                session,
                message_id=claim.message_id,
                now_ms=now,
                next_attempt_at_ms=now + self._settings.retry.delay_ms(attempts, self._rng),
                error=error.diagnostics(),
            )

    def _fail(self, claim: Claim, error: ComityError) -> None:
        now = self._clock()
        with transaction(self._database.engine) as session:
            row = repo.get_outbox(session, claim.message_id)
            if (
                not repo.mark_failed(
                    session, message_id=claim.message_id, now_ms=now, error=error.diagnostics()
                )
                or row is None
            ):
                return
            message = exchange_repo.get_message(session, claim.message_id)
            exchange = exchange_repo.get_exchange(session, row.exchange_id, lock=True)
            if exchange is None:
                return
            # A request that never arrived failed; a lifecycle message that could not be
            # delivered leaves the state where sending it put it, with the error shown.
            request = message is not None and _is_request(exchange, message)
            exchange_repo.set_exchange_state(
                session,
                exchange_id=row.exchange_id,
                state=RequestState.DELIVERY_FAILED if request else exchange.state,
                now_ms=now,
                last_error=error.diagnostics(),
            )

    def _resolve(self, message_id: str, error: ComityError | None) -> None:
        future = self._waiters.pop(message_id, None)
        if future is None or future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _is_request(exchange: Exchange, message: Message) -> bool:
    """Whether ``message`` is the request that opened ``exchange`` (not a later message)."""
    return exchange.direction == Direction.OUTBOUND and message.sequence == 1


def _load_claim(session: Session, row: Outbox) -> Claim:
    message = exchange_repo.get_message(session, row.message_id)
    if message is None:  # the foreign key makes this impossible; say so if it happens
        raise UnexpectedDeliveryError(f"outbox row {row.message_id} has no message")
    return Claim(
        message_id=MessageId(row.message_id),
        recipient=AgencyId(row.recipient),
        envelope=message.envelope,
        digest=message.envelope_digest,
        expires_at_ms=row.expires_at_ms,
        attempts=row.attempts,
        trace_context=row.trace_context,
    )
