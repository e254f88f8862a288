# SPDX-License-Identifier: Apache-2.0
"""The Audit service: checkpoints, leaves and proofs for auditors, over mutual TLS."""

from __future__ import annotations

from typing import Any

import grpc

from node.audit.disclosure import remote_role
from node.gen.comity.v1 import audit_pb2, audit_pb2_grpc
from node.services.audit import AuditService
from node.services.disclosure import DisclosureService, Release
from node.services.witness import WitnessService
from node.transport.peer_gate import current_peer

Context = grpc.aio.ServicerContext[Any, Any]


class AuditServicer(audit_pb2_grpc.AuditServicer):
    def __init__(self, *, audit: AuditService, disclosure: DisclosureService) -> None:
        self._audit = audit
        self._disclosure = disclosure

    async def GetCheckpoint(  # noqa: N802 (the names are the RPCs')
        self, _request: audit_pb2.GetCheckpointRequest, _context: Context
    ) -> audit_pb2.CheckpointNote:
        return audit_pb2.CheckpointNote(note=await self._audit.checkpoint())

    async def GetLeaves(  # noqa: N802
        self, request: audit_pb2.GetLeavesRequest, _context: Context
    ) -> audit_pb2.GetLeavesResponse:
        leaves = await self._audit.leaves(start=request.start, end=request.end)
        return audit_pb2.GetLeavesResponse(leaves=leaves)

    async def GetInclusionProof(  # noqa: N802
        self, request: audit_pb2.GetInclusionProofRequest, _context: Context
    ) -> audit_pb2.Proof:
        proof = await self._audit.inclusion_proof(index=request.index, size=request.size)
        return audit_pb2.Proof(hashes=proof)

    async def GetConsistencyProof(  # noqa: N802
        self, request: audit_pb2.GetConsistencyProofRequest, _context: Context
    ) -> audit_pb2.Proof:
        proof = await self._audit.consistency_proof(
            old_size=request.old_size, new_size=request.new_size
        )
        return audit_pb2.Proof(hashes=proof)

    async def GetProofBundles(  # noqa: N802
        self, request: audit_pb2.GetProofBundlesRequest, _context: Context
    ) -> audit_pb2.ProofBundles:
        caller = current_peer()
        release = Release(
            role=remote_role(caller.roles), recipient=caller.agency_id, reason=request.reason
        )
        return proof_bundles(await self._disclosure.prove(request.target, release))


def proof_bundles(bundles: list[tuple[int, str]]) -> audit_pb2.ProofBundles:
    return audit_pb2.ProofBundles(
        bundles=[audit_pb2.ProofBundle(index=i, text=text) for i, text in bundles]
    )


class WitnessServicer(audit_pb2_grpc.WitnessServicer):
    def __init__(self, *, witness: WitnessService) -> None:
        self._witness = witness

    async def AddCheckpoint(  # noqa: N802 (the name is the RPC's)
        self, request: audit_pb2.AddCheckpointRequest, _context: Context
    ) -> audit_pb2.CosignatureLine:
        line = await self._witness.add_checkpoint(
            note=request.note, old_size=request.old_size, proof=list(request.consistency_proof)
        )
        return audit_pb2.CosignatureLine(line=line)
