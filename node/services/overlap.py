# SPDX-License-Identifier: Apache-2.0
"""Overlap checks: how many of two agencies' own indicators coincide, learned privately.

The initiating agency learns the count (and the other side's set size); the answering agency
learns the initiator's set size; neither learns which indicators matched (node/indicators/psi).
An agency's items are the indicators of its own live sets, not expired; a received set is
someone else's case and never counts. Each peer may ask a node at most
``indicators.overlap_checks_per_day`` times in 24 hours, so nobody tests phone numbers one by
one. The point arithmetic runs off the event loop, on the node's PsiWorkers (worker processes
for large sets, and this agency's own hashed points cached between checks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from node.errors import ComityError, ErrorKind, PeerIdentityError, UnknownAgencyError
from node.ids import AgencyId
from node.indicators.psi import OverlapError, item_bytes, new_secret, shared_count
from node.indicators.psi_workers import PsiWorkers
from node.members import Directory, Member
from node.storage import indicator_repo as repo
from node.storage.database import Database
from node.storage.engine import transaction

DAY_MS = 24 * 3600 * 1000


class OverlapTransport(Protocol):
    async def count_overlap(
        self, member: Member, points: list[bytes]
    ) -> tuple[list[bytes], list[bytes]]: ...


class OverlapLimitError(ComityError):
    kind = ErrorKind.OVERLOADED
    code = "overlap_limit"


@dataclass(frozen=True)
class OverlapResult:
    agency: AgencyId
    mine: int
    theirs: int
    shared: int


class OverlapService:
    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        transport: OverlapTransport,
        agency_id: AgencyId,
        clock: Callable[[], int],
        checks_per_day: int,
        psi: PsiWorkers,
    ) -> None:
        self._database = database
        self._directory = directory
        self._transport = transport
        self._me = agency_id
        self._clock = clock
        self._checks_per_day = checks_per_day
        self._psi = psi

    async def check(self, agency: AgencyId, set_ids: list[str] | None = None) -> OverlapResult:
        """Raises: UnknownAgencyError, PeerUnavailableError, PeerRejectedError (e.g. the
        peer's limit), OverlapError (an answer that breaks the protocol)."""
        member = self._directory.find(agency)
        if member is None or agency == self._me:
            raise UnknownAgencyError(f"{agency} is not another federation member")
        items = await self._own_items(set_ids)
        secret = new_secret()
        blinded = await asyncio.to_thread(self._psi.blind_items, items, secret)
        doubled, theirs = await self._transport.count_overlap(member, blinded)
        if len(doubled) != len(blinded):
            raise OverlapError(f"{agency} answered {len(doubled)} points for {len(blinded)}")
        # Counting needs no order, so no sort.
        theirs_doubled = await asyncio.to_thread(self._psi.reblind_each, theirs, secret)
        return OverlapResult(
            agency=agency,
            mine=len(items),
            theirs=len(theirs),
            shared=shared_count(doubled, theirs_doubled),
        )

    async def answer(self, points: list[bytes], *, peer: Member) -> tuple[list[bytes], list[bytes]]:
        """The points of the member ``peer`` blinded again, and this agency's own blinded
        points.

        Raises:
            PeerIdentityError: the peer is this agency itself.
            OverlapLimitError: it has asked too often in the last 24 hours.
            OverlapError: an invalid point, or too many.
        """
        if peer.agency_id == self._me:
            raise PeerIdentityError("the TLS client is not another federation member")
        await self._database.run(partial(self._count_against_limit, peer.agency_id))
        items = await self._own_items(None)
        secret = new_secret()
        doubled = await asyncio.to_thread(self._psi.reblind, points, secret)
        mine = await asyncio.to_thread(self._psi.blind_items, items, secret)
        return doubled, mine

    def _count_against_limit(self, requester: AgencyId) -> None:
        now = self._clock()
        with transaction(self._database.engine) as session:
            taken = repo.take_overlap_check(
                session,
                requester=requester,
                now_ms=now,
                since_ms=now - DAY_MS,
                limit=self._checks_per_day,
            )
            if taken is None:
                raise OverlapLimitError(
                    f"{requester} has asked for {self._checks_per_day} overlap checks in "
                    "24 hours, the limit"
                )

    async def _own_items(self, set_ids: list[str] | None) -> list[bytes]:
        def load() -> list[bytes]:
            with transaction(self._database.engine) as session:
                pairs = repo.own_live_indicators(
                    session, owner=self._me, set_ids=set_ids, now_ms=self._clock()
                )
            return [item_bytes(kind, value) for kind, value in pairs]

        return await self._database.run(load)
