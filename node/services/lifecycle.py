# SPDX-License-Identifier: Apache-2.0
"""Applying lifecycle messages to a stored exchange, in each sender's order.

Every message carries its position among the messages its sender sent in the exchange
(``sequence``; the request is the requester's 1). A receiver applies a sender's messages in
that order: one that arrives early is stored and held, and applied as soon as the gap before
it fills; other exchanges never wait. Runs inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlmodel import Session

from node.errors import ComityError, ErrorKind, FormValidationError, ReplayError
from node.forms.profiles import DAY_MS, Profile, profile_for
from node.forms.registry import form_type_for_payload, traits_of
from node.model.lifecycle import Role, next_state
from node.model.request import Direction, RequestState
from node.storage import evidence_repo, exchange_repo
from node.storage.tables import Exchange

_ENDS_PRESERVATION = ("preserved_until",)


class ExchangeNotReadyError(ComityError):
    """A lifecycle message for an exchange whose request has not arrived yet: retry later."""

    kind = ErrorKind.UNAVAILABLE
    code = "exchange_not_ready"


class SequenceGapError(ComityError):
    """A message too far ahead of the next one its sender owes in the exchange: it is not
    held (the ones before it must arrive first); retried, it is taken once they have."""

    kind = ErrorKind.UNAVAILABLE
    code = "sequence_gap_too_large"


class TooManyHeldError(ComityError):
    """As many early messages as this node holds for the exchange or its sender are held
    already: the next waits until the gaps before them fill (retried)."""

    kind = ErrorKind.OVERLOADED
    code = "too_many_held"


@dataclass(frozen=True, kw_only=True)
class HoldLimits:
    """How much a peer may make this node hold: messages that arrive before earlier ones
    are stored until the gap fills, so without bounds a peer could fill the database (and
    the audit log) with messages that are never applied."""

    max_gap: int = 32
    """How far ahead of the next expected sequence a message may be and still be held."""
    per_exchange: int = 16
    """Held messages in one exchange."""
    per_peer: int = 256
    """Held messages from one peer, over all its exchanges."""


class Position(Enum):
    NEXT = "next"
    """The sender's next message: apply it now."""
    EARLY = "early"
    """A message before it is missing: hold it."""


def own_role(row: Exchange) -> Role:
    """This node's role in the exchange."""
    return Role.REQUESTER if row.direction == Direction.OUTBOUND else Role.REQUESTED


def peer_role(row: Exchange) -> Role:
    """The other party's role in the exchange."""
    return Role.REQUESTED if own_role(row) is Role.REQUESTER else Role.REQUESTER


def move(
    row: Exchange, *, kind: str, fields: Mapping[str, Any], by: Role, now_ms: int
) -> RequestState:
    """The state ``row`` moves to when ``by`` sends a ``kind`` message with ``fields``.

    Raises:
        NotYourMoveError, IllegalTransitionError: the lifecycle does not allow it.
        FormValidationError: the message says what the legal basis does not allow.
    """
    check_profile(row, kind=kind, fields=fields)
    return next_state(
        state=effective_state(row, now_ms),
        kind=kind,
        by=by,
        body=fields,
        traits=traits_of(row.request_type),
    )


def check_position(
    session: Session, row: Exchange, sequence: int, *, limits: HoldLimits
) -> Position:
    """Where an arriving message stands in its sender's order; an early one only while
    ``limits`` leave room to hold it.

    Raises:
        ReplayError: another message already holds that position.
        SequenceGapError: more than ``limits.max_gap`` ahead of the next expected one.
        TooManyHeldError: the exchange or the peer has as many messages held as allowed.
    """
    expected = exchange_repo.next_inbound_to_apply(session, row.id)
    if sequence < expected or exchange_repo.held_message(session, row.id, sequence) is not None:
        raise ReplayError(f"position {sequence} of this exchange holds another message")
    if sequence == expected:
        return Position.NEXT
    if sequence - expected > limits.max_gap:
        raise SequenceGapError(
            f"sequence {sequence} is more than {limits.max_gap} ahead of {expected}, the next "
            "this exchange expects; send the messages before it first"
        )
    if exchange_repo.count_held(session, exchange_id=row.id) >= limits.per_exchange:
        raise TooManyHeldError(
            f"{limits.per_exchange} messages of this exchange are held already, waiting for "
            f"message {expected}; retry once it has arrived"
        )
    if exchange_repo.count_held(session, sender=row.peer) >= limits.per_peer:
        raise TooManyHeldError(
            f"{limits.per_peer} messages from {row.peer} are held already, waiting for earlier "
            "ones; retry once they have arrived"
        )
    return Position.EARLY


