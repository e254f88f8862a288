# SPDX-License-Identifier: Apache-2.0
"""Queries for campaigns, their cases and the known-benign values, inside the caller's
transaction."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import or_
from sqlmodel import Session, col, select

from node.indicators.campaigns import Value
from node.storage.tables import (
    BenignValue,
    Campaign,
    CampaignCase,
    Exchange,
    IndicatorRow,
    IndicatorSetRow,
)


def get_campaign(session: Session, campaign_id: str) -> Campaign | None:
    return session.get(Campaign, campaign_id)


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.exec(select(Campaign).order_by(col(Campaign.created_at_ms))))


def add_campaign(session: Session, *, campaign_id: str, name: str, now_ms: int) -> Campaign:
    campaign = Campaign(campaign_id=campaign_id, name=name, created_at_ms=now_ms)
    session.add(campaign)
    session.flush()
    return campaign


def cases_of(session: Session, campaign_id: str) -> list[CampaignCase]:
    query = select(CampaignCase).where(col(CampaignCase.campaign_id) == campaign_id)
    return list(session.exec(query.order_by(col(CampaignCase.kind), col(CampaignCase.ref))))


def campaign_of_sets(session: Session, set_ids: list[str]) -> str | None:
    """The campaign that first linked any of ``set_ids``, if one did."""
    query = (
        select(CampaignCase.campaign_id)
        .where(col(CampaignCase.kind) == "set", col(CampaignCase.ref).in_(set_ids))
        .order_by(col(CampaignCase.linked_at_ms), col(CampaignCase.campaign_id))
    )
    return session.exec(query).first()


def link_case(
    session: Session,
    *,
    campaign_id: str,
    kind: str,
    ref: str,
    agency: str,
    shared: int,
    now_ms: int,
) -> bool:
    """Link a case, or update how much it shares; True when the link is new."""
    case = session.get(CampaignCase, (campaign_id, kind, ref))
    if case is not None:
        case.shared = max(case.shared, shared)
        session.add(case)
        return False
    session.add(
        CampaignCase(
            campaign_id=campaign_id,
            kind=kind,
            ref=ref,
            agency=agency,
            shared=shared,
            linked_at_ms=now_ms,
        )
    )
    return True


def live_values_by_set(session: Session, *, now_ms: int) -> dict[str, list[Value]]:
    """(type, value) of every indicator held here, by set: own and received sets that are not
    revoked, indicators not expired."""
    query = (
        select(IndicatorRow.set_id, IndicatorRow.type, IndicatorRow.value)
        .join(IndicatorSetRow, col(IndicatorSetRow.set_id) == col(IndicatorRow.set_id))
        .where(col(IndicatorSetRow.revoked).is_(False))
        .where(or_(col(IndicatorRow.expires_ms).is_(None), col(IndicatorRow.expires_ms) > now_ms))
    )
    by_set: dict[str, list[Value]] = defaultdict(list)
    for set_id, kind, value in session.exec(query):
        by_set[set_id].append((kind, value))
    return dict(by_set)


def set_owners(session: Session, set_ids: list[str]) -> dict[str, str]:
    query = select(IndicatorSetRow.set_id, IndicatorSetRow.owner).where(
        col(IndicatorSetRow.set_id).in_(set_ids)
    )
    return dict(session.exec(query).all())


def benign_values(session: Session) -> list[Value]:
    query = select(BenignValue.type, BenignValue.value).order_by(
        col(BenignValue.type), col(BenignValue.value)
    )
    return list(session.exec(query))


def add_benign(session: Session, values: list[Value], *, now_ms: int) -> int:
    """Add values not on the list yet; how many were new."""
    added = 0
    for kind, value in dict.fromkeys(values):
        if session.get(BenignValue, (kind, value)) is None:
            session.add(BenignValue(type=kind, value=value, added_at_ms=now_ms))
            added += 1
    return added


def remove_benign(session: Session, values: list[Value]) -> int:
    """Remove values from the list; how many were on it."""
    removed = 0
    for kind, value in dict.fromkeys(values):
        row = session.get(BenignValue, (kind, value))
        if row is not None:
            session.delete(row)
            removed += 1
    return removed


def recent_exchanges(session: Session, *, limit: int) -> list[Exchange]:
    query = select(Exchange).order_by(col(Exchange.created_at_ms).desc()).limit(limit)
    return list(session.exec(query))
