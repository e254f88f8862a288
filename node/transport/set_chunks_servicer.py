# SPDX-License-Identifier: Apache-2.0
"""Indicators.OfferSetInChunks: a set too large for one message arrives in pieces.

The federation keeps its message limit small for every call (node/transport/channel_options.py),
while a set may hold 100,000 indicators, tens of MiB. The pieces are joined here, checked
against the length the first chunk states, and the whole document then goes through exactly
the checks of OfferSet. Only a few such offers are assembled at once, so peers cannot make
the node hold many large documents in memory together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from node.errors import ComityError, ErrorKind
from node.gen.comity.v1 import indicators_pb2
from node.indicators.sets import MAX_DOCUMENT_BYTES
from node.services.indicators import IndicatorService
from node.transport.peer_gate import current_peer

Context = grpc.aio.ServicerContext[Any, Any]

CHUNKED_OFFERS_AT_ONCE = 4


class SetChunksError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_set_chunks"


class SetChunkRpcs:
    """Mixed into IndicatorsServicer: it sets ``_indicators``."""

    _indicators: IndicatorService
    _chunked_offers: asyncio.Semaphore | None = None

    async def OfferSetInChunks(  # noqa: N802 (the name is the RPC's)
        self, request_iterator: AsyncIterator[indicators_pb2.IndicatorSetChunk], _context: Context
    ) -> indicators_pb2.IndicatorSetAck:
        if self._chunked_offers is None:
            self._chunked_offers = asyncio.Semaphore(CHUNKED_OFFERS_AT_ONCE)
        async with self._chunked_offers:
            document, signature = await assemble_set(request_iterator)
            offered = await self._indicators.receive(document, signature, peer=current_peer())
        return indicators_pb2.IndicatorSetAck(set_id=offered.set_id, version=offered.version)


async def assemble_set(
    chunks: AsyncIterator[indicators_pb2.IndicatorSetChunk],
) -> tuple[bytes, bytes]:
    """The document and signature from an offer's chunks.

    Raises:
        SetChunksError: no chunks, a length over 32 MiB, a signature or length outside the
            first chunk, or pieces that do not add up to the stated length.
    """
    signature, expected, pieces, received = b"", -1, [], 0
    async for chunk in chunks:
        if expected < 0:
            if not chunk.signature or not 0 < chunk.document_length <= MAX_DOCUMENT_BYTES:
                raise SetChunksError(
                    "the first chunk states the signature and a length of at most 32 MiB"
                )
            signature, expected = chunk.signature, chunk.document_length
        elif chunk.signature or chunk.document_length:
            raise SetChunksError("only the first chunk carries the signature and the length")
        received += len(chunk.piece)
        if received > expected:
            raise SetChunksError("the pieces are longer than the stated length")
        pieces.append(chunk.piece)
    if expected < 0:
        raise SetChunksError("an offer holds at least one chunk")
    if received != expected:
        raise SetChunksError("the pieces are shorter than the stated length")
    return b"".join(pieces), signature
