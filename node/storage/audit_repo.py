# SPDX-License-Identifier: Apache-2.0
"""Queries for the audit log (leaves, openings, tiles, checkpoints, cosignatures), inside the
caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from node.storage.tables import (
    AuditCheckpoint,
    AuditCosignature,
    AuditHead,
    AuditLeaf,
    AuditOpening,
    AuditTile,
)

_HEAD = AuditHead.__table__  # type: ignore[attr-defined]


_BUMP_HEAD = (
    _HEAD.update()
    .where(_HEAD.c.id == 1)
    .values(size=_HEAD.c.size + bindparam("count"))
    .returning(_HEAD.c.size)
)


_INSERT_LEAF = AuditLeaf.__table__.insert()  # type: ignore[attr-defined]


_INSERT_OPENING = AuditOpening.__table__.insert()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class NewLeaf:
    leaf: bytes
    leaf_hash: bytes
    openings: list[tuple[str, str, bytes]]
    """(name, value, salt) of each commitment the leaf makes."""
    exchange_id: str | None
    """The leaf's exchange, if it belongs to one (local events may not)."""


def append_audit_leaves(session: Session, leaves: list[NewLeaf], *, now_ms: int) -> int:
    """Append leaves and their private openings, in order; return the first one's index.

    The head row is incremented first: its row lock orders concurrent appenders, so indices
    have no gaps and no two transactions take the same ones. Core statements, not the ORM:
    every exchange event appends a leaf.
    """
    connection = session.connection()
    end: int = connection.execute(_BUMP_HEAD, {"count": len(leaves)}).scalar_one()
    first = end - len(leaves)
    connection.execute(
        _INSERT_LEAF,
        [
            {
                "idx": first + i,
                "leaf": new.leaf,
                "leaf_hash": new.leaf_hash,
                "created_at_ms": now_ms,
                "exchange_id": new.exchange_id,
            }
            for i, new in enumerate(leaves)
        ],
    )
    openings = [
        {"leaf_idx": first + i, "name": name, "value": value, "salt": salt}
        for i, new in enumerate(leaves)
        for name, value, salt in new.openings
    ]
    if openings:
        connection.execute(_INSERT_OPENING, openings)
    return first


def audit_size(session: Session) -> int:
    head = session.get(AuditHead, 1)
    return head.size if head is not None else 0


def audit_leaves(session: Session, *, start: int, end: int) -> list[AuditLeaf]:
    query = (
        select(AuditLeaf)
        .where(col(AuditLeaf.idx) >= start, col(AuditLeaf.idx) < end)
        .order_by(col(AuditLeaf.idx))
    )
    return list(session.exec(query))


def audit_openings(session: Session, index: int) -> list[AuditOpening]:
    query = select(AuditOpening).where(col(AuditOpening.leaf_idx) == index)
    return list(session.exec(query.order_by(col(AuditOpening.name))))


def audit_leaf(session: Session, index: int) -> AuditLeaf | None:
    return session.get(AuditLeaf, index)


def audit_indices_of_exchange(session: Session, exchange_id: str) -> list[int]:
    query = select(AuditLeaf.idx).where(col(AuditLeaf.exchange_id) == exchange_id)
    return list(session.exec(query.order_by(col(AuditLeaf.idx))))


OFFICER = "officer"
APPROVER = "approver"


def attributed_leaves(
    session: Session,
    *,
    user: str | None,
    exchange_id: str | None,
    since_ms: int | None,
    limit: int,
) -> list[AuditLeaf]:
    """Leaves whose kept openings name who acted (``user``, as actor or approver, if given),
    newest first."""
    named = select(AuditOpening.leaf_idx).where(col(AuditOpening.name) == OFFICER)
    if user is not None:
        named = select(AuditOpening.leaf_idx).where(
            col(AuditOpening.name).in_((OFFICER, APPROVER)), col(AuditOpening.value) == user
        )
    query = select(AuditLeaf).where(col(AuditLeaf.idx).in_(named))
    if exchange_id is not None:
        query = query.where(col(AuditLeaf.exchange_id) == exchange_id)
    if since_ms is not None:
        query = query.where(col(AuditLeaf.created_at_ms) >= since_ms)
    return list(session.exec(query.order_by(col(AuditLeaf.idx).desc()).limit(limit)))


