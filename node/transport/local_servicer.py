# SPDX-License-Identifier: Apache-2.0
"""The Local service: the agency's own users file and read requests through it."""

from __future__ import annotations

import grpc

from node import wire
from node.gen.comity.v1 import local_pb2, local_pb2_grpc
from node.model.request import Direction, NodeStatusView, RequestView
from node.services.exchange import ExchangeService
from node.transport.status import answer_or_abort

_DIRECTION_TO_PROTO = {
    Direction.OUTBOUND: local_pb2.DIRECTION_OUTBOUND,
    Direction.INBOUND: local_pb2.DIRECTION_INBOUND,
}
_DIRECTION_FROM_PROTO = {value: key for key, value in _DIRECTION_TO_PROTO.items()}

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 1000


class LocalServicer(local_pb2_grpc.LocalServicer):
    def __init__(self, *, exchange: ExchangeService) -> None:
        self._exchange = exchange

    async def FileRequest(  # noqa: N802 (the name is the RPC's)
        self,
        request: local_pb2.FileRequestRequest,
        context: grpc.aio.ServicerContext[local_pb2.FileRequestRequest, local_pb2.RequestDetail],
    ) -> local_pb2.RequestDetail:
        async def handle() -> local_pb2.RequestDetail:
            view = await self._exchange.file_request(
                request_type=request.request_type,
                recipient=request.recipient,
                form_json=request.form_json,
            )
            return request_detail_to_proto(view)

        return await answer_or_abort(context, handle, method="FileRequest")

    async def ListRequests(  # noqa: N802
        self,
        request: local_pb2.ListRequestsRequest,
        context: grpc.aio.ServicerContext[
            local_pb2.ListRequestsRequest, local_pb2.ListRequestsResponse
        ],
    ) -> local_pb2.ListRequestsResponse:
        async def handle() -> local_pb2.ListRequestsResponse:
            limit = min(request.limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
            views = await self._exchange.list_requests(
                direction=_DIRECTION_FROM_PROTO.get(request.direction), limit=limit
            )
            return local_pb2.ListRequestsResponse(requests=[_summary(v) for v in views])

        return await answer_or_abort(context, handle, method="ListRequests")

    async def GetRequest(  # noqa: N802
        self,
        request: local_pb2.GetRequestRequest,
        context: grpc.aio.ServicerContext[local_pb2.GetRequestRequest, local_pb2.RequestDetail],
    ) -> local_pb2.RequestDetail:
        async def handle() -> local_pb2.RequestDetail:
            return request_detail_to_proto(await self._exchange.get_request(request.request_id))

        return await answer_or_abort(context, handle, method="GetRequest")

    async def GetNodeStatus(  # noqa: N802
        self,
        _request: local_pb2.GetNodeStatusRequest,
        context: grpc.aio.ServicerContext[local_pb2.GetNodeStatusRequest, local_pb2.NodeStatus],
    ) -> local_pb2.NodeStatus:
        async def handle() -> local_pb2.NodeStatus:
            return node_status_to_proto(await self._exchange.node_status())

        return await answer_or_abort(context, handle, method="GetNodeStatus")


def node_status_to_proto(status: NodeStatusView) -> local_pb2.NodeStatus:
    return local_pb2.NodeStatus(
        agency_id=status.agency_id,
        directory_version=status.directory_version,
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
    )


def request_detail_to_proto(view: RequestView) -> local_pb2.RequestDetail:
    detail = local_pb2.RequestDetail(
        summary=_summary(view),
        form_json=view.form_json,
        receipt_verified=view.receipt_verified,
        last_error=view.last_error or "",
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
