# SPDX-License-Identifier: Apache-2.0
"""Indicators.AskReveal and Indicators.RevealOverlap: a peer asks to learn which indicators the
two agencies share, and, once a person here consented, runs that reveal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc

from node.gen.comity.v1 import indicators_pb2
from node.indicators.reveal import MAX_REVEAL_ITEMS, RevealRequestError
from node.services.overlap import OverlapAnswer
from node.services.overlap_reveal import RevealService
from node.tls import peer_certificate_fingerprint
from node.transport.channel_options import OVERLAP_CHUNK
from node.transport.streams import received

Context = grpc.aio.ServicerContext[Any, Any]


class RevealRpcs:
    """Mixed into IndicatorsServicer: it sets ``_reveal`` and ``_stream_idle_s``."""

    _reveal: RevealService
    _stream_idle_s: float

    async def AskReveal(  # noqa: N802 (the names are the RPCs')
        self, request: indicators_pb2.SignedRevealRequest, context: Context
    ) -> indicators_pb2.RevealAck:
        fingerprint = peer_certificate_fingerprint(context.auth_context())
        kept = await self._reveal.receive(
            request.document, request.signature, peer_fingerprint=fingerprint
        )
        return indicators_pb2.RevealAck(request_id=kept.request_id)

    async def RevealOverlap(  # noqa: N802
        self, request_iterator: AsyncIterator[indicators_pb2.RevealChunk], context: Context
    ) -> AsyncIterator[indicators_pb2.OverlapChunk]:
        request_id, points = await _reveal_points(
            received(request_iterator, what="RevealOverlap", idle_s=self._stream_idle_s)
        )
        fingerprint = peer_certificate_fingerprint(context.auth_context())
        answer = await self._reveal.answer(request_id, points, peer_fingerprint=fingerprint)
        for chunk in overlap_chunks(answer):
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


def overlap_chunks(answer: OverlapAnswer) -> Iterator[indicators_pb2.OverlapChunk]:
    """The answer to an overlap check or a reveal, in messages of OVERLAP_CHUNK points: the
    check's id, the asker's points blinded again, in the order they came (for a reveal that
    order is the answer), then this node's own."""
    yield indicators_pb2.OverlapChunk(check_id=answer.check_id)
    doubled, mine = answer.doubled, answer.mine
    for start in range(0, len(doubled), OVERLAP_CHUNK):
        yield indicators_pb2.OverlapChunk(doubled=doubled[start : start + OVERLAP_CHUNK])
    for start in range(0, len(mine), OVERLAP_CHUNK):
        yield indicators_pb2.OverlapChunk(responder=mine[start : start + OVERLAP_CHUNK])
