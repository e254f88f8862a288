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
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from opentelemetry.trace import Tracer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from node import wire
from node.crypto.encoding import envelope_digest
from node.crypto.envelope import open_envelope, seal_envelope, sign_receipt
from node.crypto.keys import AgencyKeys
from node.errors import (
    DirectoryBehindError,
    DirectoryError,
    FreshnessError,
    MalformedError,
    MisaddressedError,
    NotFoundError,
    OverloadedError,
    PeerIdentityError,
    ReplayError,
    RevokedKeyError,
    SupersededDirectoryError,
    UnknownAgencyError,
    UnknownSenderError,
)
from node.faults import kill_point
from node.forms.minimize import minimize
from node.forms.profiles import HOUR_MS
from node.forms.registry import (
    FormType,
    form_type_for_payload,
    get_form_type,
    get_message_type,
)
from node.forms.validate import validate_form
from node.ids import (
    AgencyId,
    ExchangeId,
    MessageId,
    new_exchange_id,
    new_message_id,
    parse_exchange_id,
)
from node.members import Directory, Member
from node.model.envelope import (
    EnvelopeHeader,
    OpenedEnvelope,
    ReceiptBody,
    ReceiptStatus,
    SealedEnvelope,
    SignedReceipt,
)
from node.model.lifecycle import NotYourMoveError, check_sender
from node.model.request import (
    DeliveryView,
    Direction,
    MessageView,
    NodeStatusView,
    PeerBacklogView,
    RequestPreview,
    RequestState,
    RequestView,
)
from node.services.audit import record_event
from node.services.delivery import Claim, DeliveryWorker
from node.services.lifecycle import (
    EMERGENCY_TYPES,
    ExchangeNotReadyError,
    Position,
    apply_held,
    apply_message,
    check_position,
    due_at,
    effective_state,
    is_overdue,
    move,
    own_role,
    peer_role,
    refusal_ground,
)
from node.storage import exchange_repo, repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import Exchange, Message, Outbox
from node.telemetry import span_attributes, trace_carrier
from node.timeutil import now_ms

_LOG = logging.getLogger(__name__)

CLOCK_SKEW_MS = 5 * 60 * 1000
MAX_LIFETIME_MS = 7 * 24 * 3600 * 1000

T = TypeVar("T")