def openings_of(session: Session, indices: list[int]) -> list[AuditOpening]:
    """The kept openings of these leaves."""
    if not indices:
        return []
    query = select(AuditOpening).where(col(AuditOpening.leaf_idx).in_(indices))
    return list(session.exec(query))


def leaves_with_openings(
    session: Session, *, created_before_ms: int, after: int, limit: int
) -> list[AuditLeaf]:
    """The leaves after index ``after``, created before the given time, whose openings are
    still kept, oldest first."""
    opened = select(AuditOpening.leaf_idx).distinct()
    query = (
        select(AuditLeaf)
        .where(col(AuditLeaf.idx) > after)
        .where(col(AuditLeaf.created_at_ms) < created_before_ms)
        .where(col(AuditLeaf.idx).in_(opened))
        .order_by(col(AuditLeaf.idx))
        .limit(limit)
    )
    return list(session.exec(query))


def erase_openings(session: Session, indices: list[int]) -> None:
    """Delete the openings of these leaves."""
    session.execute(delete(AuditOpening).where(col(AuditOpening.leaf_idx).in_(indices)))


_LEAF_HASHES = (
    sa_select(col(AuditLeaf.leaf_hash))
    .where(col(AuditLeaf.idx) >= bindparam("start"), col(AuditLeaf.idx) < bindparam("end"))
    .order_by(col(AuditLeaf.idx))
)


def audit_leaf_hash_range(session: Session, *, start: int, end: int) -> list[bytes]:
    """Leaf hashes [start, end): Core, not the ORM, as proofs read a tile of them at a time."""
    return list(session.execute(_LEAF_HASHES, {"start": start, "end": end}).scalars())


def audit_tile_roots(session: Session, *, start: int, end: int) -> list[bytes]:
    """Stored roots of tiles [start, end), in order, up to the first one missing."""
    query = (
        sa_select(col(AuditTile.idx), col(AuditTile.root))
        .where(col(AuditTile.idx) >= start, col(AuditTile.idx) < end)
        .order_by(col(AuditTile.idx))
    )
    roots = []
    for expected, (idx, root) in enumerate(session.execute(query), start):
        if idx != expected:
            break
        roots.append(root)
    return roots


_TILE_HASHES = sa_select(col(AuditTile.hashes)).where(col(AuditTile.idx) == bindparam("idx"))


def audit_tile_hashes(session: Session, tile: int) -> bytes | None:
    """The concatenated leaf hashes of a full tile, if stored."""
    hashes: bytes | None = session.execute(_TILE_HASHES, {"idx": tile}).scalar_one_or_none()
    return hashes


def save_audit_tiles(session: Session, *, start: int, tiles: list[tuple[bytes, bytes]]) -> None:
    """Store full tiles from index ``start``: (root, concatenated leaf hashes) each."""
    session.add_all(
        AuditTile(idx=start + i, root=root, hashes=hashes) for i, (root, hashes) in enumerate(tiles)
    )


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.size).desc())
    return session.exec(query).first()


def save_checkpoint(session: Session, *, size: int, note: str, now_ms: int) -> None:
    session.add(AuditCheckpoint(size=size, note=note, created_at_ms=now_ms))


def save_cosignature(session: Session, *, size: int, witness: str, line: str, now_ms: int) -> None:
    """Keep the freshest cosignature of each witness: its time is the latest moment the
    witness vouches that the log was this size, which auditors use to date the leaves."""
    row = session.get(AuditCosignature, (size, witness))
    if row is None:
        session.add(AuditCosignature(size=size, witness=witness, line=line, created_at_ms=now_ms))
    else:
        row.line, row.created_at_ms = line, now_ms


def cosignatures(session: Session, *, size: int) -> list[AuditCosignature]:
    query = select(AuditCosignature).where(col(AuditCosignature.size) == size)
    return list(session.exec(query.order_by(col(AuditCosignature.witness))))


def newest_cosigned_checkpoint(session: Session, *, above: int) -> AuditCheckpoint | None:
    """The largest checkpoint of more than ``above`` leaves that some witness cosigned."""
    cosigned = select(AuditCosignature.size).distinct()
    query = (
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.size) > above, col(AuditCheckpoint.size).in_(cosigned))
        .order_by(col(AuditCheckpoint.size).desc())
    )
    return session.exec(query).first()


def last_cosigned_size(session: Session, *, witness: str) -> int:
    query = select(func.max(AuditCosignature.size)).where(col(AuditCosignature.witness) == witness)
    return session.exec(query).one() or 0
