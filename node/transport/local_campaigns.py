# SPDX-License-Identifier: Apache-2.0
"""The Local service's campaign calls, for the ``comity campaign`` commands."""

from __future__ import annotations

from typing import Any

import grpc

from node.gen.comity.v1 import local_pb2
from node.ids import AgencyId
from node.indicators.campaigns import Value
from node.services.campaigns import CampaignRequest, CampaignService, CampaignView

Context = grpc.aio.ServicerContext[Any, Any]

_DIRECTIONS = {
    "outbound": local_pb2.DIRECTION_OUTBOUND,
    "inbound": local_pb2.DIRECTION_INBOUND,
}


class LocalCampaigns:
    """Mixed into LocalServicer: it sets ``_campaigns``."""

    _campaigns: CampaignService

    async def CreateCampaign(  # noqa: N802 (the names are the RPCs')
        self, request: local_pb2.CreateCampaignRequest, _context: Context
    ) -> local_pb2.CampaignView:
        view = await self._campaigns.create(request.name, request.campaign_id or None)
        return campaign_view(view)

    async def DetectCampaigns(  # noqa: N802
        self, request: local_pb2.DetectCampaignsRequest, _context: Context
    ) -> local_pb2.CampaignDetection:
        found = await self._campaigns.detect(request.name)
        return local_pb2.CampaignDetection(
            campaigns=[campaign_view(v) for v in found.campaigns],
            created=list(found.created),
            noisy_values=found.noisy_values,
            benign_values=found.benign_values,
        )

    async def LinkCampaignAgency(  # noqa: N802
        self, request: local_pb2.LinkCampaignAgencyRequest, _context: Context
    ) -> local_pb2.CampaignLink:
        link = await self._campaigns.link_agency(
            request.campaign_id, AgencyId(request.agency), list(request.set_ids)
        )
        overlap = link.overlap
        return local_pb2.CampaignLink(
            overlap=local_pb2.OverlapCount(
                agency=overlap.agency,
                mine=overlap.mine,
                theirs=overlap.theirs,
                shared=overlap.shared,
            ),
            linked=link.linked,
            campaign=campaign_view(link.campaign),
        )

    async def ListCampaigns(  # noqa: N802
        self, _request: local_pb2.ListCampaignsRequest, _context: Context
    ) -> local_pb2.CampaignList:
        views = await self._campaigns.list_campaigns()
        return local_pb2.CampaignList(campaigns=[campaign_view(v) for v in views])

    async def GetCampaign(  # noqa: N802
        self, request: local_pb2.GetCampaignRequest, _context: Context
    ) -> local_pb2.CampaignView:
        view = await self._campaigns.get(request.campaign_id, with_requests=True)
        return campaign_view(view)

    async def AlertCampaign(  # noqa: N802
        self, request: local_pb2.AlertCampaignRequest, _context: Context
    ) -> local_pb2.CampaignAlerts:
        filed = await self._campaigns.alert(
            request.campaign_id, request.form_json, [AgencyId(r) for r in request.recipients]
        )
        return local_pb2.CampaignAlerts(
            requests=[
                _summary(
                    CampaignRequest(
                        request_id=v.request_id,
                        request_type=v.request_type,
                        direction=v.direction.value,
                        peer=v.peer,
                        state=v.state.value,
                        created_at_ms=v.created_at_ms,
                        updated_at_ms=v.updated_at_ms,
                    )
                )
                for v in filed
            ]
        )

    async def ChangeBenignValues(  # noqa: N802
        self, request: local_pb2.ChangeBenignValuesRequest, _context: Context
    ) -> local_pb2.BenignValues:
        changed, values = await self._campaigns.change_benign(
            add=_values(request.add), remove=_values(request.remove)
        )
        return local_pb2.BenignValues(
            values=[local_pb2.IndicatorEntry(type=k, value=v) for k, v in values],
            changed=changed,
        )


def _values(entries: Any) -> list[Value]:
    return [(e.type, e.value) for e in entries]


def _summary(request: CampaignRequest) -> local_pb2.RequestSummary:
    return local_pb2.RequestSummary(
        request_id=request.request_id,
        request_type=request.request_type,
        direction=_DIRECTIONS[request.direction],
        peer=request.peer,
        state=request.state,
        created_at_ms=request.created_at_ms,
        updated_at_ms=request.updated_at_ms,
    )


def campaign_view(view: CampaignView) -> local_pb2.CampaignView:
    return local_pb2.CampaignView(
        campaign_id=view.campaign_id,
        name=view.name,
        created_at_ms=view.created_at_ms,
        cases=[
            local_pb2.CampaignCase(
                kind=c.kind,
                ref=c.ref,
                agency=c.agency,
                shared=c.shared,
                linked_at_ms=c.linked_at_ms,
            )
            for c in view.cases
        ],
        agencies=list(view.agencies),
        requests=[_summary(r) for r in view.requests],
    )
