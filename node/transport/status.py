# SPDX-License-Identifier: Apache-2.0
"""The one place where Comity errors and gRPC status codes meet.

Servers turn a :class:`ComityError` into a status code, its message and a machine-readable
``comity-error`` trailer (node/transport/interceptors.py does so for every call, with the
table here); clients turn a peer's status back into a :class:`ComityError`. Exceptions that
are not ComityErrors never reach a peer with their text: they become ``INTERNAL`` with
:data:`INTERNAL_MESSAGE`, and the details go to the node's own log.
"""

from __future__ import annotations

import grpc

from node.errors import (
    ComityError,
    ErrorKind,
    PeerRejectedError,
    PeerUnavailableError,
)

ERROR_TRAILER = "comity-error"
INTERNAL_CODE = "internal_error"
INTERNAL_MESSAGE = "internal error; see the node's log"

_STATUS_BY_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}
_KIND_BY_STATUS = {status: kind for kind, status in _STATUS_BY_KIND.items()}


def status_for(error: ComityError) -> grpc.StatusCode:
    return _STATUS_BY_KIND[error.kind]


def error_from_rpc(error: grpc.aio.AioRpcError, *, peer: str) -> ComityError:
    """Turn a failed call to ``peer`` into the ComityError a local caller sees."""
    code = error.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        detail = error.details() or code.name
        return PeerUnavailableError(f"node of {peer} unreachable ({code.name}): {detail}")
    peer_code = _trailer(error) or code.name.lower()
    kind = _KIND_BY_STATUS.get(code, ErrorKind.INTERNAL)
    return PeerRejectedError(
        f"node of {peer} refused ({code.name}, {peer_code}): {error.details()}",
        kind=kind,
        peer_code=peer_code,
    )


def _trailer(error: grpc.aio.AioRpcError) -> str | None:
    for key, value in error.trailing_metadata() or ():
        if key == ERROR_TRAILER:
            return value if isinstance(value, str) else value.decode()
    return None
