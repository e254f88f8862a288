# SPDX-License-Identifier: Apache-2.0
"""The request lifecycle: which signed message moves a request from which state to which.

Both ends run this same table, the requester on what it sends and receives, the requested
party likewise, so the two agree on where a request stands after every message. A message
that the table does not allow in the current state, or from that party, is refused and changes
nothing. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from node.errors import ComityError, ErrorKind
from node.model.request import RequestState as S
from node.model.request_type import RequestTypeTraits


class Role(StrEnum):
    """A party's role in one exchange."""

    REQUESTER = "requester"
    """Sent the request that opened the exchange."""
    REQUESTED = "requested"
    """Received it: decides and executes."""


class IllegalTransitionError(ComityError):
    """A message that the lifecycle does not allow in the request's current state."""

    kind = ErrorKind.PRECONDITION
    code = "illegal_transition"


class NotYourMoveError(ComityError):
    """A message that only the other party of the exchange may send."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "wrong_party"


class WrongRequestTypeError(IllegalTransitionError):
    """A message that this type of request never takes, whatever its state: a preservation
    confirmation on a request that preserves nothing, evidence on a preservation request."""

    code = "wrong_request_type"


@dataclass(frozen=True)
class _Rule:
    by: Role | None
    """Who may send it; None: either party."""
    sources: frozenset[S]
    target: S | None
    """None: decided by the message (a decision's outcome)."""
    keeps_state: bool = False
    """The message records something (evidence) without moving the request."""


OPEN_STATES = frozenset(
    {
        S.REGISTERED,
        S.UNDER_REVIEW,
        S.CLARIFICATION_REQUESTED,
        S.ACCEPTED,
        S.PARTIALLY_ACCEPTED,
        S.PRESERVED,
        S.EXTENSION_REQUESTED,
        S.EXTENDED,
    }
)
"""States in which the request is still alive: it can be withdrawn."""

AWAITING_REVIEWER = frozenset(
    {S.REGISTERED, S.UNDER_REVIEW, S.EXTENSION_REQUESTED, S.ACCEPTED, S.PARTIALLY_ACCEPTED}
)
"""Inbound states in which the requested party's reviewer has the next move."""

REFUSAL_GROUNDS = {
    "political_offence": "a political offence, or one connected with it",
    "essential_interests": "prejudice to sovereignty, security, ordre public or other essential "
    "interests",
    "dual_criminality": "no dual criminality (where the party reserved it)",
    "ne_bis_in_idem": "ne bis in idem: already tried for the same acts",
    "immunity_or_privilege": "an immunity or privilege",
    "protected_expression": "the request targets protected expression: political speech or "
    "the press",
    "fundamental_rights": "manifest breach of fundamental rights (e.g. risk of persecution)",
    "insufficient_information": "insufficient information, after a clarification request",
    "data_not_held": "the data is not held",
    "impossible_to_execute": "execution is impossible (e.g. the data was deleted)",
}
"""Refusal ground codes (schemas/messages/decision.v1.json) with their meaning for people."""

_DECIDABLE = frozenset({S.REGISTERED, S.UNDER_REVIEW})
_PRESERVING = frozenset({S.PRESERVED, S.EXTENDED})

RULES: Mapping[str, _Rule] = {
    "review": _Rule(Role.REQUESTED, frozenset({S.REGISTERED}), S.UNDER_REVIEW),
    "clarification-request": _Rule(Role.REQUESTED, _DECIDABLE, S.CLARIFICATION_REQUESTED),
    "clarification-answer": _Rule(
        Role.REQUESTER, frozenset({S.CLARIFICATION_REQUESTED}), S.UNDER_REVIEW
    ),
    "decision": _Rule(Role.REQUESTED, _DECIDABLE, None),
    "preservation-confirmation": _Rule(
        Role.REQUESTED, frozenset({S.ACCEPTED, S.PARTIALLY_ACCEPTED}), S.PRESERVED
    ),
    "extension-request": _Rule(Role.REQUESTER, _PRESERVING, S.EXTENSION_REQUESTED),
    "extension": _Rule(Role.REQUESTED, _PRESERVING | {S.EXTENSION_REQUESTED}, S.EXTENDED),
    "execution": _Rule(
        Role.REQUESTED, frozenset({S.ACCEPTED, S.PARTIALLY_ACCEPTED}) | _PRESERVING, S.EXECUTED
    ),
    "evidence": _Rule(
        Role.REQUESTED,
        frozenset({S.ACCEPTED, S.PARTIALLY_ACCEPTED, S.EXECUTED}),
        None,
        keeps_state=True,
    ),
    "withdrawal": _Rule(Role.REQUESTER, OPEN_STATES, S.WITHDRAWN),
    "closure": _Rule(
        None, frozenset({S.EXECUTED, S.REFUSED, S.WITHDRAWN, S.EXPIRED}) | _PRESERVING, S.CLOSED
    ),
}

_OUTCOMES = {
    "accepted": S.ACCEPTED,
    "partially_accepted": S.PARTIALLY_ACCEPTED,
    "refused": S.REFUSED,
}


def lifecycle_state(state: S) -> S:
    """The state the lifecycle reasons about: before its receipt is back, a request the
    requester sent stands as registered (the receipt only confirms it)."""
    return S.REGISTERED if state in {S.SUBMITTED, S.DELIVERED} else state


def check_sender(kind: str, by: Role, traits: RequestTypeTraits) -> _Rule:
    """The rule for ``kind``, if ``by`` may send it on a request of this type.

    Raises:
        IllegalTransitionError: not a lifecycle message.
        NotYourMoveError: only the other party sends this kind of message.
        WrongRequestTypeError: this type of request never takes this kind of message.
    """
    rule = RULES.get(kind)
    if rule is None:
        raise IllegalTransitionError(f"{kind} is not a lifecycle message")
    if rule.by is not None and rule.by is not by:
        raise NotYourMoveError(f"only the {rule.by} party sends {kind}, not the {by} party")
    if kind == "preservation-confirmation" and not traits.preservation_only:
        raise WrongRequestTypeError(f"a {traits.name} request preserves no data")
    if kind == "evidence" and traits.preservation_only:
        # Art. 29 only freezes the data; handing it over takes a request of its own.
        raise WrongRequestTypeError(
            f"a {traits.name} request only preserves data: evidence needs a disclosure or "
            "production request"
        )
    return rule


def next_state(
    *, state: S, kind: str, by: Role, body: Mapping[str, Any], traits: RequestTypeTraits
) -> S:
    """The state after ``by`` sends a ``kind`` message with ``body`` in ``state``, on a
    request whose type has ``traits``.

    Raises:
        NotYourMoveError: only the other party sends this kind of message.
        IllegalTransitionError: not allowed in this state.
        WrongRequestTypeError: not allowed for this request type.
    """
    rule = check_sender(kind, by, traits)
    current = lifecycle_state(state)
    if kind == "closure" and traits.alert and current in _DECIDABLE:
        return S.CLOSED
    if current not in rule.sources:
        raise IllegalTransitionError(f"{kind} is not allowed while the request is {state}")
    if rule.keeps_state:
        return current
    if rule.target is not None:
        return rule.target
    return _OUTCOMES[str(body["outcome"])]
