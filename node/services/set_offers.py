# SPDX-License-Identifier: Apache-2.0
"""Durable delivery of indicator sets: nothing owed is lost, revocations propagate.

A set version owed to an agency (a share, or a tombstone following the set) is written as an
``indicator_offer`` row in the transaction that caused it, then offered at once. An agency
that cannot be reached keeps its row pending, and :meth:`SetOffers.run` offers it again with
exponential backoff (the request outbox's :class:`RetryPolicy`) until the agency acknowledges,
answers that it already holds that version or a newer one, or refuses it for good (the reason
is kept). Offers are always of the newest version held here, so a version made while an
older one waited replaces it. Replicas sharing a database claim due rows under a lease; were
two to offer the same version anyway, the receiver stores it once and answers both alike.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from sqlmodel import Session

from node.errors import ComityError, ErrorKind, PeerRejectedError, UnknownAgencyError
from node.indicators.sets import IndicatorSet
from node.indicators.tlp import TlpEgressError
from node.members import Directory, Member
from node.services.delivery import RETRYABLE, RetryPolicy
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


class OfferState(Enum):
    DELIVERED = "delivered"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class OfferResult:
    """How one attempt ended: delivered, pending (retried later) or failed for good."""

    state: OfferState
    error: ComityError | None = None


@dataclass(frozen=True, kw_only=True)
class SetDelivery:
    """Where a set stands with one agency: the version it holds from this node, and the one
    still owed to it (or refused for good) with the last error."""

    recipient: str
    delivered_version: int | None
    state: OfferState
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


async def resend_forever(
    resend_due: Callable[[], Awaitable[int]], *, batch: int, interval_s: float, what: str
) -> None:
    """Run ``resend_due`` every ``interval_s``, and at once again while it filled a batch; a
    database that cannot be reached is logged and tried again at the next round."""
    while True:
        made = 0
        try:
            made = await resend_due()
        except ComityError as e:
            _LOG.warning("cannot claim %s: %s", what, e.code)
        if made < batch:
            await asyncio.sleep(interval_s)


EgressCheck = Callable[[IndicatorSet, str], None]
"""Raises TlpEgressError when the set's label does not let this node send it to the agency."""


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
        self._directory = directory
        self._transport = transport
        self._clock = clock
        self._settings = settings
        self._check = check
        self._rng = random.Random()  # noqa: S311 (jitter, not secrets)

    # --- owing, in the caller's transaction ---------------------------------------------------

    def owe(self, session: Session, set_id: str, recipients: Sequence[str], version: int) -> None:
        """Record ``version`` as owed to each of ``recipients``, claimed by this replica for
        the attempt its caller makes right after the commit."""
        now = self._clock()
        claim = (self._settings.owner, now + self._settings.lease_ms)
        for recipient in recipients:
            offer_repo.owe(
                session,
                set_id=set_id,
                recipient=recipient,
                version=version,
                now_ms=now,
                claim=claim,
            )

    def owe_followers(self, session: Session, set_id: str, version: int) -> list[str]:
        """A new version that must follow the set (a tombstone): owed to every agency the set
        went to or is still owed to. Returns those agencies."""
        recipients = offer_repo.followers(session, set_id)
        self.owe(session, set_id, recipients, version)
        return recipients

    # --- attempts --------------------------------------------------------------------------------

    async def attempt(self, set_id: str, recipient: str) -> OfferResult:
        """Offer the newest version held here to ``recipient`` and record the outcome."""
        row = await self._database.run(lambda: self._load(set_id))
        if row is None:
            return OfferResult(state=OfferState.FAILED)
        try:
            await self._offer(row, recipient)
        except ComityError as e:
            return await self._record_failure(row, recipient, e)
        except Exception:  # noqa: BLE001 (one bad offer must not stop the others)
            _LOG.exception("offering indicator set %s to %s failed unexpectedly", set_id, recipient)
            error = UnexpectedOfferError("unexpected error; see the log")
            return await self._record_failure(row, recipient, error)
        await self._record_delivered(row, recipient)
        return OfferResult(state=OfferState.DELIVERED)

    async def attempt_all(self, set_id: str, recipients: Sequence[str]) -> None:
        await asyncio.gather(*(self.attempt(set_id, r) for r in recipients))

    def _load(self, set_id: str) -> IndicatorSetRow | None:
        with transaction(self._database.engine) as session:
            return indicator_repo.get_set(session, set_id)

    async def _offer(self, row: IndicatorSetRow, recipient: str) -> None:
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

    async def _record_delivered(self, row: IndicatorSetRow, recipient: str) -> None:
        def record() -> None:
            with transaction(self._database.engine) as session:
                offer_repo.mark_delivered(
                    session,
                    set_id=row.set_id,
                    recipient=recipient,
                    version=row.version,
                    now_ms=self._clock(),
                )

        await self._database.run(record)
        _LOG.info("indicator set %s version %d passed to %s", row.set_id, row.version, recipient)

    async def _record_failure(
        self, row: IndicatorSetRow, recipient: str, error: ComityError
    ) -> OfferResult:
        retry = error.kind in RETRYABLE
        _LOG.warning(
            "indicator set %s version %d not passed to %s (%s)%s",
            row.set_id,
            row.version,
            recipient,
            error.code,
            ", will retry" if retry else ", giving up",
        )
        try:
            await self._database.run(lambda: self._store_failure(row, recipient, error, retry))
        except ComityError as e:
            # The row stays claimed until its lease runs out, then it is tried again.
            _LOG.warning("cannot record the offer of set %s: %s", row.set_id, e.code)
        return OfferResult(state=OfferState.PENDING if retry else OfferState.FAILED, error=error)

    def _store_failure(
        self, row: IndicatorSetRow, recipient: str, error: ComityError, retry: bool
    ) -> None:
        now, reason = self._clock(), error.diagnostics()
        with transaction(self._database.engine) as session:
            if not retry:
                offer_repo.mark_failed(
                    session,
                    set_id=row.set_id,
                    recipient=recipient,
                    version=row.version,
                    now_ms=now,
                    error=reason,
                )
                return
            offer = session.get(IndicatorOffer, (row.set_id, recipient))
            offer_repo.schedule_retry(
                session,
                set_id=row.set_id,
                recipient=recipient,
                version=row.version,
                now_ms=now,
                delay_ms=self._settings.retry.delay_ms(offer.attempts if offer else 0, self._rng),
                error=reason,
            )

    # --- the background loop -----------------------------------------------------------------

    async def resend_due(self) -> int:
        """Claim the offers that are due and make them; returns how many were made."""
        now = self._clock()

        def claim() -> list[tuple[str, str]]:
            with transaction(self._database.engine) as session:
                rows = leased.claim_due(
                    session,
                    IndicatorOffer,
                    owner=self._settings.owner,
                    now_ms=now,
                    lease_ms=self._settings.lease_ms,
                    limit=self._settings.batch,
                )
                return [(row.set_id, row.recipient) for row in rows]

        due = await self._database.run(claim)
        await asyncio.gather(*(self.attempt(set_id, recipient) for set_id, recipient in due))
        return len(due)

    async def counts(self) -> tuple[int, int]:
        """How many set versions are owed to agencies and waiting, and how many failed for good
        (for ``comity node status``)."""

        def load() -> tuple[int, int]:
            with transaction(self._database.engine) as session:
                return leased.pending_and_failed(session, IndicatorOffer)

        return await self._database.run(load)

    async def run(self, interval_s: float) -> None:
        """Re-offer due versions every ``interval_s`` (at once again while a batch was full)."""
        await resend_forever(
            self.resend_due,
            batch=self._settings.batch,
            interval_s=interval_s,
            what="indicator set offers",
        )

    # --- reading ---------------------------------------------------------------------------------

    @staticmethod
    def deliveries(session: Session, set_id: str) -> tuple[SetDelivery, ...]:
        """Per agency: the version delivered, and any version still owed or refused."""
        delivered = {s.recipient: s.version for s in indicator_repo.shares_of(session, set_id)}
        offers = {o.recipient: o for o in offer_repo.offers_of(session, set_id)}
        return tuple(
            _delivery(recipient, delivered.get(recipient), offers.get(recipient))
            for recipient in sorted(delivered.keys() | offers.keys())
        )


def _delivery(recipient: str, delivered: int | None, offer: IndicatorOffer | None) -> SetDelivery:
    if offer is None or offer.status == leased.DELIVERED:
        return SetDelivery(
            recipient=recipient, delivered_version=delivered, state=OfferState.DELIVERED
        )
    return SetDelivery(
        recipient=recipient,
        delivered_version=delivered,
        state=OfferState(offer.status),
        owed_version=offer.version,
        attempts=offer.attempts,
        last_error=offer.last_error,
        next_attempt_at_ms=offer.next_attempt_at_ms if offer.status == leased.PENDING else None,
    )
