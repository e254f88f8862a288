# SPDX-License-Identifier: Apache-2.0
"""Split views: a log that shows two auditors different histories.

Each auditor keeps the checkpoint it accepted last for every log. Auditors exchange those
(they hold no personal data); two checkpoints of one log are one history only if the smaller
is a prefix of the larger, which a consistency proof shows, or, at equal sizes, if their
roots are equal. Two validly signed checkpoints that fail this are the log's own signed
evidence of its misbehaviour. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from node.audit.merkle import ProofError, verify_consistency
from node.audit.note import Checkpoint
from node.errors import ComityError, ErrorKind


class SplitViewError(ComityError):
    kind = ErrorKind.PRECONDITION
    code = "split_view"


def ordered(a: Checkpoint, b: Checkpoint) -> tuple[Checkpoint, Checkpoint]:
    """The two checkpoints, smaller first."""
    return (a, b) if a.size <= b.size else (b, a)


def check_one_history(a: Checkpoint, b: Checkpoint, proof: Sequence[bytes]) -> None:
    """``proof`` is the log's consistency proof from the smaller checkpoint to the larger.

    Raises:
        SplitViewError: the checkpoints are of different logs, or of two histories.
    """
    if a.origin != b.origin:
        raise SplitViewError(f"the checkpoints are of two logs: {a.origin} and {b.origin}")
    old, new = ordered(a, b)
    if old.size == new.size:
        if old.root != new.root:
            raise SplitViewError(
                f"{a.origin} signed two different trees of {a.size} leaves: a split view"
            )
        return
    if old.size == 0:
        return
    try:
        verify_consistency(
            old_size=old.size,
            old_root=old.root,
            new_size=new.size,
            new_root=new.root,
            proof=proof,
        )
    except ProofError as e:
        raise SplitViewError(
            f"{a.origin} signed checkpoints of {old.size} and {new.size} leaves that are not "
            "one history: a split view"
        ) from e
