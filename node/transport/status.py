# SPDX-License-Identifier: Apache-2.0
"""The one place where Comity errors and gRPC status codes meet.

Servers turn a :class:`ComityError` into a status code, its message and a machine-readable
``comity-error`` trailer; clients turn a peer's status back into a :class:`ComityError`.
Exceptions that are not ComityErrors never reach a peer with their text: they become
``INTERNAL`` with a fixed message, and the details go to the node's own log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from node.errors import (
    ComityError,
    ErrorKind,
    PeerRejectedError,
    PeerUnavailableError,
)

ERROR_TRAILER = "comity-error"

_LOG = logging.getLogger(__name__)

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

Response = TypeVar("Response")


def status_for(error: ComityError) -> grpc.StatusCode:
    return _STATUS_BY_KIND[error.kind]


async def answer_or_abort(
    context: grpc.aio.ServicerContext[Any, Any],
    handle: Callable[[], Awaitable[Response]],
    *,
    method: str,
) -> Response:
    """Run ``handle``; turn any failure into the matching gRPC status on ``context``."""
    try:
        return await handle()
    except ComityError as e:
        _LOG.info("%s refused: %s", method, e.code)
        context.set_trailing_metadata(((ERROR_TRAILER, e.code),))
        await context.abort(status_for(e), e.message)
    except Exception:  # noqa: BLE001 (last resort: internal text must never reach a peer)
        _LOG.exception("%s failed unexpectedly", method)
        context.set_trailing_metadata(((ERROR_TRAILER, "internal_error"),))
        await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the node's log")
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any], error: ComityError, *, method: str
) -> None:
    """End a (streaming) call with ``error``'s status, message and code trailer."""
    _LOG.info("%s refused: %s", method, error.code)
    context.set_trailing_metadata(((ERROR_TRAILER, error.code),))
    await context.abort(status_for(error), error.message)


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
