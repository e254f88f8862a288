# SPDX-License-Identifier: Apache-2.0
"""Evidence.Status and Evidence.Upload: receiving the chunks of returned evidence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from node.gen.comity.v1 import evidence_pb2, evidence_pb2_grpc
from node.services.evidence import Chunk, EvidenceService, ItemProgress, Progress
from node.transport.peer_gate import current_peer

Context = grpc.aio.ServicerContext[Any, Any]


class EvidenceServicer(evidence_pb2_grpc.EvidenceServicer):
    def __init__(self, *, evidence: EvidenceService) -> None:
        self._evidence = evidence

    async def Status(  # noqa: N802 (the name is the RPC's)
        self, request: evidence_pb2.EvidenceStatusRequest, _context: Context
    ) -> evidence_pb2.EvidenceProgress:
        return progress_to_proto(
            await self._evidence.status(request.evidence_id, peer=current_peer())
        )

    async def Upload(  # noqa: N802
        self, request_iterator: AsyncIterator[evidence_pb2.EvidenceChunk], _context: Context
    ) -> evidence_pb2.EvidenceProgress:
        chunks = (_chunk(message) async for message in request_iterator)
        return progress_to_proto(await self._evidence.receive(chunks, peer=current_peer()))


def _chunk(message: evidence_pb2.EvidenceChunk) -> Chunk:
    return Chunk(
        evidence_id=message.evidence_id,
        item=message.item,
        index=message.index,
        sealed=message.sealed,
    )


def progress_to_proto(progress: Progress) -> evidence_pb2.EvidenceProgress:
    return evidence_pb2.EvidenceProgress(
        evidence_id=progress.evidence_id,
        items=[
            evidence_pb2.ItemProgress(item=i.item, next_chunk=i.next_chunk, verified=i.verified)
            for i in progress.items
        ],
        complete=progress.complete,
    )


def progress_from_proto(message: evidence_pb2.EvidenceProgress) -> Progress:
    return Progress(
        evidence_id=message.evidence_id,
        items=tuple(
            ItemProgress(item=i.item, next_chunk=i.next_chunk, verified=i.verified)
            for i in message.items
        ),
    )
