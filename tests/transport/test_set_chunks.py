# SPDX-License-Identifier: Apache-2.0
"""Joining a large set's chunks: the stated length is the contract, the signature comes first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from node.gen.comity.v1 import indicators_pb2
from node.indicators.sets import MAX_DOCUMENT_BYTES
from node.transport.channel_options import SET_CHUNK_BYTES
from node.transport.peer_client import set_chunks
from node.transport.set_chunks_servicer import SetChunksError, assemble_set

Chunk = indicators_pb2.IndicatorSetChunk


async def stream(chunks: Sequence[Chunk]) -> AsyncIterator[Chunk]:
    for chunk in chunks:
        yield chunk


async def test_what_the_client_splits_the_server_joins() -> None:
    document = bytes(range(256)) * (SET_CHUNK_BYTES // 100)
    chunks = [c async for c in set_chunks(document, b"s" * 64)]
    assert len(chunks) == 3
    assert all(len(c.piece) <= SET_CHUNK_BYTES for c in chunks)
    assert await assemble_set(stream(chunks)) == (document, b"s" * 64)


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ([], "at least one chunk"),
        ([Chunk(document_length=3, piece=b"abc")], "first chunk states the signature"),
        ([Chunk(signature=b"s", piece=b"abc")], "first chunk states the signature"),
        (
            [Chunk(signature=b"s", document_length=MAX_DOCUMENT_BYTES + 1, piece=b"a")],
            "at most 32 MiB",
        ),
        (
            [Chunk(signature=b"s", document_length=4, piece=b"ab"), Chunk(signature=b"t")],
            "only the first chunk",
        ),
        (
            [Chunk(signature=b"s", document_length=2, piece=b"ab"), Chunk(piece=b"c")],
            "longer than the stated length",
        ),
        ([Chunk(signature=b"s", document_length=4, piece=b"abc")], "shorter than the stated"),
    ],
)
async def test_chunks_that_do_not_add_up_are_refused(chunks: list[Chunk], message: str) -> None:
    with pytest.raises(SetChunksError, match=message):
        await assemble_set(stream(chunks))
