# SPDX-License-Identifier: Apache-2.0
"""The exchange: filing a request to a peer, and receiving one from a peer.

Filing validates the form, signs and seals it, and stores it with its outbox row in one
transaction; the :class:`~node.services.delivery.DeliveryWorker` takes it from there.
Receiving runs the checks of proto/README.md in their order (verify before parse) and stores
the envelope, its effect and the signed receipt in one transaction. Database work runs on the
database's own threads so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry.trace import Tracer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from node import wire
from node.crypto.encoding import envelope_digest
from node.crypto.envelope import open_envelope, seal_envelope, sign_receipt
from node.crypto.keys import AgencyKeys
from node.errors import (
    FreshnessError,
    MisaddressedError,
    NotFoundError,
    OverloadedError,
    PeerIdentityError,
    ReplayError,
    SupersededDirectoryError,
    UnknownAgencyError,
    UnknownSenderError,
)
from node.faults import kill_point
from node.forms.registry import FormType, form_type_for_payload, get_form_type
from node.forms.validate import validate_form
from node.ids import AgencyId, ExchangeId, new_exchange_id, new_message_id, parse_exchange_id
from node.members import Directory, Member
from node.model.envelope import (
    EnvelopeHeader,
    OpenedEnvelope,
    ReceiptBody,
    ReceiptStatus,
    SealedEnvelope,
    SignedReceipt,
)
from node.model.request import (
    DeliveryView,
    Direction,
    NodeStatusView,
    PeerBacklogView,
    RequestState,
    RequestView,
)
from node.services.audit import record_event
from node.services.delivery import Claim, DeliveryWorker
from node.storage import repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import Exchange, Message, Outbox
from node.telemetry import span_attributes, trace_carrier
from node.timeutil import now_ms

_LOG = logging.getLogger(__name__)

CLOCK_SKEW_MS = 5 * 60 * 1000
MAX_LIFETIME_MS = 7 * 24 * 3600 * 1000

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class ExchangeSettings:
    agency_id: AgencyId
    message_lifetime_ms: int = 24 * 3600 * 1000
    file_wait_s: float = 5.0
    """How long filing waits for the receipt before answering with the pending delivery."""
    outbox_capacity: int = 10_000
    """Pending deliveries beyond which new requests are refused (RESOURCE_EXHAUSTED)."""
    alert_after_ms: int = 5 * 60 * 1000
    """A peer whose oldest pending delivery is older than this is shown as an alert."""


class ExchangeService:
    """Files outbound requests and receives inbound ones for one agency's node."""

    def __init__(
        self,
        *,
        settings: ExchangeSettings,
        keys: AgencyKeys,
        directory: Directory,
        database: Database,
        delivery: DeliveryWorker,
        tracer: Tracer,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._settings = settings
        self._me = settings.agency_id
        self._keys = keys
        self._directory = directory
        self._database = database
        self._engine = database.engine
        self._delivery = delivery
        self._tracer = tracer
        self._clock = clock

    # --- filing ------------------------------------------------------------------------------

    async def file_request(
        self, *, request_type: str, recipient: str, form_json: bytes
    ) -> RequestView:
        """Validate, sign and seal a request, and store it with its delivery in the outbox.

        Waits up to ``file_wait_s`` for the signed receipt, then answers with the request as
        it stands: delivered, or submitted with its delivery pending (it will be retried).

        Raises:
            UnknownRequestTypeError, UnknownAgencyError, FormValidationError: bad input;
                nothing is stored.
            OverloadedError: the outbox is full; nothing is stored.
            ComityError: the peer refused the request for good while filing waited (the
                request stays stored as ``delivery_failed`` with the reason).
        """
        form_type = get_form_type(request_type)
        member = self._recipient(recipient)
        canonical = validate_form(form_type, form_json)
        with self._tracer.start_as_current_span(
            "comity.file_request", attributes=span_attributes(request_type=form_type.name)
        ) as span:
            sealed = self._seal(form_type, member, canonical)
            header = sealed.header
            span.set_attributes(
                span_attributes(
                    exchange_id=header.exchange_id,
                    message_id=header.message_id,
                    recipient=member.agency_id,
                )
            )
            outcome = self._delivery.expect(header.message_id)
            # Taken here: database threads do not see the event loop's current span.
            carrier = trace_carrier()
            # With a free delivery slot the row is stored already claimed by this node's
            # worker, which starts on it at once; otherwise the worker's next claim takes it.
            owner = self._delivery.claim_owner()
            try:
                claim = await self._run_db(
                    lambda: self._store_outbound(form_type, sealed, canonical, carrier, owner)
                )
            except BaseException:
                self._delivery.forget(header.message_id)
                raise
            kill_point("file.after_commit")
            if owner is None:
                self._delivery.wake()
            else:
                self._delivery.attempt_now(claim)
            await self._await_delivery(header.message_id, outcome)
        return await self.get_request(header.exchange_id)

    async def _await_delivery(self, message_id: str, outcome: asyncio.Future[None]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(outcome), self._settings.file_wait_s)
        except TimeoutError:
            self._delivery.forget(message_id)  # it stays in the outbox and will be retried

    def _recipient(self, recipient: str) -> Member:
        member = self._directory.find(recipient)
        if member is None:
            raise UnknownAgencyError(f"recipient {recipient!r} is not a federation member")
        if member.agency_id == self._me:
            raise UnknownAgencyError("a node cannot file a request to its own agency")
        return member

    def _seal(self, form_type: FormType, member: Member, payload: bytes) -> SealedEnvelope:
        created = self._clock()
        header = EnvelopeHeader(
            message_id=new_message_id(),
            exchange_id=new_exchange_id(),
            sequence=1,
            sender=self._me,
            recipient=member.agency_id,
            created_at_ms=created,
            expires_at_ms=created + self._settings.message_lifetime_ms,
            directory_version=self._directory.version,
            payload_type=form_type.payload_type,
            sender_encryption_key_id=self._keys.encryption_key_id,
            recipient_encryption_key_id=member.encryption_key_id,
        )
        return seal_envelope(
            header=header,
            payload=payload,
            sender_keys=self._keys,
            recipient_encryption_key=member.encryption_key,
        )

    def _store_outbound(
        self,
        form_type: FormType,
        sealed: SealedEnvelope,
        form: bytes,
        trace_context: str,
        owner: str | None,
    ) -> Claim:
        """The request, its envelope and its outbox row: one transaction, all or nothing."""
        header = sealed.header
        now = self._clock()
        envelope = wire.envelope_to_bytes(sealed)
        digest = envelope_digest(header, form)
        with transaction(self._engine) as session:
            pending = repo.count_outbox(session, status=repo.PENDING)
            if pending >= self._settings.outbox_capacity:
                raise OverloadedError(
                    f"the outbox holds {pending} pending deliveries (capacity "
                    f"{self._settings.outbox_capacity}); try again later"
                )
            repo.insert_exchange(
                session,
                exchange_id=header.exchange_id,
                request_type=form_type.name,
                direction=Direction.OUTBOUND,
                peer=header.recipient,
                state=RequestState.SUBMITTED,
                form_json=form,
                now_ms=now,
            )
            _insert_message(
                session,
                sealed,
                envelope=envelope,
                digest=digest,
                direction=Direction.OUTBOUND,
                now_ms=now,
            )
            session.flush()
            repo.insert_outbox(
                session,
                message_id=header.message_id,
                exchange_id=header.exchange_id,
                recipient=header.recipient,
                now_ms=now,
                expires_at_ms=header.expires_at_ms,
                trace_context=trace_context,
                claimed_by=owner,
                claim_expires_at_ms=now + self._delivery.lease_ms if owner else None,
            )
            record_event(
                session,
                event="request.sent",
                request_type=form_type.name,
                form_json=form,
                sender=header.sender,
                recipient=header.recipient,
                exchange_id=header.exchange_id,
                instant_ms=now,
                envelope_digest=digest,
            )
        return Claim(
            message_id=header.message_id,
            recipient=header.recipient,
            envelope=envelope,
            digest=digest,
            expires_at_ms=header.expires_at_ms,
            attempts=0,
            trace_context=trace_context,
        )

    # --- receiving ---------------------------------------------------------------------------

    async def receive(
        self, sealed: SealedEnvelope, *, peer_fingerprint: str | None
    ) -> SignedReceipt:
        """Check, open, validate and store an inbound envelope; return the signed receipt.

        ``peer_fingerprint`` is the SHA-256 fingerprint of the mutual-TLS client certificate.
        A repeated delivery of the same envelope returns the original receipt.

        Raises:
            ComityError: the subclass names the check that failed (proto/README.md).
        """
        header = sealed.header
        with self._tracer.start_as_current_span(
            "comity.receive",
            attributes=span_attributes(
                message_id=header.message_id,
                exchange_id=header.exchange_id,
                sender=header.sender,
                payload_type=header.payload_type,
            ),
        ):
            opened = self._verify(sealed, peer_fingerprint=peer_fingerprint)
            receipt = await self._run_db(lambda: self._store_inbound(sealed, opened))
            kill_point("receive.after_commit")
            return receipt

    def _verify(self, sealed: SealedEnvelope, *, peer_fingerprint: str | None) -> OpenedEnvelope:
        header = sealed.header
        if header.recipient != self._me:
            raise MisaddressedError(
                f"envelope is addressed to {header.recipient}, this node is {self._me}"
            )
        sender = self._directory.find(header.sender)
        if sender is None:
            raise UnknownSenderError(f"sender {header.sender} is not a federation member")
        if peer_fingerprint != sender.tls_fingerprint:
            raise PeerIdentityError(
                f"the TLS client certificate is not the one listed for {header.sender}"
            )
        self._check_directory_version(header)
        self._check_freshness(header)
        return open_envelope(
            sealed,
            recipient_keys=self._keys,
            sender_signing_keys=sender.signing_keys,
            sender_encryption_key=sender.encryption_key,
        )

    def _check_directory_version(self, header: EnvelopeHeader) -> None:
        if header.directory_version < self._directory.version:
            raise SupersededDirectoryError(
                f"envelope uses membership version {header.directory_version}, "
                f"this node trusts version {self._directory.version}"
            )

    def _check_freshness(self, header: EnvelopeHeader) -> None:
        now = self._clock()
        if header.created_at_ms > now + CLOCK_SKEW_MS:
            raise FreshnessError("envelope created_at_ms is in the future beyond clock skew")
        if header.expires_at_ms <= now:
            raise FreshnessError("envelope expired (expires_at_ms has passed)")
        if header.expires_at_ms <= header.created_at_ms:
            raise FreshnessError("envelope expires_at_ms is not after created_at_ms")
        if header.expires_at_ms - header.created_at_ms > MAX_LIFETIME_MS:
            raise FreshnessError("envelope lifetime exceeds 7 days")

    def _stored_receipt(self, opened: OpenedEnvelope) -> SignedReceipt | None:
        """The receipt issued earlier for this message id, if any (idempotent delivery)."""
        with transaction(self._engine) as session:
            message = repo.get_message(session, opened.header.message_id)
            return _previous_receipt(message, opened)

    def _store_inbound(self, sealed: SealedEnvelope, opened: OpenedEnvelope) -> SignedReceipt:
        """De-duplicate, parse and validate the payload, store it with a signed receipt.

        One transaction: a repeated message id is answered from what is stored, before the
        payload is parsed; a new one is stored together with its effect and receipt.
        """
        try:
            with transaction(self._engine) as session:
                stored = _previous_receipt(
                    repo.get_message(session, opened.header.message_id), opened
                )
                if stored is not None:
                    return stored
                form_type = form_type_for_payload(opened.header.payload_type)
                form = validate_form(form_type, opened.payload)
                receipt = self._insert_inbound(
                    session, sealed=sealed, opened=opened, form_type=form_type, form=form
                )
        except IntegrityError as e:
            # A concurrent delivery of the same message won the race, or the exchange id
            # is taken: answer as a repeat would, or refuse.
            stored = self._stored_receipt(opened)
            if stored is None:
                raise ReplayError("exchange_id already used by another exchange") from e
            return stored
        _LOG.info("registered message %s from %s", opened.header.message_id, opened.header.sender)
        return receipt

    def _insert_inbound(
        self,
        session: Session,
        *,
        sealed: SealedEnvelope,
        opened: OpenedEnvelope,
        form_type: FormType,
        form: bytes,
    ) -> SignedReceipt:
        """Store the request, log it, and sign a receipt that names its audit leaf."""
        header = opened.header
        now = self._clock()
        repo.insert_exchange(
            session,
            exchange_id=header.exchange_id,
            request_type=form_type.name,
            direction=Direction.INBOUND,
            peer=header.sender,
            state=RequestState.REGISTERED,
            form_json=form,
            now_ms=now,
        )
        session.flush()

        def log(event: str) -> int:
            return record_event(
                session,
                event=event,
                request_type=form_type.name,
                form_json=form,
                sender=header.sender,
                recipient=header.recipient,
                exchange_id=header.exchange_id,
                instant_ms=now,
                envelope_digest=opened.digest,
            )

        # The leaf exists before the receipt is signed, so the receipt's promise is kept.
        receipt = self._receipt_for(opened, received_at_ms=now, leaf=log("request.received"))
        _insert_message(
            session,
            sealed,
            envelope=wire.envelope_to_bytes(sealed),
            digest=opened.digest,
            direction=Direction.INBOUND,
            now_ms=now,
            receipt=receipt,
        )
        log("receipt.sent")
        return receipt

    def _receipt_for(
        self, opened: OpenedEnvelope, *, received_at_ms: int, leaf: int
    ) -> SignedReceipt:
        header = opened.header
        return sign_receipt(
            ReceiptBody(
                message_id=header.message_id,
                exchange_id=header.exchange_id,
                receiver=self._me,
                sender=header.sender,
                envelope_digest=opened.digest,
                status=ReceiptStatus.REGISTERED,
                received_at_ms=received_at_ms,
                audit_leaf_index=leaf,
            ),
            keys=self._keys,
        )

    # --- reading -----------------------------------------------------------------------------

    async def get_request(self, request_id: str) -> RequestView:
        """One request with its form and receipt.

        Raises:
            MalformedError: ``request_id`` is not a UUID.
            NotFoundError: no such request at this node.
        """
        exchange_id = parse_exchange_id(request_id)
        return await self._run_db(lambda: self._load_view(exchange_id))

    async def list_requests(self, *, direction: Direction | None, limit: int) -> list[RequestView]:
        def load() -> list[RequestView]:
            with transaction(self._engine) as session:
                rows = repo.list_exchanges(session, direction=direction, limit=limit)
                return [_view(session, row) for row in rows]

        return await self._run_db(load)

    def _load_view(self, exchange_id: ExchangeId) -> RequestView:
        with transaction(self._engine) as session:
            return _load_view(session, exchange_id)

    async def node_status(self) -> NodeStatusView:
        """Pending deliveries per peer, with alerts for peers that stay unreachable."""
        now = self._clock()

        def load() -> NodeStatusView:
            with transaction(self._engine) as session:
                peers = tuple(
                    PeerBacklogView(
                        peer=AgencyId(b.peer),
                        pending=b.pending,
                        oldest_pending_since_ms=b.oldest_pending_since_ms,
                        max_attempts=b.max_attempts,
                        next_attempt_at_ms=b.next_attempt_at_ms,
                        last_error=b.last_error,
                        alert=now - b.oldest_pending_since_ms > self._settings.alert_after_ms,
                    )
                    for b in repo.backlog_by_peer(session)
                )
                return NodeStatusView(
                    agency_id=self._me,
                    directory_version=self._directory.version,
                    outbox_pending=sum(p.pending for p in peers),
                    outbox_capacity=self._settings.outbox_capacity,
                    outbox_failed=repo.count_outbox(session, status=repo.FAILED),
                    peers=peers,
                    requests_outbound=repo.count_exchanges(session, direction=Direction.OUTBOUND),
                    requests_inbound=repo.count_exchanges(session, direction=Direction.INBOUND),
                )

        return await self._run_db(load)

    async def _run_db(self, work: Callable[[], T]) -> T:
        return await self._database.run(work)


def _insert_message(
    session: Session,
    sealed: SealedEnvelope,
    *,
    envelope: bytes,
    digest: bytes,
    direction: Direction,
    now_ms: int,
    receipt: SignedReceipt | None = None,
) -> None:
    """The message row; ``envelope`` is ``sealed`` serialised for the wire."""
    header = sealed.header
    repo.insert_message(
        session,
        message_id=header.message_id,
        exchange_id=header.exchange_id,
        direction=direction,
        sequence=header.sequence,
        sender=header.sender,
        recipient=header.recipient,
        payload_type=header.payload_type,
        envelope=envelope,
        envelope_digest=digest,
        created_at_ms=header.created_at_ms,
        now_ms=now_ms,
        receipt=wire.receipt_to_bytes(receipt) if receipt else None,
        receipt_verified=receipt is not None,
    )


def _load_view(session: Session, exchange_id: ExchangeId) -> RequestView:
    row = repo.get_exchange(session, exchange_id)
    if row is None:
        raise NotFoundError(f"no request {exchange_id} at this node")
    return _view(session, row)


def _previous_receipt(message: Message | None, opened: OpenedEnvelope) -> SignedReceipt | None:
    if message is None:
        return None
    if message.envelope_digest != opened.digest or message.receipt is None:
        raise ReplayError(f"message_id {opened.header.message_id} was used for other content")
    return wire.receipt_from_bytes(message.receipt)


def _delivery_view(row: Outbox | None) -> DeliveryView | None:
    if row is None:
        return None
    return DeliveryView(
        status=row.status,
        attempts=row.attempts,
        next_attempt_at_ms=row.next_attempt_at_ms if row.status == repo.PENDING else None,
        last_attempt_at_ms=row.last_attempt_at_ms,
        last_error=row.last_error,
    )


def _view(session: Session, row: Exchange) -> RequestView:
    messages = repo.messages_for_exchange(session, row.id)
    first = messages[0] if messages else None
    receipt = wire.receipt_from_bytes(first.receipt) if first and first.receipt else None
    return RequestView(
        request_id=ExchangeId(row.id),
        request_type=row.request_type,
        direction=Direction(row.direction),
        peer=AgencyId(row.peer),
        state=RequestState(row.state),
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        form_json=row.form_json,
        receipt=receipt,
        receipt_verified=bool(first and first.receipt_verified),
        last_error=row.last_error,
        delivery=_delivery_view(repo.outbox_for_exchange(session, row.id)),
    )
