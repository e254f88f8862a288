# SPDX-License-Identifier: Apache-2.0
"""Durable delivery of sighting reports: a report made is kept until its set's owner has it.

A report is written as a ``sighting_report`` row, signed, in the transaction that decided to
send it, then sent at once. An owner that cannot be reached keeps the row pending, and
:meth:`SightingReports.run` sends it again with exponential backoff (the outbox machine of
``services/outbox.py``) until the owner acknowledges it (an acknowledgement that it held the
report already counts) or refuses it for good (the reason is kept). Replicas sharing a
database claim due rows under a lease; were two to send the same report anyway, the owner
stores it once, by its id. Logs name report ids, set ids and agencies, never a value or a note.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import Session

from node.errors import ComityError, ErrorKind, UnknownAgencyError
from node.indicators.sightings import Sighting
from node.members import Directory, Member
from node.services.outbox import AttemptResult, Lease, Outbox, OutboxWorker, OwedState, Wording
from node.services.set_offers import OfferSettings
from node.storage import leased, report_repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import SightingReport

_LOG = logging.getLogger(__name__)


class SightingTransport(Protocol):
    async def report_sighting(self, member: Member, document: bytes, signature: bytes) -> None: ...


class UnexpectedReportError(ComityError):
    """A local fault while sending a report (not the owner's); retried."""

    kind = ErrorKind.INTERNAL
    code = "report_error"


@dataclass(frozen=True, kw_only=True)
class SentReport:
    """A report this node made, and where its delivery to the set's owner stands."""

    sighting: Sighting
    state: OwedState
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at_ms: int | None = None


class SightingReports:
    """Records, sends and re-sends the reports owed to set owners."""

    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        transport: SightingTransport,
        clock: Callable[[], int],
        settings: OfferSettings,
    ) -> None:
        self._database = database
        self._clock = clock
        self._settings = settings
        self._outbox = Outbox(
            Reports(directory=directory, transport=transport),
            database=database,
            clock=clock,
            lease=Lease(owner=settings.owner, lease_ms=settings.lease_ms),
            policy=settings.retry,
            log=_LOG,
        )

    # --- owing, in the caller's transaction ---------------------------------------------------

    def owe(self, session: Session, sighting: Sighting, document: bytes, signature: bytes) -> None:
        """Record a signed report as owed to its set's owner, claimed by this replica for the
        attempt its caller makes right after the commit."""
        now = self._clock()
        report_repo.owe(
            session,
            sighting,
            document=document,
            signature=signature,
            now_ms=now,
            claim=self._outbox.lease.claim(now),
        )

    # --- attempts --------------------------------------------------------------------------------

    async def attempt(self, sighting_id: str) -> AttemptResult:
        """Send a recorded report to its set's owner and record the outcome."""
        row = await self._database.run(lambda: self._load(sighting_id))
        if row is None:
            return AttemptResult(state=OwedState.FAILED)
        return await self._outbox.attempt(row)

    def _load(self, sighting_id: str) -> SightingReport | None:
        with transaction(self._database.engine) as session:
            return report_repo.get_report(session, sighting_id)

    # --- the background loop -----------------------------------------------------------------

    async def resend_due(self) -> int:
        """Claim the reports that are due and send them; returns how many were sent."""
        return await self._outbox.attempt_due(self._settings.batch)

    async def run(self, interval_s: float) -> None:
        """Send due reports, claiming every ``interval_s`` (at once while slots are free)."""
        await OutboxWorker(
            claim=self._outbox.claim,
            attempt=self._outbox.attempt,
            max_in_flight=self._settings.batch,
            poll_interval_s=interval_s,
            what="sighting reports",
            log=_LOG,
        ).run()

    # --- reading ---------------------------------------------------------------------------------

    async def counts(self) -> tuple[int, int]:
        """How many reports still wait for their owner, and how many were refused for good
        (for ``comity node status``)."""

        def load() -> tuple[int, int]:
            with transaction(self._database.engine) as session:
                return leased.pending_and_failed(session, SightingReport)

        return await self._database.run(load)

    async def get(self, sighting_id: str) -> SentReport | None:
        row = await self._database.run(lambda: self._load(sighting_id))
        return None if row is None else _sent(row)

    async def sent_about(self, set_id: str) -> list[SentReport]:
        """The reports this node made about ``set_id``, oldest first."""

        def load() -> list[SightingReport]:
            with transaction(self._database.engine) as session:
                return report_repo.reports_of(session, set_id)

        return [_sent(row) for row in await self._database.run(load)]


class Reports:
    """Sighting reports as a kind of owed item, proved delivered by the owner's answer (an
    acknowledgement that it held the report already counts)."""

    def __init__(self, *, directory: Directory, transport: SightingTransport) -> None:
        self._directory = directory
        self._transport = transport

    def claim_due(
        self, session: Session, *, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[SightingReport]:
        return leased.claim_due(
            session, SightingReport, owner=owner, now_ms=now_ms, lease_ms=lease_ms, limit=limit
        )

    async def attempt(self, item: SightingReport) -> None:
        member = self._directory.find(item.owner)
        if member is None:
            raise UnknownAgencyError(f"the set's owner {item.owner} is not a federation member")
        await self._transport.report_sighting(member, item.document, item.signature)

    def record_delivered(
        self,
        session: Session,
        item: SightingReport,
        proof: None,  # noqa: ARG002 (an acknowledgement carries nothing to keep)
        *,
        now_ms: int,
    ) -> bool:
        report_repo.mark_delivered(session, sighting_id=item.sighting_id, now_ms=now_ms)
        return True

    def record_retry(
        self,
        session: Session,
        item: SightingReport,
        *,
        now_ms: int,
        error: str,
        delay_ms: Callable[[int], int],
    ) -> None:
        report_repo.schedule_retry(
            session,
            sighting_id=item.sighting_id,
            now_ms=now_ms,
            delay_ms=delay_ms(item.attempts),
            error=error,
        )

    def record_failed(
        self, session: Session, item: SightingReport, *, now_ms: int, error: str
    ) -> None:
        report_repo.mark_failed(session, sighting_id=item.sighting_id, now_ms=now_ms, error=error)

    def unexpected(self, item: SightingReport) -> ComityError:  # noqa: ARG002 (same for all)
        return UnexpectedReportError("see the log")

    def wording(self, item: SightingReport) -> Wording:
        about = f"sighting report {item.sighting_id} on set {item.set_id}"
        return Wording(
            attempt=f"sending sighting report {item.sighting_id}",
            failed=f"{about} not sent to {item.owner}",
            delivered=f"{about} sent to {item.owner}",
            record=f"sighting report {item.sighting_id}",
        )


def _sent(row: SightingReport) -> SentReport:
    state = OwedState(row.status)
    return SentReport(
        sighting=Sighting.from_bytes(row.document),
        state=state,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at_ms=row.next_attempt_at_ms if state is OwedState.PENDING else None,
    )