class CatchUp(Protocol):
    async def catch_up_to(self, agency_id: str, version: int, *, timeout_s: float) -> None:
        """Try to trust ``version`` of the directory, fetching it from ``agency_id``."""
        ...


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
    directory_grace_ms: int = 24 * 3600 * 1000
    """How long after a newer directory version is trusted envelopes addressed under the
    older one are still accepted (they were sealed before their sender caught up)."""
    directory_catch_up_s: float = 2.0
    """How long receiving waits to fetch a newer directory a sender addressed under."""


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
        catch_up: CatchUp | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._settings = settings
        self._catch_up = catch_up
        self._me = settings.agency_id
        self._keys = keys
        self._directory = directory
        self._database = database
        self._engine = database.engine
        self._delivery = delivery
        self._tracer = tracer
        self._clock = clock

    def use_keys(self, keys: AgencyKeys) -> None:
        """Hold ``keys`` from now on (a rotated signing key appeared in the key directory)."""
        self._keys = keys

    # --- filing ------------------------------------------------------------------------------

    def preview_request(
        self, *, request_type: str, recipient: str, form_json: bytes, strip: bool = False
    ) -> RequestPreview:
        """Exactly what filing would sign and send, without sending anything.

        Raises:
            UnknownRequestTypeError, UnknownAgencyError, FormValidationError,
            NotMinimalError: as filing would.
        """
        form_type = get_form_type(request_type)
        member = self._recipient(recipient)
        minimized = minimize(form_type.name, validate_form(form_type, form_json), strip=strip)
        deadline = minimized.profile.deadline_ms(emergency=form_type.name in EMERGENCY_TYPES)
        return RequestPreview(
            request_type=form_type.name,
            recipient=member.agency_id,
            payload_type=form_type.payload_type,
            legal_basis=minimized.profile.code,
            form_json=minimized.form_json,
            notes=minimized.notes,
            deadline_hours=None if deadline is None else deadline // HOUR_MS,
        )

    async def file_request(
        self, *, request_type: str, recipient: str, form_json: bytes, strip: bool = False
    ) -> RequestView:
        """Validate, minimize, sign and seal a request, and store it with its delivery in
        the outbox. ``strip`` removes identifiers found in free text instead of refusing.

        Waits up to ``file_wait_s`` for the signed receipt, then answers with the request as
        it stands: delivered, or submitted with its delivery pending (it will be retried).

        Raises:
            UnknownRequestTypeError, UnknownAgencyError, FormValidationError: bad input;
                nothing is stored.
            NotMinimalError: more than the type and legal basis need; nothing is stored.
            OverloadedError: the outbox is full; nothing is stored.
            ComityError: the peer refused the request for good while filing waited (the
                request stays stored as ``delivery_failed`` with the reason).
        """
        self._check_not_expired()
        preview = self.preview_request(
            request_type=request_type, recipient=recipient, form_json=form_json, strip=strip
        )
        form_type = get_form_type(preview.request_type)
        member = self._recipient(preview.recipient)
        canonical = preview.form_json
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
            owner = self._delivery.claim_owner()
            try:
                claim = await self._run_db(
                    lambda: self._store_outbound(form_type, sealed, canonical, carrier, owner)
                )
            except BaseException:
                self._delivery.forget(header.message_id)
                raise
            kill_point("file.after_commit")
            await self._dispatch(claim, owner=owner, outcome=outcome)
        return await self.get_request(header.exchange_id)

    async def send_message(
        self,
        *,
        request_id: str,
        kind: str,
        body_json: bytes,
        within: Callable[[Session, Exchange], None] | None = None,
    ) -> RequestView:
        """Send a lifecycle message (a decision, a clarification, a withdrawal …) in an
        exchange, moving the request to its next state at once; delivered like a request.
        ``within`` stores what the message stands for (evidence) in the same transaction.

        Raises:
            MalformedError, NotFoundError: no such request here.
            UnknownRequestTypeError, FormValidationError: bad kind or body; nothing stored.
            NotYourMoveError: the other party sends this kind of message.
            IllegalTransitionError: not allowed in the request's current state.
            OverloadedError: the outbox is full.
            ComityError: the peer refused the message for good while this call waited.
        """
        message_type = get_message_type(kind)
        exchange_id = parse_exchange_id(request_id)
        self._check_not_expired()
        body = validate_form(message_type, body_json)
        message_id = new_message_id()
        with self._tracer.start_as_current_span(
            "comity.send_message",
            attributes=span_attributes(
                message_kind=message_type.name, exchange_id=exchange_id, message_id=message_id
            ),
        ):
            outcome = self._delivery.expect(message_id)
            carrier = trace_carrier()
            owner = self._delivery.claim_owner()
            try:
                claim = await self._run_db(
                    lambda: self._store_followup(
                        exchange_id,
                        message_type,
                        body,
                        message_id=message_id,
                        trace_context=carrier,
                        owner=owner,
                        within=within,
                    )
                )
            except BaseException:
                self._delivery.forget(message_id)
                raise
            await self._dispatch(claim, owner=owner, outcome=outcome)
        return await self.get_request(exchange_id)

    async def _dispatch(
        self, claim: Claim, *, owner: str | None, outcome: asyncio.Future[None]
    ) -> None:
        # With a free delivery slot the row was stored already claimed by this node's
        # worker, which starts on it at once; otherwise the worker's next claim takes it.
        if owner is None:
            self._delivery.wake()
        else:
            self._delivery.attempt_now(claim)
        await self._await_delivery(claim.message_id, outcome)

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

    def _seal(
        self,
        form_type: FormType,
        member: Member,
        payload: bytes,
        *,
        exchange_id: ExchangeId | None = None,
        sequence: int = 1,
        message_id: MessageId | None = None,
    ) -> SealedEnvelope:
        """Sign and seal ``payload``: a new exchange's request, or message ``sequence`` of
        ``exchange_id``."""
        keys = self._current_keys()
        created = self._clock()
        header = EnvelopeHeader(
            message_id=message_id or new_message_id(),
            exchange_id=exchange_id or new_exchange_id(),
            sequence=sequence,
            sender=self._me,
            recipient=member.agency_id,
            created_at_ms=created,
            expires_at_ms=created + self._settings.message_lifetime_ms,
            directory_version=self._directory.version,
            payload_type=form_type.payload_type,
            sender_encryption_key_id=keys.encryption_key_id,
            recipient_encryption_key_id=member.encryption_key_id,
        )
        return seal_envelope(
            header=header,
            payload=payload,
            sender_keys=keys,
            recipient_encryption_key=member.encryption_key,
        )

    def current_keys(self) -> AgencyKeys:
        """This node's keys as it uses them now (after any rotation)."""
        return self._current_keys()

    def _current_keys(self) -> AgencyKeys:
        """This node's keys, using the newest held keys the directory lists as active."""
        me = self._directory.find(self._me)
        signing = self._keys.signing_keys()
        encryption = self._keys.encryption_keys()
        kid = next((k for k in me.signing_key_order if k in signing), None) if me else None
        sealing = next((k for k in me.encryption_keys if k in encryption), None) if me else None
        if kid is None or sealing is None:
            raise RevokedKeyError(
                f"none of this node's {'signing' if kid is None else 'encryption'} keys is "
                f"active for {self._me} in directory version {self._directory.version}"
            )
        return self._keys.using_signing(kid).using_encryption(sealing)

    def _check_not_expired(self) -> None:
        if self._clock() >= self._directory.expires_ms:
            raise DirectoryError(
                "expired",
                f"this node's directory version {self._directory.version} has expired; "
                "the secretariat must publish a new one",
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
        with transaction(self._engine) as session:
            self._check_capacity(session)
            exchange_repo.insert_exchange(
                session,
                exchange_id=header.exchange_id,
                request_type=form_type.name,
                direction=Direction.OUTBOUND,
                peer=header.recipient,
                state=RequestState.SUBMITTED,
                form_json=form,
                now_ms=now,
            )
            claim = self._enqueue(
                session, sealed, payload=form, trace_context=trace_context, owner=owner, now=now
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
                envelope_digest=claim.digest,
            )
        return claim

    def _store_followup(
        self,
        exchange_id: ExchangeId,
        message_type: FormType,
        body: bytes,
        *,
        message_id: MessageId,
        trace_context: str,
        owner: str | None,
        within: Callable[[Session, Exchange], None] | None,
    ) -> Claim:
        """The lifecycle message, its outbox row and the state it moves to: one transaction."""
        with transaction(self._engine) as session:
            row = exchange_repo.get_exchange(session, exchange_id, lock=True)
            if row is None:
                raise NotFoundError(f"no request {exchange_id} at this node")
            kind = message_type.name
            fields = json.loads(body)
            state = move(row, kind=kind, fields=fields, by=own_role(row), now_ms=self._clock())
            self._check_capacity(session)
            sequence = exchange_repo.next_sequence(
                session, exchange_id, direction=Direction.OUTBOUND
            )
            sealed = self._seal(
                message_type,
                self._recipient(row.peer),
                body,
                exchange_id=exchange_id,
                sequence=sequence,
                message_id=message_id,
            )
            now = self._clock()
            claim = self._enqueue(
                session,
                sealed,
                payload=body,
                trace_context=trace_context,
                owner=owner,
                now=now,
                body=body,
            )
            apply_message(session, row, kind=kind, fields=fields, state=state, now_ms=now)
            if within is not None:
                within(session, row)
            record_event(
                session,
                event=f"{kind}.sent",
                request_type=row.request_type,
                form_json=row.form_json,
                sender=self._me,
                recipient=row.peer,
                exchange_id=exchange_id,
                instant_ms=now,
                envelope_digest=claim.digest,
                refusal_ground=refusal_ground(kind, fields),
            )
        return claim

    def _check_capacity(self, session: Session) -> None:
        pending = repo.count_outbox(session, status=repo.PENDING)
        if pending >= self._settings.outbox_capacity:
            raise OverloadedError(
                f"the outbox holds {pending} pending deliveries (capacity "
                f"{self._settings.outbox_capacity}); try again later"
            )

    def _enqueue(
        self,
        session: Session,
        sealed: SealedEnvelope,
        *,
        payload: bytes,
        trace_context: str,
        owner: str | None,
        now: int,
        body: bytes | None = None,
    ) -> Claim:
        """Store an outbound envelope and its outbox row (claimed by ``owner`` if given)."""
        header = sealed.header
        envelope = wire.envelope_to_bytes(sealed)
        digest = envelope_digest(header, payload)
        _insert_message(
            session,
            sealed,
            envelope=envelope,
            digest=digest,
            direction=Direction.OUTBOUND,
            now_ms=now,
            body=body,
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
            await self._catch_up_with(header)
            opened = self._verify(sealed, peer_fingerprint=peer_fingerprint)
            receipt = await self._run_db(lambda: self._store_inbound(sealed, opened))
            kill_point("receive.after_commit")
            return receipt

    async def _catch_up_with(self, header: EnvelopeHeader) -> None:
        """An envelope addressed under a newer directory: fetch it from the sender first."""
        if header.directory_version <= self._directory.version or self._catch_up is None:
            return
        await self._catch_up.catch_up_to(
            header.sender,
            header.directory_version,
            timeout_s=self._settings.directory_catch_up_s,
        )

    def _verify(self, sealed: SealedEnvelope, *, peer_fingerprint: str | None) -> OpenedEnvelope:
        header = sealed.header
        if header.recipient != self._me:
            raise MisaddressedError(
                f"envelope is addressed to {header.recipient}, this node is {self._me}"
            )
        self._check_not_expired()
        self._check_directory_version(header)
        sender = self._sender(sealed)
        if peer_fingerprint != sender.tls_fingerprint:
            raise PeerIdentityError(
                f"the TLS client certificate is not the one listed for {header.sender}"
            )
        self._check_freshness(header)
        # Either key of a rotation's overlap, on both sides; open_envelope refuses others.
        held = self._keys.encryption_keys()
        mine = header.recipient_encryption_key_id
        return open_envelope(
            sealed,
            recipient_keys=self._keys.using_encryption(mine) if mine in held else self._keys,
            sender_signing_keys=sender.signing_keys,
            sender_encryption_key=sender.encryption_keys.get(
                header.sender_encryption_key_id, sender.encryption_key
            ),
        )

    def _sender(self, sealed: SealedEnvelope) -> Member:
        """The sending member, refusing keys that are revoked or outside their validity."""
        header = sealed.header
        entry = self._directory.entry(header.sender)
        if entry is None:
            raise UnknownSenderError(
                f"sender {header.sender} is not a member in directory version "
                f"{self._directory.version}"
            )
        now = self._clock()
        for signature in sealed.signatures:
            listed = entry.key(signature.key_id)
            if listed is not None and listed.purpose == "signing" and not listed.active_at(now):
                raise RevokedKeyError(
                    f"signing key {signature.key_id} of {header.sender} is revoked or outside "
                    f"its validity in directory version {self._directory.version}"
                )
        sender = entry.view_at(now)
        if sender is None:
            raise RevokedKeyError(
                f"{header.sender} has no active keys in directory version {self._directory.version}"
            )
        return sender

    def _check_directory_version(self, header: EnvelopeHeader) -> None:
        """Refuse an envelope addressed under a version superseded longer than the grace
        period ago, or under a version this node does not know yet (it retries)."""
        mine = self._directory.version
        if header.directory_version > mine:
            raise DirectoryBehindError(
                f"envelope uses directory version {header.directory_version}, this node "
                f"trusts version {mine} and is catching up; retry later"
            )
        superseded = self._directory.superseded_at(header.directory_version)
        if (
            superseded is not None
            and self._clock() - superseded > self._settings.directory_grace_ms
        ):
            raise SupersededDirectoryError(
                f"envelope uses directory version {header.directory_version}, superseded at "
                f"this node by version {mine} more than the grace period ago"
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
            message = exchange_repo.get_message(session, opened.header.message_id)
            return _previous_receipt(message, opened)

    def _store_inbound(self, sealed: SealedEnvelope, opened: OpenedEnvelope) -> SignedReceipt:
        """De-duplicate, parse and validate the payload, store it with a signed receipt.

        One transaction: a repeated message id is answered from what is stored, before the
        payload is parsed; a new one is stored together with its effect and receipt.
        """
        try:
            with transaction(self._engine) as session:
                stored = _previous_receipt(
                    exchange_repo.get_message(session, opened.header.message_id), opened
                )
                if stored is not None:
                    return stored
                form_type = form_type_for_payload(opened.header.payload_type)
                form = validate_form(form_type, opened.payload)
                if not form_type.is_message:
                    minimize(form_type.name, form)  # the receiver checks minimality again
                insert = self._insert_followup if form_type.is_message else self._insert_inbound
                receipt = insert(
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
        if header.sequence != 1:
            raise MalformedError("a request opens its exchange: its sequence must be 1")
        now = self._clock()
        row = exchange_repo.insert_exchange(
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
        exchange_repo.set_due_at(session, exchange_id=row.id, due_at_ms=due_at(row, now))

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

    def _insert_followup(
        self,
        session: Session,
        *,
        sealed: SealedEnvelope,
        opened: OpenedEnvelope,
        form_type: FormType,
        form: bytes,
    ) -> SignedReceipt:
        """Store a lifecycle message; apply it if it is the sender's next one in this exchange,
        else hold it until the messages before it have arrived (then apply them in order)."""
        header = opened.header
        row = exchange_repo.get_exchange(session, header.exchange_id, lock=True)
        if row is None:
            raise ExchangeNotReadyError(
                f"exchange {header.exchange_id} is not registered here (yet); retry later"
            )
        if row.peer != header.sender:
            raise NotYourMoveError(f"{header.sender} is not a party to this exchange")
        kind, fields = form_type.name, json.loads(form)
        check_sender(kind, peer_role(row))
        position = check_position(session, row, header.sequence)
        state = None
        if position is Position.NEXT:
            state = move(row, kind=kind, fields=fields, by=peer_role(row), now_ms=self._clock())
        now = self._clock()
        leaf = record_event(
            session,
            event=f"{kind}.received",
            request_type=row.request_type,
            form_json=row.form_json,
            sender=header.sender,
            recipient=self._me,
            exchange_id=row.id,
            instant_ms=now,
            envelope_digest=opened.digest,
            refusal_ground=refusal_ground(kind, fields),
        )
        receipt = self._receipt_for(opened, received_at_ms=now, leaf=leaf)
        _insert_message(
            session,
            sealed,
            envelope=wire.envelope_to_bytes(sealed),
            digest=opened.digest,
            direction=Direction.INBOUND,
            now_ms=now,
            receipt=receipt,
            body=form,
            state="applied" if state is not None else "held",
        )
        if state is not None:
            apply_message(
                session, row, kind=kind, fields=fields, state=state, now_ms=now, received=True
            )
            apply_held(session, row, now_ms=now)
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
            keys=self._current_keys(),
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
                rows = exchange_repo.list_exchanges(session, direction=direction, limit=limit)
                return [_view(session, row, self._clock()) for row in rows]

        return await self._run_db(load)

    def _load_view(self, exchange_id: ExchangeId) -> RequestView:
        with transaction(self._engine) as session:
            return _load_view(session, exchange_id, self._clock())

    async def overdue_requests(self) -> list[RequestView]:
        """Requests past their deadline that have not reached the step it is for, both
        directions, most overdue first."""
        now = self._clock()

        def load() -> list[RequestView]:
            with transaction(self._engine) as session:
                rows = exchange_repo.due_before(session, now)
                return [_view(session, r, now) for r in rows if is_overdue(r, now)]

        return await self._run_db(load)

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
                    directory_expires_at_ms=self._directory.expires_ms,
                    outbox_pending=sum(p.pending for p in peers),
                    outbox_capacity=self._settings.outbox_capacity,
                    outbox_failed=repo.count_outbox(session, status=repo.FAILED),
                    peers=peers,
                    requests_outbound=exchange_repo.count_exchanges(
                        session, direction=Direction.OUTBOUND
                    ),
                    requests_inbound=exchange_repo.count_exchanges(
                        session, direction=Direction.INBOUND
                    ),
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
    body: bytes | None = None,
    state: str = "applied",
) -> None:
    """The message row; ``envelope`` is ``sealed`` serialised for the wire."""
    header = sealed.header
    exchange_repo.insert_message(
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
        body=body,
        state=state,
    )


def _load_view(session: Session, exchange_id: ExchangeId, now_ms: int) -> RequestView:
    row = exchange_repo.get_exchange(session, exchange_id)
    if row is None:
        raise NotFoundError(f"no request {exchange_id} at this node")
    return _view(session, row, now_ms)


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


def _view(session: Session, row: Exchange, now_ms: int) -> RequestView:
    messages = exchange_repo.messages_for_exchange(session, row.id)
    request = next((m for m in messages if m.direction == row.direction and m.sequence == 1), None)
    receipt = wire.receipt_from_bytes(request.receipt) if request and request.receipt else None
    return RequestView(
        request_id=ExchangeId(row.id),
        request_type=row.request_type,
        direction=Direction(row.direction),
        peer=AgencyId(row.peer),
        state=effective_state(row, now_ms),
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        form_json=row.form_json,
        receipt=receipt,
        receipt_verified=bool(request and request.receipt_verified),
        last_error=row.last_error,
        delivery=_delivery_view(repo.outbox_for_exchange(session, row.id)),
        signed_by=_signers(request.envelope) if request else (),
        preserved_until_ms=row.preserved_until_ms,
        due_at_ms=row.due_at_ms,
        overdue=is_overdue(row, now_ms),
        history=tuple(
            _message_view(session, m, is_request=m is request)
            for m in sorted(messages, key=lambda m: (m.created_at_ms, m.direction, m.sequence))
        ),
    )


def _message_view(session: Session, message: Message, *, is_request: bool) -> MessageView:
    outbox = (
        repo.get_outbox(session, message.message_id)
        if message.direction == Direction.OUTBOUND
        else None
    )
    return MessageView(
        kind="request" if is_request else form_type_for_payload(message.payload_type).name,
        direction=Direction(message.direction),
        sequence=message.sequence,
        state=message.state,
        created_at_ms=message.created_at_ms,
        body_json=message.body,
        delivery=outbox.status if outbox else None,
        note=message.note,
    )


def _signers(envelope: bytes) -> tuple[str, ...]:
    return tuple(s.key_id for s in wire.envelope_from_bytes(envelope).signatures)
