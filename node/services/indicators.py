# SPDX-License-Identifier: Apache-2.0
"""Indicator sets: created and signed here, passed between nodes only where TLP allows.

Every set leaves this node through ``share`` (or a revocation passed along), and each of
those checks the set's TLP 2.0 label first: a refusal is logged (set id, agency, rule; never a
value) and nothing is sent. A receiving node runs the same check with itself as the recipient
before it stores anything, verifies the owner's signature against the directory, and keeps
only newer versions. A revoked set arrives as a signed tombstone that replaces the indicators,
and is passed on to wherever this node had passed the set. What is owed to an agency is
recorded before it is offered, and offered again until it arrives (node/services/set_offers.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from sqlmodel import Session

from node.crypto.keys import AgencyKeys
from node.errors import (
    ComityError,
    ErrorKind,
    NotFoundError,
    ReplayError,
    UnknownAgencyError,
    UnknownSenderError,
)
from node.ids import AgencyId
from node.indicators.sets import Indicator, IndicatorError, IndicatorSet, sign_set, verify_set
from node.indicators.tlp import NAMED, Tlp, TlpEgressError
from node.members import Directory, Member
from node.services.outbox import OwedState
from node.services.pdq_matcher import PDQ_MAX_DISTANCE, PdqMatch, PdqMatcher
from node.services.set_offers import (
    OfferSettings,
    SetDelivery,
    SetOffers,
    SetTransport,
)
from node.storage import indicator_repo as repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import IndicatorSetRow

_LOG = logging.getLogger(__name__)


class StaleSetError(ComityError):
    kind = ErrorKind.PRECONDITION
    code = "stale_indicator_set"


@dataclass(frozen=True, kw_only=True)
class SetView:
    indicator_set: IndicatorSet
    received_from: str | None
    shared_with: tuple[AgencyId, ...]
    deliveries: tuple[SetDelivery, ...] = ()
    """Per agency the set went or is owed to: the version it holds, any version owed."""


class IndicatorService:
    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        keys: Callable[[], AgencyKeys],
        transport: SetTransport,
        agency_id: AgencyId,
        clock: Callable[[], int],
        offers: OfferSettings | None = None,
    ) -> None:
        self._database = database
        self._directory = directory
        self._keys = keys
        self._transport = transport
        self._me = agency_id
        self._clock = clock
        self._pdq = PdqMatcher(database=database, clock=clock)
        self.offers = SetOffers(
            database=database,
            directory=directory,
            transport=transport,
            clock=clock,
            settings=offers or OfferSettings(owner=f"{agency_id}/{uuid.uuid4().hex}"),
            check=lambda indicator_set, recipient: self._check(
                indicator_set, sender=agency_id, recipient=recipient
            ),
        )

    # --- this agency's sets ------------------------------------------------------------------

    async def create(
        self, *, tlp: str, recipients: Sequence[AgencyId], clients: Mapping[str, Sequence[str]]
    ) -> SetView:
        """Raises: TlpError, IndicatorError (recipients or clients that do not fit the label),
        UnknownAgencyError."""
        label = Tlp.parse(tlp)
        self._check_named(label, recipients, clients)
        created = IndicatorSet(
            set_id=str(uuid.uuid4()),
            owner=self._me,
            version=1,
            tlp=label,
            recipients=tuple(recipients),
            clients={k: tuple(v) for k, v in clients.items()},
            created_ms=self._clock(),
        )
        return await self._database.run(partial(self._store_own, created))

    def _check_named(
        self, label: Tlp, recipients: Sequence[str], clients: Mapping[str, Sequence[str]]
    ) -> None:
        for agency in [*recipients, *(c for group in clients.values() for c in group)]:
            if self._directory.find(agency) is None:
                raise UnknownAgencyError(f"{agency} is not a federation member")
        if label in NAMED and not recipients:
            raise IndicatorError(f"{label.value} names at least one recipient agency")
        if clients and label is not Tlp.AMBER:
            raise IndicatorError("only TLP:AMBER sets declare clients of their recipients")
        if not set(clients) <= set(recipients):
            raise IndicatorError("clients are declared for recipient agencies only")

    async def add(self, set_id: str, indicators: Sequence[Indicator]) -> SetView:
        """A new version with ``indicators`` added (a value already there is replaced).

        Raises: NotFoundError, IndicatorError (not this agency's set, or revoked).
        """

        def change(current: IndicatorSet) -> IndicatorSet:
            merged = {(i.type, i.value): i for i in current.indicators}
            merged.update({(i.type, i.value): i for i in indicators})
            return _next_version(current, indicators=tuple(merged.values()))

        return await self._database.run(lambda: self._change_own(set_id, change))

    async def revoke(self, set_id: str) -> SetView:
        """A signed tombstone replaces the set here and goes to every agency it went to.

        Raises: NotFoundError, IndicatorError (not this agency's set, or revoked already).
        """

        def change(current: IndicatorSet) -> IndicatorSet:
            return _next_version(current, indicators=(), revoked=True)

        view = await self._database.run(lambda: self._change_own(set_id, change, follow=True))
        return await self._pass_on(view.indicator_set.set_id, view.shared_with)

    def _change_own(
        self,
        set_id: str,
        change: Callable[[IndicatorSet], IndicatorSet],
        *,
        follow: bool = False,
    ) -> SetView:
        """Make and sign the next version; with ``follow``, owe it (in the same transaction)
        to every agency the set went to, and list those as the view's ``shared_with``."""
        with transaction(self._database.engine) as session:
            row = repo.get_set(session, set_id, lock=True)
            if row is None:
                raise NotFoundError(f"no indicator set {set_id} at this node")
            current = IndicatorSet.from_bytes(row.document)
            if current.owner != self._me:
                raise IndicatorError(f"set {set_id} belongs to {current.owner}: only it changes it")
            if current.revoked:
                raise IndicatorError(f"set {set_id} is revoked")
            view = self._save_own(session, change(current))
            if not follow:
                return view
            version = view.indicator_set.version
            followers = self.offers.owe_followers(session, set_id, version)
            return SetView(
                indicator_set=view.indicator_set, received_from=None, shared_with=tuple(followers)
            )

    def _store_own(self, created: IndicatorSet) -> SetView:
        with transaction(self._database.engine) as session:
            return self._save_own(session, created)

    def _save_own(self, session: Session, indicator_set: IndicatorSet) -> SetView:
        document = indicator_set.to_bytes()
        signature = sign_set(document, self._keys().signing)
        repo.save_set(
            session,
            indicator_set,
            document=document,
            signature=signature,
            received_from=None,
            now_ms=self._clock(),
        )
        shared = tuple(AgencyId(s.recipient) for s in repo.shares_of(session, indicator_set.set_id))
        return SetView(indicator_set=indicator_set, received_from=None, shared_with=shared)

    # --- reading ------------------------------------------------------------------------------

    async def list_sets(self) -> list[SetView]:
        def load() -> list[SetView]:
            with transaction(self._database.engine) as session:
                return [self._view(session, row) for row in repo.list_sets(session)]

        return await self._database.run(load)

    async def get(self, set_id: str) -> SetView:
        """Raises: NotFoundError."""

        def load() -> SetView:
            with transaction(self._database.engine) as session:
                row = repo.get_set(session, set_id)
                if row is None:
                    raise NotFoundError(f"no indicator set {set_id} at this node")
                return self._view(session, row)

        return await self._database.run(load)

    def _view(self, session: Session, row: IndicatorSetRow) -> SetView:
        shared = tuple(AgencyId(s.recipient) for s in repo.shares_of(session, row.set_id))
        return SetView(
            indicator_set=IndicatorSet.from_bytes(row.document),
            received_from=row.received_from,
            shared_with=shared,
            deliveries=self.offers.deliveries(session, row.set_id),
        )

    async def match_pdq(self, query: str, max_distance: int = PDQ_MAX_DISTANCE) -> list[PdqMatch]:
        """Live PDQ hashes held here within ``max_distance`` bits of ``query``, nearest first
        (an in-memory index, rebuilt when the sets change: node/services/pdq_matcher.py).

        Raises:
            FormValidationError: ``query`` is not a PDQ hash.
            IndicatorError: a distance beyond PDQ's threshold of 31.
        """
        [matches] = await self._pdq.match([query], max_distance)
        return matches

    async def match_pdq_many(
        self, queries: Sequence[str], max_distance: int = PDQ_MAX_DISTANCE
    ) -> list[list[PdqMatch]]:
        """``match_pdq`` for several hashes at once (one freshness check for all).

        Raises:
            FormValidationError, IndicatorError: as for ``match_pdq``; also more than
                MAX_QUERIES hashes.
        """
        return await self._pdq.match(queries, max_distance)

    # --- leaving this node ----------------------------------------------------------------------

    async def share(self, set_id: str, recipient: AgencyId) -> SetView:
        """Pass the set's newest version to ``recipient``, if its label allows. The version is
        recorded as owed before it is offered: if ``recipient`` cannot be reached now, the view
        shows it pending and the node offers it again until it arrives.

        Raises:
            TlpEgressError: the label forbids it (logged; nothing is sent or queued).
            NotFoundError, UnknownAgencyError.
            PeerRejectedError: the recipient refused it for good (the reason is kept).
        """
        row = await self._database.run(lambda: self._row(set_id))
        self._check_egress(row, recipient)
        await self._database.run(lambda: self._owe(set_id, recipient))
        result = await self.offers.attempt(set_id, recipient)
        if result.state is OwedState.FAILED and result.error is not None:
            raise result.error
        return await self.get(set_id)

    def _owe(self, set_id: str, recipient: AgencyId) -> None:
        with transaction(self._database.engine) as session:
            row = repo.get_set(session, set_id, lock=True)
            if row is None:
                raise NotFoundError(f"no indicator set {set_id} at this node")
            self.offers.owe(session, set_id, [recipient], row.version)

    def _row(self, set_id: str) -> IndicatorSetRow:
        with transaction(self._database.engine) as session:
            row = repo.get_set(session, set_id)
            if row is None:
                raise NotFoundError(f"no indicator set {set_id} at this node")
            return row

    def _check_egress(self, row: IndicatorSetRow, recipient: AgencyId) -> None:
        """Refuse at once what no retry could send: a label that forbids it, a non-member."""
        try:
            self._check(IndicatorSet.from_bytes(row.document), sender=self._me, recipient=recipient)
        except TlpEgressError as e:
            _LOG.warning("indicator set %s not passed to %s: %s", row.set_id, recipient, e.message)
            raise
        if self._directory.find(recipient) is None:
            raise UnknownAgencyError(f"{recipient} is not a federation member")

    def _check(self, indicator_set: IndicatorSet, *, sender: AgencyId, recipient: AgencyId) -> None:
        indicator_set.check_passing(
            sender=sender,
            recipient=recipient,
            members={m.agency_id for m in self._directory.members()},
        )

    async def _pass_on(self, set_id: str, recipients: Sequence[AgencyId]) -> SetView:
        """Offer a new version (a tombstone), already recorded as owed, wherever the set went
        before. An agency that cannot be reached now gets it from the background loop."""
        await self.offers.attempt_all(set_id, recipients)
        return await self.get(set_id)

    # --- arriving from a peer --------------------------------------------------------------------

    async def receive(self, document: bytes, signature: bytes, *, peer: Member) -> IndicatorSet:
        """Check and store a set the member ``peer`` offers.

        Raises:
            IndicatorError, IndicatorSignatureError, UnknownSenderError: a bad set.
            TlpEgressError: the label does not let this sender pass it here.
            StaleSetError, ReplayError: an older version, or this version with other content.
        """
        offered = IndicatorSet.from_bytes(document)
        owner = self._directory.find(offered.owner)
        if owner is None:
            raise UnknownSenderError(f"the set's owner {offered.owner} is not a member")
        verify_set(document, signature, list(owner.signing_keys.values()))
        if offered.owner == self._me:
            raise IndicatorError("this node owns the set: it does not take versions from peers")
        self._check(offered, sender=peer.agency_id, recipient=self._me)
        followers = await self._database.run(
            lambda: self._store_received(offered, document, signature, peer.agency_id)
        )
        if followers:
            await self._pass_on(offered.set_id, followers)
        return offered

    def _store_received(
        self, offered: IndicatorSet, document: bytes, signature: bytes, sender: AgencyId
    ) -> list[AgencyId]:
        """Store a newer version; a tombstone is owed, in the same transaction, to every agency
        this node passed the set to. Returns those agencies (none when this version is already
        here)."""
        with transaction(self._database.engine) as session:
            row = repo.get_set(session, offered.set_id, lock=True)
            if row is not None:
                if row.version > offered.version:
                    raise StaleSetError(
                        f"this node holds version {row.version} of set {offered.set_id}"
                    )
                if row.version == offered.version:
                    if row.document != document:
                        raise ReplayError(
                            f"version {row.version} of set {offered.set_id} differs from the "
                            "one held here"
                        )
                    return []
            repo.save_set(
                session,
                offered,
                document=document,
                signature=signature,
                received_from=sender,
                now_ms=self._clock(),
            )
            if not offered.revoked:
                return []
            return self.offers.owe_followers(session, offered.set_id, offered.version)


def _next_version(current: IndicatorSet, **changes: object) -> IndicatorSet:
    fields = {**current.__dict__, "version": current.version + 1, **changes}
    return IndicatorSet(**fields)
