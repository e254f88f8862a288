# SPDX-License-Identifier: Apache-2.0
"""Queries for the request outbox: the envelopes this node owes its peers, one row per
message, inside the caller's transaction (never committing)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from node.storage import leased
from node.storage.leased import DELIVERED, FAILED, PENDING
from node.storage.tables import MAX_ERROR_CHARS, Outbox

__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "PeerBacklog",
    "backlog_by_peer",
    "claim_due",
    "claims_elsewhere",
    "count_outbox",
    "get_outbox",
    "insert_outbox",
    "mark_delivered",
    "mark_failed",
    "next_due_at",
    "outbox_for_exchange",
    "schedule_retry",
]


@dataclass(frozen=True, kw_only=True)
class PeerBacklog:
    """Pending deliveries to one peer."""

    peer: str
    pending: int
    oldest_pending_since_ms: int
    max_attempts: int
    next_attempt_at_ms: int
    last_error: str | None


def insert_outbox(
    session: Session,
    *,
    message_id: str,
    exchange_id: str,
    recipient: str,
    now_ms: int,
    expires_at_ms: int,
    trace_context: str | None = None,
    claimed_by: str | None = None,
    claim_expires_at_ms: int | None = None,
) -> Outbox:
    """A pending delivery, due now; ``claimed_by`` claims it at once for that worker."""
    row = Outbox(
        trace_context=trace_context,
        claimed_by=claimed_by,
        claim_expires_at_ms=claim_expires_at_ms,
        message_id=message_id,
        exchange_id=exchange_id,
        recipient=recipient,
        status=PENDING,
        created_at_ms=now_ms,
        expires_at_ms=expires_at_ms,
        next_attempt_at_ms=now_ms,
    )
    session.add(row)
    return row


def get_outbox(session: Session, message_id: str) -> Outbox | None:
    return session.get(Outbox, message_id)


def outbox_for_exchange(session: Session, exchange_id: str) -> Outbox | None:
    query = select(Outbox).where(Outbox.exchange_id == exchange_id)
    return session.exec(query.order_by(col(Outbox.created_at_ms).desc())).first()


def count_outbox(session: Session, *, status: str) -> int:
    query = select(func.count()).select_from(Outbox).where(Outbox.status == status)
    return session.exec(query).one()


def claim_due(
    session: Session, *, owner: str, now_ms: int, lease_ms: int, limit: int
) -> list[Outbox]:
    """Claim up to ``limit`` due deliveries for ``owner`` until ``now_ms + lease_ms``.

    Rows another worker holds under a live lease are skipped; on PostgreSQL rows another
    transaction is claiming right now are skipped too (``FOR UPDATE SKIP LOCKED``), so
    replicas sharing one database never claim the same row at once.
    """
    return leased.claim_due(
        session, Outbox, owner=owner, now_ms=now_ms, lease_ms=lease_ms, limit=limit
    )


def next_due_at(session: Session) -> int | None:
    """When the earliest pending delivery is due, if any is pending."""
    query = select(func.min(Outbox.next_attempt_at_ms)).where(Outbox.status == PENDING)
    return session.exec(query).one()


def mark_delivered(session: Session, *, message_id: str, now_ms: int) -> bool:
    """Close a pending delivery; False when it was no longer pending."""
    row = session.get(Outbox, message_id)
    if row is None or row.status != PENDING:
        return False
    row.status = DELIVERED
    row.attempts += 1
    row.last_attempt_at_ms = now_ms
    row.claimed_by = row.claim_expires_at_ms = None
    session.add(row)
    return True


def schedule_retry(
    session: Session, *, message_id: str, now_ms: int, next_attempt_at_ms: int, error: str
) -> None:
    row = session.get(Outbox, message_id)
    if row is None or row.status != PENDING:
        return
    row.attempts += 1
    row.last_attempt_at_ms = now_ms
    row.next_attempt_at_ms = next_attempt_at_ms
    row.last_error = error[:MAX_ERROR_CHARS]
    row.claimed_by = row.claim_expires_at_ms = None
    session.add(row)


def mark_failed(session: Session, *, message_id: str, now_ms: int, error: str) -> bool:
    """Give up on a pending delivery for good; False when it was no longer pending."""
    row = session.get(Outbox, message_id)
    if row is None or row.status != PENDING:
        return False
    row.status = FAILED
    row.attempts += 1
    row.last_attempt_at_ms = now_ms
    row.last_error = error[:MAX_ERROR_CHARS]
    row.claimed_by = row.claim_expires_at_ms = None
    session.add(row)
    return True


def backlog_by_peer(session: Session) -> list[PeerBacklog]:
    query = (
        sa_select(
            col(Outbox.recipient),
            func.count(),
            func.min(Outbox.created_at_ms),
            func.max(Outbox.attempts),
            func.min(Outbox.next_attempt_at_ms),
        )
        .where(col(Outbox.status) == PENDING)
        .group_by(col(Outbox.recipient))
        .order_by(col(Outbox.recipient))
    )
    return [
        PeerBacklog(
            peer=peer,
            pending=pending,
            oldest_pending_since_ms=oldest,
            max_attempts=attempts,
            next_attempt_at_ms=next_at,
            last_error=_last_error(session, peer),
        )
        for peer, pending, oldest, attempts, next_at in session.execute(query).all()
    ]


def claims_elsewhere(session: Session, *, owner: str, now_ms: int) -> dict[str, tuple[int, int]]:
    """Per peer: pending deliveries under a live claim of an owner other than ``owner``, and
    when the last of those leases ends."""
    query = (
        sa_select(col(Outbox.recipient), func.count(), func.max(Outbox.claim_expires_at_ms))
        .where(
            col(Outbox.status) == PENDING,
            col(Outbox.claim_expires_at_ms) >= now_ms,
            col(Outbox.claimed_by) != owner,
        )
        .group_by(col(Outbox.recipient))
    )
    return {peer: (count, until) for peer, count, until in session.execute(query).all()}


def _last_error(session: Session, peer: str) -> str | None:
    query = (
        select(Outbox.last_error)
        .where(Outbox.recipient == peer, Outbox.status == PENDING)
        .where(col(Outbox.last_error).is_not(None))
        .order_by(col(Outbox.last_attempt_at_ms).desc())
    )
    return session.exec(query).first()
