# SPDX-License-Identifier: Apache-2.0
"""The Local service: the agency's own users file and read requests through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from node import wire
from node.federation.trusted import FederationDirectory
from node.gen.comity.v1 import audit_pb2, local_pb2, local_pb2_grpc
from node.ids import AgencyId
from node.model.request import Direction, NodeStatusView, RequestView
from node.services.campaigns import CampaignService
from node.services.disclosure import DisclosureService, Release
from node.services.evidence import EvidenceService, EvidenceSetView
from node.services.evidence_upload import EvidenceFile, EvidencePathRefusedError, UploadOrderError
from node.services.exchange import ExchangeService
from node.services.groups import GroupService
from node.services.indicators import IndicatorService
from node.services.overlap import OverlapService
from node.services.overlap_reveal import RevealService
from node.services.sightings import SightingService
from node.transport.audit_servicer import proof_bundles
from node.transport.local_campaigns import LocalCampaigns
from node.transport.local_groups import LocalGroups
from node.transport.local_indicators import LocalIndicators
from node.transport.local_overlap import LocalReveal
from node.transport.sightings_servicer import LocalSightings

_DIRECTION_TO_PROTO = {
    Direction.OUTBOUND: local_pb2.DIRECTION_OUTBOUND,
    Direction.INBOUND: local_pb2.DIRECTION_INBOUND,
}
_DIRECTION_FROM_PROTO = {value: key for key, value in _DIRECTION_TO_PROTO.items()}

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 1000


class LocalServicer(
    LocalIndicators,
    LocalGroups,
    LocalReveal,
    LocalCampaigns,
    LocalSightings,
    local_pb2_grpc.LocalServicer,
):
    def __init__(
        self,
        *,
        exchange: ExchangeService,
        directory: FederationDirectory,
        evidence: EvidenceService,
        disclosure: DisclosureService,
        indicators: IndicatorService,
        overlap: OverlapService,
        groups: GroupService,
        reveal: RevealService,
        campaigns: CampaignService,
        sightings: SightingService,
    ) -> None:
        self._exchange = exchange
        self._directory = directory
        self._evidence = evidence
        self._disclosure = disclosure
        self._indicators = indicators
        self._overlap = overlap
        self._groups = groups
        self._reveal = reveal
        self._campaigns = campaigns
        self._sightings = sightings

    async def FileRequest(  # noqa: N802 (the name is the RPC's)
        self, request: local_pb2.FileRequestRequest, _context: Context
    ) -> local_pb2.RequestDetail:
        view = await self._exchange.file_request(
            request_type=request.request_type,
            recipient=AgencyId(request.recipient),
            form_json=request.form_json,
            strip=request.strip_identifiers,
            campaign_id=request.campaign_id or None,
            idempotency_key=request.idempotency_key or None,
        )
        return request_detail_to_proto(view)

    async def PreviewRequest(  # noqa: N802
        self, request: local_pb2.FileRequestRequest, _context: Context
    ) -> local_pb2.RequestPreview:
        preview = self._exchange.preview_request(
            request_type=request.request_type,
            recipient=AgencyId(request.recipient),
            form_json=request.form_json,
            strip=request.strip_identifiers,
            campaign_id=request.campaign_id or None,
        )
        return local_pb2.RequestPreview(
            request_type=preview.request_type,
            recipient=preview.recipient,
            payload_type=preview.payload_type,
            legal_basis=preview.legal_basis,
            form_json=preview.form_json,
            notes=preview.notes,
            deadline_hours=preview.deadline_hours or 0,
        )

    async def ListOverdue(  # noqa: N802
        self, _request: local_pb2.ListOverdueRequest, _context: Context
    ) -> local_pb2.ListRequestsResponse:
        views = await self._exchange.overdue_requests()
        return local_pb2.ListRequestsResponse(requests=[_summary(v) for v in views])

    async def ListRequests(  # noqa: N802
        self, request: local_pb2.ListRequestsRequest, _context: Context
    ) -> local_pb2.ListRequestsResponse:
        limit = min(request.limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        page = await self._exchange.list_requests(
            direction=_DIRECTION_FROM_PROTO.get(request.direction),
            limit=limit,
            page_token=request.page_token,
        )
        return local_pb2.ListRequestsResponse(
            requests=[_summary(v) for v in page.requests], next_page_token=page.next_page_token
        )

    async def GetRequest(  # noqa: N802
        self, request: local_pb2.GetRequestRequest, _context: Context
    ) -> local_pb2.RequestDetail:
        return request_detail_to_proto(await self._exchange.get_request(request.request_id))

    async def GetNodeStatus(  # noqa: N802
        self, _request: local_pb2.GetNodeStatusRequest, _context: Context
    ) -> local_pb2.NodeStatus:
        status = node_status_to_proto(await self._exchange.node_status())
        pending, failed = await self._indicators.offers.counts()
        status.set_offers_pending, status.set_offers_failed = pending, failed
        pending, failed = await self._sightings.reports.counts()
        status.sighting_reports_pending, status.sighting_reports_failed = pending, failed
        return status

    async def SendMessage(  # noqa: N802
        self, request: local_pb2.SendMessageRequest, _context: Context
    ) -> local_pb2.RequestDetail:
        view = await self._exchange.send_message(
            request_id=request.request_id, kind=request.kind, body_json=request.body_json
        )
        return request_detail_to_proto(view)

    async def SendEvidence(  # noqa: N802
        self, _request: local_pb2.SendEvidenceRequest, _context: Context
    ) -> local_pb2.RequestDetail:
        # The node would open the paths with its own rights (its keys, its database),
        # whoever named them: the caller streams the files' bytes instead.
        raise EvidencePathRefusedError(
            "the node does not read evidence from paths; stream the files with "
            "UploadEvidence (`comity evidence send` does)"
        )

    async def UploadEvidence(  # noqa: N802
        self, request_iterator: AsyncIterator[local_pb2.EvidenceUpload], _context: Context
    ) -> local_pb2.RequestDetail:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("part") != "header":
            raise UploadOrderError("an evidence upload starts with its header")
        header = first.header
        view = await self._evidence.upload(
            request_id=header.request_id,
            files=[EvidenceFile(name=f.name, media_type=f.media_type) for f in header.files],
            note=header.note or None,
            data=_upload_data(request_iterator),
        )
        return request_detail_to_proto(view)

    async def ListEvidence(  # noqa: N802
        self, request: local_pb2.GetRequestRequest, _context: Context
    ) -> local_pb2.EvidenceList:
        sets = await self._evidence.list_sets(request.request_id)
        return local_pb2.EvidenceList(sets=[_evidence_set(s) for s in sets])

    async def FetchEvidence(  # noqa: N802
        self, request: local_pb2.FetchEvidenceRequest, _context: Context
    ) -> AsyncIterator[local_pb2.EvidenceData]:
        async for data in self._evidence.read_file(
            request.request_id, request.evidence_id, request.item
        ):
            yield local_pb2.EvidenceData(data=data)

    async def InstallDirectory(  # noqa: N802
        self, request: local_pb2.InstallDirectoryRequest, _context: Context
    ) -> local_pb2.InstallDirectoryResponse:
        changed = await self._directory.install(request.document)
        return local_pb2.InstallDirectoryResponse(version=self._directory.version, changed=changed)

    async def ProveRecord(  # noqa: N802
        self, request: local_pb2.ProveRecordRequest, _context: Context
    ) -> audit_pb2.ProofBundles:
        release = Release(
            role=request.role,
            recipient=request.recipient,
            reason=request.reason,
            order=request.order or None,
        )
        return proof_bundles(await self._disclosure.prove(request.target, release))

    async def EraseExpired(  # noqa: N802
        self, _request: local_pb2.EraseExpiredRequest, _context: Context
    ) -> local_pb2.ErasureSummary:
        erased = await self._disclosure.erase_expired()
        return local_pb2.ErasureSummary(leaves=erased.leaves, exchanges=erased.exchanges)


async def _upload_data(
    messages: AsyncIterator[local_pb2.EvidenceUpload],
) -> AsyncIterator[tuple[int, bytes]]:
    """(file, bytes) of an upload's data messages, after its header."""
    async for message in messages:
        if message.WhichOneof("part") != "data":
            raise UploadOrderError("an evidence upload has one header, first")
        yield message.data.file, message.data.data


