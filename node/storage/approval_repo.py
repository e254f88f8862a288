# SPDX-License-Identifier: Apache-2.0
"""Queries for the approvals queue, inside the caller's transaction.

Deciding is one conditional update (``pending`` and not expired → the new status), so of two
supervisors deciding the same approval at once exactly one changes it, on SQLite and on
PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from node.model.approvals import ApprovalStatus
from node.storage.approval_tables import ApprovalRow


def add(session: Session, row: ApprovalRow) -> None:
    session.add(row)
    session.flush()


def get(session: Session, approval_id: str) -> ApprovalRow | None:
    return session.get(ApprovalRow, approval_id)


def list_approvals(
    session: Session,
    *,
    statuses: frozenset[ApprovalStatus] | None,
    requested_by: str | None,
    limit: int,
) -> list[ApprovalRow]:
    query = select(ApprovalRow).order_by(col(ApprovalRow.requested_at_ms).desc()).limit(limit)
    if statuses is not None:
        query = query.where(col(ApprovalRow.status).in_([s.value for s in statuses]))
    if requested_by is not None:
        query = query.where(col(ApprovalRow.requested_by) == requested_by)
    return list(session.exec(query))


def decide(
    session: Session,
    approval_id: str,
    *,
    status: ApprovalStatus,
    decided_by: str,
    reason: str | None,
    now_ms: int,
) -> bool:
    """Move a pending, unexpired approval to ``status``; ``False`` if it was not (any more)."""
    changed = session.execute(
        update(ApprovalRow)
        .where(
            col(ApprovalRow.approval_id) == approval_id,
            col(ApprovalRow.status) == ApprovalStatus.PENDING.value,
            col(ApprovalRow.expires_at_ms) > now_ms,
        )
        .values(status=status.value, decided_by=decided_by, decided_at_ms=now_ms, reason=reason)
    )
    return _rowcount(changed) == 1


def finish(
    session: Session,
    approval_id: str,
    *,
    status: ApprovalStatus,
    now_ms: int,
    result: bytes | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:
    session.execute(
        update(ApprovalRow)
        .where(col(ApprovalRow.approval_id) == approval_id)
        .values(
            status=status.value,
            finished_at_ms=now_ms,
            result=result,
            error_code=error_code,
            error_message=error_message,
        )
    )


def _rowcount(result: Any) -> int:
    return int(result.rowcount)
