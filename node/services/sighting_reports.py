# SPDX-License-Identifier: Apache-2.0
"""Durable delivery of sighting reports: a report made is kept until its set's owner has it.

A report is written as a ``sighting_report`` row, signed, in the transaction that decided to
send it, then sent at once. An owner that cannot be reached keeps the row pending, and
:meth:`SightingReports.run` sends it again with exponential backoff (the request outbox's
:class:`RetryPolicy`) until the owner acknowledges it (an acknowledgement that it held the
report already counts) or refuses it for good (the reason is kept). Replicas sharing a
database claim due rows under a lease; were two to send the same report anyway, the owner
stores it once, by its id. Logs name report ids, set ids and agencies, never a value or a note.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import Session

from node.errors import ComityError, ErrorKind, UnknownAgencyError
from node.indicators.sightings import Sighting
from node.members import Directory, Member
from node.services.delivery import RETRYABLE
from node.services.set_offers import OfferResult, OfferSettings, OfferState, resend_forever
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
    state: OfferState
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
        self._directory = directory
        self._transport = transport
        self._clock = clock
        self._settings = settings
        self._rng = random.Random()  # noqa: S311 (jitter, not secrets)

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
            claim=(self._settings.owner, now + self._settings.lease_ms),
        )

    # --- attempts --------------------------------------------------------------------------------

    async def attempt(self, sighting_id: str) -> OfferResult:
        """Send a recorded report to its set's owner and record the outcome."""
        row = await self._database.run(lambda: self._load(sighting_id))
        if row is None:
            return OfferResult(state=OfferState.FAILED)
        try:
            await self._send(row)
        except ComityError as e:
            return await self._record_failure(row, e)
        except Exception:  # noqa: BLE001 (one bad report must not stop the others)
            _LOG.exception("sending sighting report %s failed unexpectedly", sighting_id)
            return await self._record_failure(row, UnexpectedReportError("see the log"))
        await self._record_delivered(row)
        return OfferResult(state=OfferState.DELIVERED)

    def _load(self, sighting_id: str) -> SightingReport | None:
        with transaction(self._database.engine) as session:
            return report_repo.get_report(session, sighting_id)

    async def _send(self, row: SightingReport) -> None:
        member = self._directory.find(row.owner)
        if member is None:
            raise UnknownAgencyError(f"the set's owner {row.owner} is not a federation member")
        await self._transport.report_sighting(member, row.document, row.signature)

    async def _record_delivered(self, row: SightingReport) -> None:
        def record() -> None:
            with transaction(self._database.engine) as session:
                report_repo.mark_delivered(
                    session, sighting_id=row.sighting_id, now_ms=self._clock()
                )

        await self._database.run(record)
        _LOG.info("sighting report %s on set %s sent to %s", row.sighting_id, row.set_id, row.owner)

    async def _record_failure(self, row: SightingReport, error: ComityError) -> OfferResult:
        retry = error.kind in RETRYABLE
        _LOG.warning(
            "sighting report %s on set %s not sent to %s (%s)%s",
            row.sighting_id,
            row.set_id,
            row.owner,
            error.code,
            ", will retry" if retry else ", giving up",
        )
        try:
            await self._database.run(lambda: self._store_failure(row, error, retry))
        except ComityError as e:
            # The row stays claimed until its lease runs out, then it is tried again.
            _LOG.warning("cannot record sighting report %s: %s", row.sighting_id, e.code)
        return OfferResult(state=OfferState.PENDING if retry else OfferState.FAILED, error=error)

    def _store_failure(self, row: SightingReport, error: ComityError, retry: bool) -> None:
        now, reason = self._clock(), error.diagnostics()
        with transaction(self._database.engine) as session:
            if not retry:
                report_repo.mark_failed(
                    session, sighting_id=row.sighting_id, now_ms=now, error=reason
                )
                return
            report_repo.schedule_retry(
                session,
                sighting_id=row.sighting_id,
                now_ms=now,
                delay_ms=self._settings.retry.delay_ms(row.attempts, self._rng),
                error=reason,
            )

    # --- the background loop -----------------------------------------------------------------

    async def resend_due(self) -> int:
        """Claim the reports that are due and send them; returns how many were sent."""
        now = self._clock()

        def claim() -> list[str]:
            with transaction(self._database.engine) as session:
                rows = leased.claim_due(
                    session,
                    SightingReport,
                    owner=self._settings.owner,
                    now_ms=now,
                    lease_ms=self._settings.lease_ms,
                    limit=self._settings.batch,
                )
                return [row.sighting_id for row in rows]

        due = await self._database.run(claim)
        await asyncio.gather(*(self.attempt(sighting_id) for sighting_id in due))
        return len(due)

    async def run(self, interval_s: float) -> None:
        """Send due reports every ``interval_s`` (at once again while a batch was full)."""
        await resend_forever(
            self.resend_due,
            batch=self._settings.batch,
            interval_s=interval_s,
            what="sighting reports",
        )

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


def _sent(row: SightingReport) -> SentReport:
    state = OfferState(row.status)
    return SentReport(
        sighting=Sighting.from_bytes(row.document),
        state=state,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at_ms=row.next_attempt_at_ms if state is OfferState.PENDING else None,
    )
