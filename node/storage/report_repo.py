# SPDX-License-Identifier: Apache-2.0
"""Queries for the sighting reports this node owes set owners, inside the caller's
transaction."""

from __future__ import annotations

from sqlmodel import Session, col, select

from node.indicators.sightings import Sighting
from node.storage.leased import DELIVERED, FAILED, PENDING
from node.storage.tables import MAX_ERROR_CHARS, SightingReport


def owe(
    session: Session,
    sighting: Sighting,
    *,
    document: bytes,
    signature: bytes,
    now_ms: int,
    claim: tuple[str, int],
) -> None:
    """Record a signed report as owed to the set's owner, due now. ``claim`` (owner, lease
    end) reserves the first attempt for the caller, who makes it at once."""
    claimed_by, claim_expires_at_ms = claim
    session.add(
        SightingReport(
            sighting_id=sighting.sighting_id,
            set_id=sighting.set_id,
            owner=sighting.owner,
            made_at_ms=sighting.at_ms,
            document=document,
            signature=signature,
            status=PENDING,
            next_attempt_at_ms=now_ms,
            claimed_by=claimed_by,
            claim_expires_at_ms=claim_expires_at_ms,
        )
    )
    session.flush()


def get_report(session: Session, sighting_id: str) -> SightingReport | None:
    return session.get(SightingReport, sighting_id)


def reports_of(session: Session, set_id: str) -> list[SightingReport]:
    """The reports this node made about ``set_id``, oldest first."""
    query = (
        select(SightingReport)
        .where(col(SightingReport.set_id) == set_id)
        .order_by(col(SightingReport.made_at_ms), col(SightingReport.sighting_id))
    )
    return list(session.exec(query))


def _count_attempt(report: SightingReport, now_ms: int) -> None:
    report.attempts += 1
    report.last_attempt_at_ms = now_ms
    report.claimed_by = report.claim_expires_at_ms = None


def _pending(session: Session, sighting_id: str) -> SightingReport | None:
    """The report an attempt was for, unless another replica closed it meanwhile."""
    report = session.get(SightingReport, sighting_id, with_for_update=True)
    if report is None or report.status != PENDING:
        return None
    return report


def mark_delivered(session: Session, *, sighting_id: str, now_ms: int) -> None:
    """The owner holds the report (a duplicate acknowledgement counts too)."""
    report = session.get(SightingReport, sighting_id, with_for_update=True)
    if report is None:
        return
    _count_attempt(report, now_ms)
    report.status, report.last_error = DELIVERED, None
    session.add(report)


def schedule_retry(
    session: Session, *, sighting_id: str, now_ms: int, delay_ms: int, error: str
) -> None:
    report = _pending(session, sighting_id)
    if report is None:
        return
    _count_attempt(report, now_ms)
    report.next_attempt_at_ms = now_ms + delay_ms
    report.last_error = error[:MAX_ERROR_CHARS]
    session.add(report)


def mark_failed(session: Session, *, sighting_id: str, now_ms: int, error: str) -> None:
    report = _pending(session, sighting_id)
    if report is None:
        return
    _count_attempt(report, now_ms)
    report.status = FAILED
    report.last_error = error[:MAX_ERROR_CHARS]
    session.add(report)
