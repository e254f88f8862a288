# SPDX-License-Identifier: Apache-2.0
"""What every Comity RPC gets on its way in and out, done once for both servers.

:class:`ComityServerInterceptor` wraps the behaviour of each Comity method, of all four kinds
(unary and streaming requests and responses), so that servicers only convert messages and call
services. For each call it

- maps errors: a :class:`ComityError` becomes its gRPC status, its message and the
  ``comity-error`` trailer with its stable code; any other exception becomes ``INTERNAL`` with
  a fixed message, its details going to the node's own log only, never to the peer;
- opens a SERVER span that continues the caller's W3C trace context, named
  ``comity.v1.Service/Method`` with ``rpc.service``, ``rpc.method`` and the status code;
- writes one access-log line: method, status, stable error code if any, duration;
- on the federation server, admits the caller through the :class:`PeerGate` (a current
  directory member, within its share of concurrent calls) before the servicer runs, and makes
  it the call's :func:`~node.transport.peer_gate.current_peer`.

Spans and log lines carry method names, status codes and stable error codes only: never request
contents or error messages, which may quote what a person typed. The standard health and
reflection services pass through untouched: they are gRPC's own code, and probes polling
health would otherwise fill the access log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from contextvars import Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Never

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from node.errors import ComityError
from node.telemetry import extract_context
from node.transport.peer_gate import PeerGate
from node.transport.status import ERROR_TRAILER, INTERNAL_CODE, INTERNAL_MESSAGE, status_for

_LOG = logging.getLogger(__name__)

_COMITY_METHODS = "/comity."

# Statuses that say the server failed, not that it refused the caller: only these mark the
# span as an error (OpenTelemetry's convention for gRPC servers).
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

Context = grpc.aio.ServicerContext[Any, Any]
Answer = Callable[[Any, Context], Awaitable[Any]]
Stream = Callable[[Any, Context], AsyncIterator[Any]]


class ComityServerInterceptor(grpc.aio.ServerInterceptor):
    """Error mapping, a server span and an access-log line for every Comity RPC, and with a
    ``gate`` (the federation server's) the caller's admission."""

    def __init__(self, *, tracer: Tracer, gate: PeerGate | None = None) -> None:
        self._tracer = tracer
        self._gate = gate

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(_COMITY_METHODS):
            return handler
        return _wrapped(handler, _Rpc.of(method, self._tracer, self._gate))


@dataclass(frozen=True)
class _Rpc:
    name: str
    service: str
    method: str
    tracer: Tracer
    gate: PeerGate | None

    @classmethod
    def of(cls, full_method: str, tracer: Tracer, gate: PeerGate | None) -> _Rpc:
        """``/comity.v1.Local/FileRequest``: service ``comity.v1.Local``, method ``FileRequest``."""
        name = full_method.removeprefix("/")
        service, _, method = name.partition("/")
        return cls(name=name, service=service, method=method, tracer=tracer, gate=gate)

    def admitted(self, context: Context) -> AbstractAsyncContextManager[None]:
        """The caller's admission for the length of the call (none without a gate)."""
        if self.gate is None:
            return nullcontext()
        return self.gate.admit(context.auth_context())


def _wrapped(
    handler: grpc.RpcMethodHandler[Any, Any], rpc: _Rpc
) -> grpc.RpcMethodHandler[Any, Any]:
    decode, encode = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _answer(handler.unary_unary, rpc), decode, encode
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _answer(handler.stream_unary, rpc), decode, encode
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _stream(handler.unary_stream, rpc), decode, encode
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            _stream(handler.stream_stream, rpc), decode, encode
        )
    return handler  # pragma: no cover (a handler always has one behaviour)


def _answer(behaviour: Callable[..., Any], rpc: _Rpc) -> Answer:
    """A unary-response behaviour (unary or streaming request) run inside :class:`_Served`."""

    async def answer(request: Any, context: Context) -> Any:
        async with _Served(rpc, context), rpc.admitted(context):
            return await behaviour(request, context)

    return answer


def _stream(behaviour: Callable[..., Any], rpc: _Rpc) -> Stream:
    """A streaming-response behaviour run inside :class:`_Served` until its last message."""

    async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
        async with _Served(rpc, context), rpc.admitted(context):
            async for response in behaviour(request, context):
                yield response

    return stream


class _Served:
    """One call: its span, its clock, and, on the way out, its status, access line and errors."""

    _span: Span
    _token: Token[otel_context.Context]

    def __init__(self, rpc: _Rpc, context: Context) -> None:
        self._rpc = rpc
        self._context = context
        self._started = time.monotonic()

    async def __aenter__(self) -> None:
        parent = extract_context(self._context.invocation_metadata())
        self._span = self._rpc.tracer.start_span(
            self._rpc.name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": self._rpc.service,
                "rpc.method": self._rpc.method,
            },
        )
        # Current for the call, so the services' own spans become its children.
        self._token = otel_context.attach(trace.set_span_in_context(self._span, parent))

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        status, code = _outcome(error)
        self._close(status, code)
        if isinstance(error, ComityError):
            await _abort(self._context, status, code, error.message)
        if isinstance(error, Exception) and not isinstance(error, grpc.aio.AbortError):
            _LOG.error("%s failed unexpectedly", self._rpc.name, exc_info=error)
            await _abort(self._context, status, code, INTERNAL_MESSAGE)

    def _close(self, status: grpc.StatusCode | None, code: str) -> None:
        elapsed_ms = (time.monotonic() - self._started) * 1000
        shown = status.name if status is not None else "ABORTED_BY_HANDLER"
        if status is not None:
            self._span.set_attribute("rpc.grpc.status_code", status.value[0])
        if code:
            self._span.set_attribute("comity.error", code)
        if status in _SERVER_FAULTS:
            self._span.set_status(Status(StatusCode.ERROR, shown))
        otel_context.detach(self._token)
        self._span.end()
        _LOG.info("%s %s%s %.1f ms", self._rpc.name, shown, f" {code}" if code else "", elapsed_ms)


def _outcome(error: BaseException | None) -> tuple[grpc.StatusCode | None, str]:
    """The status a call ends with and its stable error code ("" if none).

    ``None`` is a status the handler already set by aborting the call itself.
    """
    if error is None:
        return grpc.StatusCode.OK, ""
    if isinstance(error, ComityError):
        return status_for(error), error.code
    if isinstance(error, grpc.aio.AbortError):
        return None, ""
    if isinstance(error, Exception):
        return grpc.StatusCode.INTERNAL, INTERNAL_CODE
    return grpc.StatusCode.CANCELLED, ""  # the caller went away, or the server is stopping


async def _abort(
    context: Context, status: grpc.StatusCode | None, code: str, message: str
) -> Never:
    context.set_trailing_metadata(((ERROR_TRAILER, code),))
    await context.abort(status or grpc.StatusCode.UNKNOWN, message)
