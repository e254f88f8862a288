# SPDX-License-Identifier: Apache-2.0
"""Matching both ends of each exchange across logs."""

from __future__ import annotations

from node.audit.leaf import Leaf, PublicFields, build_leaf, hour_of
from node.audit.reconcile import reconcile

A, B = "aa-cyber-unit", "bb-central-authority"


def leaf(event: str, exchange: str = "x-1", basis: str = "budapest-art29") -> Leaf:
    public = PublicFields(
        event=event,
        request_type="preservation",
        legal_basis=basis,
        sender=A,
        recipient=B,
        exchange_id=exchange,
        hour=hour_of(0),
    )
    return build_leaf(public, {})[0]


def receipt_received(promise: int | None = 0) -> Leaf:
    base = leaf("receipt.received")
    public = PublicFields(**{**base.public.__dict__, "promised_leaf": promise})
    return Leaf(public=public, commitments=base.commitments)


FULL_A = [leaf("request.sent"), receipt_received(0)]
FULL_B = [leaf("request.received"), leaf("receipt.sent")]


def test_complete_exchange_reconciles() -> None:
    assert reconcile({A: FULL_A, B: FULL_B}) == []


def test_request_hidden_by_the_receiver_is_found() -> None:
    [finding] = reconcile({A: FULL_A[:1], B: []})
    assert (finding.kind, finding.node, finding.exchange_id) == ("hidden", B, "x-1")
    assert "request.received" in finding.detail


def test_receipt_not_recorded_by_the_sender_is_found() -> None:
    [finding] = reconcile({A: FULL_A[:1], B: FULL_B})
    assert (finding.kind, finding.node) == ("hidden", A)
    assert "receipt.received" in finding.detail


def test_ends_that_disagree_are_found() -> None:
    findings = reconcile({A: FULL_A, B: [leaf("request.received", basis="other"), FULL_B[1]]})
    assert {f.kind for f in findings} == {"mismatch"}


def test_missing_logs_are_not_judged() -> None:
    assert reconcile({A: FULL_A}) == []


def test_receipt_promising_the_wrong_leaf_is_found() -> None:
    for promise in (1, 9, None):  # another leaf, no leaf at all, no promise
        [finding] = reconcile({A: [FULL_A[0], receipt_received(promise)], B: FULL_B})
        assert (finding.kind, finding.node) == ("broken_promise", B)


def test_local_events_have_no_counterpart_to_find() -> None:
    """A read of the case at one end, a refused call at the other: nothing to match."""
    read = leaf("case.read")
    refused = Leaf(
        public=PublicFields(**{**leaf("call.refused", exchange="").public.__dict__, "sender": B}),
        commitments=(),
    )
    assert reconcile({A: [*FULL_A, read], B: [FULL_B[0], refused, FULL_B[1]]}) == []


def test_an_answered_overlap_check_needs_no_counterpart() -> None:
    """The asker logs nothing for a check; the answerer's leaf alone is no finding."""
    answered = leaf("overlap.answered", exchange="check-1")
    assert reconcile({A: FULL_A, B: [*FULL_B, answered]}) == []
