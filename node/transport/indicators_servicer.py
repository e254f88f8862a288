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
from node.tls import peer_certificate_fingerprint
from node.transport.reveal_servicer import RevealRpcs, overlap_chunks
from node.transport.set_chunks_servicer import SetChunkRpcs
from node.transport.sightings_servicer import SightingRpcs
from node.transport.streams import STREAM_IDLE_S, received

SERVICE_NAME = indicators_pb2.DESCRIPTOR.services_by_name["Indicators"].full_name

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
        stream_idle_s: float = STREAM_IDLE_S,
    ) -> None:
        self._indicators = indicators
        self._stream_idle_s = stream_idle_s
        self._overlap = overlap
        self._reveal = reveal
        self._sightings = sightings

    async def OfferSet(  # noqa: N802 (the name is the RPC's)
        self, request: indicators_pb2.SignedIndicatorSet, context: Context
    ) -> indicators_pb2.IndicatorSetAck:
        fingerprint = peer_certificate_fingerprint(context.auth_context())
        offered = await self._indicators.receive(
            request.document, request.signature, peer_fingerprint=fingerprint
        )
        return indicators_pb2.IndicatorSetAck(set_id=offered.set_id, version=offered.version)

    async def CountOverlap(  # noqa: N802
        self, request_iterator: AsyncIterator[indicators_pb2.OverlapChunk], context: Context
    ) -> AsyncIterator[indicators_pb2.OverlapChunk]:
        reason, points = await _initiator_points(
            received(request_iterator, what="CountOverlap", idle_s=self._stream_idle_s)
        )
        fingerprint = peer_certificate_fingerprint(context.auth_context())
        answer = await self._overlap.answer(points, reason=reason, peer_fingerprint=fingerprint)
        for chunk in overlap_chunks(answer):
            yield chunk


async def _initiator_points(
    chunks: AsyncIterator[indicators_pb2.OverlapChunk],
) -> tuple[str, list[bytes]]:
    """The reason the first chunk states, and the caller's points.

    Raises:
        OverlapError: more than MAX_ITEMS points.
    """
    reason: str | None = None
    points: list[bytes] = []
    async for chunk in chunks:
        reason = chunk.reason if reason is None else reason
        points.extend(chunk.initiator)
        if len(points) > MAX_ITEMS:
            raise OverlapError(f"an overlap check takes at most {MAX_ITEMS} items a side")
    return reason or "", points
