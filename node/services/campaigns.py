# SPDX-License-Identifier: Apache-2.0
"""Campaigns: cases linked by the indicators they share, and alerts to the agencies concerned.

Cases held here (this agency's own indicator sets and those peers shared with it) are linked by
their values (node/indicators/campaigns.py: per-value limit, known-benign list). Another
agency's case that this node cannot see is linked through a private overlap check: only the
count is learned, and the case joins the campaign when the count reaches the linking threshold.

A campaign's id is a UUID that agencies quote to each other, in the ``campaign`` field of any
request form; a campaign alert (spontaneous information, Budapest Art. 26) carries it too. An
agency that receives an alert adopts the campaign under the same id, so both ends list the same
requests under it. An alert carries only the linking values whose sets' TLP labels let them go
to that recipient; the values themselves never reach a log.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import Session

from node.errors import FormValidationError, NotFoundError, UnknownAgencyError
from node.forms.indicators import canonicalize_indicator
from node.forms.registry import alert_type
from node.ids import AgencyId
from node.indicators.campaigns import (
    CAMPAIGN_INDICATOR,
    CampaignError,
    CampaignExistsError,
    LinkRules,
    Value,
    check_name,
    link_cases,
    reference_campaign,
    referenced_campaigns,
)
from node.indicators.sets import IndicatorSet
from node.indicators.tlp import TlpEgressError
from node.members import Directory
from node.model.request import RequestView
from node.services.overlap import OverlapResult
from node.storage import campaign_repo as repo
from node.storage import indicator_repo
from node.storage.database import Database
from node.storage.engine import transaction

MAX_ALERT_INDICATORS = 100
"""The campaign-alert form's limit (schemas/requests/campaign-alert.v1.json)."""
SCANNED_REQUESTS = 10_000
"""How many of the newest requests ``show`` looks through for ones naming the campaign."""


class OverlapChecker(Protocol):
    async def check(
        self, agency: AgencyId, set_ids: list[str] | None = None, *, reason: str
    ) -> OverlapResult: ...


class RequestFiler(Protocol):
    def preview_request(
        self, *, request_type: str, recipient: AgencyId, form_json: bytes, strip: bool = False
    ) -> object: ...

    async def file_request(
        self, *, request_type: str, recipient: AgencyId, form_json: bytes, strip: bool = False
    ) -> RequestView: ...


@dataclass(frozen=True, kw_only=True)
class CaseView:
    kind: str
    """``set``: an indicator set held here; ``agency``: another agency's case, by count only."""
    ref: str
    agency: AgencyId
    shared: int
    linked_at_ms: int


@dataclass(frozen=True, kw_only=True)
class CampaignRequest:
    request_id: str
    request_type: str
    direction: str
    peer: AgencyId
    state: str
    created_at_ms: int
    updated_at_ms: int


