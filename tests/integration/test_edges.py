# SPDX-License-Identifier: Apache-2.0
"""The federation's edges (issue 13 points 7 and 10): integers beyond what a node stores and
bytes that are not the message a method takes are refused as INVALID_ARGUMENT with a stable
code, never INTERNAL or UNKNOWN; a client stream left idle is ended by the server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from node.gen.comity.v1 import audit_pb2, directory_pb2, groups_pb2
from tests.integration.harness import Federation, make_configs, running_federation

UNIT, AUTHORITY = "aa-cyber-unit", "bb-central-authority"
TOO_BIG = 2**64 - 1
GARBAGE = b"\xff\xff\xff not protobuf"
CLIENT_STREAMS = ("/comity.v1.Evidence/Upload", "/comity.v1.Indicators/OfferSetInChunks")
BIDI_STREAMS = ("/comity.v1.Indicators/CountOverlap", "/comity.v1.Indicators/RevealOverlap")


def code(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get("comity-error")


def refusal(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str | None]:
    return error.code(), code(error)


async def unary(fed: Federation, method: str, data: bytes) -> grpc.aio.AioRpcError:
    async with fed.channel(client=UNIT, server=AUTHORITY) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(data, timeout=10)
    return caught.value


UNARY_INTEGERS: list[tuple[str, Message, str]] = [
    (
        "/comity.v1.Directory/GetDirectory",
        directory_pb2.GetDirectoryRequest(version=TOO_BIG),
        "malformed",
    ),
    (
        "/comity.v1.Audit/GetLeaves",
        audit_pb2.GetLeavesRequest(start=TOO_BIG, end=TOO_BIG),
        "malformed",
    ),
    (
        "/comity.v1.Audit/GetInclusionProof",
        audit_pb2.GetInclusionProofRequest(index=TOO_BIG, size=TOO_BIG),
        "malformed",
    ),
    (
        "/comity.v1.Audit/GetConsistencyProof",
        audit_pb2.GetConsistencyProofRequest(old_size=1, new_size=TOO_BIG),
        "malformed",
    ),
    (
        "/comity.v1.Groups/PullTags",
        groups_pb2.PullTagsRequest(
            group_id="00000000-0000-4000-8000-000000000000",
            publisher=UNIT,
            after_seq=TOO_BIG,
            limit=10,
        ),
        "bad_group",
    ),
]


@pytest.mark.parametrize(("method", "message", "expected"), UNARY_INTEGERS)
async def test_an_integer_beyond_a_64_bit_column_is_refused_as_invalid(
    fed: Federation, method: str, message: Message, expected: str
) -> None:
    error = await unary(fed, method, message.SerializeToString())
    assert refusal(error) == (grpc.StatusCode.INVALID_ARGUMENT, expected)


@pytest.mark.parametrize("method", CLIENT_STREAMS)
async def test_garbage_on_a_client_stream_is_malformed(fed: Federation, method: str) -> None:
    async with fed.channel(client=UNIT, server=AUTHORITY) as channel:
        call: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(method)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(iter([GARBAGE]), timeout=10)
    assert refusal(caught.value) == (grpc.StatusCode.INVALID_ARGUMENT, "malformed")
    assert "not a valid protobuf message" in (caught.value.details() or "")


@pytest.mark.parametrize("method", BIDI_STREAMS)
async def test_garbage_on_a_bidirectional_stream_is_malformed(fed: Federation, method: str) -> None:
    async with fed.channel(client=UNIT, server=AUTHORITY) as channel:
        call: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(method)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call(iter([GARBAGE]), timeout=10):
                pass
    assert refusal(caught.value) == (grpc.StatusCode.INVALID_ARGUMENT, "malformed")


IDLE_S = 0.5


@pytest.fixture
async def impatient(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    """Nodes that end a client stream idle for half a second."""
    configs = make_configs(tmp_path, node_database_urls)
    configs = {a: replace(c, stream_idle_s=IDLE_S) for a, c in configs.items()}
    async with running_federation(configs) as federation:
        yield federation


@pytest.mark.parametrize("method", [*CLIENT_STREAMS, *BIDI_STREAMS])
async def test_a_client_stream_idle_too_long_is_ended_by_the_server(
    impatient: Federation, method: str
) -> None:
    async def silent() -> AsyncIterator[bytes]:
        await asyncio.sleep(30)  # opens the stream, then sends nothing
        yield b""

    started = time.monotonic()
    async with impatient.channel(client=UNIT, server=AUTHORITY) as channel:
        stream: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(method)
        call = stream(silent(), timeout=20)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
    assert refusal(caught.value) == (grpc.StatusCode.UNAVAILABLE, "stream_idle")
    assert time.monotonic() - started < 10