def apply_message(
    session: Session,
    row: Exchange,
    *,
    kind: str,
    fields: Mapping[str, Any],
    state: RequestState,
    now_ms: int,
    received: bool = False,
) -> None:
    """Move the exchange to ``state``, record a preservation's end if the message sets one,
    and, for a ``received`` evidence manifest, expect its chunks."""
    exchange_repo.set_exchange_state(session, exchange_id=row.id, state=state, now_ms=now_ms)
    if received and kind == "evidence":
        evidence_repo.insert_evidence(
            session,
            evidence_id=str(fields["evidence_id"]),
            exchange_id=row.id,
            direction=Direction.INBOUND,
            manifest=json.dumps(
                fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode(),
            now_ms=now_ms,
        )
    until = (
        fields.get("preserved_until")
        if kind in {"preservation-confirmation", "extension"}
        else None
    )
    if isinstance(until, str):
        exchange_repo.set_preserved_until(session, exchange_id=row.id, until_ms=_instant_ms(until))


def apply_held(session: Session, row: Exchange, *, now_ms: int) -> None:
    """Apply the held messages whose turn has come, in order. One the lifecycle no longer
    allows (the state moved on meanwhile) is kept as ``refused`` with the reason."""
    while True:
        held = exchange_repo.held_message(
            session, row.id, exchange_repo.next_inbound_to_apply(session, row.id)
        )
        if held is None or held.body is None:
            return
        kind = form_type_for_payload(held.payload_type).name
        fields = json.loads(held.body)
        try:
            state = move(row, kind=kind, fields=fields, by=peer_role(row), now_ms=now_ms)
        except ComityError as e:
            exchange_repo.set_message_state(session, held, state="refused", note=e.message)
            continue
        exchange_repo.set_message_state(session, held, state="applied")
        apply_message(
            session, row, kind=kind, fields=fields, state=state, now_ms=now_ms, received=True
        )


def refusal_ground(kind: str, fields: Mapping[str, Any]) -> str | None:
    """The public refusal ground codes of a decision (comma-separated), for the audit log."""
    grounds = fields.get("grounds") if kind == "decision" else None
    if not isinstance(grounds, list) or not grounds:
        return None
    return ",".join(sorted(str(g) for g in grounds))


def _instant_ms(text: str) -> int:
    # Validated as RFC 3339 with an offset by the message's schema.
    return int(datetime.fromisoformat(text.upper()).timestamp() * 1000)


# --- what the legal-basis profile says -------------------------------------------------------

DECIDED = frozenset(
    {
        RequestState.ACCEPTED,
        RequestState.PARTIALLY_ACCEPTED,
        RequestState.REFUSED,
        RequestState.PRESERVED,
        RequestState.EXTENSION_REQUESTED,
        RequestState.EXTENDED,
        RequestState.EXPIRED,
        RequestState.EXECUTED,
        RequestState.WITHDRAWN,
        RequestState.CLOSED,
    }
)
EXECUTED = frozenset(
    {RequestState.EXECUTED, RequestState.REFUSED, RequestState.WITHDRAWN, RequestState.CLOSED}
)


def profile_of(row: Exchange) -> Profile:
    """The legal-basis profile the exchange's request was made under."""
    form = json.loads(row.form_json)
    return profile_for(row.request_type, str(form.get("legal_basis")))


def due_at(row: Exchange, received_at_ms: int) -> int | None:
    """When the request is due: the profile's deadline after its receipt, if it has one."""
    deadline = profile_of(row).deadline_ms(emergency=traits_of(row.request_type).emergency)
    return None if deadline is None else received_at_ms + deadline


def effective_state(row: Exchange, now_ms: int) -> RequestState:
    """The state, with a preservation whose period ran out shown as expired (both ends
    compute it from the same end date)."""
    state = RequestState(row.state)
    preserving = state in {RequestState.PRESERVED, RequestState.EXTENDED}
    if preserving and row.preserved_until_ms is not None and now_ms >= row.preserved_until_ms:
        return RequestState.EXPIRED
    return state


def is_overdue(row: Exchange, now_ms: int) -> bool:
    """Past its deadline without having reached the step the deadline is for."""
    if row.due_at_ms is None or now_ms < row.due_at_ms:
        return False
    deadline = profile_of(row).deadline
    done = EXECUTED if deadline is not None and deadline.until == "execution" else DECIDED
    return effective_state(row, now_ms) not in done


def check_profile(row: Exchange, *, kind: str, fields: Mapping[str, Any]) -> None:
    """What the exchange's legal basis allows a lifecycle message to say.

    Raises:
        FormValidationError: a refusal ground that does not apply, a preservation shorter
            than the minimum, an extension longer than allowed; naming the field.
    """
    check = _PROFILE_CHECKS.get(kind)
    problems = check(row, profile_of(row), fields) if check else []
    if problems:
        raise FormValidationError(f"{kind} form is invalid: " + "; ".join(problems))


def _ground_problems(_row: Exchange, profile: Profile, fields: Mapping[str, Any]) -> list[str]:
    return [
        f"$.grounds[{i}]: this ground does not apply under {profile.code}"
        for i, ground in enumerate(fields.get("grounds", []))
        if ground not in profile.refusal_grounds
    ]


def _preservation_problems(row: Exchange, profile: Profile, fields: Mapping[str, Any]) -> list[str]:
    minimum = profile.preservation_minimum_days
    until = _instant_ms(str(fields["preserved_until"]))
    if minimum is None or until >= row.created_at_ms + minimum * DAY_MS:
        return []
    return [f"$.preserved_until: {profile.code} preserves for at least {minimum} days"]


def _extension_problems(_row: Exchange, profile: Profile, fields: Mapping[str, Any]) -> list[str]:
    most = profile.preservation_extension_days
    if most is None or int(fields["additional_days"]) <= most:
        return []
    return [f"$.additional_days: {profile.code} extends by at most {most} days"]


_PROFILE_CHECKS: Mapping[str, Callable[[Exchange, Profile, Mapping[str, Any]], list[str]]] = {
    "decision": _ground_problems,
    "preservation-confirmation": _preservation_problems,
    "extension-request": _extension_problems,
}
