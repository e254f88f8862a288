# SPDX-License-Identifier: Apache-2.0
"""Two auditors' checkpoints of one log: one history, or a split view."""

from __future__ import annotations

import pytest

from node.audit.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes
from node.audit.note import Checkpoint
from node.audit.splitview import SplitViewError, check_one_history

ORIGIN = "comity/bb-central-authority/audit/v1"
HISTORY = [f"leaf {i}".encode() for i in range(20)]
FORK = [*HISTORY[:7], b"rewritten", *HISTORY[8:]]


def checkpoint(leaves: list[bytes], size: int, origin: str = ORIGIN) -> Checkpoint:
    root = root_from_leaf_hashes([leaf_hash(x) for x in leaves[:size]])
    return Checkpoint(origin=origin, size=size, root=root)


def proof(leaves: list[bytes], old: int, new: int) -> list[bytes]:
    hashes = [leaf_hash(x) for x in leaves[:new]]
    return consistency_proof(old, new, lambda a, b: root_from_leaf_hashes(hashes[a:b]))


@pytest.mark.parametrize(("a", "b"), [(5, 5), (5, 20), (20, 5), (0, 9), (1, 2)])
def test_checkpoints_of_one_history_agree(a: int, b: int) -> None:
    old, new = sorted((a, b))
    given = proof(HISTORY, old, new) if 0 < old < new else []
    check_one_history(checkpoint(HISTORY, a), checkpoint(HISTORY, b), given)


def test_two_trees_of_one_size_are_a_split_view() -> None:
    with pytest.raises(SplitViewError, match="two different trees of 12 leaves"):
        check_one_history(checkpoint(HISTORY, 12), checkpoint(FORK, 12), [])


@pytest.mark.parametrize("served_by", [HISTORY, FORK])
def test_a_fork_cannot_be_proven_consistent(served_by: list[bytes]) -> None:
    # Whichever history the log serves its proof from, one of the two checkpoints fails.
    with pytest.raises(SplitViewError, match="not one history"):
        check_one_history(checkpoint(HISTORY, 10), checkpoint(FORK, 16), proof(served_by, 10, 16))


def test_checkpoints_of_two_logs_are_refused() -> None:
    other = checkpoint(HISTORY, 5, origin="comity/cc-central-authority/audit/v1")
    with pytest.raises(SplitViewError, match="two logs"):
        check_one_history(checkpoint(HISTORY, 5), other, [])