def _evidence_set(view: EvidenceSetView) -> local_pb2.EvidenceSet:
    return local_pb2.EvidenceSet(
        evidence_id=view.evidence_id,
        direction=_DIRECTION_TO_PROTO[view.direction],
        created_at_ms=view.created_at_ms,
        complete=view.complete,
        note=view.note or "",
        items=[
            local_pb2.EvidenceItem(
                index=i.index,
                name=i.name,
                media_type=i.media_type,
                size=i.size,
                sha256=i.sha256,
                chunks_total=i.chunks_total,
                chunks_here=i.chunks_here,
                verified=i.verified,
            )
            for i in view.items
        ],
    )


def node_status_to_proto(status: NodeStatusView) -> local_pb2.NodeStatus:
    return local_pb2.NodeStatus(
        agency_id=status.agency_id,
        directory_version=status.directory_version,
        directory_expires_at_ms=status.directory_expires_at_ms,
        outbox_pending=status.outbox_pending,
        outbox_capacity=status.outbox_capacity,
        outbox_failed=status.outbox_failed,
        peers=[
            local_pb2.PeerDeliveries(
                peer=p.peer,
                pending=p.pending,
                oldest_pending_since_ms=p.oldest_pending_since_ms,
                max_attempts=p.max_attempts,
                last_error=p.last_error or "",
                next_attempt_at_ms=p.next_attempt_at_ms,
                alert=p.alert,
                claimed_elsewhere=p.claimed_elsewhere,
                claims_end_at_ms=p.claims_end_at_ms,
            )
            for p in status.peers
        ],
        requests_outbound=status.requests_outbound,
        requests_inbound=status.requests_inbound,
    )


