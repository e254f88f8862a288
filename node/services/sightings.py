# SPDX-License-Identifier: Apache-2.0
"""Sightings and false positives flow back to an indicator set's owner.

An agency holding a set it received reports, for one indicator of it, that it saw it
(``seen``) or that it proved wrong (``false_positive``), with an optional short note. The
report is signed by the reporter, kept in its database in the transaction that decided to
send it, and sent to the owner until the owner has it (node/services/sighting_reports.py).
The owner's node checks that the TLS client is the reporter, the reporter's signature with
the directory's keys, that the set is its own, that the reporter was given the set, and that
the set holds the indicator, then stores the report once (a resent one is acknowledged, not
stored again). Logs name ids and agencies, never a value or a note.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from node.crypto.keys import AgencyKeys
from node.errors import NotFoundError, PeerIdentityError, ReplayError, UnknownAgencyError
from node.ids import AgencyId
from node.indicators.sets import IndicatorError, IndicatorSet
from node.indicators.sightings import (
    NotInSetError,
    Sighting,
    SightingKind,
    SightingRefusedError,
    sign_sighting,
    verify_sighting,
)
from node.indicators.tlp import Tlp, may_hold
from node.members import Directory, Member
from node.services.outbox import OwedState
from node.services.set_offers import OfferSettings
from node.services.sighting_reports import SentReport, SightingReports, SightingTransport
from node.storage import indicator_repo, sighting_repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import IndicatorSetRow, IndicatorSighting

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class StoredSighting:
    sighting: Sighting
    received_at_ms: int


class SightingService:
    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        keys: Callable[[], AgencyKeys],
        transport: SightingTransport,
        agency_id: AgencyId,
        clock: Callable[[], int],
        reports: OfferSettings | None = None,
    ) -> None:
        self._database = database
        self._directory = directory
        self._keys = keys
        self._me = agency_id
        self._clock = clock
        self.reports = SightingReports(
            database=database,
            directory=directory,
            transport=transport,
            clock=clock,
            settings=reports or OfferSettings(owner=f"{agency_id}/{uuid.uuid4().hex}"),
        )

    # --- at the reporter -------------------------------------------------------------------------

    async def report(
        self,
        set_id: str,
        *,
        indicator: tuple[str, str],
        kind: SightingKind,
        note: str | None = None,
    ) -> SentReport:
        """Sign a report about ``indicator`` (type, value) of a set this node received, keep
        it, and send it to the set's owner. An owner that cannot take it now gets it from the
        background loop: the result is then pending.

        Raises:
            NotFoundError: no such set here.
            IndicatorError: the set is this agency's own, or revoked.
            NotInSetError: the set does not hold the indicator.
            UnknownAgencyError: the set's owner is not a federation member.
            FormValidationError, SightingError: a bad value or note.
            PeerRejectedError: the owner refused it for good (the reason is kept).
        """
        sighting_id = await self._database.run(
            lambda: self._record(set_id, indicator=indicator, kind=kind, note=note)
        )
        result = await self.reports.attempt(sighting_id)
        if result.state is OwedState.FAILED and result.error is not None:
            raise result.error
        sent = await self.reports.get(sighting_id)
        if sent is None:  # rows are never deleted; say so if it happens
            raise NotFoundError(f"sighting report {sighting_id} vanished")
        return sent

    def _record(
        self, set_id: str, *, indicator: tuple[str, str], kind: SightingKind, note: str | None
    ) -> str:
        """Decide to send a report and keep it signed, in one transaction: a report is never
        made without being kept, nor kept about a set or an indicator this node lacks."""
        with transaction(self._database.engine) as session:
            row = self._held_set(session, set_id)
            sighting = Sighting.new(
                set_id=set_id,
                owner=row.owner,
                reporter=self._me,
                kind=kind,
                indicator=indicator,
                note=note,
                at_ms=self._clock(),
            )
            if not sighting_repo.holds_indicator(
                session, set_id=set_id, kind=sighting.type, value=sighting.value
            ):
                raise NotInSetError(f"set {set_id} holds no such {sighting.type} indicator")
            if self._directory.find(row.owner) is None:
                raise UnknownAgencyError(f"the set's owner {row.owner} is not a federation member")
            document = sighting.to_bytes()
            signature = sign_sighting(document, self._keys().signing)
            self.reports.owe(session, sighting, document, signature)
        _LOG.info(
            "%s report %s on set %s made for %s",
            kind.value,
            sighting.sighting_id,
            set_id,
            row.owner,
        )
        return sighting.sighting_id

    def _held_set(self, session: Session, set_id: str) -> IndicatorSetRow:
        row = indicator_repo.get_set(session, set_id)
        if row is None:
            raise NotFoundError(f"no indicator set {set_id} at this node")
        if row.owner == self._me:
            raise IndicatorError(f"set {set_id} is this agency's own: reports go to an owner")
        if row.revoked:
            raise IndicatorError(f"set {set_id} is revoked")
        return row

    # --- at the owner ----------------------------------------------------------------------------

    async def receive(self, document: bytes, signature: bytes, *, peer: Member) -> bool:
        """Check and store a report the member ``peer`` sends; False when it is here already.

        Raises:
            PeerIdentityError: the peer is not the report's reporter.
            SightingError, SightingSignatureError: a malformed or badly signed report.
            SightingRefusedError: not this node's set, or the reporter was never given it.
            NotFoundError, NotInSetError: no such set of this agency's, or no such indicator.
            ReplayError: the report's id was used before for another report.
        """
        claimed = Sighting.from_bytes(document)
        if claimed.reporter != peer.agency_id:
            raise PeerIdentityError(
                f"the report is {claimed.reporter}'s but the TLS client is {peer.agency_id}"
            )
        sighting = verify_sighting(document, signature, list(peer.signing_keys.values()))
        if sighting.owner != self._me:
            raise SightingRefusedError(
                f"reports go to a set's owner: this node is {self._me}, not {sighting.owner}"
            )
        stored = await self._database.run(lambda: self._store(sighting, document, signature))
        if stored:
            _LOG.info(
                "%s report %s on set %s stored from %s",
                sighting.kind.value,
                sighting.sighting_id,
                sighting.set_id,
                sighting.reporter,
            )
        return stored

    def _store(self, sighting: Sighting, document: bytes, signature: bytes) -> bool:
        with transaction(self._database.engine) as session:
            existing = sighting_repo.get_sighting(session, sighting.sighting_id)
            if existing is not None:
                if existing.document != document:
                    raise ReplayError(f"report id {sighting.sighting_id} was used for another")
                return False
            self._check_reportable(session, sighting)
            sighting_repo.save_sighting(
                session, sighting, document=document, signature=signature, now_ms=self._clock()
            )
            return True

    def _check_reportable(self, session: Session, sighting: Sighting) -> None:
        row = indicator_repo.get_set(session, sighting.set_id)
        if row is None or row.owner != self._me or row.received_from is not None:
            raise NotFoundError(f"this agency owns no indicator set {sighting.set_id}")
        if not _was_given(session, row, sighting.reporter):
            raise SightingRefusedError(f"set {row.set_id} was not shared with {sighting.reporter}")
        if not sighting_repo.holds_indicator(
            session, set_id=row.set_id, kind=sighting.type, value=sighting.value
        ):
            raise NotInSetError(f"set {row.set_id} holds no such {sighting.type} indicator")

    # --- reading ---------------------------------------------------------------------------------

    async def list_for(self, set_id: str) -> list[StoredSighting]:
        """The reports this node stored about ``set_id`` (only an owner stores any).

        Raises:
            NotFoundError: no such set here.
        """

        def load() -> list[IndicatorSighting]:
            with transaction(self._database.engine) as session:
                self._known_set(session, set_id)
                return sighting_repo.sightings_of(session, set_id)

        rows = await self._database.run(load)
        return [
            StoredSighting(
                sighting=Sighting.from_bytes(r.document), received_at_ms=r.received_at_ms
            )
            for r in rows
        ]

    async def sent_about(self, set_id: str) -> list[SentReport]:
        """The reports this node made about ``set_id`` (a set it received), with where each
        one's delivery to the owner stands.

        Raises:
            NotFoundError: no such set here.
        """

        def check() -> None:
            with transaction(self._database.engine) as session:
                self._known_set(session, set_id)

        await self._database.run(check)
        return await self.reports.sent_about(set_id)

    @staticmethod
    def _known_set(session: Session, set_id: str) -> None:
        if indicator_repo.get_set(session, set_id) is None:
            raise NotFoundError(f"no indicator set {set_id} at this node")


def _was_given(session: Session, row: IndicatorSetRow, reporter: str) -> bool:
    """Could ``reporter`` hold the set, given whom this node shared it with?"""
    return may_hold(
        Tlp(row.tlp),
        reporter,
        given_to=lambda: {s.recipient for s in indicator_repo.shares_of(session, row.set_id)},
        clients=lambda: IndicatorSet.from_bytes(row.document).clients,
    )
