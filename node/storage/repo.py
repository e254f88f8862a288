# SPDX-License-Identifier: Apache-2.0
"""Data access. Every function takes the caller's session and never commits: the caller's
transaction decides, so a state change and what it causes commit together."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from node.errors import NotFoundError
from node.storage.tables import (
    AuditCheckpoint,
    AuditCosignature,
    AuditHead,
    AuditLeaf,
    AuditOpening,
    AuditTile,
    Campaign,
    CampaignCase,
    Evidence,
    EvidenceChunk,
    Exchange,
    IndicatorRow,
    IndicatorSetRow,
    Message,
    Outbox,
    TrustedDirectory,
    WitnessState,
)

MAX_ERROR_CHARS = 1000


def insert_exchange(
    session: Session,
    *,
    exchange_id: str,
    request_type: str,
    direction: str,
    peer: str,
    state: str,
    form_json: bytes,
    now_ms: int,
) -> Exchange:
    row = Exchange(
        id=exchange_id,
        request_type=request_type,
        direction=direction,
        peer=peer,
        state=state,
        form_json=form_json,
        created_at_ms=now_ms,
        updated_at_ms=now_ms,
    )
    session.add(row)
    return row


def get_exchange(session: Session, exchange_id: str, *, lock: bool = False) -> Exchange | None:
    """The exchange; with ``lock``, its row stays locked until the transaction ends, so that
    messages of one exchange are applied one transaction at a time (PostgreSQL; SQLite has
    one writer anyway)."""
    return session.get(Exchange, exchange_id, with_for_update=lock)


def list_exchanges(session: Session, *, direction: str | None, limit: int) -> list[Exchange]:
    query = select(Exchange)
    if direction is not None:
        query = query.where(Exchange.direction == direction)
    query = query.order_by(col(Exchange.created_at_ms).desc(), col(Exchange.id)).limit(limit)
    return list(session.exec(query))


def set_exchange_state(
    session: Session, *, exchange_id: str, state: str, now_ms: int, last_error: str | None = None
) -> None:
    """Move an exchange to ``state``; ``last_error`` is kept (truncated) or cleared.

    Raises:
        NotFoundError: no such exchange.
    """
    row = session.get(Exchange, exchange_id)
    if row is None:
        raise NotFoundError(f"no exchange {exchange_id}")
    row.state = state
    row.updated_at_ms = now_ms
    row.last_error = last_error[:MAX_ERROR_CHARS] if last_error else None
    session.add(row)


def insert_message(
    session: Session,
    *,
    message_id: str,
    exchange_id: str,
    direction: str,
    sequence: int,
    sender: str,
    recipient: str,
    payload_type: str,
    envelope: bytes,
    envelope_digest: bytes,
    created_at_ms: int,
    now_ms: int,
    receipt: bytes | None = None,
    receipt_verified: bool = False,
    state: str = "applied",
    body: bytes | None = None,
) -> Message:
    row = Message(
        message_id=message_id,
        exchange_id=exchange_id,
        direction=direction,
        sequence=sequence,
        sender=sender,
        recipient=recipient,
        payload_type=payload_type,
        envelope=envelope,
        envelope_digest=envelope_digest,
        created_at_ms=created_at_ms,
        stored_at_ms=now_ms,
        receipt=receipt,
        receipt_verified=receipt_verified,
        state=state,
        body=body,
    )
    session.add(row)
    return row


def get_message(session: Session, message_id: str) -> Message | None:
    return session.get(Message, message_id)


def set_message_receipt(
    session: Session, *, message_id: str, receipt: bytes, verified: bool
) -> None:
    """Attach a receipt to a stored message.

    Raises:
        NotFoundError: no such message.
    """
    row = session.get(Message, message_id)
    if row is None:
        raise NotFoundError(f"no message {message_id}")
    row.receipt = receipt
    row.receipt_verified = verified
    session.add(row)


def messages_for_exchange(session: Session, exchange_id: str) -> list[Message]:
    query = (
        select(Message)
        .where(Message.exchange_id == exchange_id)
        .order_by(col(Message.direction), col(Message.sequence))
    )
    return list(session.exec(query))


def next_sequence(session: Session, exchange_id: str, *, direction: str) -> int:
    """The sequence number after the highest of ``direction`` in the exchange."""
    query = select(func.max(Message.sequence)).where(
        Message.exchange_id == exchange_id, Message.direction == direction
    )
    return (session.exec(query).one() or 0) + 1


def next_inbound_to_apply(session: Session, exchange_id: str) -> int:
    """The sequence number the peer's next message in order must carry: held messages wait
    for it."""
    query = select(func.max(Message.sequence)).where(
        Message.exchange_id == exchange_id,
        Message.direction == "inbound",
        Message.state != "held",
    )
    return (session.exec(query).one() or 0) + 1


def held_message(session: Session, exchange_id: str, sequence: int) -> Message | None:
    query = select(Message).where(
        Message.exchange_id == exchange_id,
        Message.direction == "inbound",
        Message.sequence == sequence,
        Message.state == "held",
    )
    return session.exec(query).first()


def set_message_state(
    session: Session, message: Message, *, state: str, note: str | None = None
) -> None:
    message.state = state
    message.note = note[:MAX_ERROR_CHARS] if note else None
    session.add(message)


def set_due_at(session: Session, *, exchange_id: str, due_at_ms: int | None) -> None:
    row = session.get(Exchange, exchange_id)
    if row is not None and row.due_at_ms is None:
        row.due_at_ms = due_at_ms
        session.add(row)


def due_before(session: Session, instant_ms: int) -> list[Exchange]:
    """Exchanges whose deadline passed before ``instant_ms``, most overdue first."""
    query = select(Exchange).where(
        col(Exchange.due_at_ms).is_not(None), col(Exchange.due_at_ms) < instant_ms
    )
    return list(session.exec(query.order_by(col(Exchange.due_at_ms))))


def set_preserved_until(session: Session, *, exchange_id: str, until_ms: int) -> None:
    row = session.get(Exchange, exchange_id)
    if row is not None:
        row.preserved_until_ms = until_ms
        session.add(row)


def count_rows(session: Session) -> dict[str, int]:
    """Rows per table: tests use it to show that refused input changed nothing."""
    return {
        table.__tablename__: session.exec(select(func.count()).select_from(table)).one()
        for table in (
            Exchange,
            Message,
            Outbox,
            AuditLeaf,
            IndicatorSetRow,
            IndicatorRow,
            Campaign,
            CampaignCase,
        )
    }


def count_exchanges(session: Session, *, direction: str) -> int:
    query = select(func.count()).select_from(Exchange).where(Exchange.direction == direction)
    return session.exec(query).one()


# --- audit log -------------------------------------------------------------------------------


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
    exchange_id: str


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


def trusted_directories(session: Session) -> list[TrustedDirectory]:
    """Every accepted directory version, oldest first."""
    return list(session.exec(select(TrustedDirectory).order_by(col(TrustedDirectory.version))))


def save_trusted_directory(session: Session, *, version: int, document: bytes, now_ms: int) -> None:
    session.add(TrustedDirectory(version=version, document=document, accepted_at_ms=now_ms))


# --- evidence --------------------------------------------------------------------------------


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
    session.add(EvidenceChunk(evidence_id=evidence_id, item=item, idx=idx, data=data))


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
