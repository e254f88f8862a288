# SPDX-License-Identifier: Apache-2.0
"""The exchange: filing a request to a peer, and receiving one from a peer.

Filing validates the form, signs and seals it, stores it, delivers it through a
:class:`PeerTransport` and stores the peer's verified receipt. Receiving runs the checks of
proto/README.md in their order (verify before parse) and stores the envelope, its effect and
the signed receipt in one transaction. Database work runs in worker threads so the event
loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from opentelemetry.trace import Tracer
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from node import wire
from node.crypto.encoding import envelope_digest
from node.crypto.envelope import open_envelope, seal_envelope, sign_receipt, verify_receipt
from node.crypto.keys import AgencyKeys
from node.errors import (
    ComityError,
    FreshnessError,
    MisaddressedError,
    NotFoundError,
    PeerIdentityError,
    ReplayError,
    SupersededDirectoryError,
    UnknownAgencyError,
    UnknownSenderError,
)
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
from node.model.request import Direction, RequestState, RequestView
from node.storage import repo
from node.storage.engine import database_workers, transaction
from node.storage.tables import Exchange, Message
from node.telemetry import span_attributes
from node.timeutil import now_ms

_LOG = logging.getLogger(__name__)

CLOCK_SKEW_MS = 5 * 60 * 1000
MAX_LIFETIME_MS = 7 * 24 * 3600 * 1000

T = TypeVar("T")


class PeerTransport(Protocol):
    """The only seam between the exchange and the network."""

    async def deliver(self, member: Member, envelope: SealedEnvelope) -> SignedReceipt:
        """Deliver ``envelope`` to ``member``'s node and return its receipt.

        Raises:
            PeerUnavailableError: the peer could not be reached in time.
            PeerRejectedError: the peer refused the envelope.
            ReceiptError: the peer answered with something that is not a receipt.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class ExchangeSettings:
    agency_id: AgencyId
    message_lifetime_ms: int = 24 * 3600 * 1000


