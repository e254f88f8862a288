# SPDX-License-Identifier: Apache-2.0
"""Filing: a request or a follow-up message, validated, signed and sealed, stored with its
outbox row in one transaction; the :class:`~node.services.delivery.DeliveryWorker` takes it
from there."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from node import wire
from node.crypto.encoding import envelope_digest
from node.crypto.envelope import seal_envelope
from node.errors import NotFoundError, OverloadedError, UnknownAgencyError
from node.faults import kill_point
from node.forms.minimize import minimize
from node.forms.profiles import HOUR_MS
from node.forms.registry import FormType, get_form_type, get_message_type, traits_of
from node.forms.validate import validate_form
from node.ids import (
    AgencyId,
    ExchangeId,
    MessageId,
    new_exchange_id,
    new_message_id,
    parse_exchange_id,
)
from node.indicators.campaigns import reference_campaign
from node.members import Member
from node.model.envelope import EnvelopeHeader, SealedEnvelope
from node.model.request import Direction, RequestPreview, RequestState, RequestView
from node.services.audit import record_event
from node.services.delivery import Claim, DeliveryWorker
from node.services.exchange.idempotency import FilingKey
from node.services.exchange.party import Party, insert_message
from node.services.exchange.views import Views
from node.services.lifecycle import apply_message, move, own_role, refusal_ground
from node.storage import campaign_repo, exchange_repo, outbox_repo
from node.storage.engine import transaction
from node.storage.tables import Exchange
from node.telemetry import span_attributes, trace_carrier


class Filing:
    """Files outbound requests and the follow-up messages of this node's side of an exchange."""

    def __init__(self, *, party: Party, delivery: DeliveryWorker, views: Views) -> None:
        self._party = party
        self._delivery = delivery
        self._views = views

    def preview_request(
        self,
        *,
        request_type: str,
        recipient: AgencyId,
        form_json: bytes,
        strip: bool = False,
        campaign_id: str | None = None,
    ) -> RequestPreview:
        """Exactly what filing would sign and send, without sending anything.

        Raises:
            UnknownRequestTypeError, UnknownAgencyError, FormValidationError,
            NotMinimalError, CampaignError: as filing would.
        """
        form_type = get_form_type(request_type)
        member = self._recipient(recipient)
        if campaign_id:
            form_json = reference_campaign(form_json, campaign_id=campaign_id)
        minimized = minimize(form_type.name, validate_form(form_type, form_json), strip=strip)
        deadline = minimized.profile.deadline_ms(emergency=traits_of(form_type.name).emergency)
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
        self,
        *,
        request_type: str,
        recipient: AgencyId,
        form_json: bytes,
        strip: bool = False,
        campaign_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> RequestView:
        """Validate, minimize, sign and seal a request, and store it with its delivery in
        the outbox. ``strip`` removes identifiers found in free text instead of refusing;
        ``campaign_id`` names a campaign held here in the form's ``campaign`` field.

        Waits up to ``file_wait_s`` for the signed receipt, then answers with the request as
        it stands: delivered, or submitted with its delivery pending (it will be retried).
        With ``idempotency_key``, a request filed under that key before is answered instead.

        Raises:
            UnknownRequestTypeError, UnknownAgencyError, FormValidationError: bad input;
                nothing is stored.
            NotMinimalError: more than the type and legal basis need; nothing is stored.
            CampaignError: the form names another campaign; nothing is stored.
            NotFoundError: no such campaign at this node; nothing is stored.
            OverloadedError: the outbox is full; nothing is stored.
            MalformedError, IdempotencyKeyReusedError: a bad key, or one used to file a
                different request; nothing is stored.
            ComityError: the peer refused the request for good while filing waited (the
                request stays stored as ``delivery_failed`` with the reason).
        """
        self._party.check_not_expired()
        key = None
        if idempotency_key is not None:
            key = FilingKey.of(
                idempotency_key,
                request_type=request_type,
                recipient=recipient,
                form_json=form_json,
                strip=strip,
                campaign_id=campaign_id,
            )
            filed = await self._filed_under(key)
            if filed is not None:
                return filed
        preview = self.preview_request(
            request_type=request_type,
            recipient=recipient,
            form_json=form_json,
            strip=strip,
            campaign_id=campaign_id,
        )
        try:
            exchange_id = await self._file(preview, campaign_id=campaign_id, key=key)
        except IntegrityError:
            # Another call under the same key stored its request first: answer with it.
            filed = await self._filed_under(key) if key is not None else None
            if filed is None:
                raise
            return filed
        return await self._views.get_request(exchange_id)

    async def _file(
        self, preview: RequestPreview, *, campaign_id: str | None, key: FilingKey | None
    ) -> ExchangeId:
        """Sign and seal the previewed request, store it and hand it to delivery."""
        form_type = get_form_type(preview.request_type)
        member = self._recipient(preview.recipient)
        canonical = preview.form_json
        with self._party.tracer.start_as_current_span(
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
            await self._store_and_dispatch(
                header.message_id,
                lambda carrier, owner: self._store_outbound(
                    form_type, sealed, canonical, carrier, owner, campaign_id=campaign_id, key=key
                ),
                after_commit="file.after_commit",
            )
        return header.exchange_id

    async def _filed_under(self, key: FilingKey) -> RequestView | None:
        """The request filed under ``key`` as it stands, if one was.

        Raises:
            IdempotencyKeyReusedError: the key was used to file a different request.
        """

        def find() -> str | None:
            with transaction(self._party.engine) as session:
                row = exchange_repo.exchange_by_idempotency_key(session, key.key)
                if row is None:
                    return None
                key.check_same(row.idempotency_digest, row.id)
                return row.id

        exchange_id = await self._party.run(find)
        return None if exchange_id is None else await self._views.get_request(exchange_id)

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
        self._party.check_not_expired()
        body = validate_form(message_type, body_json)
        message_id = new_message_id()
        with self._party.tracer.start_as_current_span(
            "comity.send_message",
            attributes=span_attributes(
                message_kind=message_type.name, exchange_id=exchange_id, message_id=message_id
            ),
        ):
            await self._store_and_dispatch(
                message_id,
                lambda carrier, owner: self._store_followup(
                    exchange_id,
                    message_type,
                    body,
                    message_id=message_id,
                    trace_context=carrier,
                    owner=owner,
                    within=within,
                ),
            )
        return await self._views.get_request(exchange_id)

    async def _store_and_dispatch(
        self,
        message_id: MessageId,
        store: Callable[[str, str | None], Claim],
        *,
        after_commit: str | None = None,
    ) -> None:
        """Run ``store(trace_context, owner)`` on a database thread, then hand its delivery to
        the worker and wait for the receipt as long as filing waits."""
        outcome = self._delivery.expect(message_id)
        # Taken here: database threads do not see the event loop's current span.
        carrier = trace_carrier()
        owner = self._delivery.claim_owner()
        try:
            claim = await self._party.run(lambda: store(carrier, owner))
        except BaseException:
            self._delivery.forget(message_id)
            raise
        if after_commit is not None:
            kill_point(after_commit)
        await self._dispatch(claim, owner=owner, outcome=outcome)

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

    async def _await_delivery(self, message_id: MessageId, outcome: asyncio.Future[None]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(outcome), self._party.settings.file_wait_s)
        except TimeoutError:
            self._delivery.forget(message_id)  # it stays in the outbox and will be retried

    def _recipient(self, recipient: AgencyId) -> Member:
        member = self._party.directory.find(recipient)
        if member is None:
            raise UnknownAgencyError(f"recipient {recipient!r} is not a federation member")
        if member.agency_id == self._party.me:
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
        keys = self._party.current_keys()
        created = self._party.clock()
        header = EnvelopeHeader(
            message_id=message_id or new_message_id(),
            exchange_id=exchange_id or new_exchange_id(),
            sequence=sequence,
            sender=self._party.me,
            recipient=member.agency_id,
            created_at_ms=created,
            expires_at_ms=created + self._party.settings.message_lifetime_ms,
            directory_version=self._party.directory.version,
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

    def _store_outbound(
        self,
        form_type: FormType,
        sealed: SealedEnvelope,
        form: bytes,
        trace_context: str,
        owner: str | None,
        *,
        campaign_id: str | None,
        key: FilingKey | None,
    ) -> Claim:
        """The request (with its idempotency key), its envelope and its outbox row: one
        transaction, all or nothing."""
        header = sealed.header
        now = self._party.clock()
        with transaction(self._party.engine) as session:
            if campaign_id and campaign_repo.get_campaign(session, campaign_id) is None:
                raise NotFoundError(f"no campaign {campaign_id} at this node")
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
                idempotency_key=key.key if key else None,
                idempotency_digest=key.digest if key else None,
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
        with transaction(self._party.engine) as session:
            row = exchange_repo.get_exchange(session, exchange_id, lock=True)
            if row is None:
                raise NotFoundError(f"no request {exchange_id} at this node")
            kind = message_type.name
            fields = json.loads(body)
            state = move(
                row, kind=kind, fields=fields, by=own_role(row), now_ms=self._party.clock()
            )
            self._check_capacity(session)
            sequence = exchange_repo.next_sequence(
                session, exchange_id, direction=Direction.OUTBOUND
            )
            sealed = self._seal(
                message_type,
                self._recipient(AgencyId(row.peer)),
                body,
                exchange_id=exchange_id,
                sequence=sequence,
                message_id=message_id,
            )
            now = self._party.clock()
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
                sender=self._party.me,
                recipient=AgencyId(row.peer),
                exchange_id=exchange_id,
                instant_ms=now,
                envelope_digest=claim.digest,
                refusal_ground=refusal_ground(kind, fields),
            )
        return claim

    def _check_capacity(self, session: Session) -> None:
        pending = outbox_repo.count_outbox(session, status=outbox_repo.PENDING)
        if pending >= self._party.settings.outbox_capacity:
            raise OverloadedError(
                f"the outbox holds {pending} pending deliveries (capacity "
                f"{self._party.settings.outbox_capacity}); try again later"
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
        insert_message(
            session,
            sealed,
            envelope=envelope,
            digest=digest,
            direction=Direction.OUTBOUND,
            now_ms=now,
            body=body,
        )
        session.flush()
        outbox_repo.insert_outbox(
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
