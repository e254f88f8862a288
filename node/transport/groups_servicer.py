# SPDX-License-Identifier: Apache-2.0
"""The Groups service between nodes (key offers, tag pulls), and its client side."""

from __future__ import annotations

from typing import Any

import grpc

from node.gen.comity.v1 import groups_pb2, groups_pb2_grpc
from node.indicators.groups import TagEntry, TagPage
from node.members import Member
from node.services.groups import GroupService
from node.transport.peer_client import PeerClient
from node.transport.peer_gate import current_peer
from node.transport.status import error_from_rpc

Context = grpc.aio.ServicerContext[Any, Any]


class GroupsServicer(groups_pb2_grpc.GroupsServicer):
    def __init__(self, *, groups: GroupService) -> None:
        self._groups = groups

    async def OfferGroupKey(  # noqa: N802 (the name is the RPC's)
        self, request: groups_pb2.SignedGroupKey, _context: Context
    ) -> groups_pb2.GroupKeyAck:
        group = await self._groups.receive_key(
            request.document,
            request.signature,
            peer=current_peer(),
        )
        return groups_pb2.GroupKeyAck(group_id=group.group_id, epoch=group.epoch)

    async def PullTags(  # noqa: N802
        self, request: groups_pb2.PullTagsRequest, _context: Context
    ) -> groups_pb2.PullTagsResponse:
        page = await self._groups.serve_pull(
            group_id=request.group_id,
            publisher=request.publisher,
            after_seq=request.after_seq,
            limit=request.limit,
            peer=current_peer(),
        )
        return page_to_proto(page)


def page_to_proto(page: TagPage) -> groups_pb2.PullTagsResponse:
    return groups_pb2.PullTagsResponse(
        entries=[
            groups_pb2.TagEntry(seq=e.seq, epoch=e.epoch, tag=e.tag, tombstone=e.tombstone)
            for e in page.entries
        ],
        last_seq=page.last_seq,
    )


def page_from_proto(answer: groups_pb2.PullTagsResponse) -> TagPage:
    """Fields as received: node.indicators.groups.verify_page checks them."""
    return TagPage(
        entries=tuple(
            TagEntry(seq=e.seq, epoch=e.epoch, tag=e.tag, tombstone=e.tombstone)
            for e in answer.entries
        ),
        last_seq=answer.last_seq,
    )


class GroupsClient:
    """The GroupService's transport: calls to other members' Groups service over the peer
    client's mutual-TLS channels."""

    def __init__(self, *, peers: PeerClient, timeout_s: float) -> None:
        self._peers = peers
        self._timeout_s = timeout_s

    async def offer_group_key(self, member: Member, document: bytes, signature: bytes) -> None:
        """Raises: PeerUnavailableError, PeerRejectedError."""
        stub = groups_pb2_grpc.GroupsStub(self._peers.channel(member))
        request = groups_pb2.SignedGroupKey(document=document, signature=signature)
        try:
            await stub.OfferGroupKey(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e

    async def pull_tags(
        self, member: Member, *, group_id: str, after_seq: int, limit: int
    ) -> TagPage:
        """A page of ``member``'s own log in the group, unchecked.

        Raises: PeerUnavailableError, PeerRejectedError.
        """
        stub = groups_pb2_grpc.GroupsStub(self._peers.channel(member))
        request = groups_pb2.PullTagsRequest(
            group_id=group_id, publisher=member.agency_id, after_seq=after_seq, limit=limit
        )
        try:
            answer = await stub.PullTags(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e
        return page_from_proto(answer)
