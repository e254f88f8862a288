# SPDX-License-Identifier: Apache-2.0
"""Who did and who read what: local audit events and the agency's own access log.

Every state-changing local action and every read of case content by a person is a leaf of
the node's audit log (:data:`node.audit.leaf.LOCAL_EVENTS`). Its public fields say only what
kind of thing happened, at which agencies, in which exchange and in which hour; the person
(``officer``, ``officer_unit``, ``approver``) and the details are salted commitments whose
openings stay in the node's private store, where the agency's data-protection officer reads
them back (:func:`access_log`) and from where the oversight body may have them released.

Reads are recorded once per user, request, kind of read (and evidence file) and hour
(:class:`OncePerHour`; refused calls likewise per caller, operation and refusal): a reviewer
paging through a case does not flood the log, and every hour in which someone read a case
still shows. The node's own reads (background work, in-process
callers) are not recorded: no person read anything.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from dataclasses import dataclass

from sqlmodel import Session

from node.audit.leaf import Leaf, OpeningName, PublicFields, hour_of
from node.model.people import Actor
from node.services.audit import append_leaf, officer_fields
from node.storage import audit_repo
from node.storage.tables import Exchange

MAX_ACCESS_LOG_ROWS = 1000
UNIDENTIFIED = {OpeningName.OFFICER: "", OpeningName.OFFICER_UNIT: ""}


def record_local(
    session: Session,
    *,
    event: str,
    me: str,
    actor: Actor | None,
    now_ms: int,
    other: str | None = None,
    exchange_id: str | None = None,
    subject: str | None = None,
    detail: str | None = None,
    reason: str | None = None,
    of: Exchange | None = None,
) -> int:
    """Append a local event's leaf in the caller's transaction; return its index.

    ``actor`` is who acted, ``None`` for a caller the node could not identify (a refused
    call: the leaf commits to an empty ``officer``). ``of`` is the exchange the event
    concerns: its type and legal basis (public already at both ends) go in the public fields
    so the leaf's openings are kept as long as the case's.
    """
    public = PublicFields(
        event=event,
        request_type=of.request_type if of is not None else "",
        legal_basis=_legal_basis(of) if of is not None else "",
        sender=me,
        recipient=other or me,
        exchange_id=of.id if of is not None else exchange_id or "",
        hour=hour_of(now_ms),
    )
    sensitive = {
        OpeningName.EXACT_TIME_MS: str(now_ms),
        **(officer_fields(actor) if actor is not None else UNIDENTIFIED),
        **{
            name: value
            for name, value in (
                (OpeningName.SUBJECT, subject),
                (OpeningName.DETAIL, detail),
                (OpeningName.REASON, reason),
            )
            if value
        },
    }
    return append_leaf(session, public, sensitive, now_ms=now_ms)


def _legal_basis(row: Exchange) -> str:
    try:
        form = json.loads(row.form_json)
    except ValueError:  # pragma: no cover (a stored form is always JSON)
        return "unknown"
    return str(form.get("legal_basis", "unknown")) if isinstance(form, dict) else "unknown"


class OncePerHour:
    """Which events were recorded this hour, by key (for reads: user, request, kind of read,
    subject; for refusals: who, operation, code). Kept in memory: after a restart, or on
    another replica, an event is recorded again — more leaves, never fewer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hour = ""
        self._seen: set[tuple[str, ...]] = set()

    def due(self, key: tuple[str, ...], now_ms: int) -> bool:
        """Whether ``key`` still needs a leaf this hour."""
        with self._lock:
            self._roll(hour_of(now_ms))
            return key not in self._seen

    def done(self, key: tuple[str, ...], now_ms: int) -> None:
        """``key``'s leaf was committed."""
        with self._lock:
            self._roll(hour_of(now_ms))
            self._seen.add(key)

    def _roll(self, hour: str) -> None:
        if hour != self._hour:
            self._hour, self._seen = hour, set()


# --- the access log -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AccessQuery:
    user: str | None = None
    """Only what this user did (as actor or approver)."""
    exchange_id: str | None = None
    since_ms: int | None = None
    limit: int = 100


@dataclass(frozen=True, kw_only=True)
class AccessEntry:
    """One attributed leaf, as the agency's data-protection officer sees it."""

    index: int
    event: str
    at_ms: int
    officer: str
    unit: str
    approver: str | None
    agency: str
    """The other agency the event concerned, or this agency for a purely local one."""
    exchange_id: str | None
    subject: str | None
    detail: str | None
    reason: str | None


def access_entries(session: Session, query: AccessQuery, *, me: str) -> list[AccessEntry]:
    """Attributed leaves whose openings are still kept, newest first, as ``query`` narrows
    them."""
    rows = audit_repo.attributed_leaves(
        session,
        user=query.user,
        exchange_id=query.exchange_id,
        since_ms=query.since_ms,
        limit=min(max(query.limit, 1), MAX_ACCESS_LOG_ROWS),
    )
    openings: dict[int, dict[str, str]] = defaultdict(dict)
    for o in audit_repo.openings_of(session, [row.idx for row in rows]):
        openings[o.leaf_idx][o.name] = o.value
    entries = []
    for row in rows:
        public = Leaf.from_bytes(row.leaf).public
        opened = openings[row.idx]
        entries.append(
            AccessEntry(
                index=row.idx,
                event=public.event,
                at_ms=int(opened.get(OpeningName.EXACT_TIME_MS, row.created_at_ms)),
                officer=opened.get(OpeningName.OFFICER, ""),
                unit=opened.get(OpeningName.OFFICER_UNIT, ""),
                approver=opened.get(OpeningName.APPROVER),
                agency=public.recipient if public.sender == me else public.sender,
                exchange_id=public.exchange_id or None,
                subject=opened.get(OpeningName.SUBJECT),
                detail=opened.get(OpeningName.DETAIL),
                reason=opened.get(OpeningName.REASON),
            )
        )
    return entries


def describe(query: AccessQuery) -> str:
    """The query as the ``access-log.read`` leaf commits to it."""
    parts = [
        f"user={query.user}" if query.user else "",
        f"exchange={query.exchange_id}" if query.exchange_id else "",
        f"since_ms={query.since_ms}" if query.since_ms is not None else "",
        f"limit={query.limit}",
    ]
    return " ".join(p for p in parts if p)
