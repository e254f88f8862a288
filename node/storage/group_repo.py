# SPDX-License-Identifier: Apache-2.0
"""Queries for sharing groups and their tag logs, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Table, delete, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from node.ids import AgencyId
from node.indicators.groups import Group, TagEntry
from node.storage.tables import (
    GroupPublication,
    GroupTagRow,
    SharingGroupKey,
    SharingGroupMember,
    SharingGroupRow,
)

LOOKUP_BATCH = 2000
"""Tags per ``IN (…)`` query: well inside every database's limit on bound parameters."""

_TAG: Table = GroupTagRow.__table__  # type: ignore[attr-defined]
_INSERT_ENTRY = _TAG.insert()


def get_group(session: Session, group_id: str, *, lock: bool = False) -> Group | None:
    query = select(SharingGroupRow).where(col(SharingGroupRow.group_id) == group_id)
    row = session.exec(query.with_for_update() if lock else query).first()
    return None if row is None else _group(session, row)


def list_groups(session: Session) -> list[Group]:
    rows = session.exec(select(SharingGroupRow).order_by(col(SharingGroupRow.name)))
    return [_group(session, row) for row in rows]


def _group(session: Session, row: SharingGroupRow) -> Group:
    query = select(SharingGroupMember.agency).where(
        col(SharingGroupMember.group_id) == row.group_id
    )
    return Group(
        group_id=row.group_id,
        name=row.name,
        owner=AgencyId(row.owner),
        members=tuple(AgencyId(a) for a in sorted(session.exec(query))),
        epoch=row.epoch,
    )


def save_group(session: Session, group: Group, *, key: bytes, now_ms: int) -> None:
    """Store the group at its (new) epoch: its members replace the previous epoch's, and the
    epoch's key is kept beside the older ones."""
    row = session.get(SharingGroupRow, group.group_id) or SharingGroupRow(
        group_id=group.group_id, name=group.name, owner=group.owner, epoch=0, updated_at_ms=0
    )
    row.name, row.epoch, row.updated_at_ms = group.name, group.epoch, now_ms
    session.add(row)
    session.flush()
    session.execute(
        delete(SharingGroupMember).where(col(SharingGroupMember.group_id) == group.group_id)
    )
    session.add_all(SharingGroupMember(group_id=group.group_id, agency=m) for m in group.members)
    session.add(
        SharingGroupKey(group_id=group.group_id, epoch=group.epoch, key=key, stored_at_ms=now_ms)
    )
    session.flush()


def group_key(session: Session, group_id: str, epoch: int) -> bytes | None:
    row = session.get(SharingGroupKey, (group_id, epoch))
    return None if row is None else row.key


def publish_set(session: Session, *, group_id: str, set_id: str, now_ms: int) -> None:
    if session.get(GroupPublication, (group_id, set_id)) is None:
        session.add(GroupPublication(group_id=group_id, set_id=set_id, published_at_ms=now_ms))
        session.flush()


def published_sets(session: Session, group_id: str) -> list[str]:
    query = select(GroupPublication.set_id).where(col(GroupPublication.group_id) == group_id)
    return sorted(session.exec(query))


def last_seq(session: Session, *, group_id: str, publisher: str) -> int:
    """The newest entry number of ``publisher``'s log held here (0: none)."""
    query = select(func.max(GroupTagRow.seq)).where(
        col(GroupTagRow.group_id) == group_id, col(GroupTagRow.publisher) == publisher
    )
    return int(session.exec(query).one() or 0)


def entries_after(
    session: Session, *, group_id: str, publisher: str, after_seq: int, limit: int
) -> list[TagEntry]:
    query = (
        select(GroupTagRow)
        .where(col(GroupTagRow.group_id) == group_id, col(GroupTagRow.publisher) == publisher)
        .where(col(GroupTagRow.seq) > after_seq)
        .order_by(col(GroupTagRow.seq))
        .limit(limit)
    )
    return [_entry(row) for row in session.exec(query)]


def entries_of_epoch(
    session: Session, *, group_id: str, publisher: str, epoch: int
) -> list[TagEntry]:
    query = select(GroupTagRow).where(
        col(GroupTagRow.group_id) == group_id,
        col(GroupTagRow.publisher) == publisher,
        col(GroupTagRow.epoch) == epoch,
    )
    return [_entry(row) for row in session.exec(query)]


def _entry(row: GroupTagRow) -> TagEntry:
    return TagEntry(seq=row.seq, epoch=row.epoch, tag=row.tag, tombstone=row.tombstone)


def append_entries(
    session: Session, *, group_id: str, publisher: str, entries: Iterable[TagEntry]
) -> int:
    """Add entries to ``publisher``'s log in one statement per batch; how many were added."""
    rows = [
        {
            "group_id": group_id,
            "publisher": publisher,
            "seq": e.seq,
            "epoch": e.epoch,
            "tag": e.tag,
            "tombstone": e.tombstone,
        }
        for e in entries
    ]
    if rows:
        session.connection().execute(_INSERT_ENTRY, rows)
    return len(rows)


def publishers_of_tags(
    session: Session, *, group_id: str, epoch: int, tags: Sequence[bytes]
) -> dict[bytes, set[str]]:
    """For each of ``tags`` (of ``epoch``) some publisher's log holds live, who: the newest
    entry of that publisher for that tag adds it, not tombstones it.

    The query asks by tag alone, so every database probes the tag index (a filter on the
    group would tempt SQLite's planner into scanning the group's whole log); the few rows of
    other groups or epochs are dropped here."""
    newest: dict[tuple[bytes, str], tuple[int, bool]] = {}
    for start in range(0, len(tags), LOOKUP_BATCH):
        query = sa_select(
            _TAG.c.group_id,
            _TAG.c.epoch,
            _TAG.c.tag,
            _TAG.c.publisher,
            _TAG.c.seq,
            _TAG.c.tombstone,
        ).where(_TAG.c.tag.in_(tags[start : start + LOOKUP_BATCH]))
        rows = session.connection().execute(query)
        for group, found_epoch, found, publisher, seq, tombstone in rows:
            if group != group_id or found_epoch != epoch:
                continue
            known = newest.get((found, publisher))
            if known is None or known[0] < seq:
                newest[(found, publisher)] = (seq, tombstone)
    holders: dict[bytes, set[str]] = {}
    for (found, publisher), (_seq, tombstone) in newest.items():
        if not tombstone:
            holders.setdefault(found, set()).add(publisher)
    return holders
