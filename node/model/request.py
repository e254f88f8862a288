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
    """Where a request stands (node.model.lifecycle moves it)."""

    SUBMITTED = "submitted"
    """Outbound: validated, signed, sealed and stored; not yet acknowledged by the peer."""
    DELIVERY_FAILED = "delivery_failed"
    """Outbound: the request could not be delivered; ``last_error`` says why."""
    DELIVERED = "delivered"
    """Outbound: the peer's signed receipt arrived and verified (the peer: registered)."""
    REGISTERED = "registered"
    """Inbound: verified, opened, validated and stored; a signed receipt was issued."""
    UNDER_REVIEW = "under_review"
    CLARIFICATION_REQUESTED = "clarification_requested"
    ACCEPTED = "accepted"
    PARTIALLY_ACCEPTED = "partially_accepted"
    REFUSED = "refused"
    PRESERVED = "preserved"
    """The data is preserved until ``preserved_until``."""
    EXTENSION_REQUESTED = "extension_requested"
    EXTENDED = "extended"
    """Preserved, with the period extended to ``preserved_until``."""
    EXECUTED = "executed"
    EXPIRED = "expired"
    """Preserved, and the period ended without an extension."""
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


@dataclass(frozen=True, kw_only=True)
class DeliveryView:
    """An outbound request's delivery through the outbox."""

    status: str
    attempts: int
    next_attempt_at_ms: int | None
    last_attempt_at_ms: int | None
    last_error: str | None


@dataclass(frozen=True, kw_only=True)
class RequestPreview:
    """What filing a request would sign and send, exactly."""

    request_type: str
    recipient: AgencyId
    payload_type: str
    legal_basis: str
    form_json: bytes
    """The canonical, minimized form: the bytes that would be signed and sealed."""
    notes: tuple[str, ...]
    """What minimization stripped, by field."""
    deadline_hours: int | None
    """How long after receipt the request will be due, if its legal basis sets a deadline."""


@dataclass(frozen=True, kw_only=True)
class MessageView:
    """One message of an exchange: the request, or a lifecycle message after it."""

    kind: str
    """``request``, or a lifecycle message kind such as ``decision``."""
    direction: Direction
    sequence: int
    """Its position among the messages its sender sent in this exchange."""
    state: str
    """``applied``; ``held`` (waiting for an earlier message); ``refused`` (not allowed when
    its turn came; ``note`` says why)."""
    created_at_ms: int
    body_json: bytes | None
    """A lifecycle message's body (a request's form is the request's ``form_json``)."""
    delivery: str | None
    """Outbound: pending, delivered or failed."""
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class PeerBacklogView:
    peer: AgencyId
    pending: int
    oldest_pending_since_ms: int
    max_attempts: int
    next_attempt_at_ms: int
    last_error: str | None
    alert: bool
    claimed_elsewhere: int = 0
    """Pending deliveries under another process's live claim (a replica at work, or one that
    died: its claims lapse when their leases end)."""
    claims_end_at_ms: int = 0
    """When the last of those leases ends."""


@dataclass(frozen=True, kw_only=True)
class NodeStatusView:
    agency_id: AgencyId
    directory_version: int
    directory_expires_at_ms: int
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
    signed_by: tuple[str, ...] = ()
    """Key ids of the signatures on the request's envelope (which sender key signed it)."""
    preserved_until_ms: int | None = None
    due_at_ms: int | None = None
    overdue: bool = False
    history: tuple[MessageView, ...] = ()
    """Every message of the exchange, oldest first."""
    idempotency_key: str | None = None
    """The key an outbound request was filed under, if any."""
