# SPDX-License-Identifier: Apache-2.0
"""Queries for sighting and false-positive reports, inside the caller's transaction."""

from __future__ import annotations

from sqlmodel import Session, col, select

from node.indicators.sightings import Sighting
from node.storage.tables import IndicatorRow, IndicatorSighting


def get_sighting(session: Session, sighting_id: str) -> IndicatorSighting | None:
    return session.get(IndicatorSighting, sighting_id)


def save_sighting(
    session: Session, sighting: Sighting, *, document: bytes, signature: bytes, now_ms: int
) -> None:
    session.add(
        IndicatorSighting(
            sighting_id=sighting.sighting_id,
            set_id=sighting.set_id,
            type=sighting.type,
            value=sighting.value,
            reporter=sighting.reporter,
            kind=sighting.kind.value,
            note=sighting.note,
            reported_at_ms=sighting.at_ms,
            received_at_ms=now_ms,
            document=document,
            signature=signature,
        )
    )


def sightings_of(session: Session, set_id: str) -> list[IndicatorSighting]:
    """Every report about ``set_id``'s indicators, oldest first."""
    query = (
        select(IndicatorSighting)
        .where(col(IndicatorSighting.set_id) == set_id)
        .order_by(col(IndicatorSighting.received_at_ms), col(IndicatorSighting.sighting_id))
    )
    return list(session.exec(query))


def holds_indicator(session: Session, *, set_id: str, kind: str, value: str) -> bool:
    """Whether the newest version of ``set_id`` holds this indicator."""
    return session.get(IndicatorRow, (set_id, kind, value)) is not None
