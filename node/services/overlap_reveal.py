# SPDX-License-Identifier: Apache-2.0
"""Consented reveals: which of its own indicators another agency also holds, never more.

An overlap check (node/services/overlap.py) tells the asker only how many of its own
indicators coincide with the other agency's. To learn which, the asker signs a reveal request
(node/indicators/reveal.py) naming the other agency, its own sets the reveal covers, how many
items it will send, and why; the other agency's node verifies it against the TLS client and the
directory and keeps it pending until a person there consents or refuses. With consent, the
asker runs the private set intersection in reveal mode: the answering node raises the asker's
points in the order they came, so the asker learns which of *its own* items are shared (and the
other side's set size, as in a count); the answering node learns only how many points came.
Neither side learns anything about the other's items outside the intersection.

What stops an asker from testing guesses (every phone number of a prefix) instead of its own
indicators: the person who consents sees how many items the request covers and why; the node
refuses any other number of points than the request stated, and any request over
``MAX_REVEAL_ITEMS``; a consent answers exactly one reveal, before the request expires; every
reveal counts against the per-peer daily limit ``indicators.overlap_checks_per_day`` shared with
overlap checks; and at most ``MAX_WAITING_PER_PEER`` requests of a peer wait for a decision.

Values never leave this module except to the asker's own user (its own indicators), and are
never stored with a reveal: the asker keeps how many matched. The reason travels signed and
stays in both nodes' databases for the decision; neither the reason nor a value is logged.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from sqlmodel import Session

from node.crypto.keys import AgencyKeys
from node.errors import (
    ComityError,
    ErrorKind,
    FreshnessError,
    MisaddressedError,
    PeerIdentityError,
    ReplayError,
    UnknownAgencyError,
)
from node.ids import AgencyId
from node.indicators.psi import OverlapError, item_bytes, new_secret
from node.indicators.psi_workers import PsiWorkers
from node.indicators.reveal import (
    MAX_REVEAL_ITEMS,
    RevealRequest,
    RevealRequestError,
    matched_positions,
    sign_request,
    verify_request,
)
from node.members import Directory, Member
from node.services.overlap import DAY_MS, OverlapLimitError
from node.storage import indicator_repo, reveal_repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import OverlapReveal

DEFAULT_VALID_MS = 3 * DAY_MS
CLOCK_SKEW_MS = 5 * 60 * 1000
MAX_WAITING_PER_PEER = 20
_OPEN = ("asked", "pending", "consented")


class RevealTransport(Protocol):
    async def ask_reveal(self, member: Member, document: bytes, signature: bytes) -> None: ...

    async def reveal_overlap(
        self, member: Member, request_id: str, points: list[bytes]
    ) -> tuple[list[bytes], list[bytes]]: ...


class UnknownRevealError(ComityError):
    kind = ErrorKind.NOT_FOUND
    code = "unknown_reveal_request"


class RevealDeniedError(ComityError):
    """A reveal without a valid consent: none, refused, used, expired, or another asker's."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "reveal_denied"


class RevealStateError(ComityError):
    """A local step that does not fit the request's state (decided, revealed, expired)."""

    kind = ErrorKind.PRECONDITION
    code = "reveal_state"


class RevealWaitingLimitError(ComityError):
    kind = ErrorKind.OVERLOADED
    code = "reveal_limit"


@dataclass(frozen=True)
class RevealView:
    request: RevealRequest
    direction: str
    state: str
    """As stored, or ``expired`` for an open request past its expiry."""
    decided_at_ms: int | None
    shared: int | None


@dataclass(frozen=True)
class RevealResult:
    agency: AgencyId
    request_id: str
    mine: int
    theirs: int
    matches: list[tuple[str, str]]
    """(type, canonical value) of this agency's own indicators the other agency also holds."""


