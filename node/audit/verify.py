# SPDX-License-Identifier: Apache-2.0
"""What an auditor checks of one node's log, given what the node served. Pure: no I/O.

The checkpoint must be signed by the node's listed checkpoint key under the node's origin;
the leaves, hashed in a streaming compact range (memory logarithmic in the log's size), must
give the checkpoint's root; every leaf must be a canonical version-1 leaf; and the log must be
a consistent extension of the checkpoint this auditor accepted last time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from node.audit.leaf import Leaf
from node.audit.merkle import EMPTY_ROOT, ProofError, leaf_hash, node_hash, verify_consistency
from node.audit.note import Checkpoint, NoteVerifier, open_note
from node.errors import ComityError, ErrorKind


class AuditError(ComityError):
    """The log fails a check: the message names which, and what it means."""

    kind = ErrorKind.PRECONDITION
    code = "audit_failed"


class RootBuilder:
    """RFC 6962 root of a stream of leaves, keeping only the perfect subtrees' hashes."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    def add(self, leaf: bytes) -> None:
        self._stack.append((1, leaf_hash(leaf)))
        self.size += 1
        while len(self._stack) > 1 and self._stack[-1][0] == self._stack[-2][0]:
            (width, right), (_, left) = self._stack.pop(), self._stack.pop()
            self._stack.append((width * 2, node_hash(left, right)))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        root = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            root = node_hash(left, root)
        return root


@dataclass
class AuditResult:
    origin: str
    size: int
    root: bytes
    events: Counter[str] = field(default_factory=Counter)
    leaves: list[Leaf] = field(default_factory=list)
    consistent_with: int | None = None
    """Size of the previously accepted checkpoint this one extends, if there was one."""
    witnesses: list[str] = field(default_factory=list)
    """Witnesses whose cosignatures on the checkpoint verified."""


def open_checkpoint(note: str, verifier: NoteVerifier) -> Checkpoint:
    """The checkpoint in ``note``, once its signature and origin are verified.

    Raises:
        AuditError: bad signature, wrong origin, or not a checkpoint.
    """
    try:
        text, _ = open_note(note, [verifier])
        checkpoint = Checkpoint.parse(text)
    except ComityError as e:
        raise AuditError(f"checkpoint rejected: {e.message}") from e
    if checkpoint.origin != verifier.name:
        raise AuditError(f"checkpoint is for log {checkpoint.origin}, not {verifier.name}")
    return checkpoint


@dataclass(frozen=True)
class WitnessTimes:
    """When witnesses vouched for the log's size: the earliest cosignature of the checkpoint
    accepted before (then the log had ``previous_size`` leaves), and the latest of the new one."""

    previous_size: int = 0
    previous_seen_s: int | None = None
    cosigned_s: int | None = None