@dataclass(frozen=True, kw_only=True)
class CampaignView:
    campaign_id: str
    name: str
    created_at_ms: int
    cases: tuple[CaseView, ...]
    agencies: tuple[AgencyId, ...]
    """The other agencies concerned: owners of linked cases (and, with ``requests``, the
    agencies that sent or received requests naming the campaign)."""
    requests: tuple[CampaignRequest, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Detection:
    campaigns: tuple[CampaignView, ...]
    """Campaigns created or extended."""
    created: tuple[str, ...]
    noisy_values: int
    benign_values: int


@dataclass(frozen=True, kw_only=True)
class AgencyLink:
    overlap: OverlapResult
    linked: bool
    campaign: CampaignView


class CampaignService:
    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        overlap: OverlapChecker,
        requests: RequestFiler,
        agency_id: AgencyId,
        clock: Callable[[], int],
        rules: LinkRules,
    ) -> None:
        self._database = database
        self._directory = directory
        self._overlap = overlap
        self._requests = requests
        self._me = agency_id
        self._clock = clock
        self._rules = rules

    # --- making and linking -----------------------------------------------------------------

    async def create(self, name: str, campaign_id: str | None = None) -> CampaignView:
        """A new campaign, or one adopted under the id another agency gave it.

        Raises: CampaignError (bad name), FormValidationError (not a UUID), CampaignExistsError.
        """
        label = check_name(name)
        chosen = (
            str(uuid.uuid4())
            if campaign_id is None
            else canonicalize_indicator(CAMPAIGN_INDICATOR, campaign_id)
        )

        def store() -> CampaignView:
            with transaction(self._database.engine) as session:
                if repo.get_campaign(session, chosen) is not None:
                    raise CampaignExistsError(f"campaign {chosen} exists at this node")
                repo.add_campaign(session, campaign_id=chosen, name=label, now_ms=self._clock())
                return self._view(session, chosen)

        return await self._database.run(store)

    async def detect(self, name: str = "") -> Detection:
        """Link the cases held here that share values; extend the campaigns they are in, or
        make new ones (named ``name``, or after their first case)."""
        return await self._database.run(lambda: self._detect(name))

    def _detect(self, name: str) -> Detection:
        now = self._clock()
        with transaction(self._database.engine) as session:
            benign = frozenset(repo.benign_values(session))
            linking = link_cases(
                repo.live_values_by_set(session, now_ms=now), benign=benign, rules=self._rules
            )
            touched: list[str] = []
            created: list[str] = []
            for group in linking.groups:
                campaign_id, new = self._campaign_for(session, list(group.set_ids), name, now)
                owners = repo.set_owners(session, list(group.set_ids))
                added = [
                    repo.link_case(
                        session,
                        campaign_id=campaign_id,
                        kind="set",
                        ref=set_id,
                        agency=owners[set_id],
                        shared=max(n for pair, n in group.shared.items() if set_id in pair),
                        now_ms=now,
                    )
                    for set_id in group.set_ids
                ]
                if any(added):
                    touched.append(campaign_id)
                if new:
                    created.append(campaign_id)
            views = tuple(self._view(session, c) for c in dict.fromkeys(touched))
        return Detection(
            campaigns=views,
            created=tuple(created),
            noisy_values=linking.noisy_values,
            benign_values=linking.benign_values,
        )

    def _campaign_for(
        self, session: Session, set_ids: list[str], name: str, now_ms: int
    ) -> tuple[str, bool]:
        """The campaign a case of the group is in already, or a new one."""
        existing = repo.campaign_of_sets(session, set_ids)
        if existing is not None:
            return existing, False
        campaign_id = str(uuid.uuid4())
        label = check_name(name) if name else f"cases linked with set {set_ids[0][:8]}"
        repo.add_campaign(session, campaign_id=campaign_id, name=label, now_ms=now_ms)
        return campaign_id, True

    async def link_agency(
        self, campaign_id: str, agency: AgencyId, set_ids: Sequence[str]
    ) -> AgencyLink:
        """Count privately how many of this agency's values (in ``set_ids``, or all its own
        sets) ``agency`` shares, and link its case when the count reaches the threshold.

        Raises: NotFoundError, UnknownAgencyError, and the overlap check's errors.
        """
        await self.get(campaign_id)
        own = list(set_ids) or None
        result = await self._overlap.check(
            agency, own, reason=f"linking cases into campaign {campaign_id}"
        )
        linked = result.shared >= self._rules.min_shared

        def record() -> CampaignView:
            now = self._clock()
            with transaction(self._database.engine) as session:
                if linked:
                    repo.link_case(
                        session,
                        campaign_id=campaign_id,
                        kind="agency",
                        ref=agency,
                        agency=agency,
                        shared=result.shared,
                        now_ms=now,
                    )
                    for set_id in own or []:
                        repo.link_case(
                            session,
                            campaign_id=campaign_id,
                            kind="set",
                            ref=set_id,
                            agency=self._me,
                            shared=result.shared,
                            now_ms=now,
                        )
                return self._view(session, campaign_id)

        return AgencyLink(overlap=result, linked=linked, campaign=await self._database.run(record))

    # --- reading -------------------------------------------------------------------------------

    async def list_campaigns(self) -> list[CampaignView]:
        def load() -> list[CampaignView]:
            with transaction(self._database.engine) as session:
                return [self._view(session, c.campaign_id) for c in repo.list_campaigns(session)]

        return await self._database.run(load)

    async def get(self, campaign_id: str, *, with_requests: bool = False) -> CampaignView:
        """Raises: NotFoundError."""

        def load() -> CampaignView:
            with transaction(self._database.engine) as session:
                view = self._view(session, campaign_id)
                if not with_requests:
                    return view
                requests = _requests_naming(session, campaign_id)
                peers = {r.peer for r in requests}
                agencies = tuple(sorted({*view.agencies, *peers} - {self._me}))
                return CampaignView(**{**view.__dict__, "requests": requests, "agencies": agencies})

        return await self._database.run(load)

    def _view(self, session: Session, campaign_id: str) -> CampaignView:
        campaign = repo.get_campaign(session, campaign_id)
        if campaign is None:
            raise NotFoundError(f"no campaign {campaign_id} at this node")
        cases = tuple(
            CaseView(
                kind=c.kind,
                ref=c.ref,
                agency=AgencyId(c.agency),
                shared=c.shared,
                linked_at_ms=c.linked_at_ms,
            )
            for c in repo.cases_of(session, campaign_id)
        )
        return CampaignView(
            campaign_id=campaign.campaign_id,
            name=campaign.name,
            created_at_ms=campaign.created_at_ms,
            cases=cases,
            agencies=tuple(sorted({c.agency for c in cases} - {self._me})),
        )

    # --- alerts --------------------------------------------------------------------------------

    async def alert(
        self, campaign_id: str, form_json: bytes, recipients: Sequence[AgencyId]
    ) -> list[RequestView]:
        """File a campaign alert to each agency concerned (or to ``recipients``): the form,
        with the campaign's id as its reference and indicator, and the linking values that
        each recipient may see under the labels of the sets they come from.

        Raises: NotFoundError, CampaignError (nobody to alert), UnknownAgencyError, and the
        filing errors (FormValidationError, NotMinimalError …); a form refused for one
        recipient files no alert at all.
        """
        campaign = await self.get(campaign_id, with_requests=True)
        targets = list(dict.fromkeys(recipients)) or list(campaign.agencies)
        if not targets:
            raise CampaignError(f"campaign {campaign_id} concerns no other agency yet")
        for agency in targets:
            if agency == self._me or self._directory.find(agency) is None:
                raise UnknownAgencyError(f"{agency} is not another federation member")
        values = await self._database.run(lambda: self._linking_values(campaign))
        forms = {a: self._alert_form(form_json, campaign_id, values, a) for a in targets}
        request_type = alert_type()
        # Every alert is checked before any is filed: a bad form files none.
        for agency, form in forms.items():
            self._requests.preview_request(
                request_type=request_type, recipient=agency, form_json=form
            )
        return [
            await self._requests.file_request(
                request_type=request_type, recipient=agency, form_json=form
            )
            for agency, form in forms.items()
        ]

    def _linking_values(self, campaign: CampaignView) -> list[tuple[IndicatorSet, list[Value]]]:
        """The values each linked set shares with another case of the campaign."""
        set_ids = [c.ref for c in campaign.cases if c.kind == "set"]
        with transaction(self._database.engine) as session:
            by_set = repo.live_values_by_set(session, now_ms=self._clock())
            benign = set(repo.benign_values(session))
            held = {s: set(by_set.get(s, ())) for s in set_ids}
            found = []
            for set_id in set_ids:
                others = set().union(*(v for s, v in held.items() if s != set_id))
                shared = sorted((held[set_id] & others) - benign)
                row = indicator_repo.get_set(session, set_id)
                if shared and row is not None:
                    found.append((IndicatorSet.from_bytes(row.document), shared))
        return found

    def _alert_form(
        self,
        form_json: bytes,
        campaign_id: str,
        values: list[tuple[IndicatorSet, list[Value]]],
        recipient: AgencyId,
    ) -> bytes:
        form = reference_campaign(form_json, campaign_id=campaign_id)
        document = json.loads(form)
        indicators = document.setdefault("indicators", [])
        if not isinstance(indicators, list):
            raise FormValidationError("$.indicators: is not a list")
        for indicator_set, shared in values:
            if not self._may_pass(indicator_set, recipient):
                continue
            for kind, value in shared:
                entry = {"type": kind, "value": value}
                if entry not in indicators and len(indicators) < MAX_ALERT_INDICATORS:
                    indicators.append(entry)
        return json.dumps(document, ensure_ascii=False).encode("utf-8")

    def _may_pass(self, indicator_set: IndicatorSet, recipient: AgencyId) -> bool:
        try:
            indicator_set.check_passing(
                sender=self._me,
                recipient=recipient,
                members={m.agency_id for m in self._directory.members()},
            )
        except TlpEgressError:
            return False
        return True

    # --- known-benign values ----------------------------------------------------------------

    async def change_benign(
        self, *, add: Sequence[Value], remove: Sequence[Value]
    ) -> tuple[int, list[Value]]:
        """Add and remove known-benign values (canonicalised); how many changed, and the list.

        Raises: FormValidationError (a value that breaks its type's rules).
        """
        adding = [(k, canonicalize_indicator(k, v)) for k, v in add]
        removing = [(k, canonicalize_indicator(k, v)) for k, v in remove]

        def change() -> tuple[int, list[Value]]:
            with transaction(self._database.engine) as session:
                changed = repo.add_benign(session, adding, now_ms=self._clock())
                changed += repo.remove_benign(session, removing)
                session.flush()
                return changed, repo.benign_values(session)

        return await self._database.run(change)


def _requests_naming(session: Session, campaign_id: str) -> tuple[CampaignRequest, ...]:
    return tuple(
        CampaignRequest(
            request_id=e.id,
            request_type=e.request_type,
            direction=e.direction,
            peer=AgencyId(e.peer),
            state=e.state,
            created_at_ms=e.created_at_ms,
            updated_at_ms=e.updated_at_ms,
        )
        for e in repo.recent_exchanges(session, limit=SCANNED_REQUESTS)
        if campaign_id in referenced_campaigns(e.form_json)
    )