def _summary(view: RequestView) -> local_pb2.RequestSummary:
    return local_pb2.RequestSummary(
        request_id=view.request_id,
        request_type=view.request_type,
        direction=_DIRECTION_TO_PROTO[view.direction],
        peer=view.peer,
        state=view.state.value,
        created_at_ms=view.created_at_ms,
        updated_at_ms=view.updated_at_ms,
        due_at_ms=view.due_at_ms or 0,
        overdue=view.overdue,
    )


def request_detail_to_proto(view: RequestView) -> local_pb2.RequestDetail:
    detail = local_pb2.RequestDetail(
        summary=_summary(view),
        form_json=view.form_json,
        receipt_verified=view.receipt_verified,
        last_error=view.last_error or "",
        signed_by=view.signed_by,
        preserved_until_ms=view.preserved_until_ms or 0,
        idempotency_key=view.idempotency_key or "",
        history=[
            local_pb2.HistoryEntry(
                kind=m.kind,
                direction=_DIRECTION_TO_PROTO[m.direction],
                sequence=m.sequence,
                state=m.state,
                created_at_ms=m.created_at_ms,
                body_json=m.body_json or b"",
                delivery=m.delivery or "",
                note=m.note or "",
            )
            for m in view.history
        ],
    )
    if view.receipt is not None:
        detail.receipt.CopyFrom(wire.receipt_to_proto(view.receipt))
    if view.delivery is not None:
        d = view.delivery
        detail.delivery.CopyFrom(
            local_pb2.Delivery(
                status=d.status,
                attempts=d.attempts,
                next_attempt_at_ms=d.next_attempt_at_ms or 0,
                last_attempt_at_ms=d.last_attempt_at_ms or 0,
                last_error=d.last_error or "",
            )
        )
    return detail
