# SPDX-License-Identifier: Apache-2.0
"""The only seam between the services and the network to other nodes."""

from __future__ import annotations

from typing import Protocol

from node.members import Member
from node.model.envelope import SealedEnvelope, SignedReceipt


class PeerTransport(Protocol):
    async def deliver(self, member: Member, envelope: SealedEnvelope) -> SignedReceipt:
        """Deliver ``envelope`` to ``member``'s node and return its (unverified) receipt.

        Raises:
            PeerUnavailableError: the peer could not be reached in time.
            PeerRejectedError: the peer refused the envelope.
            ReceiptError: the peer answered with something that is not a receipt.
        """
        ...


class DirectorySource(Protocol):
    async def fetch_directory(self, member: Member, version: int) -> bytes:
        """The directory document ``member``'s node trusts: its newest (0) or ``version``.

        Raises:
            PeerUnavailableError: the peer could not be reached in time.
            PeerRejectedError: the peer refused (NOT_FOUND: it never trusted that version).
        """
        ...
