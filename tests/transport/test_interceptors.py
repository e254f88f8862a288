# SPDX-License-Identifier: Apache-2.0
"""The server interceptor, over a real loopback gRPC server: refusals keep their status and
stable code, failures become INTERNAL without their text, in every kind of RPC; each call has a
server span continuing the caller's trace and one access-log line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from node.errors import NotFoundError
from node.telemetry import inject_metadata
from node.transport.interceptors import ComityServerInterceptor
from node.transport.status import ERROR_TRAILER, INTERNAL_CODE, INTERNAL_MESSAGE

SERVICE = "comity.test.Probe"
OTHER_SERVICE = "grpc.test.Probe"
"""Stands for gRPC's own health and reflection services, which pass through untouched."""
SECRET = "case-4711 Jane Doe"
"""Stands for case content in an exception's text: it must never reach the peer."""

Context = grpc.aio.ServicerContext[Any, Any]


def fail(how: bytes) -> None:
    if how == b"refuse":
        raise NotFoundError(f"no such request {SECRET[:8]}")
    if how == b"crash":
        raise RuntimeError(SECRET)


async def unary(request: bytes, _context: Context) -> bytes:
    fail(request)
    return b"ok:" + request


async def unary_stream(request: bytes, _context: Context) -> AsyncIterator[bytes]:
    yield b"first"  # a failure after messages went out still ends the call with its status
    fail(request)
    yield b"last"


async def stream_unary(requests: AsyncIterator[bytes], _context: Context) -> bytes:
    received = [r async for r in requests]
    fail(received[-1])
    return b"+".join(received)


async def stream_stream(requests: AsyncIterator[bytes], _context: Context) -> AsyncIterator[bytes]:
    async for request in requests:
        fail(request)
        yield request


def probe_handler(service: str = SERVICE) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        service,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "UnaryStream": grpc.unary_stream_rpc_method_handler(unary_stream),
            "StreamUnary": grpc.stream_unary_rpc_method_handler(stream_unary),
            "StreamStream": grpc.stream_stream_rpc_method_handler(stream_stream),
        },
    )


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def channel(spans: InMemorySpanExporter) -> AsyncIterator[grpc.aio.Channel]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    interceptor = ComityServerInterceptor(tracer=provider.get_tracer("test"))
    server = grpc.aio.server(interceptors=(interceptor,))
    server.add_generic_rpc_handlers((probe_handler(), probe_handler(OTHER_SERVICE)))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
        yield opened
    await server.stop(None)


async def requests(*messages: bytes) -> AsyncIterator[bytes]:
    for message in messages:
        yield message


Call = Callable[[grpc.aio.Channel, bytes], Awaitable[object]]


def unary_method(
    channel: grpc.aio.Channel, method: str
) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(method)


async def call_unary(channel: grpc.aio.Channel, how: bytes) -> object:
    return await unary_method(channel, f"/{SERVICE}/Unary")(how, timeout=10)


async def call_unary_stream(channel: grpc.aio.Channel, how: bytes) -> object:
    method: grpc.aio.UnaryStreamMultiCallable[bytes, bytes]
    method = channel.unary_stream(f"/{SERVICE}/UnaryStream")
    call = method(how, timeout=10)
    return [m async for m in call]


async def call_stream_unary(channel: grpc.aio.Channel, how: bytes) -> object:
    method: grpc.aio.StreamUnaryMultiCallable[bytes, bytes]
    method = channel.stream_unary(f"/{SERVICE}/StreamUnary")
    return await method(requests(b"a", how), timeout=10)


async def call_stream_stream(channel: grpc.aio.Channel, how: bytes) -> object:
    method: grpc.aio.StreamStreamMultiCallable[bytes, bytes]
    method = channel.stream_stream(f"/{SERVICE}/StreamStream")
    call = method(requests(b"a", how), timeout=10)
    return [m async for m in call]


CALLS = pytest.mark.parametrize(
    "call", [call_unary, call_unary_stream, call_stream_unary, call_stream_stream]
)


def trailer(error: grpc.aio.AioRpcError) -> str | bytes | None:
    return dict(error.trailing_metadata() or ()).get(ERROR_TRAILER)


@CALLS
async def test_a_comity_error_keeps_its_status_message_and_code(
    channel: grpc.aio.Channel, call: Call
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(channel, b"refuse")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert refused.value.details() == f"no such request {SECRET[:8]}"
    assert trailer(refused.value) == NotFoundError.code


@CALLS
async def test_any_other_exception_is_internal_and_its_text_stays_home(
    channel: grpc.aio.Channel, call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call(channel, b"crash")
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert failed.value.details() == INTERNAL_MESSAGE
    assert trailer(failed.value) == INTERNAL_CODE
    assert SECRET not in repr(failed.value)
    # The node's own log keeps the details for its operators.
    assert any(r.exc_info and SECRET in str(r.exc_info[1]) for r in caplog.records)


@CALLS
async def test_answers_pass_through(channel: grpc.aio.Channel, call: Call) -> None:
    assert await call(channel, b"fine") in (
        b"ok:fine",
        [b"first", b"last"],
        b"a+fine",
        [b"a", b"fine"],
    )


async def test_each_call_has_a_server_span_in_the_callers_trace(
    channel: grpc.aio.Channel, spans: InMemorySpanExporter
) -> None:
    caller = TracerProvider().get_tracer("caller")
    with caller.start_as_current_span("client") as client:
        metadata = inject_metadata()
    await unary_method(channel, f"/{SERVICE}/Unary")(b"fine", metadata=metadata, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError):
        await call_unary_stream(channel, b"refuse")

    answered, refused = spans.get_finished_spans()
    assert answered.name == f"{SERVICE}/Unary"
    assert answered.parent is not None
    assert answered.parent.span_id == client.get_span_context().span_id
    assert answered.context is not None
    assert answered.context.trace_id == client.get_span_context().trace_id
    assert dict(answered.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "Unary",
        "rpc.grpc.status_code": grpc.StatusCode.OK.value[0],
    }
    assert (refused.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert (refused.attributes or {})["comity.error"] == NotFoundError.code


async def test_one_access_line_a_call_without_its_contents(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="node.transport.interceptors")
    await call_unary(channel, b"fine")
    with pytest.raises(grpc.aio.AioRpcError):
        await call_stream_unary(channel, b"refuse")

    lines = [r.getMessage() for r in caplog.records if r.name == "node.transport.interceptors"]
    assert len(lines) == 2
    assert lines[0].startswith(f"{SERVICE}/Unary OK ")
    assert lines[1].startswith(f"{SERVICE}/StreamUnary NOT_FOUND {NotFoundError.code} ")
    assert all(line.endswith(" ms") for line in lines)
    assert not any("fine" in line or SECRET[:8] in line for line in lines)


async def test_services_other_than_comitys_pass_through_untouched(
    channel: grpc.aio.Channel, spans: InMemorySpanExporter
) -> None:
    await unary_method(channel, f"/{OTHER_SERVICE}/Unary")(b"fine", timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await unary_method(channel, f"/{OTHER_SERVICE}/Unary")(b"refuse", timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNKNOWN  # gRPC's own answer
    assert trailer(refused.value) is None
    assert spans.get_finished_spans() == ()
