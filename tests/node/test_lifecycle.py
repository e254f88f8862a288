# SPDX-License-Identifier: Apache-2.0
"""The lifecycle table: every state x message kind x party, and the message schemas."""

from __future__ import annotations

import json

import pytest

from node.errors import FormValidationError
from node.forms.registry import get_message_type, message_types, traits_of
from node.forms.validate import validate_form
from node.model.lifecycle import (
    OPEN_STATES,
    REFUSAL_GROUNDS,
    RULES,
    IllegalTransitionError,
    NotYourMoveError,
    Role,
    WrongRequestTypeError,
    next_state,
)
from node.model.request import RequestState as S
from node.model.request_type import RequestTypeTraits

ACCEPT = {"outcome": "accepted", "reason": "ok"}
PRESERVATION = traits_of("preservation")
PRODUCTION = traits_of("production")

# Every move a party can make, as (state before, kind, party, state after).
ALLOWED = {
    (S.REGISTERED, "review", Role.REQUESTED, S.UNDER_REVIEW),
    (S.REGISTERED, "clarification-request", Role.REQUESTED, S.CLARIFICATION_REQUESTED),
    (S.UNDER_REVIEW, "clarification-request", Role.REQUESTED, S.CLARIFICATION_REQUESTED),
    (S.CLARIFICATION_REQUESTED, "clarification-answer", Role.REQUESTER, S.UNDER_REVIEW),
    (S.REGISTERED, "decision", Role.REQUESTED, S.ACCEPTED),
    (S.UNDER_REVIEW, "decision", Role.REQUESTED, S.ACCEPTED),
    (S.ACCEPTED, "preservation-confirmation", Role.REQUESTED, S.PRESERVED),
    (S.PARTIALLY_ACCEPTED, "preservation-confirmation", Role.REQUESTED, S.PRESERVED),
    (S.PRESERVED, "extension-request", Role.REQUESTER, S.EXTENSION_REQUESTED),
    (S.EXTENDED, "extension-request", Role.REQUESTER, S.EXTENSION_REQUESTED),
    (S.PRESERVED, "extension", Role.REQUESTED, S.EXTENDED),
    (S.EXTENDED, "extension", Role.REQUESTED, S.EXTENDED),
    (S.EXTENSION_REQUESTED, "extension", Role.REQUESTED, S.EXTENDED),
    *(
        (state, "execution", Role.REQUESTED, S.EXECUTED)
        for state in (S.ACCEPTED, S.PARTIALLY_ACCEPTED, S.PRESERVED, S.EXTENDED)
    ),
    *((state, "withdrawal", Role.REQUESTER, S.WITHDRAWN) for state in OPEN_STATES),
    *(
        (state, "closure", role, S.CLOSED)
        for state in (S.EXECUTED, S.REFUSED, S.WITHDRAWN, S.PRESERVED, S.EXTENDED, S.EXPIRED)
        for role in Role
    ),
}
# Evidence hands data over, which a preservation request never does (Budapest Art. 29).
EVIDENCE = {
    (state, "evidence", Role.REQUESTED, state)  # evidence does not move the request
    for state in (S.ACCEPTED, S.PARTIALLY_ACCEPTED, S.EXECUTED)
}
ALLOWED_FOR = {
    "preservation": ALLOWED,
    # Nothing is preserved, so the preserving states are never reached (below they are
    # entered directly) and a preservation confirmation is refused in every state.
    "production": {m for m in ALLOWED if m[1] != "preservation-confirmation"} | EVIDENCE,
}
LIFECYCLE_STATES = [s for s in S if s not in {S.SUBMITTED, S.DELIVERED, S.DELIVERY_FAILED}]


