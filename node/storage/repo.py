# SPDX-License-Identifier: Apache-2.0
"""Data access. Every function takes the caller's session and never commits: the caller's
transaction decides, so a state change and what it causes commit together."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from node.errors import NotFoundError
from node.storage.tables import Exchange, Message

MAX_ERROR_CHARS = 1000


def insert_exchange(
    session: Session,
    *,
    exchange_id: str,
    request_type: str,
    direction: str,
    peer: str,
    state: str,
    form_json: bytes,
    now_ms: int,
) -> Exchange:
    row = Exchange(
        id=exchange_id,
        request_type=request_type,
        direction=direction,
        peer=peer,
        state=state,
        form_json=form_json,
        created_at_ms=now_ms,
        updated_at_ms=now_ms,
    )
    session.add(row)
    return row


def get_exchange(session: Session, exchange_id: str) -> Exchange | None:
    return session.get(Exchange, exchange_id)


def list_exchanges(session: Session, *, direction: str | None, limit: int) -> list[Exchange]:
    query = select(Exchange)
    if direction is not None:
        query = query.where(Exchange.direction == direction)
    query = query.order_by(col(Exchange.created_at_ms).desc(), col(Exchange.id)).limit(limit)
    return list(session.exec(query))


def set_exchange_state(
    session: Session, *, exchange_id: str, state: str, now_ms: int, last_error: str | None = None
) -> None:
    """Move an exchange to ``state``; ``last_error`` is kept (truncated) or cleared.

    Raises:
        NotFoundError: no such exchange.
    """
    row = session.get(Exchange, exchange_id)
    if row is None:
        raise NotFoundError(f"no exchange {exchange_id}")
    row.state = state
    row.updated_at_ms = now_ms
    row.last_error = last_error[:MAX_ERROR_CHARS] if last_error else None
    session.add(row)


def insert_message(
    session: Session,
    *,
    message_id: str,
    exchange_id: str,
    direction: str,
    sequence: int,
    sender: str,
    recipient: str,
    payload_type: str,
    envelope: bytes,
    envelope_digest: bytes,
    created_at_ms: int,
    now_ms: int,
    receipt: bytes | None = None,
    receipt_verified: bool = False,
) -> Message:
    row = Message(
        message_id=message_id,
        exchange_id=exchange_id,
        direction=direction,
        sequence=sequence,
        sender=sender,
        recipient=recipient,
        payload_type=payload_type,
        envelope=envelope,
        envelope_digest=envelope_digest,
        created_at_ms=created_at_ms,
        stored_at_ms=now_ms,
        receipt=receipt,
        receipt_verified=receipt_verified,
    )
    session.add(row)
    return row


def get_message(session: Session, message_id: str) -> Message | None:
    return session.get(Message, message_id)


def set_message_receipt(
    session: Session, *, message_id: str, receipt: bytes, verified: bool
) -> None:
    """Attach a receipt to a stored message.

    Raises:
        NotFoundError: no such message.
    """
    row = session.get(Message, message_id)
    if row is None:
        raise NotFoundError(f"no message {message_id}")
    row.receipt = receipt
    row.receipt_verified = verified
    session.add(row)


def messages_for_exchange(session: Session, exchange_id: str) -> list[Message]:
    query = (
        select(Message)
        .where(Message.exchange_id == exchange_id)
        .order_by(col(Message.direction), col(Message.sequence))
    )
    return list(session.exec(query))


def count_rows(session: Session) -> dict[str, int]:
    """Rows per table: tests use it to show that refused input changed nothing."""
    return {
        table.__tablename__: session.exec(select(func.count()).select_from(table)).one()
        for table in (Exchange, Message)
    }
