# SPDX-License-Identifier: Apache-2.0
"""Rows that a node keeps sending until the other agency takes them (request outbox rows,
indicator set offers, sighting reports): due rows are claimed under a lease, so replicas
sharing a database send each once, and counted by status for ``comity node status``."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from node.storage.tables import IndicatorOffer, Outbox, SightingReport

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

Leased = TypeVar("Leased", Outbox, IndicatorOffer, SightingReport)


def claim_due(
    session: Session, table: type[Leased], *, owner: str, now_ms: int, lease_ms: int, limit: int
) -> list[Leased]:
    """Claim up to ``limit`` due rows for ``owner`` until ``now_ms + lease_ms``; rows under
    another live claim, or being claimed right now by another replica on PostgreSQL (``FOR
    UPDATE SKIP LOCKED``), are skipped."""
    query = (
        select(table)
        .where(
            col(table.status) == PENDING,
            col(table.next_attempt_at_ms) <= now_ms,
            or_(
                col(table.claim_expires_at_ms).is_(None),
                col(table.claim_expires_at_ms) < now_ms,
            ),
        )
        .order_by(col(table.next_attempt_at_ms))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.exec(query))
    for row in rows:
        row.claimed_by, row.claim_expires_at_ms = owner, now_ms + lease_ms
        session.add(row)
    return rows


def count_by_status(session: Session, table: type[Leased], *, status: str) -> int:
    query = select(func.count()).select_from(table).where(col(table.status) == status)
    return int(session.exec(query).one())


def pending_and_failed(session: Session, table: type[Leased]) -> tuple[int, int]:
    """How many rows still wait for the other agency, and how many it refused for good."""
    return (
        count_by_status(session, table, status=PENDING),
        count_by_status(session, table, status=FAILED),
    )


def release_claims(session: Session, *, replica: str, keep: str) -> dict[str, int]:
    """Release the claims on pending rows that earlier runs of ``replica`` hold (owners
    ``replica/…`` other than ``keep``, this run's): those runs are dead, so their rows are due
    at once instead of when the leases end. How many rows of each table were released."""
    released = {}
    for table in (Outbox, IndicatorOffer, SightingReport):
        rows = session.exec(
            select(table).where(
                col(table.status) == PENDING,
                col(table.claimed_by).startswith(f"{replica}/", autoescape=True),
                col(table.claimed_by) != keep,
            )
        )
        count = 0
        for row in rows:
            row.claimed_by, row.claim_expires_at_ms = None, None
            session.add(row)
            count += 1
        released[table.__tablename__] = count
    return released
