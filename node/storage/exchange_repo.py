# SPDX-License-Identifier: Apache-2.0
"""Queries for exchanges and their messages, inside the caller's transaction: every
function takes the caller's session and never commits, so a state change and what it causes
commit together."""

from __future__ import annotations

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from node.errors import NotFoundError
from node.storage.tables import MAX_ERROR_CHARS, Exchange, Message


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
    idempotency_key: str | None = None,
    idempotency_digest: bytes | None = None,
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
        idempotency_key=idempotency_key,
        idempotency_digest=idempotency_digest,
    )
    session.add(row)
    return row


def get_exchange(session: Session, exchange_id: str, *, lock: bool = False) -> Exchange | None:
    """The exchange; with ``lock``, its row stays locked until the transaction ends, so that
    messages of one exchange are applied one transaction at a time (PostgreSQL; SQLite has
    one writer anyway)."""
    return session.get(Exchange, exchange_id, with_for_update=lock)


def exchange_by_idempotency_key(session: Session, key: str) -> Exchange | None:
    query = select(Exchange).where(Exchange.idempotency_key == key)
    return session.exec(query).first()


def list_exchanges(
    session: Session, *, direction: str | None, limit: int, after: tuple[int, str] | None = None
) -> list[Exchange]:
    """Up to ``limit`` exchanges, newest first (ties by id); ``after`` (created_at_ms, id) of
    the last one a previous page held continues from there."""
    query = select(Exchange)
    if direction is not None:
        query = query.where(Exchange.direction == direction)
    if after is not None:
        created, exchange_id = after
        query = query.where(
            or_(
                col(Exchange.created_at_ms) < created,
                and_(col(Exchange.created_at_ms) == created, col(Exchange.id) > exchange_id),
            )
        )
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


def count_exchanges(session: Session, *, direction: str) -> int:
    query = select(func.count()).select_from(Exchange).where(Exchange.direction == direction)
    return session.exec(query).one()


def set_due_at(session: Session, *, exchange_id: str, due_at_ms: int | None) -> None:
    row = session.get(Exchange, exchange_id)
    if row is not None and row.due_at_ms is None:
        row.due_at_ms = due_at_ms
        session.add(row)


def due_before(session: Session, instant_ms: int) -> list[Exchange]:
    """Exchanges whose deadline passed before ``instant_ms``, most overdue first."""
    query = select(Exchange).where(
        col(Exchange.due_at_ms).is_not(None), col(Exchange.due_at_ms) < instant_ms
    )
    return list(session.exec(query.order_by(col(Exchange.due_at_ms))))


def set_preserved_until(session: Session, *, exchange_id: str, until_ms: int) -> None:
    row = session.get(Exchange, exchange_id)
    if row is not None:
        row.preserved_until_ms = until_ms
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
    state: str = "applied",
    body: bytes | None = None,
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
        state=state,
        body=body,
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


def next_sequence(session: Session, exchange_id: str, *, direction: str) -> int:
    """The sequence number after the highest of ``direction`` in the exchange."""
    query = select(func.max(Message.sequence)).where(
        Message.exchange_id == exchange_id, Message.direction == direction
    )
    return (session.exec(query).one() or 0) + 1


def next_inbound_to_apply(session: Session, exchange_id: str) -> int:
    """The sequence number the peer's next message in order must carry: held messages wait
    for it."""
    query = select(func.max(Message.sequence)).where(
        Message.exchange_id == exchange_id,
        Message.direction == "inbound",
        Message.state != "held",
    )
    return (session.exec(query).one() or 0) + 1


def held_message(session: Session, exchange_id: str, sequence: int) -> Message | None:
    query = select(Message).where(
        Message.exchange_id == exchange_id,
        Message.direction == "inbound",
        Message.sequence == sequence,
        Message.state == "held",
    )
    return session.exec(query).first()


def set_message_state(
    session: Session, message: Message, *, state: str, note: str | None = None
) -> None:
    message.state = state
    message.note = note[:MAX_ERROR_CHARS] if note else None
    session.add(message)
