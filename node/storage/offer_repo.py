# SPDX-License-Identifier: Apache-2.0
"""Queries for the indicator-set versions owed to agencies, inside the caller's transaction."""

from __future__ import annotations

from sqlmodel import Session, col, select

from node.storage.indicator_repo import record_share, shares_of
from node.storage.leased import DELIVERED, FAILED, PENDING
from node.storage.tables import MAX_ERROR_CHARS, IndicatorOffer


def owe(
    session: Session,
    *,
    set_id: str,
    recipient: str,
    version: int,
    now_ms: int,
    claim: tuple[str, int] | None = None,
) -> None:
    """Record that ``recipient`` is owed ``version`` of the set, due now; a pending, delivered
    or failed offer of an older version becomes a fresh pending one. ``claim`` (owner, lease
    end) reserves the attempt for the caller, who makes it at once."""
    offer = session.get(IndicatorOffer, (set_id, recipient)) or IndicatorOffer(
        set_id=set_id, recipient=recipient, version=version, status=PENDING, next_attempt_at_ms=0
    )
    if offer.status == DELIVERED and offer.version >= version:
        return
    offer.version = max(offer.version, version)
    offer.status, offer.attempts, offer.last_error = PENDING, 0, None
    offer.next_attempt_at_ms = now_ms
    offer.claimed_by, offer.claim_expires_at_ms = claim or (None, None)
    session.add(offer)
    session.flush()


def followers(session: Session, set_id: str) -> list[str]:
    """The agencies a new version of the set must follow to: those it was delivered to and
    those it is still owed to."""
    delivered = {share.recipient for share in shares_of(session, set_id)}
    query = select(IndicatorOffer.recipient).where(
        col(IndicatorOffer.set_id) == set_id, col(IndicatorOffer.status) == PENDING
    )
    return sorted(delivered | set(session.exec(query)))


def offers_of(session: Session, set_id: str) -> list[IndicatorOffer]:
    query = select(IndicatorOffer).where(col(IndicatorOffer.set_id) == set_id)
    return list(session.exec(query.order_by(col(IndicatorOffer.recipient))))


def mark_delivered(
    session: Session, *, set_id: str, recipient: str, version: int, now_ms: int
) -> None:
    """The recipient holds ``version`` (or a newer one): recorded as shared, and the offer
    closed unless a newer version became owed meanwhile, which is then due at once."""
    record_share(session, set_id=set_id, recipient=recipient, version=version, now_ms=now_ms)
    offer = session.get(IndicatorOffer, (set_id, recipient), with_for_update=True)
    if offer is None:
        return
    offer.attempts += 1
    offer.last_attempt_at_ms = now_ms
    offer.claimed_by = offer.claim_expires_at_ms = None
    if offer.version <= version:
        offer.status, offer.version, offer.last_error = DELIVERED, version, None
    else:
        offer.next_attempt_at_ms = now_ms
    session.add(offer)


def _attempted(
    session: Session, set_id: str, recipient: str, version: int
) -> IndicatorOffer | None:
    """The pending offer an attempt of ``version`` was for; None when it was closed or a newer
    version became owed meanwhile (that one is due at once, whatever this attempt's fate)."""
    offer = session.get(IndicatorOffer, (set_id, recipient), with_for_update=True)
    if offer is None or offer.status != PENDING or offer.version > version:
        return None
    return offer


def schedule_retry(
    session: Session,
    *,
    set_id: str,
    recipient: str,
    version: int,
    now_ms: int,
    delay_ms: int,
    error: str,
) -> None:
    offer = _attempted(session, set_id, recipient, version)
    if offer is None:
        return
    offer.attempts += 1
    offer.last_attempt_at_ms = now_ms
    offer.next_attempt_at_ms = now_ms + delay_ms
    offer.last_error = error[:MAX_ERROR_CHARS]
    offer.claimed_by = offer.claim_expires_at_ms = None
    session.add(offer)


def mark_failed(
    session: Session, *, set_id: str, recipient: str, version: int, now_ms: int, error: str
) -> None:
    offer = _attempted(session, set_id, recipient, version)
    if offer is None:
        return
    offer.status = FAILED
    offer.attempts += 1
    offer.last_attempt_at_ms = now_ms
    offer.last_error = error[:MAX_ERROR_CHARS]
    offer.claimed_by = offer.claim_expires_at_ms = None
    session.add(offer)
