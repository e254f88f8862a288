# SPDX-License-Identifier: Apache-2.0
"""Indicators.OfferSet: a peer passes this node a version of an indicator set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from node.gen.comity.v1 import indicators_pb2, indicators_pb2_grpc
from node.indicators.psi import MAX_ITEMS, OverlapError
from node.services.indicators import IndicatorService
from node.services.overlap import OverlapService
from node.services.overlap_reveal import RevealService
from node.services.sightings import SightingService
from node.transport.peer_gate import current_peer
from node.transport.reveal_servicer import RevealRpcs, overlap_chunks
from node.transport.set_chunks_servicer import SetChunkRpcs
from node.transport.sightings_servicer import SightingRpcs

Context = grpc.aio.ServicerContext[Any, Any]


class IndicatorsServicer(
    RevealRpcs, SightingRpcs, SetChunkRpcs, indicators_pb2_grpc.IndicatorsServicer
):
    def __init__(
        self,
        *,
        indicators: IndicatorService,
        overlap: OverlapService,
        reveal: RevealService,
        sightings: SightingService,
    ) -> None:
        self._indicators = indicators
        self._overlap = overlap
        self._reveal = reveal
        self._sightings = sightings

    async def OfferSet(  # noqa: N802 (the name is the RPC's)
        self, request: indicators_pb2.SignedIndicatorSet, _context: Context
    ) -> indicators_pb2.IndicatorSetAck:
        offered = await self._indicators.receive(
            request.document, request.signature, peer=current_peer()
        )
        return indicators_pb2.IndicatorSetAck(set_id=offered.set_id, version=offered.version)

    async def CountOverlap(  # noqa: N802
        self, request_iterator: AsyncIterator[indicators_pb2.OverlapChunk], _context: Context
    ) -> AsyncIterator[indicators_pb2.OverlapChunk]:
        points = await _initiator_points(request_iterator)
        doubled, mine = await self._overlap.answer(points, peer=current_peer())
        for chunk in overlap_chunks(doubled, mine):
            yield chunk


async def _initiator_points(chunks: AsyncIterator[indicators_pb2.OverlapChunk]) -> list[bytes]:
    """Raises: OverlapError: more than MAX_ITEMS points."""
    points: list[bytes] = []
    async for chunk in chunks:
        points.extend(chunk.initiator)
        if len(points) > MAX_ITEMS:
            raise OverlapError(f"an overlap check takes at most {MAX_ITEMS} items a side")
    return points
