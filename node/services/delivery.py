# SPDX-License-Identifier: Apache-2.0
"""Delivery through the durable outbox: at-least-once sending, exactly-once effect.

Filing a request writes the envelope and its outbox row in the same transaction as the state
change. The :class:`DeliveryWorker` drives the outbox machine (``services/outbox.py``) over
those rows: it claims due rows (with a lease, so a replica that dies loses its claim),
delivers them, and marks a row delivered only in the transaction that stores the peer's
verified receipt. Transient failures are retried with exponential backoff, jitter and a cap;
refusals that no retry can cure fail the delivery for good. The receiver de-duplicates on
the message id, so a delivery repeated after a crash changes nothing there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

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
from node.services.outbox import Lease, Outbox, OutboxWorker, OwedState, RetryPolicy, Wording
from node.services.peers import PeerTransport
from node.storage import exchange_repo, outbox_repo
from node.storage.database import Database
from node.storage.tables import Exchange, Message
from node.storage.tables import Outbox as OutboxRow
from node.telemetry import context_from_carrier, span_attributes

_LOG = logging.getLogger(__name__)


class DeliveryExpiredError(ComityError):
    """The envelope expired before any attempt reached the peer."""

    kind = ErrorKind.PRECONDITION
    code = "expired_before_delivery"


class UnexpectedDeliveryError(ComityError):
    """A local fault while delivering (not the peer's); retried."""

    kind = ErrorKind.INTERNAL
    code = "delivery_error"


@dataclass(frozen=True, kw_only=True)
class DeliverySettings:
    owner: str
    """Identifies this replica in claims: several replicas may share one database."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
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
        self._tracer = tracer
        self._outbox = Outbox(
            Deliveries(directory=directory, transport=transport, agency_id=agency_id, clock=clock),
            database=database,
            clock=clock,
            lease=Lease(owner=settings.owner, lease_ms=settings.lease_ms),
            policy=settings.retry,
            log=_LOG,
        )
        self._worker = OutboxWorker(
            claim=self._outbox.claim,
            attempt=self._attempt,
            max_in_flight=settings.max_in_flight,
            poll_interval_s=settings.poll_interval_s,
            what="deliveries",
            log=_LOG,
        )
        self._waiters: dict[str, asyncio.Future[None]] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start(name="comity-delivery")

    async def stop(self, grace_s: float) -> None:
        """Stop claiming; give deliveries in flight ``grace_s`` to finish (their rows stay
        pending if they do not, and are retried after the lease runs out)."""
        await self._worker.stop(grace_s)

    def claim_owner(self) -> str | None:
        """This worker's owner id if it has a free slot for a delivery to start right away,
        else None (the delivery then waits for the worker's next claim)."""
        return self._settings.owner if self._worker.has_slot() else None

    @property
    def owner(self) -> str:
        """This worker's owner id in claims."""
        return self._settings.owner

    @property
    def lease_ms(self) -> int:
        return self._settings.lease_ms

    def attempt_now(self, claim: Claim) -> None:
        """Start a delivery that was claimed for this worker when it was stored: no claim
        transaction, no wait for the next poll."""
        self._worker.attempt_now(claim)

    def wake(self) -> None:
        """Something became due: claim now rather than at the next poll."""
        self._worker.wake()

    def expect(self, message_id: MessageId) -> asyncio.Future[None]:
        """A future resolved when ``message_id`` is delivered, or failing with the reason it
        failed for good. Register it before the outbox row commits, so no outcome is missed."""
        future = self._waiters.get(message_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiters[message_id] = future
        return future

    def forget(self, message_id: MessageId) -> None:
        future = self._waiters.pop(message_id, None)
        if future is not None and not future.done():
            future.cancel()

    # --- one attempt -------------------------------------------------------------------------

    async def _attempt(self, claim: Claim) -> None:
        with self._tracer.start_as_current_span(
            "comity.deliver",
            context=context_from_carrier(claim.trace_context),
            attributes=span_attributes(
                message_id=claim.message_id, recipient=claim.recipient, attempt=claim.attempts + 1
            ),
        ):
            result = await self._outbox.attempt(claim)
        # A delivery to be retried keeps its waiter: filing answers "pending" at its own time.
        if result.recorded and result.state is not OwedState.PENDING:
            self._resolve(claim.message_id, result.error)

    def _resolve(self, message_id: MessageId, error: ComityError | None) -> None:
        future = self._waiters.pop(message_id, None)
        if future is None or future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class Deliveries:
    """Outbox rows as a kind of owed item: envelopes owed to peers, proved by their receipt."""

    def __init__(
        self,
        *,
        directory: Directory,
        transport: PeerTransport,
        agency_id: AgencyId,
        clock: Callable[[], int],
    ) -> None:
        self._directory = directory
        self._transport = transport
        self._me = agency_id
        self._clock = clock

    def claim_due(
        self, session: Session, *, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[Claim]:
        rows = outbox_repo.claim_due(
            session, owner=owner, now_ms=now_ms, lease_ms=lease_ms, limit=limit
        )
        return [_load_claim(session, row) for row in rows]

    async def attempt(self, item: Claim) -> SignedReceipt:
        if self._clock() >= item.expires_at_ms:
            raise DeliveryExpiredError("the envelope expired before it could be delivered")
        member = self._directory.find(item.recipient)
        if member is None:
            raise UnknownAgencyError(f"{item.recipient} is no longer a federation member")
        try:
            sealed = wire.envelope_from_bytes(item.envelope)
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
            envelope_digest=item.digest,
        )
        kill_point("deliver.before_record")
        return receipt

    def record_delivered(
        self, session: Session, item: Claim, proof: SignedReceipt, *, now_ms: int
    ) -> bool:
        """Store the receipt with the delivery; a delivered request starts its deadline."""
        if not outbox_repo.mark_delivered(session, message_id=item.message_id, now_ms=now_ms):
            return False  # another replica recorded it first; its receipt is the same
        exchange_repo.set_message_receipt(
            session,
            message_id=item.message_id,
            receipt=wire.receipt_to_bytes(proof),
            verified=True,
        )
        message = exchange_repo.get_message(session, item.message_id)
        exchange = exchange_repo.get_exchange(session, proof.body.exchange_id, lock=True)
        if exchange is None or message is None or not _is_request(exchange, message):
            return True  # a lifecycle message: its state change was made when it was sent
        if exchange.state in {RequestState.SUBMITTED, RequestState.DELIVERY_FAILED}:
            exchange_repo.set_exchange_state(
                session, exchange_id=exchange.id, state=RequestState.DELIVERED, now_ms=now_ms
            )
        # The deadline runs from receipt, as the receiver counts it.
        due = due_at(exchange, proof.body.received_at_ms)
        exchange_repo.set_due_at(session, exchange_id=exchange.id, due_at_ms=due)
        record_event(
            session,
            event="receipt.received",
            request_type=exchange.request_type,
            form_json=exchange.form_json,
            sender=proof.body.sender,
            recipient=proof.body.receiver,
            exchange_id=proof.body.exchange_id,
            instant_ms=now_ms,
            envelope_digest=item.digest,
            promised_leaf=proof.body.audit_leaf_index,
        )
        return True

    def record_retry(
        self,
        session: Session,
        item: Claim,
        *,
        now_ms: int,
        error: str,
        delay_ms: Callable[[int], int],
    ) -> None:
        row = outbox_repo.get_outbox(session, item.message_id)
        attempts = row.attempts if row is not None else 0
        outbox_repo.schedule_retry(
            session,
            message_id=item.message_id,
            now_ms=now_ms,
            next_attempt_at_ms=now_ms + delay_ms(attempts),
            error=error,
        )

    def record_failed(self, session: Session, item: Claim, *, now_ms: int, error: str) -> None:
        row = outbox_repo.get_outbox(session, item.message_id)
        if (
            not outbox_repo.mark_failed(
                session, message_id=item.message_id, now_ms=now_ms, error=error
            )
            or row is None
        ):
            return
        message = exchange_repo.get_message(session, item.message_id)
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
            now_ms=now_ms,
            last_error=error,
        )

    def unexpected(self, item: Claim) -> ComityError:  # noqa: ARG002 (same for every item)
        return UnexpectedDeliveryError("unexpected error; see the log")

    def wording(self, item: Claim) -> Wording:
        return Wording(
            attempt=f"delivery of message {item.message_id}",
            failed=f"delivery of message {item.message_id} to {item.recipient} failed",
            delivered=f"delivered message {item.message_id} to {item.recipient}",
            record=f"the outcome for {item.message_id}",
        )


def _is_request(exchange: Exchange, message: Message) -> bool:
    """Whether ``message`` is the request that opened ``exchange`` (not a later message)."""
    return exchange.direction == Direction.OUTBOUND and message.sequence == 1


def _load_claim(session: Session, row: OutboxRow) -> Claim:
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
