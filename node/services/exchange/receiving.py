# SPDX-License-Identifier: Apache-2.0
"""Receiving: the checks of proto/README.md in their order (verify before parse), then the
envelope, its effect and the signed receipt stored in one transaction."""

from __future__ import annotations

import json
import logging
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from node import wire
from node.crypto.envelope import open_envelope, sign_receipt
from node.errors import (
    DirectoryBehindError,
    FreshnessError,
    MalformedError,
    MisaddressedError,
    PeerIdentityError,
    ReplayError,
    RevokedKeyError,
    SupersededDirectoryError,
    UnknownSenderError,
)
from node.faults import kill_point
from node.forms.minimize import minimize
from node.forms.registry import FormType, form_type_for_payload, traits_of
from node.forms.validate import validate_form
from node.ids import AgencyId, ExchangeId
from node.members import Member
from node.model.envelope import (
    EnvelopeHeader,
    OpenedEnvelope,
    ReceiptBody,
    ReceiptStatus,
    SealedEnvelope,
    SignedReceipt,
)
from node.model.lifecycle import NotYourMoveError, check_sender
from node.model.request import Direction, RequestState
from node.services.audit import record_event
from node.services.exchange.party import Party, insert_message
from node.services.lifecycle import (
    ExchangeNotReadyError,
    Position,
    apply_held,
    apply_message,
    check_position,
    due_at,
    move,
    peer_role,
    refusal_ground,
)
from node.storage import exchange_repo
from node.storage.engine import transaction
from node.storage.tables import Message
from node.telemetry import span_attributes

_LOG = logging.getLogger(__name__)

CLOCK_SKEW_MS = 5 * 60 * 1000
MAX_LIFETIME_MS = 7 * 24 * 3600 * 1000


class CatchUp(Protocol):
    async def catch_up_to(self, agency_id: AgencyId, version: int, *, timeout_s: float) -> None:
        """Try to trust ``version`` of the directory, fetching it from ``agency_id``."""
        ...


