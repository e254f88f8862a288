# SPDX-License-Identifier: Apache-2.0
"""Durable delivery of indicator sets: nothing owed is lost, revocations propagate.

A set version owed to an agency (a share, or a tombstone following the set) is written as an
``indicator_offer`` row in the transaction that caused it, then offered at once. An agency
that cannot be reached keeps its row pending, and :meth:`SetOffers.run` offers it again with
exponential backoff (the outbox machine of ``services/outbox.py``) until the agency acknowledges,
answers that it already holds that version or a newer one, or refuses it for good (the reason
is kept). Offers are always of the newest version held here, so a version made while an
older one waited replaces it. Replicas sharing a database claim due rows under a lease; were
two to offer the same version anyway, the receiver stores it once and answers both alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlmodel import Session

from node.errors import ComityError, ErrorKind, PeerRejectedError, UnknownAgencyError
from node.ids import AgencyId
from node.indicators.sets import IndicatorSet
from node.indicators.tlp import TlpEgressError
from node.members import Directory, Member
from node.services.outbox import (
    AttemptResult,
    Lease,
    Outbox,
    OutboxWorker,
    OwedState,
    RetryPolicy,
    Wording,
)
from node.storage import indicator_repo, leased, offer_repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import IndicatorOffer, IndicatorSetRow

_LOG = logging.getLogger(__name__)

STALE_CODE = "stale_indicator_set"
"""The receiver's answer when it holds a newer version than the one offered."""


class SetTransport(Protocol):
    async def offer_set(self, member: Member, document: bytes, signature: bytes) -> None: ...


class UnexpectedOfferError(ComityError):
    """A local fault while offering a set (not the peer's); retried."""

    kind = ErrorKind.INTERNAL
    code = "offer_error"


@dataclass(frozen=True, kw_only=True)
class SetDelivery:
    """Where a set stands with one agency: the version it holds from this node, and the one
    still owed to it (or refused for good) with the last error."""

    recipient: AgencyId
    delivered_version: int | None
    state: OwedState
    owed_version: int | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class OfferSettings:
    owner: str
    """Identifies this replica in claims: several replicas may share one database."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease_ms: int = 30_000
    batch: int = 16


EgressCheck = Callable[[IndicatorSet, AgencyId], None]
"""Raises TlpEgressError when the set's label does not let this node send it to the agency."""


@dataclass(frozen=True, kw_only=True)
class OwedOffer:
    """The newest version of a set held here, owed to one agency."""

    row: IndicatorSetRow
    recipient: AgencyId


class SetOffers:
    """Records, offers and re-offers the set versions owed to agencies."""

    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        transport: SetTransport,
        clock: Callable[[], int],
        settings: OfferSettings,
        check: EgressCheck,
    ) -> None:
        self._database = database
        self._clock = clock
        self._settings = settings
        self._outbox = Outbox(
            Offers(directory=directory, transport=transport, check=check),
            database=database,
            clock=clock,
            lease=Lease(owner=settings.owner, lease_ms=settings.lease_ms),
            policy=settings.retry,
            log=_LOG,
        )

    # --- owing, in the caller's transaction ---------------------------------------------------

    def owe(
        self, session: Session, set_id: str, recipients: Sequence[AgencyId], version: int
    ) -> None:
        """Record ``version`` as owed to each of ``recipients``, claimed by this replica for
        the attempt its caller makes right after the commit."""
        now = self._clock()
        claim = self._outbox.lease.claim(now)
        for recipient in recipients:
            offer_repo.owe(
                session,
                set_id=set_id,
                recipient=recipient,
                version=version,
                now_ms=now,
                claim=claim,
            )

    def owe_followers(self, session: Session, set_id: str, version: int) -> list[AgencyId]:
        """A new version that must follow the set (a tombstone): owed to every agency the set
        went to or is still owed to. Returns those agencies."""
        recipients = [AgencyId(a) for a in offer_repo.followers(session, set_id)]
        self.owe(session, set_id, recipients, version)
        return recipients

    # --- attempts --------------------------------------------------------------------------------

    async def attempt(self, set_id: str, recipient: AgencyId) -> AttemptResult:
        """Offer the newest version held here to ``recipient`` and record the outcome."""
        row = await self._database.run(lambda: self._load(set_id))
        if row is None:
            return AttemptResult(state=OwedState.FAILED)
        return await self._outbox.attempt(OwedOffer(row=row, recipient=recipient))

    async def attempt_all(self, set_id: str, recipients: Sequence[AgencyId]) -> None:
        await asyncio.gather(*(self.attempt(set_id, r) for r in recipients))

    def _load(self, set_id: str) -> IndicatorSetRow | None:
        with transaction(self._database.engine) as session:
            return indicator_repo.get_set(session, set_id)

    # --- the background loop -----------------------------------------------------------------

    async def resend_due(self) -> int:
        """Claim the offers that are due and make them; returns how many were made."""
        return await self._outbox.attempt_due(self._settings.batch)

    async def counts(self) -> tuple[int, int]:
        """How many set versions are owed to agencies and waiting, and how many failed for good
        (for ``comity node status``)."""

        def load() -> tuple[int, int]:
            with transaction(self._database.engine) as session:
                return leased.pending_and_failed(session, IndicatorOffer)

        return await self._database.run(load)

    async def run(self, interval_s: float) -> None:
        """Re-offer due versions, claiming every ``interval_s`` (at once while slots free)."""
        await OutboxWorker(
            claim=self._outbox.claim,
            attempt=self._outbox.attempt,
            max_in_flight=self._settings.batch,
            poll_interval_s=interval_s,
            what="indicator set offers",
            log=_LOG,
        ).run()

    # --- reading ---------------------------------------------------------------------------------

    @staticmethod
    def deliveries(session: Session, set_id: str) -> tuple[SetDelivery, ...]:
        """Per agency: the version delivered, and any version still owed or refused."""
        delivered = {s.recipient: s.version for s in indicator_repo.shares_of(session, set_id)}
        offers = {o.recipient: o for o in offer_repo.offers_of(session, set_id)}
        return tuple(
            _delivery(AgencyId(recipient), delivered.get(recipient), offers.get(recipient))
            for recipient in sorted(delivered.keys() | offers.keys())
        )


