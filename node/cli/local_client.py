# SPDX-License-Identifier: Apache-2.0
"""A blocking client of the local node's Local service, for the CLI."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import grpc

from node.errors import ComityError, ErrorKind
from node.gen.comity.v1 import local_pb2, local_pb2_grpc
from node.transport.status import ERROR_TRAILER

LOCAL_CALL_TIMEOUT_S = 60.0

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class LocalNodeUnreachableError(ComityError):
    kind = ErrorKind.UNAVAILABLE
    code = "local_node_unreachable"


class LocalNodeError(ComityError):
    """The local node refused or failed a call; ``code`` is the node's error code."""

    def __init__(self, message: str, *, kind: ErrorKind, code: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


class LocalClient:
    def __init__(self, socket: Path) -> None:
        self._socket = socket
        self._channel = grpc.insecure_channel(f"unix:{socket}")
        self._stub = local_pb2_grpc.LocalStub(self._channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._channel.close()

    def file_request(
        self, *, request_type: str, recipient: str, form_json: bytes
    ) -> local_pb2.RequestDetail:
        request = local_pb2.FileRequestRequest(
            request_type=request_type, recipient=recipient, form_json=form_json
        )
        return self._call(self._stub.FileRequest, request)

    def list_requests(
        self, *, direction: local_pb2.Direction.ValueType, limit: int
    ) -> local_pb2.ListRequestsResponse:
        request = local_pb2.ListRequestsRequest(direction=direction, limit=limit)
        return self._call(self._stub.ListRequests, request)

    def node_status(self) -> local_pb2.NodeStatus:
        return self._call(self._stub.GetNodeStatus, local_pb2.GetNodeStatusRequest())

    def get_request(self, request_id: str) -> local_pb2.RequestDetail:
        return self._call(self._stub.GetRequest, local_pb2.GetRequestRequest(request_id=request_id))

    def _call(self, method: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        try:
            return method(request, timeout=LOCAL_CALL_TIMEOUT_S)
        except grpc.RpcError as e:
            raise _error_from(e, self._socket) from e


def _error_from(error: grpc.RpcError, socket: Path) -> ComityError:
    if not isinstance(error, grpc.Call):
        return LocalNodeError(str(error), kind=ErrorKind.INTERNAL, code="internal_error")
    code = error.code()
    details = error.details() or code.name
    trailer = next(
        (value for key, value in error.trailing_metadata() or () if key == ERROR_TRAILER), None
    )
    if trailer is None and code == grpc.StatusCode.UNAVAILABLE:
        return LocalNodeUnreachableError(
            f"cannot reach the local node at {socket}: is `comity node serve` running?"
        )
    kind = {
        grpc.StatusCode.INVALID_ARGUMENT: ErrorKind.INVALID_INPUT,
        grpc.StatusCode.NOT_FOUND: ErrorKind.NOT_FOUND,
        grpc.StatusCode.UNAVAILABLE: ErrorKind.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorKind.OVERLOADED,
    }.get(code, ErrorKind.INTERNAL)
    return LocalNodeError(details, kind=kind, code=str(trailer or code.name.lower()))
