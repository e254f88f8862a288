# SPDX-License-Identifier: Apache-2.0
"""Queries for reveal requests (table ``overlap_reveal``), inside the caller's transaction."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from node.storage.tables import OverlapReveal


def get_reveal(session: Session, request_id: str, *, lock: bool = False) -> OverlapReveal | None:
    query = select(OverlapReveal).where(col(OverlapReveal.request_id) == request_id)
    return session.exec(query.with_for_update() if lock else query).first()


def add_reveal(session: Session, reveal: OverlapReveal) -> None:
    session.add(reveal)
    session.flush()


def list_reveals(session: Session) -> list[OverlapReveal]:
    query = select(OverlapReveal).order_by(
        col(OverlapReveal.created_ms).desc(), col(OverlapReveal.request_id)
    )
    return list(session.exec(query))


def count_waiting(session: Session, *, requester: str, now_ms: int) -> int:
    """Inbound requests from ``requester`` still waiting for a decision, not expired."""
    query = (
        select(func.count())
        .select_from(OverlapReveal)
        .where(
            col(OverlapReveal.direction) == "inbound",
            col(OverlapReveal.requester) == requester,
            col(OverlapReveal.state) == "pending",
            col(OverlapReveal.expires_ms) > now_ms,
        )
    )
    return int(session.exec(query).one())
