# SPDX-License-Identifier: Apache-2.0
"""Delivers envelopes to other nodes over mutual TLS (the exchange's PeerTransport)."""

from __future__ import annotations

import grpc

from node import wire
from node.errors import MalformedError, ReceiptError
from node.gen.comity.v1 import federation_pb2, federation_pb2_grpc
from node.members import Member
from node.model.envelope import SealedEnvelope, SignedReceipt
from node.telemetry import inject_metadata
from node.transport.channel_options import COMMON_OPTIONS
from node.transport.status import error_from_rpc


class PeerClient:
    """One mutual-TLS channel per peer, created lazily inside the running event loop.

    The channel trusts exactly the certificate the membership lists for the peer and checks
    that it names the peer's agency id, so the server is pinned as well as the client.
    """

    def __init__(self, *, certificate: bytes, private_key: bytes, timeout_s: float) -> None:
        self._certificate = certificate
        self._private_key = private_key
        self._timeout_s = timeout_s
        self._channels: dict[tuple[str, str, str], grpc.aio.Channel] = {}

    async def deliver(self, member: Member, envelope: SealedEnvelope) -> SignedReceipt:
        """Deliver one envelope and return the peer's (not yet verified) receipt.

        Raises:
            PeerUnavailableError: unreachable, TLS refused, or no answer before the deadline.
            PeerRejectedError: the peer refused the envelope (its status and reason).
            ReceiptError: the answer does not hold a well-formed receipt.
        """
        stub = federation_pb2_grpc.FederationStub(self.channel(member))
        request = federation_pb2.DeliverRequest(envelope=wire.envelope_to_proto(envelope))
        try:
            response = await stub.Deliver(
                request, timeout=self._timeout_s, metadata=inject_metadata()
            )
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e
        if not response.HasField("receipt"):
            raise ReceiptError(f"node of {member.agency_id} answered without a receipt")
        try:
            return wire.receipt_from_proto(response.receipt)
        except MalformedError as e:
            raise ReceiptError(f"node of {member.agency_id} sent a malformed receipt: {e}") from e

    def channel(self, member: Member) -> grpc.aio.Channel:
        """The mutual-TLS channel to ``member``'s node (created once, reused)."""
        key = (member.agency_id, member.endpoint, member.tls_fingerprint)
        channel = self._channels.get(key)
        if channel is None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=member.tls_certificate,
                private_key=self._private_key,
                certificate_chain=self._certificate,
            )
            options = (*COMMON_OPTIONS, ("grpc.ssl_target_name_override", member.agency_id))
            channel = grpc.aio.secure_channel(member.endpoint, credentials, options=options)
            self._channels[key] = channel
        return channel

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()
