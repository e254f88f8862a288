# SPDX-License-Identifier: Apache-2.0
"""Queries for the state a witness holds per log, inside the caller's transaction."""

from __future__ import annotations

from sqlmodel import Session, col, select

from node.storage.tables import WitnessState


def witness_state(session: Session, origin: str) -> WitnessState | None:
    """The state this witness holds for ``origin``, locked until the transaction ends."""
    query = select(WitnessState).where(col(WitnessState.origin) == origin).with_for_update()
    return session.exec(query).first()


def save_witness_state(
    session: Session, *, origin: str, size: int, root: bytes, now_ms: int
) -> None:
    row = session.get(WitnessState, origin) or WitnessState(
        origin=origin, size=0, root=b"", updated_at_ms=now_ms
    )
    row.size, row.root, row.updated_at_ms = size, root, now_ms
    session.add(row)
