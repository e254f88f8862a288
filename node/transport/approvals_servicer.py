# SPDX-License-Identifier: Apache-2.0
"""Four-eyes approval on the local socket: the gate that holds actions, and the Approvals service.

:class:`ApprovalGate` sits behind the sign-in interceptor: for the Local operations the policy
can hold, it tells the approvals service what the call is about and lets the service hold it
(the call then ends with ``approval_required``) or let it through. :class:`ApprovalsServicer`
lists and shows approvals and decides them; approving replays the held request through the
same Local servicer method, as the person who asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from node.errors import MalformedError
from node.gen.comity.v1 import local_pb2, local_people_pb2_grpc
from node.gen.comity.v1 import local_people_pb2 as pb
from node.model.approvals import ApprovalStatus
from node.services.approvals import (
    Action,
    ApprovalService,
    ApprovalView,
    FilingAction,
    MessageAction,
    ReleaseAction,
    ShareAction,
)
from node.transport.local_servicer import LocalServicer

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Approvals"].full_name
_LOCAL_PREFIX = f"/{local_pb2.DESCRIPTOR.services_by_name['Local'].full_name}/"
DEFAULT_LIMIT = 50

_GATED: Mapping[str, tuple[type[Message], Callable[[Any], Action]]] = {
    "FileRequest": (
        local_pb2.FileRequestRequest,
        lambda r: FilingAction(request_type=r.request_type, recipient=r.recipient),
    ),
    "SendMessage": (
        local_pb2.SendMessageRequest,
        lambda r: MessageAction(request_id=r.request_id, kind=r.kind, body_json=r.body_json),
    ),
    "ProveRecord": (
        local_pb2.ProveRecordRequest,
        lambda r: ReleaseAction(target=r.target, role=r.role, order=r.order),
    ),
    "ShareIndicatorSet": (
        local_pb2.ShareIndicatorSetRequest,
        lambda r: ShareAction(set_id=r.set_id, recipient=r.recipient),
    ),
}
"""The Local operations the policy can hold: their request message and what they are about."""


class ApprovalGate(grpc.aio.ServerInterceptor):
    def __init__(self, approvals: ApprovalService) -> None:
        self._approvals = approvals

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        operation = method.rpartition("/")[2]
        gated = _GATED.get(operation)
        if handler is None or gated is None or not method.startswith(_LOCAL_PREFIX):
            return handler
        behaviour = handler.unary_unary
        if behaviour is None:  # pragma: no cover (every gated operation is unary)
            return handler
        about = gated[1]

        async def answer(request: Message, context: Any) -> Any:
            await self._approvals.check(operation, about(request), request.SerializeToString())
            return await behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(
            answer, handler.request_deserializer, handler.response_serializer
        )


class ApprovalsServicer(local_people_pb2_grpc.ApprovalsServicer):
    def __init__(self, *, approvals: ApprovalService, local: LocalServicer) -> None:
        self._approvals = approvals
        self._local = local

    async def ListApprovals(  # noqa: N802 (the name is the RPC's)
        self, request: pb.ListApprovalsRequest, _context: Context
    ) -> pb.ApprovalList:
        views = await self._approvals.list_approvals(
            status=_status(request.status),
            requested_by=request.requested_by or None,
            limit=request.limit or DEFAULT_LIMIT,
        )
        return pb.ApprovalList(approvals=[approval_to_proto(v) for v in views])

    async def GetApproval(  # noqa: N802
        self, request: pb.GetApprovalRequest, _context: Context
    ) -> pb.Approval:
        return approval_to_proto(await self._approvals.get(request.approval_id))

    async def DecideApproval(  # noqa: N802
        self, request: pb.DecideApprovalRequest, context: Context
    ) -> pb.Approval:
        if not request.approve:
            view = await self._approvals.reject(request.approval_id, request.reason)
            return approval_to_proto(view)

        async def run(operation: str, held: bytes) -> bytes:
            # The held request goes through the servicer method the person called, inside
            # the approver's call (the method reads nothing of the call's context).
            message = _GATED[operation][0].FromString(held)
            answer: Message = await getattr(self._local, operation)(message, context)
            return answer.SerializeToString()

        view = await self._approvals.approve(request.approval_id, request.reason or None, run)
        return approval_to_proto(view)


def _status(name: str) -> ApprovalStatus | None:
    if not name:
        return None
    try:
        return ApprovalStatus(name)
    except ValueError:
        known = ", ".join(s.value for s in ApprovalStatus)
        raise MalformedError(f"unknown approval status; the statuses are: {known}") from None


def approval_to_proto(view: ApprovalView) -> pb.Approval:
    return pb.Approval(
        approval_id=view.approval_id,
        operation=view.operation,
        policy=view.policy,
        summary=view.summary,
        status=view.status.value,
        requested_by=view.requested_by,
        requester_unit=view.requester_unit,
        requested_at_ms=view.requested_at_ms,
        expires_at_ms=view.expires_at_ms,
        decided_by=view.decided_by or "",
        decided_at_ms=view.decided_at_ms or 0,
        reason=view.reason or "",
        error_code=view.error_code or "",
        error_message=view.error_message or "",
        finished_at_ms=view.finished_at_ms or 0,
        request_json=_request_json(view),
        result=view.result or b"",
    )


def _request_json(view: ApprovalView) -> str:
    gated = _GATED.get(view.operation)
    if gated is None:
        return ""
    try:
        return json_format.MessageToJson(gated[0].FromString(view.request), indent=None)
    except DecodeError:
        return ""
