# SPDX-License-Identifier: Apache-2.0
"""Requests as their users see them: direction, lifecycle state, and the stored receipt."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from node.ids import AgencyId, ExchangeId
from node.model.envelope import SignedReceipt


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class RequestState(StrEnum):
    """Lifecycle states reached so far; the full lifecycle grows on these."""

    SUBMITTED = "submitted"
    """Outbound: validated, signed, sealed and stored; not yet acknowledged by the peer."""
    DELIVERY_FAILED = "delivery_failed"
    """Outbound: the last delivery attempt failed; ``last_error`` says why."""
    DELIVERED = "delivered"
    """Outbound: the peer's signed receipt arrived and verified against what was sent."""
    REGISTERED = "registered"
    """Inbound: verified, opened, validated and stored; a signed receipt was issued."""


@dataclass(frozen=True, kw_only=True)
class DeliveryView:
    """An outbound request's delivery through the outbox."""

    status: str
    attempts: int
    next_attempt_at_ms: int | None
    last_attempt_at_ms: int | None
    last_error: str | None


@dataclass(frozen=True, kw_only=True)
class PeerBacklogView:
    peer: AgencyId
    pending: int
    oldest_pending_since_ms: int
    max_attempts: int
    next_attempt_at_ms: int
    last_error: str | None
    alert: bool


@dataclass(frozen=True, kw_only=True)
class NodeStatusView:
    agency_id: AgencyId
    directory_version: int
    outbox_pending: int
    outbox_capacity: int
    outbox_failed: int
    peers: tuple[PeerBacklogView, ...]
    requests_outbound: int
    requests_inbound: int


@dataclass(frozen=True, kw_only=True)
class RequestView:
    request_id: ExchangeId
    request_type: str
    direction: Direction
    peer: AgencyId
    state: RequestState
    created_at_ms: int
    updated_at_ms: int
    form_json: bytes
    receipt: SignedReceipt | None
    receipt_verified: bool
    last_error: str | None
    delivery: DeliveryView | None = None
