# SPDX-License-Identifier: Apache-2.0
"""Delivers envelopes to other nodes over mutual TLS (the exchange's PeerTransport)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc

from node import wire
from node.errors import MalformedError, ReceiptError
from node.gen.comity.v1 import (
    directory_pb2,
    directory_pb2_grpc,
    evidence_pb2,
    evidence_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
    indicators_pb2,
    indicators_pb2_grpc,
)
from node.ids import AgencyId
from node.members import Member
from node.model.envelope import SealedEnvelope, SignedReceipt
from node.services.evidence import Chunk, Progress
from node.telemetry import inject_metadata
from node.transport.channel_options import COMMON_OPTIONS, OVERLAP_CHUNK, SET_CHUNK_BYTES
from node.transport.evidence_servicer import progress_from_proto
from node.transport.status import error_from_rpc

DIRECTORY_VERSION_HEADER = "comity-directory-version"


class PeerClient:
    """One mutual-TLS channel per peer, created lazily inside the running event loop.

    The channel trusts exactly the certificate the membership lists for the peer and checks
    that it names the peer's agency id, so the server is pinned as well as the client.
    """

    def __init__(
        self,
        *,
        certificate: bytes,
        private_key: bytes,
        timeout_s: float,
        on_directory_version: Callable[[AgencyId, int], None] = lambda _agency, _version: None,
    ) -> None:
        self._certificate = certificate
        self._private_key = private_key
        self._timeout_s = timeout_s
        self._channels: dict[tuple[str, str, str], grpc.aio.Channel] = {}
        self.on_directory_version = on_directory_version
        """Told the directory version each peer announces in its Deliver answers."""

    async def deliver(self, member: Member, envelope: SealedEnvelope) -> SignedReceipt:
        """Deliver one envelope and return the peer's (not yet verified) receipt.

        Raises:
            PeerUnavailableError: unreachable, TLS refused, or no answer before the deadline.
            PeerRejectedError: the peer refused the envelope (its status and reason).
            ReceiptError: the answer does not hold a well-formed receipt.
        """
        stub = federation_pb2_grpc.FederationStub(self.channel(member))
        request = federation_pb2.DeliverRequest(envelope=wire.envelope_to_proto(envelope))
        call = stub.Deliver(request, timeout=self._timeout_s, metadata=inject_metadata())
        try:
            response = await call
        except grpc.aio.AioRpcError as e:
            self._announced(member, e.initial_metadata())
            raise error_from_rpc(e, peer=member.agency_id) from e
        self._announced(member, await call.initial_metadata())
        if not response.HasField("receipt"):
            raise ReceiptError(f"node of {member.agency_id} answered without a receipt")
        try:
            return wire.receipt_from_proto(response.receipt)
        except MalformedError as e:
            raise ReceiptError(f"node of {member.agency_id} sent a malformed receipt: {e}") from e

    def _announced(self, member: Member, metadata: grpc.aio.Metadata | None) -> None:
        for key, value in metadata or ():
            if key == DIRECTORY_VERSION_HEADER and isinstance(value, str) and value.isdigit():
                self.on_directory_version(member.agency_id, int(value))

    async def fetch_directory(self, member: Member, version: int) -> bytes:
        """The directory ``member``'s node trusts: its newest (``version`` 0) or one version.

        Raises:
            PeerUnavailableError: unreachable or no answer in time.
            PeerRejectedError: the peer refused (NOT_FOUND: it never trusted that version).
        """
        stub = directory_pb2_grpc.DirectoryStub(self.channel(member))
        try:
            response = await stub.GetDirectory(
                directory_pb2.GetDirectoryRequest(version=version), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e
        return response.document

    async def evidence_status(self, member: Member, evidence_id: str) -> Progress:
        """Which chunks of a set of evidence ``member``'s node holds.

        Raises:
            PeerUnavailableError, PeerRejectedError: as for any call.
        """
        stub = evidence_pb2_grpc.EvidenceStub(self.channel(member))
        try:
            answer = await stub.Status(
                evidence_pb2.EvidenceStatusRequest(evidence_id=evidence_id),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e
        return progress_from_proto(answer)

    async def upload_evidence(self, member: Member, chunks: AsyncIterator[Chunk]) -> Progress:
        """Stream sealed chunks to ``member``'s node; its progress after the last one.

        The call has no overall deadline (a large set takes a while); gRPC keepalive ends it
        if the link dies.

        Raises:
            PeerUnavailableError, PeerRejectedError: as for any call.
        """

        async def messages() -> AsyncIterator[evidence_pb2.EvidenceChunk]:
            async for chunk in chunks:
                yield evidence_pb2.EvidenceChunk(
                    evidence_id=chunk.evidence_id,
                    item=chunk.item,
                    index=chunk.index,
                    sealed=chunk.sealed,
                )

        stub = evidence_pb2_grpc.EvidenceStub(self.channel(member))
        try:
            answer = await stub.Upload(messages())
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e
        return progress_from_proto(answer)

    async def offer_set(self, member: Member, document: bytes, signature: bytes) -> None:
        """Offer ``member``'s node a version of an indicator set.

        Raises:
            PeerUnavailableError, PeerRejectedError: as for any call.
        """
        stub = indicators_pb2_grpc.IndicatorsStub(self.channel(member))
        try:
            if len(document) <= SET_CHUNK_BYTES:
                request = indicators_pb2.SignedIndicatorSet(document=document, signature=signature)
                await stub.OfferSet(request, timeout=self._timeout_s)
            else:
                # The receiver parses, verifies and stores up to 100,000 indicators: seconds.
                chunks = set_chunks(document, signature)
                await stub.OfferSetInChunks(chunks, timeout=self._timeout_s + 120)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e

    async def report_sighting(self, member: Member, document: bytes, signature: bytes) -> None:
        """Send ``member``'s node, the set's owner, a signed sighting report.

        Raises:
            PeerUnavailableError, PeerRejectedError: as for any call.
        """
        stub = indicators_pb2_grpc.IndicatorsStub(self.channel(member))
        request = indicators_pb2.SignedSighting(document=document, signature=signature)
        try:
            await stub.ReportSighting(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e

    async def count_overlap(
        self, member: Member, points: list[bytes], reason: str
    ) -> tuple[str, list[bytes], list[bytes]]:
        """Run the responder's half of an overlap check at ``member``'s node: the id it
        logged the check under, our points blinded again by it, and its own blinded points.

        Raises:
            PeerUnavailableError, PeerRejectedError: as for any call.
        """

        async def chunks() -> AsyncIterator[indicators_pb2.OverlapChunk]:
            for start in range(0, max(len(points), 1), OVERLAP_CHUNK):
                yield indicators_pb2.OverlapChunk(
                    initiator=points[start : start + OVERLAP_CHUNK],
                    reason=reason if start == 0 else "",
                )

        stub = indicators_pb2_grpc.IndicatorsStub(self.channel(member))
        check_id = ""
        doubled: list[bytes] = []
        theirs: list[bytes] = []
        try:
            # The peer's arithmetic takes seconds for large sets: a longer deadline than calls.
            async for chunk in stub.CountOverlap(chunks(), timeout=self._timeout_s + 300):
                check_id = check_id or chunk.check_id
                doubled.extend(chunk.doubled)
                theirs.extend(chunk.responder)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e
        return check_id, doubled, theirs

    async def ask_reveal(self, member: Member, document: bytes, signature: bytes) -> None:
        """Send ``member``'s node a signed reveal request (node/indicators/reveal.py).

        Raises:
            PeerUnavailableError, PeerRejectedError: as for any call.
        """
        stub = indicators_pb2_grpc.IndicatorsStub(self.channel(member))
        request = indicators_pb2.SignedRevealRequest(document=document, signature=signature)
        try:
            await stub.AskReveal(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e

    async def reveal_overlap(
        self, member: Member, request_id: str, points: list[bytes]
    ) -> tuple[list[bytes], list[bytes]]:
        """Run the responder's half of a consented reveal at ``member``'s node: our points
        blinded again by it in the order sent, and its own blinded points.

        Raises:
            PeerUnavailableError, PeerRejectedError: as for any call.
        """

        async def chunks() -> AsyncIterator[indicators_pb2.RevealChunk]:
            for start in range(0, max(len(points), 1), OVERLAP_CHUNK):
                yield indicators_pb2.RevealChunk(
                    request_id=request_id if start == 0 else "",
                    initiator=points[start : start + OVERLAP_CHUNK],
                )

        stub = indicators_pb2_grpc.IndicatorsStub(self.channel(member))
        doubled: list[bytes] = []
        theirs: list[bytes] = []
        try:
            async for chunk in stub.RevealOverlap(chunks(), timeout=self._timeout_s + 300):
                doubled.extend(chunk.doubled)
                theirs.extend(chunk.responder)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e, peer=member.agency_id) from e
        return doubled, theirs

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


async def set_chunks(
    document: bytes, signature: bytes
) -> AsyncIterator[indicators_pb2.IndicatorSetChunk]:
    """A set's document in pieces of SET_CHUNK_BYTES, the signature and length up front."""
    yield indicators_pb2.IndicatorSetChunk(
        signature=signature, document_length=len(document), piece=document[:SET_CHUNK_BYTES]
    )
    for start in range(SET_CHUNK_BYTES, len(document), SET_CHUNK_BYTES):
        yield indicators_pb2.IndicatorSetChunk(piece=document[start : start + SET_CHUNK_BYTES])
