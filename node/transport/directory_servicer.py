# SPDX-License-Identifier: Apache-2.0
"""Directory.GetDirectory: serving the directory versions this node trusts to its peers."""

from __future__ import annotations

import grpc

from node.federation.trusted import FederationDirectory
from node.gen.comity.v1 import directory_pb2, directory_pb2_grpc

GetContext = grpc.aio.ServicerContext[
    directory_pb2.GetDirectoryRequest, directory_pb2.GetDirectoryResponse
]


class DirectoryServicer(directory_pb2_grpc.DirectoryServicer):
    def __init__(self, *, directory: FederationDirectory) -> None:
        self._directory = directory

    async def GetDirectory(  # noqa: N802 (the name is the RPC's)
        self, request: directory_pb2.GetDirectoryRequest, _context: GetContext
    ) -> directory_pb2.GetDirectoryResponse:
        version = request.version or self._directory.version
        document = await self._directory.document_bytes(version)
        return directory_pb2.GetDirectoryResponse(version=version, document=document)
