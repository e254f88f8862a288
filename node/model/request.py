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
