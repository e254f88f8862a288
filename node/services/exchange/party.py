# SPDX-License-Identifier: Apache-2.0
"""This node as a party to exchanges: who it is, the keys it signs and seals with, the
directory it trusts, its clock and database. Filing, receiving and views share one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from opentelemetry.trace import Tracer
from sqlmodel import Session

from node import wire
from node.crypto.keys import AgencyKeys
from node.errors import DirectoryError, RevokedKeyError
from node.ids import AgencyId
from node.members import Directory
from node.model.envelope import SealedEnvelope, SignedReceipt
from node.model.request import Direction
from node.services.lifecycle import HoldLimits
from node.storage import exchange_repo
from node.storage.database import Database
from node.timeutil import now_ms

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class ExchangeSettings:
    """How this node files and receives: its agency, lifetimes, capacity and waits."""

    agency_id: AgencyId
    message_lifetime_ms: int = 24 * 3600 * 1000
    file_wait_s: float = 5.0
    """How long filing waits for the receipt before answering with the pending delivery."""
    outbox_capacity: int = 10_000
    """Pending deliveries beyond which new requests are refused (RESOURCE_EXHAUSTED)."""
    alert_after_ms: int = 5 * 60 * 1000
    """A peer whose oldest pending delivery is older than this is shown as an alert."""
    directory_grace_ms: int = 24 * 3600 * 1000
    """How long after a newer directory version is trusted envelopes addressed under the
    older one are still accepted (they were sealed before their sender caught up)."""
    directory_catch_up_s: float = 2.0
    """How long receiving waits to fetch a newer directory a sender addressed under."""
    hold_limits: HoldLimits = field(default_factory=HoldLimits)
    """How many early messages (waiting for an earlier one) this node holds, and how early."""


class Party:
    """What filing, receiving and views share; ``keys`` change when a key rotates."""

    def __init__(
        self,
        *,
        settings: ExchangeSettings,
        keys: AgencyKeys,
        directory: Directory,
        database: Database,
        tracer: Tracer,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.settings = settings
        self.me = settings.agency_id
        self.keys = keys
        self.directory = directory
        self.database = database
        self.engine = database.engine
        self.tracer = tracer
        self.clock = clock

    def current_keys(self) -> AgencyKeys:
        """This node's keys, using the newest held keys the directory lists as active."""
        me = self.directory.find(self.me)
        signing = self.keys.signing_keys()
        encryption = self.keys.encryption_keys()
        kid = next((k for k in me.signing_key_order if k in signing), None) if me else None
        sealing = next((k for k in me.encryption_keys if k in encryption), None) if me else None
        if kid is None or sealing is None:
            raise RevokedKeyError(
                f"none of this node's {'signing' if kid is None else 'encryption'} keys is "
                f"active for {self.me} in directory version {self.directory.version}"
            )
        return self.keys.using_signing(kid).using_encryption(sealing)

    def roles_of(self, agency_id: str) -> frozenset[str]:
        """The roles the trusted directory lists for ``agency_id`` (none if not listed)."""
        entry = self.directory.entry(agency_id)
        return entry.roles if entry is not None else frozenset()

    def check_not_expired(self) -> None:
        if self.clock() >= self.directory.expires_ms:
            raise DirectoryError(
                "expired",
                f"this node's directory version {self.directory.version} has expired; "
                "the secretariat must publish a new one",
            )

    async def run(self, work: Callable[[], T]) -> T:
        """Run blocking database work on the database's own threads."""
        return await self.database.run(work)


def insert_message(
    session: Session,
    sealed: SealedEnvelope,
    *,
    envelope: bytes,
    digest: bytes,
    direction: Direction,
    now_ms: int,
    receipt: SignedReceipt | None = None,
    body: bytes | None = None,
    state: str = "applied",
) -> None:
    """The message row; ``envelope`` is ``sealed`` serialised for the wire."""
    header = sealed.header
    exchange_repo.insert_message(
        session,
        message_id=header.message_id,
        exchange_id=header.exchange_id,
        direction=direction,
        sequence=header.sequence,
        sender=header.sender,
        recipient=header.recipient,
        payload_type=header.payload_type,
        envelope=envelope,
        envelope_digest=digest,
        created_at_ms=header.created_at_ms,
        now_ms=now_ms,
        receipt=wire.receipt_to_bytes(receipt) if receipt else None,
        receipt_verified=receipt is not None,
        body=body,
        state=state,
    )
