# SPDX-License-Identifier: Apache-2.0
"""Queries for indicator sets, inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, or_, text
from sqlmodel import Session, col, select

from node.indicators.sets import IndicatorSet
from node.storage.tables import IndicatorRow, IndicatorSetRow, IndicatorShare, OverlapCheck

_INSERT_INDICATOR = IndicatorRow.__table__.insert()  # type: ignore[attr-defined]


def get_set(session: Session, set_id: str, *, lock: bool = False) -> IndicatorSetRow | None:
    query = select(IndicatorSetRow).where(col(IndicatorSetRow.set_id) == set_id)
    return session.exec(query.with_for_update() if lock else query).first()


def list_sets(session: Session) -> list[IndicatorSetRow]:
    query = select(IndicatorSetRow).order_by(col(IndicatorSetRow.updated_at_ms).desc())
    return list(session.exec(query))


def save_set(
    session: Session,
    indicator_set: IndicatorSet,
    *,
    document: bytes,
    signature: bytes,
    received_from: str | None,
    now_ms: int,
) -> None:
    """Store a set's newest version: the signed document, and its indicators replacing the
    previous version's."""
    row = get_set(session, indicator_set.set_id) or IndicatorSetRow(
        set_id=indicator_set.set_id,
        owner=indicator_set.owner,
        version=0,
        tlp="",
        revoked=False,
        document=b"",
        signature=b"",
        updated_at_ms=now_ms,
    )
    row.version = indicator_set.version
    row.tlp = indicator_set.tlp.value
    row.revoked = indicator_set.revoked
    row.document = document
    row.signature = signature
    row.received_from = received_from
    row.updated_at_ms = now_ms
    session.add(row)
    session.flush()
    session.execute(delete(IndicatorRow).where(col(IndicatorRow.set_id) == row.set_id))
    rows = [
        {
            "set_id": row.set_id,
            "type": i.type,
            "value": i.value,
            "confidence": i.confidence,
            "expires_ms": i.expires_ms,
        }
        for i in indicator_set.indicators
    ]
    if rows:
        session.connection().execute(_INSERT_INDICATOR, rows)


def record_share(
    session: Session, *, set_id: str, recipient: str, version: int, now_ms: int
) -> None:
    share = session.get(IndicatorShare, (set_id, recipient))
    if share is None:
        share = IndicatorShare(
            set_id=set_id, recipient=recipient, version=version, shared_at_ms=now_ms
        )
    else:
        share.version, share.shared_at_ms = version, now_ms
    session.add(share)


def shares_of(session: Session, set_id: str) -> list[IndicatorShare]:
    query = select(IndicatorShare).where(col(IndicatorShare.set_id) == set_id)
    return list(session.exec(query.order_by(col(IndicatorShare.recipient))))


def own_live_indicators(
    session: Session, *, owner: str, set_ids: list[str] | None, now_ms: int
) -> list[tuple[str, str]]:
    """(type, value) of the indicators in ``owner``'s live sets (all, or those named), not
    expired, without duplicates."""
    query = (
        select(IndicatorRow.type, IndicatorRow.value)
        .join(IndicatorSetRow, col(IndicatorSetRow.set_id) == col(IndicatorRow.set_id))
        .where(col(IndicatorSetRow.owner) == owner, col(IndicatorSetRow.revoked).is_(False))
        .where(or_(col(IndicatorRow.expires_ms).is_(None), col(IndicatorRow.expires_ms) > now_ms))
    )
    if set_ids is not None:
        query = query.where(col(IndicatorRow.set_id).in_(set_ids))
    return sorted(set(session.exec(query)))


@dataclass(frozen=True)
class OverlapUsage:
    """What one peer has asked for since a moment: checks (and reveals), and their points."""

    checks: int
    items: int


def take_overlap_check(
    session: Session, *, requester: str, items: int, now_ms: int, since_ms: int
) -> OverlapUsage:
    """Record one overlap check of ``items`` points by ``requester``; return its usage since
    ``since_ms``, this check included, for the caller to hold against its limits.

    Record and count are one step for concurrent callers: on PostgreSQL a transaction-scoped
    advisory lock per requester serialises them; on SQLite the insert comes first, taking the
    database's write lock before the count. A caller that refuses the check raises before
    its transaction commits, which removes the row recorded here.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"overlap_check:{requester}"},
        )
    session.add(OverlapCheck(requester=requester, at_ms=now_ms, items=items))
    session.flush()
    return overlap_usage(session, requester=requester, since_ms=since_ms)


def overlap_usage(session: Session, *, requester: str, since_ms: int) -> OverlapUsage:
    query = (
        select(func.count(), func.coalesce(func.sum(OverlapCheck.items), 0))
        .select_from(OverlapCheck)
        .where(col(OverlapCheck.requester) == requester, col(OverlapCheck.at_ms) >= since_ms)
    )
    checks, items = session.exec(query).one()
    return OverlapUsage(checks=int(checks), items=int(items))


def live_values(session: Session, kind: str) -> list[tuple[str, str, str]]:
    """(set id, owner, value) of every indicator of ``kind`` in a set that is not revoked."""
    query = (
        select(IndicatorRow.set_id, IndicatorSetRow.owner, IndicatorRow.value)
        .join(IndicatorSetRow, col(IndicatorSetRow.set_id) == col(IndicatorRow.set_id))
        .where(col(IndicatorRow.type) == kind, col(IndicatorSetRow.revoked).is_(False))
    )
    return list(session.exec(query))


def live_entries(
    session: Session, kind: str, *, set_ids: list[str] | None = None
) -> list[tuple[str, str, str, int | None]]:
    """(set id, owner, value, expiry) of every indicator of ``kind`` in a set that is not
    revoked (all, or those named); the caller drops the expired ones when it matches."""
    query = (
        select(
            IndicatorRow.set_id,
            IndicatorSetRow.owner,
            IndicatorRow.value,
            col(IndicatorRow.expires_ms),
        )
        .join(IndicatorSetRow, col(IndicatorSetRow.set_id) == col(IndicatorRow.set_id))
        .where(col(IndicatorRow.type) == kind, col(IndicatorSetRow.revoked).is_(False))
    )
    if set_ids is not None:
        query = query.where(col(IndicatorRow.set_id).in_(set_ids))
    return [(s, o, v, e) for s, o, v, e in session.exec(query)]


def live_set_versions(session: Session) -> dict[str, int]:
    """The version of every set held here that is not revoked, by set id."""
    query = select(IndicatorSetRow.set_id, IndicatorSetRow.version).where(
        col(IndicatorSetRow.revoked).is_(False)
    )
    return dict(session.exec(query).all())


def sets_stamp(session: Session) -> tuple[int, int, int]:
    """(sets, sum of their versions, latest change) over every set held here: it changes
    whenever a set is stored, changed or revoked, by this process or another sharing the
    database, so an index built from the indicators knows when it is stale."""
    query = select(
        func.count(),
        func.coalesce(func.sum(IndicatorSetRow.version), 0),
        func.coalesce(func.max(IndicatorSetRow.updated_at_ms), 0),
    ).select_from(IndicatorSetRow)
    count, versions, latest = session.exec(query).one()
    return int(count), int(versions), int(latest)