class Receiving:
    """Checks, opens and stores the envelopes peers send to this node."""

    def __init__(self, *, party: Party, catch_up: CatchUp | None = None) -> None:
        self._party = party
        self._catch_up = catch_up

    async def receive(self, sealed: SealedEnvelope, *, peer: Member) -> SignedReceipt:
        """Check, open, validate and store an inbound envelope; return the signed receipt.

        ``peer`` is the member whose listed certificate the mutual-TLS client presented. A
        repeated delivery of the same envelope returns the original receipt.

        Raises:
            ComityError: the subclass names the check that failed (proto/README.md).
        """
        header = sealed.header
        with self._party.tracer.start_as_current_span(
            "comity.receive",
            attributes=span_attributes(
                message_id=header.message_id,
                exchange_id=header.exchange_id,
                sender=header.sender,
                payload_type=header.payload_type,
            ),
        ):
            self._check_addressing(header, peer)
            await self._catch_up_with(header, peer)
            opened = self._verify(sealed, peer=peer)
            receipt = await self._party.run(lambda: self._store_inbound(sealed, opened))
            kill_point("receive.after_commit")
            return receipt

    def _check_addressing(self, header: EnvelopeHeader, peer: Member) -> None:
        """What holds under any directory version: this node is the recipient, and the TLS
        client is the sender the header names.

        Only then may the header's directory version make this node fetch a directory (which
        may also end an expired one's freeze), and only from that authenticated sender.
        """
        if header.recipient != self._party.me:
            raise MisaddressedError(
                f"envelope is addressed to {header.recipient}, this node is {self._party.me}"
            )
        if header.sender != peer.agency_id:
            raise PeerIdentityError(
                f"the envelope names {header.sender} as its sender; the TLS client is "
                f"{peer.agency_id}"
            )

    async def _catch_up_with(self, header: EnvelopeHeader, peer: Member) -> None:
        """An envelope addressed under a newer directory: fetch it first from the TLS client,
        which :meth:`_check_addressing` found to be the sender."""
        if header.directory_version <= self._party.directory.version or self._catch_up is None:
            return
        await self._catch_up.catch_up_to(
            peer.agency_id,
            header.directory_version,
            timeout_s=self._party.settings.directory_catch_up_s,
        )

    def _verify(self, sealed: SealedEnvelope, *, peer: Member) -> OpenedEnvelope:
        header = sealed.header
        self._party.check_not_expired()
        self._check_directory_version(header)
        sender = self._sender(sealed)
        # The directory may have changed since the call was admitted (a catch-up): the client
        # must still present the certificate listed for the sender now.
        if peer.tls_fingerprint != sender.tls_fingerprint:
            raise PeerIdentityError(
                f"the TLS client certificate is not the one listed for {header.sender}"
            )
        self._check_freshness(header)
        # Either key of a rotation's overlap, on both sides; open_envelope refuses others.
        keys = self._party.keys
        mine = header.recipient_encryption_key_id
        return open_envelope(
            sealed,
            recipient_keys=keys.using_encryption(mine) if mine in keys.encryption_keys() else keys,
            sender_signing_keys=sender.signing_keys,
            sender_encryption_key=sender.encryption_keys.get(
                header.sender_encryption_key_id, sender.encryption_key
            ),
        )

    def _sender(self, sealed: SealedEnvelope) -> Member:
        """The sending member, refusing keys that are revoked or outside their validity."""
        header = sealed.header
        entry = self._party.directory.entry(header.sender)
        if entry is None:
            raise UnknownSenderError(
                f"sender {header.sender} is not a member in directory version "
                f"{self._party.directory.version}"
            )
        now = self._party.clock()
        for signature in sealed.signatures:
            listed = entry.key(signature.key_id)
            if listed is not None and listed.purpose == "signing" and not listed.active_at(now):
                raise RevokedKeyError(
                    f"signing key {signature.key_id} of {header.sender} is revoked or outside "
                    f"its validity in directory version {self._party.directory.version}"
                )
        sender = entry.view_at(now)
        if sender is None:
            raise RevokedKeyError(
                f"{header.sender} has no active keys in directory version "
                f"{self._party.directory.version}"
            )
        return sender

    def _check_directory_version(self, header: EnvelopeHeader) -> None:
        """Refuse an envelope addressed under a version superseded longer than the grace
        period ago, or under a version this node does not know yet (it retries)."""
        mine = self._party.directory.version
        if header.directory_version > mine:
            raise DirectoryBehindError(
                f"envelope uses directory version {header.directory_version}, this node "
                f"trusts version {mine} and is catching up; retry later"
            )
        superseded = self._party.directory.superseded_at(header.directory_version)
        if (
            superseded is not None
            and self._party.clock() - superseded > self._party.settings.directory_grace_ms
        ):
            raise SupersededDirectoryError(
                f"envelope uses directory version {header.directory_version}, superseded at "
                f"this node by version {mine} more than the grace period ago"
            )

    def _check_freshness(self, header: EnvelopeHeader) -> None:
        now = self._party.clock()
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
        with transaction(self._party.engine) as session:
            message = exchange_repo.get_message(session, opened.header.message_id)
            return _previous_receipt(message, opened)

    def _store_inbound(self, sealed: SealedEnvelope, opened: OpenedEnvelope) -> SignedReceipt:
        """De-duplicate, parse and validate the payload, store it with a signed receipt.

        One transaction: a repeated message id is answered from what is stored, before the
        payload is parsed; a new one is stored together with its effect and receipt.
        """
        try:
            with transaction(self._party.engine) as session:
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
        now = self._party.clock()
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
        insert_message(
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
        check_sender(kind, peer_role(row), traits_of(row.request_type))
        position = check_position(session, row, header.sequence)
        state = None
        if position is Position.NEXT:
            state = move(
                row, kind=kind, fields=fields, by=peer_role(row), now_ms=self._party.clock()
            )
        now = self._party.clock()
        leaf = record_event(
            session,
            event=f"{kind}.received",
            request_type=row.request_type,
            form_json=row.form_json,
            sender=header.sender,
            recipient=self._party.me,
            exchange_id=ExchangeId(row.id),
            instant_ms=now,
            envelope_digest=opened.digest,
            refusal_ground=refusal_ground(kind, fields),
        )
        receipt = self._receipt_for(opened, received_at_ms=now, leaf=leaf)
        insert_message(
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
                receiver=self._party.me,
                sender=header.sender,
                envelope_digest=opened.digest,
                status=ReceiptStatus.REGISTERED,
                received_at_ms=received_at_ms,
                audit_leaf_index=leaf,
            ),
            keys=self._party.current_keys(),
        )


def _previous_receipt(message: Message | None, opened: OpenedEnvelope) -> SignedReceipt | None:
    if message is None:
        return None
    if message.envelope_digest != opened.digest or message.receipt is None:
        raise ReplayError(f"message_id {opened.header.message_id} was used for other content")
    return wire.receipt_from_bytes(message.receipt)