@pytest.mark.parametrize("request_type", sorted(ALLOWED_FOR))
@pytest.mark.parametrize("kind", sorted(RULES))
@pytest.mark.parametrize("role", list(Role))
def test_every_state_kind_and_party(request_type: str, kind: str, role: Role) -> None:
    for state in LIFECYCLE_STATES:
        expected = next(
            (
                after
                for before, k, r, after in ALLOWED_FOR[request_type]
                if (before, k, r) == (state, kind, role)
            ),
            None,
        )
        call = {
            "state": state,
            "kind": kind,
            "by": role,
            "body": ACCEPT,
            "traits": traits_of(request_type),
        }
        if expected is not None:
            assert next_state(**call) is expected, (state, kind, role)  # type: ignore[arg-type]
            continue
        with pytest.raises((IllegalTransitionError, NotYourMoveError)):
            next_state(**call)  # type: ignore[arg-type]


def test_before_its_receipt_a_request_counts_as_registered() -> None:
    for state in (S.SUBMITTED, S.DELIVERED):
        assert (
            next_state(
                state=state,
                kind="decision",
                by=Role.REQUESTED,
                body=ACCEPT,
                traits=RequestTypeTraits(name="x"),
            )
            is S.ACCEPTED
        )


def test_decision_outcomes() -> None:
    for outcome, state in (("partially_accepted", S.PARTIALLY_ACCEPTED), ("refused", S.REFUSED)):
        body = {"outcome": outcome}
        assert (
            next_state(
                state=S.UNDER_REVIEW,
                kind="decision",
                by=Role.REQUESTED,
                body=body,
                traits=PRESERVATION,
            )
            is state
        )


def test_only_preservation_requests_are_preserved() -> None:
    with pytest.raises(IllegalTransitionError, match="preserves no data"):
        next_state(
            state=S.ACCEPTED,
            kind="preservation-confirmation",
            by=Role.REQUESTED,
            body={},
            traits=traits_of("subscriber-information"),
        )


@pytest.mark.parametrize("state", [S.ACCEPTED, S.PARTIALLY_ACCEPTED, S.PRESERVED, S.EXECUTED])
def test_a_preservation_request_takes_no_evidence(state: S) -> None:
    # Budapest Art. 29 only freezes the data: handing it over needs a request of its own.
    with pytest.raises(WrongRequestTypeError, match="only preserves data") as caught:
        next_state(state=state, kind="evidence", by=Role.REQUESTED, body={}, traits=PRESERVATION)
    assert caught.value.code == "wrong_request_type"
    assert (
        next_state(state=S.ACCEPTED, kind="evidence", by=Role.REQUESTED, body={}, traits=PRODUCTION)
        is S.ACCEPTED
    )


def test_every_message_kind_has_a_rule_and_a_schema() -> None:
    assert {m.name for m in message_types()} == set(RULES)
    for message_type in message_types():
        assert message_type.schema_path.is_file()


def test_refusal_grounds_match_the_decision_schema() -> None:
    schema = json.loads(get_message_type("decision").schema_path.read_text())
    assert set(schema["properties"]["grounds"]["items"]["enum"]) == set(REFUSAL_GROUNDS)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"outcome": "refused", "reason": "no"}, "is required: grounds"),
        ({"outcome": "refused", "grounds": [], "reason": "no"}, "at least 1 item"),
        ({"outcome": "partially_accepted", "grounds": ["data_not_held"], "reason": "x"},
         "is required: scope"),
        ({"outcome": "accepted", "grounds": ["data_not_held"], "reason": "x"}, "'not'"),
        ({"outcome": "refused", "grounds": ["dislike"], "reason": "x"}, "allowed values"),
        ({"outcome": "maybe", "reason": "x"}, "allowed values"),
    ],
)  # fmt: skip
def test_bad_decisions_name_the_field_and_rule(body: dict[str, object], problem: str) -> None:
    raw = json.dumps({"form_version": "decision.v1", **body}).encode()
    with pytest.raises(FormValidationError) as caught:
        validate_form(get_message_type("decision"), raw)
    assert problem in caught.value.message
    assert "decision form is invalid" in caught.value.message
