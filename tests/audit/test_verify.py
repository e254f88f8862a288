# SPDX-License-Identifier: Apache-2.0
"""The auditor's checks, on logs built here: streaming root, altered, hidden, rewritten logs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from nacl.signing import SigningKey

from node.audit.leaf import Leaf, OpeningName, PublicFields, build_leaf, hour_of
from node.audit.merkle import (
    SubtreeHash,
    consistency_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
)
from node.audit.note import Checkpoint, NoteVerifier, sign_note
from node.audit.verify import (
    AuditError,
    RootBuilder,
    WitnessTimes,
    check_witnessed_times,
    open_checkpoint,
    verify_log,
)

ORIGIN = "comity/aa-cyber-unit/audit/v1"
KEY = SigningKey.generate()
VERIFIER = NoteVerifier.for_key(ORIGIN, bytes(KEY.verify_key))


def leaves(n: int) -> list[bytes]:
    public = PublicFields(
        event="request.sent",
        request_type="preservation",
        legal_basis="budapest-art29",
        sender="aa-cyber-unit",
        recipient="bb-central-authority",
        exchange_id="2b1c7e0e-4a4f-4f58-9a53-1c2d3e4f5a6b",
        hour=hour_of(0),
    )
    return [
        build_leaf(public, {OpeningName.CASE_REFERENCE: str(i)})[0].to_bytes() for i in range(n)
    ]


def checkpoint_of(data: list[bytes]) -> Checkpoint:
    return Checkpoint(
        origin=ORIGIN, size=len(data), root=root_from_leaf_hashes([leaf_hash(x) for x in data])
    )


def subtrees(data: list[bytes]) -> SubtreeHash:
    hashes = [leaf_hash(x) for x in data]

    def subtree(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(hashes[start:end])

    return subtree


def test_streaming_root_matches_the_tree_for_every_size_below_300() -> None:
    builder, hashes = RootBuilder(), list[bytes]()
    for i in range(300):
        assert builder.root() == root_from_leaf_hashes(hashes)
        data = i.to_bytes(2, "big")
        builder.add(data)
        hashes.append(leaf_hash(data))
    assert node_hash(hashes[0], hashes[1]) == root_from_leaf_hashes(hashes[:2])


def test_honest_log_verifies_and_extends_the_previous_checkpoint() -> None:
    data = leaves(13)
    old = checkpoint_of(data[:5])
    new = checkpoint_of(data)
    proof = consistency_proof(5, 13, subtrees(data))
    result = verify_log(new, data, previous=old, consistency=proof)
    assert (result.size, result.consistent_with) == (13, 5)
    assert result.events == {"request.sent": 13}


def test_checkpoint_signature_and_origin_are_checked() -> None:
    text = checkpoint_of(leaves(2)).text()
    assert open_checkpoint(sign_note(text, name=ORIGIN, key=KEY), VERIFIER).size == 2
    with pytest.raises(AuditError, match="rejected"):
        open_checkpoint(sign_note(text, name=ORIGIN, key=SigningKey.generate()), VERIFIER)
    other = Checkpoint(origin="comity/zz/audit/v1", size=0, root=bytes(32)).text()
    with pytest.raises(AuditError, match="not comity/aa-cyber-unit"):
        open_checkpoint(sign_note(other, name=ORIGIN, key=KEY), VERIFIER)


def test_altered_leaf_is_detected() -> None:
    data = leaves(6)
    checkpoint = checkpoint_of(data)
    altered = [*data[:3], leaves(1)[0], *data[4:]]
    with pytest.raises(AuditError, match="altered"):
        verify_log(checkpoint, altered, previous=None)


def test_hidden_leaf_is_detected() -> None:
    data = leaves(6)
    with pytest.raises(AuditError, match="served 5 leaves"):
        verify_log(checkpoint_of(data), data[:5], previous=None)


def test_rewritten_history_is_detected() -> None:
    data = leaves(8)
    accepted = checkpoint_of(data[:5])
    rewritten = [*data[:2], *leaves(6)]  # same length, other history
    proof = consistency_proof(5, 8, subtrees(rewritten))
    with pytest.raises(AuditError, match="rewritten"):
        verify_log(checkpoint_of(rewritten), rewritten, previous=accepted, consistency=proof)


def test_rollback_is_detected() -> None:
    data = leaves(8)
    with pytest.raises(AuditError, match="rollback"):
        verify_log(checkpoint_of(data[:4]), data[:4], previous=checkpoint_of(data))


def test_malformed_leaf_is_detected() -> None:
    data = [b"not a leaf"]
    with pytest.raises(AuditError, match="leaf 0 is malformed"):
        verify_log(checkpoint_of(data), data, previous=None)


def test_back_dated_entry_is_detected() -> None:
    public = PublicFields(
        event="request.sent",
        request_type="preservation",
        legal_basis="budapest-art29",
        sender="aa-cyber-unit",
        recipient="bb-central-authority",
        exchange_id="2b1c7e0e-4a4f-4f58-9a53-1c2d3e4f5a6b",
        hour="2026-11-24T10Z",
    )
    on_time = build_leaf(public, {})[0].to_bytes()
    an_hour_early = build_leaf(PublicFields(**{**public.__dict__, "hour": "2026-11-24T09Z"}), {})[
        0
    ].to_bytes()
    days_early = build_leaf(PublicFields(**{**public.__dict__, "hour": "2026-11-20T10Z"}), {})[
        0
    ].to_bytes()
    # A clock adjusted back within the tolerance is fine.
    assert (
        verify_log(
            checkpoint_of([on_time, an_hour_early]), [on_time, an_hour_early], previous=None
        ).size
        == 2
    )
    data = [on_time, days_early]
    with pytest.raises(AuditError, match=r"leaf 1 .* back-dated"):
        verify_log(checkpoint_of(data), data, previous=None)


def leaf_at(hour: str) -> Leaf:
    public = PublicFields(
        event="request.received",
        request_type="preservation",
        legal_basis="budapest-art29",
        sender="aa-cyber-unit",
        recipient="bb-central-authority",
        exchange_id="2b1c7e0e-4a4f-4f58-9a53-1c2d3e4f5a6b",
        hour=hour,
    )
    return build_leaf(public, {})[0]


NOON = int(datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("hours", "previous_size", "message"),
    [
        # Leaf 2 came after witnesses saw two leaves at noon, yet claims 08:00.
        (["2026-11-24T07Z", "2026-11-24T07Z", "2026-11-24T08Z"], 2, r"leaf 2 .* back-dated"),
        # Leaf 1 claims 15:00, after the checkpoint holding it was cosigned at 13:00.
        (["2026-11-24T11Z", "2026-11-24T15Z"], 1, r"leaf 1 .* forward-dated"),
    ],
)
def test_witness_times_catch_entries_dated_outside_them(
    hours: list[str], previous_size: int, message: str
) -> None:
    leaves = [leaf_at(hour) for hour in hours]
    with pytest.raises(AuditError, match=message):
        check_witnessed_times(leaves, WitnessTimes(previous_size, NOON, NOON + 3600))


def test_witness_times_allow_an_honest_log_and_clock_skew() -> None:
    # Old leaves before the size the witnesses saw; new ones within the hour (and its
    # tolerance) of the witnesses' clocks; none after the cosignature.
    hours = ["2026-11-20T03Z", "2026-11-24T11Z", "2026-11-24T10Z", "2026-11-24T14Z"]
    leaves = [leaf_at(hour) for hour in hours]
    check_witnessed_times(leaves, WitnessTimes(1, NOON, NOON + 3600))
    check_witnessed_times(leaves, WitnessTimes())
