# SPDX-License-Identifier: Apache-2.0
"""Overlap checks: how many of two agencies' own indicators coincide, learned privately.

The initiating agency learns the count (and the other side's set size); the answering agency
learns the initiator's set size; neither learns which indicators matched (node/indicators/psi).
An agency's items are the indicators of its own live sets, not expired; a received set is
someone else's case and never counts. The point arithmetic runs off the event loop, on the
node's PsiWorkers (worker processes for large sets, and this agency's own hashed points cached
between checks).

The answering node cannot tell an honest initiator from one that blinds each point with its own
secret and so learns, value by value, which of the points it sent this node holds
(node/indicators/psi.py says why no proof can rule that out here). It bounds and records what
any initiator can learn: it refuses fewer than ``OverlapLimits.min_items`` points, repeated or
non-canonical points and a check without a stated reason; each peer may ask at most
``checks_per_day`` checks and ``items_per_day`` points in 24 hours, counted atomically with
consented reveals; and every answered check appends an ``overlap.answered`` leaf to this node's
audit log, committing to the digest of the points, their number and the stated reason.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from sqlmodel import Session

from node.audit.leaf import OVERLAP_ANSWERED, OpeningName, PublicFields, hour_of
from node.errors import ComityError, ErrorKind, PeerIdentityError, UnknownAgencyError
from node.ids import AgencyId
from node.indicators.psi import (
    OverlapError,
    check_distinct,
    check_reason,
    check_size,
    input_digest,
    item_bytes,
    new_secret,
    shared_count,
)
from node.indicators.psi_workers import PsiWorkers
from node.members import Directory, Member, member_by_certificate
from node.services.audit import append_leaf
from node.storage import indicator_repo as repo
from node.storage.database import Database
from node.storage.engine import transaction

DAY_MS = 24 * 3600 * 1000


class OverlapTransport(Protocol):
    async def count_overlap(
        self, member: Member, points: list[bytes], reason: str
    ) -> tuple[str, list[bytes], list[bytes]]: ...


class OverlapLimitError(ComityError):
    kind = ErrorKind.OVERLOADED
    code = "overlap_limit"


class OverlapTooSmallError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "overlap_too_small"


@dataclass(frozen=True, kw_only=True)
class OverlapLimits:
    """What one peer may ask this node for in 24 hours, and the smallest check it answers."""

    checks_per_day: int
    items_per_day: int
    min_items: int

    def take(self, session: Session, *, requester: AgencyId, items: int, now_ms: int) -> None:
        """Count a check (or reveal) of ``items`` points against ``requester``'s limits, in
        the caller's transaction.

        Raises:
            OverlapLimitError: the checks or the items of the last 24 hours would pass a limit
                (the caller's transaction must then roll back, which uncounts it).
        """
        used = repo.take_overlap_check(
            session, requester=requester, items=items, now_ms=now_ms, since_ms=now_ms - DAY_MS
        )
        if used.checks > self.checks_per_day:
            raise OverlapLimitError(
                f"{requester} has asked for {self.checks_per_day} overlap checks in 24 hours, "
                "the limit"
            )
        if used.items > self.items_per_day:
            raise OverlapLimitError(
                f"{requester} has asked about {used.items - items} items in 24 hours; "
                f"{items} more would pass the limit of {self.items_per_day}"
            )


@dataclass(frozen=True)
class OverlapResult:
    agency: AgencyId
    mine: int
    theirs: int
    shared: int
    check_id: str
    """The id under which the answering node logged the check (``overlap.answered``)."""


@dataclass(frozen=True)
class OverlapAnswer:
    check_id: str
    doubled: list[bytes]
    mine: list[bytes]


class OverlapService:
    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        transport: OverlapTransport,
        agency_id: AgencyId,
        clock: Callable[[], int],
        limits: OverlapLimits,
        psi: PsiWorkers,
    ) -> None:
        self._database = database
        self._directory = directory
        self._transport = transport
        self._me = agency_id
        self._clock = clock
        self._limits = limits
        self._psi = psi

    async def check(
        self, agency: AgencyId, set_ids: list[str] | None = None, *, reason: str
    ) -> OverlapResult:
        """Raises: UnknownAgencyError, OverlapError (no reason, or an answer that breaks the
        protocol), PeerUnavailableError, PeerRejectedError (e.g. the peer's limits)."""
        member = self._directory.find(agency)
        if member is None or agency == self._me:
            raise UnknownAgencyError(f"{agency} is not another federation member")
        reason = check_reason(reason)
        items = await self._own_items(set_ids)
        secret = new_secret()
        blinded = await asyncio.to_thread(self._psi.blind_items, items, secret)
        check_id, doubled, theirs = await self._transport.count_overlap(member, blinded, reason)
        if len(doubled) != len(blinded):
            raise OverlapError(f"{agency} answered {len(doubled)} points for {len(blinded)}")
        # Counting needs no order, so no sort.
        theirs_doubled = await asyncio.to_thread(self._psi.reblind_each, theirs, secret)
        return OverlapResult(
            agency=agency,
            mine=len(items),
            theirs=len(theirs),
            shared=shared_count(doubled, theirs_doubled),
            check_id=check_id,
        )

    async def answer(
        self, points: list[bytes], *, reason: str, peer_fingerprint: str | None
    ) -> OverlapAnswer:
        """The caller's points blinded again, and this agency's own blinded points, once the
        check is counted against the caller's limits; logged before it is returned.

        Raises:
            PeerIdentityError: the TLS client is not a member.
            OverlapError: no reason; an invalid, repeated or non-canonical point; too many.
            OverlapTooSmallError: fewer points than the smallest check this node answers.
            OverlapLimitError: the caller's checks or items of the last 24 hours are used up.
        """
        requester = member_by_certificate(self._directory, peer_fingerprint)
        if requester.agency_id == self._me:
            raise PeerIdentityError("the TLS client is not another federation member")
        reason = check_reason(reason)
        check_size(points)
        if len(points) < self._limits.min_items:
            raise OverlapTooSmallError(
                f"this node answers overlap checks of at least {self._limits.min_items} items: "
                "a count over fewer is close to asking about single values"
            )
        check_distinct(points)
        await self._database.run(partial(self._take, requester.agency_id, len(points)))
        items = await self._own_items(None)
        secret = new_secret()
        doubled = await asyncio.to_thread(self._psi.reblind, points, secret)
        mine = await asyncio.to_thread(self._psi.blind_items, items, secret)
        check_id = await self._database.run(
            partial(
                log_answer,
                self._database,
                asker=requester.agency_id,
                me=self._me,
                points=points,
                reason=reason,
                now_ms=self._clock(),
            )
        )
        return OverlapAnswer(check_id=check_id, doubled=doubled, mine=mine)

    def _take(self, requester: AgencyId, items: int) -> None:
        with transaction(self._database.engine) as session:
            self._limits.take(session, requester=requester, items=items, now_ms=self._clock())

    async def _own_items(self, set_ids: list[str] | None) -> list[bytes]:
        def load() -> list[bytes]:
            with transaction(self._database.engine) as session:
                pairs = repo.own_live_indicators(
                    session, owner=self._me, set_ids=set_ids, now_ms=self._clock()
                )
            return [item_bytes(kind, value) for kind, value in pairs]

        return await self._database.run(load)


def log_answer(
    database: Database,
    *,
    asker: AgencyId,
    me: AgencyId,
    points: Sequence[bytes],
    reason: str,
    now_ms: int,
) -> str:
    """Append the ``overlap.answered`` leaf of a check (or reveal) this node answered; return
    the check's new random id. Public: the two agencies and the hour; committed: the exact
    time, the digest of the asker's points, their number and the asker's reason."""
    check_id = str(uuid.uuid4())
    public = PublicFields(
        event=OVERLAP_ANSWERED,
        request_type="",
        legal_basis="",
        sender=asker,
        recipient=me,
        exchange_id=check_id,
        hour=hour_of(now_ms),
    )
    sensitive = {
        OpeningName.EXACT_TIME_MS: str(now_ms),
        OpeningName.INPUT_DIGEST: input_digest(points).hex(),
        OpeningName.ITEMS: str(len(points)),
        OpeningName.JUSTIFICATION: reason,
    }
    with transaction(database.engine) as session:
        append_leaf(session, public, sensitive, now_ms=now_ms)
    return check_id
