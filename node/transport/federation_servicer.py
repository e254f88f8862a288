# SPDX-License-Identifier: Apache-2.0
"""Federation.Deliver: the door through which other nodes hand this node their envelopes.

The method is registered to receive the raw request bytes, so that bytes which do not even
parse as protobuf are refused by Comity with ``INVALID_ARGUMENT`` and a reason, rather than by
the gRPC runtime with an opaque ``INTERNAL``.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError

from node import wire
from node.errors import MalformedError
from node.gen.comity.v1 import federation_pb2
from node.services.exchange import ExchangeService
from node.transport.peer_client import DIRECTORY_VERSION_HEADER
from node.transport.peer_gate import current_peer

SERVICE_NAME = federation_pb2.DESCRIPTOR.services_by_name["Federation"].full_name

DeliverContext = grpc.aio.ServicerContext[bytes, bytes]


class FederationServicer:
    def __init__(self, *, exchange: ExchangeService, directory_version: Callable[[], int]) -> None:
        self._exchange = exchange
        self._directory_version = directory_version

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's handler, taking raw request bytes and answering serialised bytes."""
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME, {"Deliver": grpc.unary_unary_rpc_method_handler(self.deliver)}
        )

    async def deliver(self, request: bytes, context: DeliverContext) -> bytes:
        # Announced first, so the sender learns it is behind even when the answer is a refusal.
        await context.send_initial_metadata(
            ((DIRECTORY_VERSION_HEADER, str(self._directory_version())),)
        )
        sealed = wire.envelope_from_proto(_parse_request(request).envelope)
        receipt = await self._exchange.receive(sealed, peer=current_peer())
        response = federation_pb2.DeliverResponse(receipt=wire.receipt_to_proto(receipt))
        return response.SerializeToString()


def _parse_request(data: bytes) -> federation_pb2.DeliverRequest:
    request = federation_pb2.DeliverRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as e:
        raise MalformedError("DeliverRequest is not a valid protobuf message") from e
    wire.refuse_unknown_fields(request, what="DeliverRequest")
    if not request.HasField("envelope"):
        raise MalformedError("DeliverRequest has no envelope")
    return request