class ExchangeService:
    """Files outbound requests and receives inbound ones for one agency's node."""

    def __init__(
        self,
        *,
        settings: ExchangeSettings,
        keys: AgencyKeys,
        directory: Directory,
        engine: Engine,
        transport: PeerTransport,
        tracer: Tracer,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._settings = settings
        self._me = settings.agency_id
        self._keys = keys
        self._directory = directory
        self._engine = engine
        self._transport = transport
        self._tracer = tracer
        self._clock = clock
        self._db = ThreadPoolExecutor(
            max_workers=database_workers(engine), thread_name_prefix="comity-db"
        )

    # --- filing ------------------------------------------------------------------------------

    async def file_request(
        self, *, request_type: str, recipient: str, form_json: bytes
    ) -> RequestView:
        """Validate, sign, seal, store and deliver a request; store the verified receipt.

        Raises:
            UnknownRequestTypeError, UnknownAgencyError, FormValidationError: bad input.
            PeerUnavailableError, PeerRejectedError, ReceiptError: delivery failed; the
                request stays stored with state ``delivery_failed`` and the reason.
        """
        form_type = get_form_type(request_type)
        member = self._recipient(recipient)
        canonical = validate_form(form_type, form_json)
        with self._tracer.start_as_current_span(
            "comity.file_request", attributes=span_attributes(request_type=form_type.name)
        ) as span:
            sealed = self._seal(form_type, member, canonical)
            span.set_attributes(
                span_attributes(
                    exchange_id=sealed.header.exchange_id,
                    message_id=sealed.header.message_id,
                    recipient=member.agency_id,
                )
            )
            await self._run_db(lambda: self._store_outbound(form_type, sealed, canonical))
            return await self._deliver_and_record(member, sealed, canonical)

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

    def _store_outbound(self, form_type: FormType, sealed: SealedEnvelope, form: bytes) -> None:
        header = sealed.header
        now = self._clock()
        with transaction(self._engine) as session:
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
                digest=envelope_digest(header, form),
                direction=Direction.OUTBOUND,
                now_ms=now,
            )

    async def _deliver_and_record(
        self, member: Member, sealed: SealedEnvelope, form: bytes
    ) -> RequestView:
        header = sealed.header
        try:
            receipt = await self._transport.deliver(member, sealed)
            verify_receipt(
                receipt,
                receiver_signing_keys=member.signing_keys,
                message_id=header.message_id,
                exchange_id=header.exchange_id,
                sender=self._me,
                receiver=member.agency_id,
                envelope_digest=envelope_digest(header, form),
            )
        except ComityError as e:
            failure = e
            _LOG.warning("delivery of message %s failed: %s", header.message_id, failure.code)
            await self._run_db(lambda: self._record_failure(header, failure))
            raise
        return await self._run_db(lambda: self._record_receipt(header, receipt))

    def _record_failure(self, header: EnvelopeHeader, error: ComityError) -> None:
        with transaction(self._engine) as session:
            repo.set_exchange_state(
                session,
                exchange_id=header.exchange_id,
                state=RequestState.DELIVERY_FAILED,
                now_ms=self._clock(),
                last_error=error.diagnostics(),
            )

    def _record_receipt(self, header: EnvelopeHeader, receipt: SignedReceipt) -> RequestView:
        """Store the verified receipt, mark the request delivered, and return its view."""
        with transaction(self._engine) as session:
            repo.set_message_receipt(
                session,
                message_id=header.message_id,
                receipt=wire.receipt_to_bytes(receipt),
                verified=True,
            )
            repo.set_exchange_state(
                session,
                exchange_id=header.exchange_id,
                state=RequestState.DELIVERED,
                now_ms=self._clock(),
            )
            return _load_view(session, header.exchange_id)

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
            return await self._run_db(lambda: self._store_inbound(sealed, opened))

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
                receipt = self._receipt_for(opened)
                self._insert_inbound(
                    session,
                    sealed=sealed,
                    opened=opened,
                    form_type=form_type,
                    form=form,
                    receipt=receipt,
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

    def _receipt_for(self, opened: OpenedEnvelope) -> SignedReceipt:
        header = opened.header
        return sign_receipt(
            ReceiptBody(
                message_id=header.message_id,
                exchange_id=header.exchange_id,
                receiver=self._me,
                sender=header.sender,
                envelope_digest=opened.digest,
                status=ReceiptStatus.REGISTERED,
                received_at_ms=self._clock(),
            ),
            keys=self._keys,
        )

    def _insert_inbound(
        self,
        session: Session,
        *,
        sealed: SealedEnvelope,
        opened: OpenedEnvelope,
        form_type: FormType,
        form: bytes,
        receipt: SignedReceipt,
    ) -> None:
        header = opened.header
        now = receipt.body.received_at_ms
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
        _insert_message(
            session,
            sealed,
            digest=opened.digest,
            direction=Direction.INBOUND,
            now_ms=now,
            receipt=receipt,
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
                return [_view(row, repo.messages_for_exchange(session, row.id)) for row in rows]

        return await self._run_db(load)

    def _load_view(self, exchange_id: ExchangeId) -> RequestView:
        with transaction(self._engine) as session:
            return _load_view(session, exchange_id)

    async def _run_db(self, work: Callable[[], T]) -> T:
        """Run blocking database work off the event loop, on the database's own workers."""
        return await asyncio.get_running_loop().run_in_executor(self._db, work)

    def close(self) -> None:
        """Wait for database work in progress, then release the workers."""
        self._db.shutdown(wait=True)


def _insert_message(
    session: Session,
    sealed: SealedEnvelope,
    *,
    digest: bytes,
    direction: Direction,
    now_ms: int,
    receipt: SignedReceipt | None = None,
) -> None:
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
        envelope=wire.envelope_to_bytes(sealed),
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
    return _view(row, repo.messages_for_exchange(session, exchange_id))


def _previous_receipt(message: Message | None, opened: OpenedEnvelope) -> SignedReceipt | None:
    if message is None:
        return None
    if message.envelope_digest != opened.digest or message.receipt is None:
        raise ReplayError(f"message_id {opened.header.message_id} was used for other content")
    return wire.receipt_from_bytes(message.receipt)


def _view(row: Exchange, messages: list[Message]) -> RequestView:
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
    )
