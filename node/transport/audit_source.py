# SPDX-License-Identifier: Apache-2.0
"""A member's audit log read over its Audit service: the gRPC side of the auditor's
``LogSource`` (``node.audit.auditor``), plus the release of proof bundles to an oversight body
or the secretariat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from node.gen.comity.v1 import audit_pb2, audit_pb2_grpc
from node.members import Member
from node.services.audit import MAX_LEAVES_PER_CALL
from node.transport.peer_client import PeerClient
from node.transport.status import error_from_rpc

CALL_TIMEOUT_S = 30.0


class GrpcLogSource:
    """One member's Audit service; leaves come in pages the service accepts, and every call
    has a deadline."""

    def __init__(self, stub: audit_pb2_grpc.AuditAsyncStub, *, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def checkpoint(self) -> str:
        return (
            await self._stub.GetCheckpoint(
                audit_pb2.GetCheckpointRequest(), timeout=self._timeout_s
            )
        ).note

    async def leaves(self, start: int, end: int) -> list[bytes]:
        end = min(end, start + MAX_LEAVES_PER_CALL)
        request = audit_pb2.GetLeavesRequest(start=start, end=end)
        page = await self._stub.GetLeaves(request, timeout=self._timeout_s)
        return list(page.leaves)

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        request = audit_pb2.GetConsistencyProofRequest(old_size=old_size, new_size=new_size)
        return list((await self._stub.GetConsistencyProof(request, timeout=self._timeout_s)).hashes)

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        request = audit_pb2.GetInclusionProofRequest(index=index, size=size)
        return list((await self._stub.GetInclusionProof(request, timeout=self._timeout_s)).hashes)

    async def proof_bundles(self, target: str, reason: str) -> list[tuple[int, str]]:
        """Bundles (leaf index, tlog-proof text) the member releases to this caller's role;
        the member logs the release."""
        request = audit_pb2.GetProofBundlesRequest(target=target, reason=reason)
        answer = await self._stub.GetProofBundles(request, timeout=self._timeout_s)
        return [(bundle.index, bundle.text) for bundle in answer.bundles]


@asynccontextmanager
async def audit_source(
    member: Member, *, certificate: bytes, private_key: bytes, timeout_s: float = CALL_TIMEOUT_S
) -> AsyncIterator[GrpcLogSource]:
    """The member's Audit service, reached with this node's mutual-TLS identity (the channel
    connects on the first call); an RPC error inside becomes the ComityError it stands for."""
    peers = PeerClient(certificate=certificate, private_key=private_key, timeout_s=timeout_s)
    try:
        stub = audit_pb2_grpc.AuditStub(peers.channel(member))
        yield GrpcLogSource(stub, timeout_s=timeout_s)
    except grpc.aio.AioRpcError as e:
        raise error_from_rpc(e, peer=member.agency_id) from e
    finally:
        await peers.close()
