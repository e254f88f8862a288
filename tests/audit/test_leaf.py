# SPDX-License-Identifier: Apache-2.0
"""Privacy-scoped leaves: canonical bytes, commitments that open, decoys, refusals."""

from __future__ import annotations

import pytest

from node.audit.leaf import (
    COMMITMENTS_PER_LEAF,
    Leaf,
    LeafError,
    Opening,
    OpeningName,
    PublicFields,
    build_leaf,
    hour_of,
)

PUBLIC = PublicFields(
    event="request.sent",
    request_type="preservation",
    legal_basis="budapest-art29",
    sender="aa-cyber-unit",
    recipient="bb-central-authority",
    exchange_id="2b1c7e0e-4a4f-4f58-9a53-1c2d3e4f5a6b",
    hour=hour_of(1_790_000_000_000),
)
SENSITIVE = {
    OpeningName.CASE_REFERENCE: "EE-CYB-2026-0417",
    OpeningName.EXACT_TIME_MS: "1790000000000",
}


def test_round_trip_and_openings() -> None:
    leaf, openings = build_leaf(PUBLIC, SENSITIVE)
    data = leaf.to_bytes()
    assert Leaf.from_bytes(data) == leaf
    assert len(leaf.commitments) == COMMITMENTS_PER_LEAF
    assert list(leaf.commitments) == sorted(leaf.commitments)
    assert {o.name: o.value for o in openings} == SENSITIVE
    assert all(leaf.opens(o) for o in openings)
    forged = Opening(
        name=OpeningName.CASE_REFERENCE, value="EE-CYB-2026-9999", salt=openings[0].salt
    )
    assert not leaf.opens(forged)


def test_public_bytes_hold_no_sensitive_value() -> None:
    data = build_leaf(PUBLIC, SENSITIVE)[0].to_bytes()
    for value in SENSITIVE.values():
        assert value.encode() not in data
    assert b"2026-09-21T14Z" in data  # only the hour


def test_two_leaves_of_the_same_facts_differ() -> None:
    """Fresh salts and decoys: equal values cannot be linked across leaves."""
    one, two = build_leaf(PUBLIC, SENSITIVE)[0], build_leaf(PUBLIC, SENSITIVE)[0]
    assert not set(one.commitments) & set(two.commitments)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"{}",
        build_leaf(PUBLIC, SENSITIVE)[0].to_bytes().replace(b'"v":1', b'"v":2'),
        build_leaf(PUBLIC, SENSITIVE)[0].to_bytes().replace(b",", b", "),
    ],
)
def test_malformed_leaves_are_refused(data: bytes) -> None:
    with pytest.raises(LeafError):
        Leaf.from_bytes(data)


def test_unknown_event_and_too_many_fields_are_refused() -> None:
    with pytest.raises(LeafError, match="unknown audit event"):
        build_leaf(PublicFields(**{**PUBLIC.__dict__, "event": "coffee.made"}), SENSITIVE)
    with pytest.raises(LeafError, match="at most"):
        build_leaf(PUBLIC, dict.fromkeys(list(OpeningName)[: COMMITMENTS_PER_LEAF + 1], "x"))


def test_leaves_written_with_eight_commitments_still_parse_and_open() -> None:
    """Leaves from before leaves held twelve commitments stay valid as they are."""
    leaf, openings = build_leaf(PUBLIC, SENSITIVE)
    real = {o.commitment() for o in openings}
    older = Leaf(
        public=PUBLIC,
        commitments=tuple(sorted([*real, *[c for c in leaf.commitments if c not in real][:6]])),
    )
    data = older.to_bytes()
    assert Leaf.from_bytes(data) == older
    assert len(older.commitments) == 8
    assert all(older.opens(o) for o in openings)


def test_who_acted_is_committed_not_public() -> None:
    sensitive = {OpeningName.OFFICER: "kadri", OpeningName.OFFICER_UNIT: "Cyber Unit"}
    leaf, _ = build_leaf(PublicFields(**{**PUBLIC.__dict__, "event": "case.read"}), sensitive)
    data = leaf.to_bytes()
    assert b"kadri" not in data
    assert b"Cyber Unit" not in data
    assert len(leaf.commitments) == COMMITMENTS_PER_LEAF
