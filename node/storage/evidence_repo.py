# SPDX-License-Identifier: Apache-2.0
"""Queries for evidence manifests and their chunks, inside the caller's transaction."""

from __future__ import annotations

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from node.storage.tables import Evidence, EvidenceChunk


def insert_evidence(
    session: Session,
    *,
    evidence_id: str,
    exchange_id: str,
    direction: str,
    manifest: bytes,
    now_ms: int,
) -> None:
    session.add(
        Evidence(
            evidence_id=evidence_id,
            exchange_id=exchange_id,
            direction=direction,
            manifest=manifest,
            created_at_ms=now_ms,
        )
    )


def get_evidence(session: Session, evidence_id: str) -> Evidence | None:
    return session.get(Evidence, evidence_id)


def evidence_for_exchange(session: Session, exchange_id: str) -> list[Evidence]:
    query = select(Evidence).where(Evidence.exchange_id == exchange_id)
    return list(session.exec(query.order_by(col(Evidence.created_at_ms))))


def evidence_to_upload(session: Session) -> list[Evidence]:
    """Outbound evidence not yet complete at the receiver."""
    query = select(Evidence).where(
        Evidence.direction == "outbound", col(Evidence.complete).is_(False)
    )
    return list(session.exec(query.order_by(col(Evidence.created_at_ms))))


def set_evidence_complete(session: Session, evidence_id: str) -> None:
    row = session.get(Evidence, evidence_id)
    if row is not None:
        row.complete = True
        session.add(row)


def insert_chunk(session: Session, *, evidence_id: str, item: int, idx: int, data: bytes) -> None:
    """Written at once, outside the session's identity map: a set of a thousand chunks is
    stored in one transaction without the session holding every chunk until it commits."""
    session.connection().execute(
        insert(EvidenceChunk).values(evidence_id=evidence_id, item=item, idx=idx, data=data)
    )


def chunks_held(session: Session, evidence_id: str, item: int) -> int:
    """How many chunks of the item are stored (they are stored in order, from 0)."""
    query = (
        select(func.count())
        .select_from(EvidenceChunk)
        .where(EvidenceChunk.evidence_id == evidence_id, EvidenceChunk.item == item)
    )
    return session.exec(query).one()


def chunk_data(
    session: Session, evidence_id: str, item: int, start: int, limit: int
) -> list[bytes]:
    """Up to ``limit`` chunks of the item from index ``start``, in order."""
    query = (
        select(EvidenceChunk.data)
        .where(
            EvidenceChunk.evidence_id == evidence_id,
            EvidenceChunk.item == item,
            col(EvidenceChunk.idx) >= start,
        )
        .order_by(col(EvidenceChunk.idx))
        .limit(limit)
    )
    return list(session.exec(query))