class RevealService:
    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        keys: Callable[[], AgencyKeys],
        transport: RevealTransport,
        agency_id: AgencyId,
        clock: Callable[[], int],
        checks_per_day: int,
        psi: PsiWorkers,
    ) -> None:
        self._database = database
        self._directory = directory
        self._keys = keys
        self._transport = transport
        self._me = agency_id
        self._clock = clock
        self._checks_per_day = checks_per_day
        self._psi = psi

    # --- the asking agency -----------------------------------------------------------------------

    async def ask(
        self, agency: AgencyId, reason: str, set_ids: list[str], *, valid_ms: int = DEFAULT_VALID_MS
    ) -> RevealView:
        """Sign a reveal request for this agency's own items (in ``set_ids``, or all its live
        sets) and send it to ``agency``; keep it as ``asked``.

        Raises:
            UnknownAgencyError: ``agency`` is not another member.
            RevealRequestError: a named set is not one of this agency's live sets, there are no
                items, too many, or a field breaks its rule (an empty reason …).
            PeerUnavailableError, PeerRejectedError: the other node did not take it.
        """
        member = self._other_member(agency)
        items = await self._own_items(set_ids)
        request = RevealRequest.new(
            requester=self._me,
            responder=agency,
            set_ids=set_ids,
            items=len(items),
            reason=reason,
            now_ms=self._clock(),
            valid_ms=valid_ms,
        )
        document, signature = sign_request(request, self._keys().signing)
        await self._transport.ask_reveal(member, document, signature)
        row = _row(request, document, signature, direction="outbound", state="asked")
        await self._database.run(partial(self._insert, row))
        return self._view(row)

    async def reveal(self, request_id: str) -> RevealResult:
        """Run the consented reveal of an ``asked`` request.

        Raises:
            UnknownRevealError: no request of this agency's has that id.
            RevealStateError: already revealed, expired, or this agency's items changed count.
            PeerRejectedError: the other node refused (no consent, used, its daily limit …).
            PeerUnavailableError: it could not be reached.
            OverlapError: its answer breaks the protocol.
        """
        row = await self._database.run(partial(self._outbound, request_id))
        request = RevealRequest.from_bytes(row.document)
        pairs = await self._pairs(list(request.set_ids))
        if len(pairs) != request.items:
            raise RevealStateError(
                f"this agency's sets now hold {len(pairs)} item(s), the request stated "
                f"{request.items}: ask again"
            )
        # A random order, so the positions the other node sees say nothing about the items.
        random.SystemRandom().shuffle(pairs)
        secret = new_secret()
        points = await asyncio.to_thread(
            self._psi.blind_each, [item_bytes(*p) for p in pairs], secret
        )
        member = self._other_member(request.responder)
        doubled, theirs = await self._transport.reveal_overlap(member, request_id, points)
        if len(doubled) != len(points):
            raise OverlapError(
                f"{request.responder} answered {len(doubled)} points for {len(points)}"
            )
        theirs_doubled = await asyncio.to_thread(self._psi.reblind_each, theirs, secret)
        matches = sorted(pairs[n] for n in matched_positions(doubled, theirs_doubled))
        await self._database.run(partial(self._revealed, request_id, len(matches)))
        return RevealResult(
            agency=request.responder,
            request_id=request_id,
            mine=len(pairs),
            theirs=len(theirs),
            matches=matches,
        )

    # --- the agency asked ------------------------------------------------------------------------

    async def receive(self, document: bytes, signature: bytes, *, peer: Member) -> RevealRequest:
        """Check a request the member ``peer`` sends and keep it ``pending`` for a person to
        decide.

        Raises:
            PeerIdentityError: the peer is this agency, or not the request's requester.
            RevealSignatureError: no listed key of the peer's agency signed it.
            RevealRequestError: a malformed request.
            MisaddressedError: addressed to another agency.
            FreshnessError: expired, or made in the future beyond clock skew.
            ReplayError: the request id is taken by another request.
            RevealWaitingLimitError: too many of the peer's requests wait for a decision.
        """
        client = self._other(peer)
        request = verify_request(document, signature, list(client.signing_keys.values()))
        if request.requester != client.agency_id:
            raise PeerIdentityError("the TLS client is not the reveal request's requester")
        if request.responder != self._me:
            raise MisaddressedError(f"the reveal request is addressed to {request.responder}")
        now = self._clock()
        if request.created_ms > now + CLOCK_SKEW_MS:
            raise FreshnessError("the reveal request was made in the future beyond clock skew")
        if request.expires_ms <= now:
            raise FreshnessError(f"reveal request {request.request_id} has expired")
        row = _row(request, document, signature, direction="inbound", state="pending")
        await self._database.run(partial(self._keep_pending, row, now))
        return request

    async def decide(self, request_id: str, *, consent: bool) -> RevealView:
        """Consent to, or refuse, a pending inbound request.

        Raises:
            UnknownRevealError: no request to this agency has that id.
            RevealStateError: already decided, or expired.
        """
        return await self._database.run(partial(self._decide, request_id, consent))

    async def answer(
        self, request_id: str, points: list[bytes], *, peer: Member
    ) -> tuple[list[bytes], list[bytes]]:
        """The asker's points blinded again in their order, and this agency's own blinded
        points (sorted), once a consent covers exactly this reveal; the consent is used up.

        Raises:
            PeerIdentityError: the peer is this agency.
            RevealDeniedError: no consented, unused, unexpired request of this client's.
            RevealRequestError: not the number of points the request stated.
            OverlapLimitError: the client's daily limit is reached.
            OverlapError: an invalid point.
        """
        client = self._other(peer)
        await self._database.run(
            partial(self._use_consent, request_id, client.agency_id, len(points))
        )
        secret = new_secret()
        doubled = await asyncio.to_thread(self._psi.reblind_each, points, secret)
        items = [item_bytes(*p) for p in await self._pairs([])]
        mine = await asyncio.to_thread(self._psi.blind_items, items, secret)
        return doubled, mine

    # --- both ------------------------------------------------------------------------------------

    async def list_requests(self) -> list[RevealView]:
        def load() -> list[RevealView]:
            with transaction(self._database.engine) as session:
                return [self._view(row) for row in reveal_repo.list_reveals(session)]

        return await self._database.run(load)

    # --- helpers ---------------------------------------------------------------------------------

    def _other_member(self, agency: AgencyId) -> Member:
        member = self._directory.find(agency)
        if member is None or agency == self._me:
            raise UnknownAgencyError(f"{agency} is not another federation member")
        return member

    def _other(self, peer: Member) -> Member:
        if peer.agency_id == self._me:
            raise PeerIdentityError("the TLS client is not another federation member")
        return peer

    async def _own_items(self, set_ids: list[str]) -> list[tuple[str, str]]:
        def check_sets() -> None:
            with transaction(self._database.engine) as session:
                for set_id in set_ids:
                    row = indicator_repo.get_set(session, set_id)
                    if row is None or row.owner != self._me or row.revoked:
                        raise RevealRequestError(
                            f"set {set_id} is not one of this agency's live sets"
                        )

        await self._database.run(check_sets)
        items = await self._pairs(set_ids)
        if not items:
            raise RevealRequestError("there are no live indicators of this agency's to reveal")
        if len(items) > MAX_REVEAL_ITEMS:
            raise RevealRequestError(
                f"a reveal covers at most {MAX_REVEAL_ITEMS} items, these sets hold "
                f"{len(items)}: name fewer sets"
            )
        return items

    async def _pairs(self, set_ids: list[str]) -> list[tuple[str, str]]:
        def load() -> list[tuple[str, str]]:
            with transaction(self._database.engine) as session:
                return indicator_repo.own_live_indicators(
                    session, owner=self._me, set_ids=set_ids or None, now_ms=self._clock()
                )

        return await self._database.run(load)

    def _insert(self, row: OverlapReveal) -> None:
        with transaction(self._database.engine) as session:
            reveal_repo.add_reveal(session, row)

    def _keep_pending(self, row: OverlapReveal, now: int) -> None:
        with transaction(self._database.engine) as session:
            held = reveal_repo.get_reveal(session, row.request_id)
            if held is not None:
                if held.document != row.document or held.direction != "inbound":
                    raise ReplayError(f"reveal request id {row.request_id} is taken")
                return
            waiting = reveal_repo.count_waiting(session, requester=row.requester, now_ms=now)
            if waiting >= MAX_WAITING_PER_PEER:
                raise RevealWaitingLimitError(
                    f"{waiting} reveal requests of {row.requester} wait for a decision"
                )
            reveal_repo.add_reveal(session, row)

    def _decide(self, request_id: str, consent: bool) -> RevealView:
        with transaction(self._database.engine) as session:
            row = self._held(session, request_id, direction="inbound")
            state = self._state(row)
            if state != "pending":
                raise RevealStateError(f"reveal request {request_id} is {state}, not pending")
            row.state = "consented" if consent else "refused"
            row.decided_at_ms = self._clock()
            session.add(row)
            return self._view(row)

    def _outbound(self, request_id: str) -> OverlapReveal:
        with transaction(self._database.engine) as session:
            row = self._held(session, request_id, direction="outbound")
            state = self._state(row)
            if state != "asked":
                raise RevealStateError(
                    f"reveal request {request_id} is {state}; another reveal needs a new request"
                )
            return row

    def _revealed(self, request_id: str, shared: int) -> None:
        with transaction(self._database.engine) as session:
            row = self._held(session, request_id, direction="outbound")
            row.state, row.shared = "revealed", shared
            session.add(row)

    def _use_consent(self, request_id: str, requester: AgencyId, points: int) -> None:
        with transaction(self._database.engine) as session:
            row = reveal_repo.get_reveal(session, request_id, lock=True)
            if row is None or row.direction != "inbound" or row.requester != requester:
                raise RevealDeniedError(f"{requester} has no reveal request {request_id} here")
            state = self._state(row)
            if state != "consented":
                raise RevealDeniedError(_DENIALS.get(state, f"the request is {state}"))
            if points != row.items:
                raise RevealRequestError(
                    f"the reveal request stated {row.items} points; {points} were sent"
                )
            now = self._clock()
            taken = indicator_repo.take_overlap_check(
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
            row.state = "used"
            session.add(row)

    def _held(self, session: Session, request_id: str, *, direction: str) -> OverlapReveal:
        row = reveal_repo.get_reveal(session, request_id, lock=True)
        if row is None or row.direction != direction:
            raise UnknownRevealError(f"no {direction} reveal request {request_id}")
        return row

    def _state(self, row: OverlapReveal) -> str:
        return "expired" if row.state in _OPEN and row.expires_ms <= self._clock() else row.state

    def _view(self, row: OverlapReveal) -> RevealView:
        return RevealView(
            request=RevealRequest.from_bytes(row.document),
            direction=row.direction,
            state=self._state(row),
            decided_at_ms=row.decided_at_ms,
            shared=row.shared,
        )


_DENIALS = {
    "pending": "the reveal request has not been consented to",
    "refused": "the reveal request was refused",
    "used": "the consent was already used for a reveal",
    "expired": "the reveal request has expired",
}


def _row(
    request: RevealRequest, document: bytes, signature: bytes, *, direction: str, state: str
) -> OverlapReveal:
    return OverlapReveal(
        request_id=request.request_id,
        direction=direction,
        requester=request.requester,
        responder=request.responder,
        items=request.items,
        document=document,
        signature=signature,
        created_ms=request.created_ms,
        expires_ms=request.expires_ms,
        state=state,
    )
