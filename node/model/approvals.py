# SPDX-License-Identifier: Apache-2.0
"""Four-eyes approval: which actions wait for a supervisor, and the states of an approval.

The node's policy (``[approvals] required`` in ``comity.toml``) names the kinds of action that
a person may ask for but that take effect only once a second person, a supervisor, approves
them. The functions here decide, from what the action is about, which kind it is. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from node.model.request_type import RequestTypeTraits

DAY_MS = 86_400_000
DEFAULT_EXPIRE_DAYS = 7
MAX_EXPIRE_DAYS = 90
PROTECTED_EXPRESSION = "protected_expression"
COURT_ROLE = "court"


class Policy(StrEnum):
    """A kind of action the node's policy may hold for a supervisor's approval."""

    EMERGENCY_FILING = "emergency-filing"
    """Filing a request of a type with the ``emergency`` trait (FileRequest)."""
    PROTECTED_EXPRESSION_REFUSAL = "protected-expression-refusal"
    """A decision that refuses a request, wholly or in part, on the ground
    ``protected_expression`` (SendMessage of kind ``decision``)."""
    COURT_RELEASE = "court-release"
    """Releasing audit openings to a court (ProveRecord with role ``court``)."""
    RESTRICTED_SHARE = "restricted-share"
    """Sharing a TLP:RED or TLP:AMBER+STRICT indicator set (ShareIndicatorSet)."""


ALL_POLICIES = frozenset(Policy)
"""A new node's policy: every kind held (the secure default)."""

RESTRICTED_LABELS = frozenset({"TLP:RED", "TLP:AMBER+STRICT"})


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    """Waiting for a supervisor; nothing has taken effect."""
    APPROVED = "approved"
    """Approved and running (or interrupted while running: it is never run a second time)."""
    DONE = "done"
    """Approved and run: the action took effect."""
    FAILED = "failed"
    """Approved, but the action failed when run (the error code is kept)."""
    REJECTED = "rejected"
    """A supervisor said no; nothing took effect."""
    EXPIRED = "expired"
    """Nobody decided within the policy's time; it can no longer be approved."""


def parse_policies(names: Iterable[Any]) -> frozenset[Policy]:
    """Policy names as written in the configuration, checked.

    Raises:
        ValueError: an unknown name (the message names it and the known ones).
    """
    chosen = set()
    for name in names:
        try:
            chosen.add(Policy(name))
        except ValueError:
            known = ", ".join(p.value for p in Policy)
            raise ValueError(f"unknown action {name!r}; the actions are: {known}") from None
    return frozenset(chosen)


def filing_policy(traits: RequestTypeTraits) -> Policy | None:
    return Policy.EMERGENCY_FILING if traits.emergency else None


def message_policy(kind: str, body: Mapping[str, Any]) -> Policy | None:
    """A decision refusing (all or part of) a request on the ground of protected expression."""
    if kind != "decision" or body.get("outcome") not in {"refused", "partially_accepted"}:
        return None
    grounds = body.get("grounds")
    if isinstance(grounds, list) and PROTECTED_EXPRESSION in grounds:
        return Policy.PROTECTED_EXPRESSION_REFUSAL
    return None


def release_policy(role: str) -> Policy | None:
    return Policy.COURT_RELEASE if role == COURT_ROLE else None


def share_policy(label: str) -> Policy | None:
    return Policy.RESTRICTED_SHARE if label in RESTRICTED_LABELS else None


def shown_status(status: ApprovalStatus, *, expires_at_ms: int, now_ms: int) -> ApprovalStatus:
    """The status to show: a pending approval past its time is expired."""
    if status is ApprovalStatus.PENDING and expires_at_ms <= now_ms:
        return ApprovalStatus.EXPIRED
    return status
