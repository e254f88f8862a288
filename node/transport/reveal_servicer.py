# SPDX-License-Identifier: Apache-2.0
"""Indicators.AskReveal and Indicators.RevealOverlap: a peer asks to learn which indicators the
two agencies share, and, once a person here consented, runs that reveal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc

from node.gen.comity.v1 import indicators_pb2
from node.indicators.reveal import MAX_REVEAL_ITEMS, RevealRequestError
from node.services.overlap_reveal import RevealService
from node.transport.channel_options import OVERLAP_CHUNK
from node.transport.peer_gate import current_peer

Context = grpc.aio.ServicerContext[Any, Any]


class RevealRpcs:
    """Mixed into IndicatorsServicer: it sets ``_reveal``."""

    _reveal: RevealService

    async def AskReveal(  # noqa: N802 (the names are the RPCs')
        self, request: indicators_pb2.SignedRevealRequest, _context: Context
    ) -> indicators_pb2.RevealAck:
        kept = await self._reveal.receive(request.document, request.signature, peer=current_peer())
        return indicators_pb2.RevealAck(request_id=kept.request_id)

    async def RevealOverlap(  # noqa: N802
        self, request_iterator: AsyncIterator[indicators_pb2.RevealChunk], _context: Context
    ) -> AsyncIterator[indicators_pb2.OverlapChunk]:
        request_id, points = await _reveal_points(request_iterator)
        doubled, mine = await self._reveal.answer(request_id, points, peer=current_peer())
        for chunk in overlap_chunks(doubled, mine):
            yield chunk


async def _reveal_points(
    chunks: AsyncIterator[indicators_pb2.RevealChunk],
) -> tuple[str, list[bytes]]:
    """The request id the first chunk names, and the asker's points in their order.

    Raises:
        RevealRequestError: more than MAX_REVEAL_ITEMS points, or no request id.
    """
    request_id = ""
    points: list[bytes] = []
    async for chunk in chunks:
        request_id = request_id or chunk.request_id
        points.extend(chunk.initiator)
        if len(points) > MAX_REVEAL_ITEMS:
            raise RevealRequestError(f"a reveal takes at most {MAX_REVEAL_ITEMS} points")
    if not request_id:
        raise RevealRequestError("the first chunk of a reveal names its request_id")
    return request_id, points


def overlap_chunks(
    doubled: list[bytes], mine: list[bytes]
) -> Iterator[indicators_pb2.OverlapChunk]:
    """The answer to an overlap check or a reveal, in messages of OVERLAP_CHUNK points: the
    asker's points blinded again, in the order they came (for a reveal that order is the
    answer), then this node's own."""
    for start in range(0, len(doubled), OVERLAP_CHUNK):
        yield indicators_pb2.OverlapChunk(doubled=doubled[start : start + OVERLAP_CHUNK])
    for start in range(0, len(mine), OVERLAP_CHUNK):
        yield indicators_pb2.OverlapChunk(responder=mine[start : start + OVERLAP_CHUNK])
