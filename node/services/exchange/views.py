# SPDX-License-Identifier: Apache-2.0
"""Reading: requests as this node holds them (form, receipt, delivery, history), the overdue
ones, and the node's delivery backlog."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from sqlmodel import Session

from node import wire
from node.errors import MalformedError, NotFoundError
from node.forms.registry import form_type_for_payload
from node.ids import AgencyId, ExchangeId, parse_exchange_id
from node.model.request import (
    DeliveryView,
    Direction,
    MessageView,
    NodeStatusView,
    PeerBacklogView,
    RequestView,
)
from node.services.exchange.party import Party
from node.services.lifecycle import effective_state, is_overdue
from node.storage import exchange_repo, outbox_repo
from node.storage.engine import transaction
from node.storage.tables import Exchange, Message, Outbox

MAX_ID_CHARS = 36


@dataclass(frozen=True, kw_only=True)
class RequestPage:
    """One page of requests, and the token that asks for the next ("" on the last page)."""

    requests: tuple[RequestView, ...]
    next_page_token: str


def _token(row: Exchange) -> str:
    """An opaque page token: where the page after ``row`` starts."""
    return base64.urlsafe_b64encode(f"{row.created_at_ms}:{row.id}".encode()).decode()


def _position(token: str) -> tuple[int, str]:
    bad = MalformedError("the page token is not one this node gave out")
    try:
        created, _, exchange_id = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        position = int(created), exchange_id
    except ValueError as e:  # bad base64, text or number
        raise bad from e
    if not 0 < len(exchange_id) <= MAX_ID_CHARS:
        raise bad
    return position


class Views:
    """Assembles the views of requests and of the node's status from what is stored."""

    def __init__(self, *, party: Party, claim_owner: str = "") -> None:
        """``claim_owner`` is this process's delivery worker's owner id: claims of others
        show in the node's status."""
        self._party = party
        self._claim_owner = claim_owner

    async def get_request(self, request_id: str) -> RequestView:
        """One request with its form and receipt.

        Raises:
            MalformedError: ``request_id`` is not a UUID.
            NotFoundError: no such request at this node.
        """
        exchange_id = parse_exchange_id(request_id)
        return await self._party.run(lambda: self._load_view(exchange_id))

    async def list_requests(
        self, *, direction: Direction | None, limit: int, page_token: str = ""
    ) -> RequestPage:
        """Up to ``limit`` requests, newest first, from where ``page_token`` (a previous
        page's ``next_page_token``, or empty for the first page) left off.

        Raises:
            MalformedError: the page token is not one this node gave out.
        """
        after = _position(page_token) if page_token else None

        def load() -> RequestPage:
            with transaction(self._party.engine) as session:
                # One more than asked tells whether another page follows.
                rows = exchange_repo.list_exchanges(
                    session, direction=direction, limit=limit + 1, after=after
                )
                now = self._party.clock()
                views = tuple(_view(session, row, now) for row in rows[:limit])
                last = rows[limit - 1] if len(rows) > limit else None
                return RequestPage(
                    requests=views,
                    next_page_token=_token(last) if last is not None else "",
                )

        return await self._party.run(load)

    def _load_view(self, exchange_id: ExchangeId) -> RequestView:
        with transaction(self._party.engine) as session:
            return _load_view(session, exchange_id, self._party.clock())

    async def overdue_requests(self) -> list[RequestView]:
        """Requests past their deadline that have not reached the step it is for, both
        directions, most overdue first."""
        now = self._party.clock()

        def load() -> list[RequestView]:
            with transaction(self._party.engine) as session:
                rows = exchange_repo.due_before(session, now)
                return [_view(session, r, now) for r in rows if is_overdue(r, now)]

        return await self._party.run(load)

    async def node_status(self) -> NodeStatusView:
        """Pending deliveries per peer, with alerts for peers that stay unreachable."""
        now = self._party.clock()

        def load() -> NodeStatusView:
            with transaction(self._party.engine) as session:
                claimed = outbox_repo.claims_elsewhere(session, owner=self._claim_owner, now_ms=now)
                peers = tuple(
                    PeerBacklogView(
                        peer=AgencyId(b.peer),
                        pending=b.pending,
                        oldest_pending_since_ms=b.oldest_pending_since_ms,
                        max_attempts=b.max_attempts,
                        next_attempt_at_ms=b.next_attempt_at_ms,
                        last_error=b.last_error,
                        alert=now - b.oldest_pending_since_ms > self._party.settings.alert_after_ms,
                        claimed_elsewhere=claimed.get(b.peer, (0, 0))[0],
                        claims_end_at_ms=claimed.get(b.peer, (0, 0))[1],
                    )
                    for b in outbox_repo.backlog_by_peer(session)
                )
                return NodeStatusView(
                    agency_id=self._party.me,
                    directory_version=self._party.directory.version,
                    directory_expires_at_ms=self._party.directory.expires_ms,
                    outbox_pending=sum(p.pending for p in peers),
                    outbox_capacity=self._party.settings.outbox_capacity,
                    outbox_failed=outbox_repo.count_outbox(session, status=outbox_repo.FAILED),
                    peers=peers,
                    requests_outbound=exchange_repo.count_exchanges(
                        session, direction=Direction.OUTBOUND
                    ),
                    requests_inbound=exchange_repo.count_exchanges(
                        session, direction=Direction.INBOUND
                    ),
                )

        return await self._party.run(load)


def _load_view(session: Session, exchange_id: ExchangeId, now_ms: int) -> RequestView:
    row = exchange_repo.get_exchange(session, exchange_id)
    if row is None:
        raise NotFoundError(f"no request {exchange_id} at this node")
    return _view(session, row, now_ms)


def _delivery_view(row: Outbox | None) -> DeliveryView | None:
    if row is None:
        return None
    return DeliveryView(
        status=row.status,
        attempts=row.attempts,
        next_attempt_at_ms=row.next_attempt_at_ms if row.status == outbox_repo.PENDING else None,
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
        delivery=_delivery_view(outbox_repo.outbox_for_exchange(session, row.id)),
        signed_by=_signers(request.envelope) if request else (),
        preserved_until_ms=row.preserved_until_ms,
        due_at_ms=row.due_at_ms,
        overdue=is_overdue(row, now_ms),
        idempotency_key=row.idempotency_key,
        history=tuple(
            _message_view(session, m, is_request=m is request)
            for m in sorted(messages, key=lambda m: (m.created_at_ms, m.direction, m.sequence))
        ),
    )


def _message_view(session: Session, message: Message, *, is_request: bool) -> MessageView:
    outbox = (
        outbox_repo.get_outbox(session, message.message_id)
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