class LogVerifier:
    """Checks a log's leaves as they stream in, against a verified checkpoint.

    Memory stays logarithmic in the log's size, unless ``keep_leaves`` asks for the parsed
    leaves (reconciliation and reports need their public fields).
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        *,
        witness_times: WitnessTimes | None = None,
        keep_leaves: bool = True,
    ) -> None:
        self.checkpoint = checkpoint
        self.result = AuditResult(
            origin=checkpoint.origin, size=checkpoint.size, root=checkpoint.root
        )
        self._times = witness_times or WitnessTimes()
        self._keep = keep_leaves
        self._builder = RootBuilder()
        self._last: Leaf | None = None

    @property
    def size(self) -> int:
        return self._builder.size

    def add(self, data: bytes) -> None:
        """Raises: AuditError for a malformed, back-dated or forward-dated leaf."""
        index = self._builder.size
        try:
            leaf = Leaf.from_bytes(data)
        except ComityError as e:
            raise AuditError(f"leaf {index} is malformed: {e.message}") from e
        _check_not_back_dated(leaf, self._last, index)
        _check_witnessed_time(leaf, index, self._times)
        self.result.events[leaf.public.event] += 1
        if self._keep:
            self.result.leaves.append(leaf)
        self._last = leaf
        self._builder.add(data)

    def finish(
        self, *, previous: Checkpoint | None, consistency: Sequence[bytes] = ()
    ) -> AuditResult:
        """Raises: AuditError when the leaves do not make the checkpoint, or the checkpoint
        does not extend the one accepted before."""
        checkpoint = self.checkpoint
        if self._builder.size != checkpoint.size:
            raise AuditError(
                f"the node served {self._builder.size} leaves for a log of {checkpoint.size}"
            )
        if self._builder.root() != checkpoint.root:
            raise AuditError(
                "the leaves do not give the checkpoint's root: a leaf was altered, removed or "
                "hidden"
            )
        if previous is not None:
            _check_extends(previous, checkpoint, consistency)
            self.result.consistent_with = previous.size
        return self.result


def verify_log(
    checkpoint: Checkpoint,
    leaves: Iterable[bytes],
    *,
    previous: Checkpoint | None,
    consistency: Sequence[bytes] = (),
    witness_times: WitnessTimes | None = None,
) -> AuditResult:
    """Check the served leaves against a verified checkpoint and the last accepted one.

    Raises:
        AuditError: the first check that fails, in words an auditor can act on.
    """
    verifier = LogVerifier(checkpoint, witness_times=witness_times)
    for data in leaves:
        verifier.add(data)
    return verifier.finish(previous=previous, consistency=consistency)


BACKDATING_TOLERANCE = timedelta(hours=1)


def _check_not_back_dated(leaf: Leaf, previous: Leaf | None, index: int) -> None:
    """Leaves are appended as events happen, so their hours never go back by more than the
    tolerance (clock adjustments); an entry slipped in later with an earlier hour does."""
    if previous is None:
        _hour(leaf, index)
        return
    if _hour(leaf, index) < _hour(previous, index - 1) - BACKDATING_TOLERANCE:
        raise AuditError(
            f"leaf {index} claims {leaf.public.hour}, earlier than leaf {index - 1} "
            f"({previous.public.hour}): the entry was back-dated"
        )


def check_witnessed_times(leaves: Sequence[Leaf], times: WitnessTimes) -> None:
    """Raises: AuditError for the first leaf dated outside what the witnesses saw."""
    for index, leaf in enumerate(leaves):
        _check_witnessed_time(leaf, index, times)


def _check_witnessed_time(leaf: Leaf, index: int, times: WitnessTimes) -> None:
    """Witnesses date the log independently of the node: at ``previous_seen_s`` a witness saw
    it at ``previous_size`` leaves, so every later leaf was appended after then; at
    ``cosigned_s`` witnesses cosigned the checkpoint, so every leaf in it was appended before.
    A leaf dated before the first (back-dated) or after the second (forward-dated) is refused.
    """
    start = _hour(leaf, index)
    seen, cosigned = _instant(times.previous_seen_s), _instant(times.cosigned_s)
    late = index >= times.previous_size
    if seen is not None and late and start + timedelta(hours=1) + BACKDATING_TOLERANCE < seen:
        raise AuditError(
            f"leaf {index} claims {leaf.public.hour}, but witnesses saw the log at "
            f"{times.previous_size} leaves at {seen:%Y-%m-%dT%H:%MZ}: the entry was back-dated"
        )
    if cosigned is not None and start - BACKDATING_TOLERANCE > cosigned:
        raise AuditError(
            f"leaf {index} claims {leaf.public.hour}, after witnesses cosigned the "
            f"checkpoint holding it at {cosigned:%Y-%m-%dT%H:%MZ}: the entry was forward-dated"
        )


def _instant(unix_s: int | None) -> datetime | None:
    return None if unix_s is None else datetime.fromtimestamp(unix_s, tz=UTC)


def _hour(leaf: Leaf, index: int) -> datetime:
    try:
        return datetime.strptime(leaf.public.hour, "%Y-%m-%dT%HZ").replace(tzinfo=UTC)
    except ValueError as e:
        raise AuditError(f"leaf {index} has a malformed hour") from e


def _check_extends(previous: Checkpoint, checkpoint: Checkpoint, proof: Sequence[bytes]) -> None:
    if checkpoint.size < previous.size:
        raise AuditError(
            f"the log shrank from {previous.size} to {checkpoint.size} leaves "
            "since the last accepted checkpoint (rollback)"
        )
    if previous.size == 0:
        return
    try:
        verify_consistency(
            old_size=previous.size,
            old_root=previous.root,
            new_size=checkpoint.size,
            new_root=checkpoint.root,
            proof=proof,
        )
    except ProofError as e:
        raise AuditError(
            "the log is not a consistent extension of the checkpoint accepted "
            f"before (size {previous.size}): history was rewritten"
        ) from e