class Offers:
    """Indicator set offers as a kind of owed item: the newest version, proved delivered when
    the agency takes it or answers that it holds a newer one."""

    def __init__(
        self, *, directory: Directory, transport: SetTransport, check: EgressCheck
    ) -> None:
        self._directory = directory
        self._transport = transport
        self._check = check

    def claim_due(
        self, session: Session, *, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[OwedOffer]:
        rows = leased.claim_due(
            session, IndicatorOffer, owner=owner, now_ms=now_ms, lease_ms=lease_ms, limit=limit
        )
        owed = ((indicator_repo.get_set(session, o.set_id), o.recipient) for o in rows)
        return [OwedOffer(row=row, recipient=AgencyId(to)) for row, to in owed if row is not None]

    async def attempt(self, item: OwedOffer) -> None:
        row, recipient = item.row, item.recipient
        indicator_set = IndicatorSet.from_bytes(row.document)
        try:
            self._check(indicator_set, recipient)
        except TlpEgressError as e:
            _LOG.warning("indicator set %s not passed to %s: %s", row.set_id, recipient, e.message)
            raise
        member = self._directory.find(recipient)
        if member is None:
            raise UnknownAgencyError(f"{recipient} is not a federation member")
        try:
            await self._transport.offer_set(member, row.document, row.signature)
        except PeerRejectedError as e:
            if e.peer_code != STALE_CODE:
                raise
            # The agency holds a newer version (passed on by another holder): nothing owed.

    def record_delivered(
        self,
        session: Session,
        item: OwedOffer,
        proof: None,  # noqa: ARG002 (an acknowledgement carries nothing to keep)
        *,
        now_ms: int,
    ) -> bool:
        row = item.row
        offer_repo.mark_delivered(
            session, set_id=row.set_id, recipient=item.recipient, version=row.version, now_ms=now_ms
        )
        return True

    def record_retry(
        self,
        session: Session,
        item: OwedOffer,
        *,
        now_ms: int,
        error: str,
        delay_ms: Callable[[int], int],
    ) -> None:
        # Left alone when a newer version became owed meanwhile (the version race guard).
        offer = session.get(IndicatorOffer, (item.row.set_id, item.recipient))
        offer_repo.schedule_retry(
            session,
            set_id=item.row.set_id,
            recipient=item.recipient,
            version=item.row.version,
            now_ms=now_ms,
            delay_ms=delay_ms(offer.attempts if offer else 0),
            error=error,
        )

    def record_failed(self, session: Session, item: OwedOffer, *, now_ms: int, error: str) -> None:
        offer_repo.mark_failed(
            session,
            set_id=item.row.set_id,
            recipient=item.recipient,
            version=item.row.version,
            now_ms=now_ms,
            error=error,
        )

    def unexpected(self, item: OwedOffer) -> ComityError:  # noqa: ARG002 (same for all)
        return UnexpectedOfferError("unexpected error; see the log")

    def wording(self, item: OwedOffer) -> Wording:
        row, to = item.row, item.recipient
        return Wording(
            attempt=f"offering indicator set {row.set_id} to {to}",
            failed=f"indicator set {row.set_id} version {row.version} not passed to {to}",
            delivered=f"indicator set {row.set_id} version {row.version} passed to {to}",
            record=f"the offer of set {row.set_id}",
        )


def _delivery(
    recipient: AgencyId, delivered: int | None, offer: IndicatorOffer | None
) -> SetDelivery:
    if offer is None or offer.status == leased.DELIVERED:
        return SetDelivery(
            recipient=recipient, delivered_version=delivered, state=OwedState.DELIVERED
        )
    return SetDelivery(
        recipient=recipient,
        delivered_version=delivered,
        state=OwedState(offer.status),
        owed_version=offer.version,
        attempts=offer.attempts,
        last_error=offer.last_error,
        next_attempt_at_ms=offer.next_attempt_at_ms if offer.status == leased.PENDING else None,
    )
