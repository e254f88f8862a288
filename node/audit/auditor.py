# SPDX-License-Identifier: Apache-2.0
"""The auditor's workflow: verify a member's log, keep the checkpoint accepted for it, compare
it with another auditor's, and make sure a proof bundle is cosigned before anyone relies on it.

A member's node is reached only through the small :class:`LogSource` protocol (the gRPC one is
``node.transport.audit_source``; tests use an in-memory log), so this module holds no network
code. The checks themselves are the pure verifiers of ``node.audit``; what this module adds is
their order and the auditor's memory: the accepted checkpoint of each log, kept as a file in a
directory of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from node.audit.names import agency_of_origin, log_origin, witness_name
from node.audit.note import Checkpoint, NoteError, NoteVerifier, open_note, verify_cosignatures
from node.audit.proof import ProofBundle, ProvenRecord, verify_bundle
from node.audit.splitview import SplitViewError, check_one_history, ordered
from node.audit.verify import AuditError, AuditResult, LogVerifier, WitnessTimes, open_checkpoint
from node.errors import ComityError, ConfigError, ErrorKind
from node.members import Member

COSIGN_POLL_S = 1.0


class NotCosignedError(ComityError):
    """No checkpoint covering the record was cosigned by enough witnesses in time."""

    kind = ErrorKind.UNAVAILABLE
    code = "not_cosigned"


class LogSource(Protocol):
    """One member's audit log, as an auditor reads it."""

    async def checkpoint(self) -> str:
        """The newest signed checkpoint note, with the cosignature lines collected for it."""
        ...

    async def leaves(self, start: int, end: int) -> Sequence[bytes]:
        """Leaves from ``start`` on, up to ``end`` (exclusive); a source may return fewer (a
        page) and returns none past the end of the log."""
        ...

    async def consistency_proof(self, old_size: int, new_size: int) -> Sequence[bytes]: ...

    async def inclusion_proof(self, index: int, size: int) -> Sequence[bytes]: ...


@dataclass(frozen=True)
class LogKeys:
    """What an auditor trusts for one log: its checkpoint key and the witnesses' keys."""

    agency_id: str
    verifier: NoteVerifier
    witnesses: Mapping[str, bytes]
    """Witness name -> Ed25519 key: every other member's witness."""


def log_keys(member: Member, members: Iterable[Member]) -> LogKeys:
    """The keys for ``member``'s log from the directory: its checkpoint key, and as witnesses
    every other member."""
    return LogKeys(
        agency_id=member.agency_id,
        verifier=NoteVerifier.for_key(log_origin(member.agency_id), member.checkpoint_key),
        witnesses={
            witness_name(m.agency_id): m.witness_key
            for m in members
            if m.agency_id != member.agency_id
        },
    )


@dataclass(frozen=True)
class Accepted:
    """The checkpoint an auditor accepted for a log last time, and when each witness cosigned
    it; empty before the first audit."""

    checkpoint: Checkpoint | None = None
    times: Mapping[str, int] = field(default_factory=dict)


class CheckpointStore:
    """The accepted checkpoint of each log, one signed note per file (``AGENCY.checkpoint``).

    The notes hold no personal data: auditors exchange them to detect split views.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, agency_id: str) -> Path:
        return self.directory / f"{agency_id}.checkpoint"

    def load(self, keys: LogKeys) -> Accepted:
        """Raises: ConfigError when the kept note cannot be read or no longer verifies."""
        state = self.path(keys.agency_id)
        if not state.exists():
            return Accepted()
        try:
            note = state.read_text(encoding="utf-8")
            text, _ = open_note(note, [keys.verifier])
            return Accepted(Checkpoint.parse(text), cosignature_times(note, keys.witnesses))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read the accepted checkpoint {state}: {e}") from e

    def accept(self, agency_id: str, note: str) -> None:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self.path(agency_id).write_text(note, encoding="utf-8")

    def split_view_path(self, agency_id: str) -> Path:
        """Where both notes of a split view are kept (``AGENCY.split-view``)."""
        return self.path(agency_id).with_suffix(".split-view")

    def keep_split_view(self, agency_id: str, other_note: str) -> None:
        """Keep the accepted note and ``other_note`` side by side as evidence."""
        mine = self.path(agency_id).read_text(encoding="utf-8")
        self.split_view_path(agency_id).write_text(mine + "\n" + other_note, "utf-8")


def cosignature_times(note: str, witnesses: Mapping[str, bytes]) -> dict[str, int]:
    """The known witnesses whose cosignatures on ``note`` verify, with their times.

    Raises:
        AuditError: a known witness's cosignature is bad.
    """
    try:
        return verify_cosignatures(note, witnesses)
    except NoteError as e:
        raise AuditError(f"a witness cosignature is bad: {e.message}") from e


async def audit_log(
    source: LogSource,
    keys: LogKeys,
    accepted: Accepted,
    *,
    keep_leaves: bool = True,
    progress: Callable[[int], None] | None = None,
) -> tuple[AuditResult, str]:
    """Fetch the checkpoint, stream every leaf through the checks, and check that the log
    extends the accepted checkpoint; the result and the checkpoint note.

    Raises:
        AuditError: a bad signature or cosignature, an altered, hidden, back-dated or
            rolled-back log.
    """
    note = await source.checkpoint()
    checkpoint = open_checkpoint(note, keys.verifier)
    times = cosignature_times(note, keys.witnesses)
    previous = accepted.checkpoint
    # The earliest time a witness saw the old size, the latest it cosigned the new one:
    # the bounds an honest node always meets.
    witness_times = WitnessTimes(
        previous_size=previous.size if previous else 0,
        previous_seen_s=min(accepted.times.values(), default=None),
        cosigned_s=max(times.values(), default=None),
    )
    log = LogVerifier(checkpoint, witness_times=witness_times, keep_leaves=keep_leaves)
    await _stream_leaves(source, log, progress)
    proof: Sequence[bytes] = []
    if previous is not None and 0 < previous.size <= checkpoint.size:
        proof = await source.consistency_proof(previous.size, checkpoint.size)
    result = log.finish(previous=previous, consistency=proof)
    result.witnesses = sorted(times)
    return result, note


async def _stream_leaves(
    source: LogSource, log: LogVerifier, progress: Callable[[int], None] | None
) -> None:
    size = log.checkpoint.size
    while log.size < size:
        page = await source.leaves(log.size, size)
        if not page:
            return  # finish() names the shortfall
        for data in page[: size - log.size]:
            log.add(data)
        if progress is not None:
            progress(log.size)


def check_quorum(agency_id: str, witnesses: Sequence[str], quorum: int) -> None:
    """Raises: AuditError when fewer than ``quorum`` witnesses cosigned."""
    if len(witnesses) < quorum:
        raise AuditError(
            f"checkpoint of {agency_id} is cosigned by {len(witnesses)} "
            f"witness(es), the policy asks for {quorum}"
        )


class Auditor:
    """Audits members' logs and remembers the checkpoint it accepted for each."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store

    async def verify(
        self,
        source: LogSource,
        keys: LogKeys,
        *,
        quorum: int = 0,
        keep_leaves: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> AuditResult:
        """Audit one log, check its witness quorum, and accept its checkpoint.

        Raises:
            AuditError: the log does not verify, or too few witnesses cosigned.
            ConfigError: the checkpoint accepted before cannot be read.
        """
        accepted = self.store.load(keys)
        result, note = await audit_log(
            source, keys, accepted, keep_leaves=keep_leaves, progress=progress
        )
        check_quorum(keys.agency_id, result.witnesses, quorum)
        self.store.accept(keys.agency_id, note)
        return result

    async def compare(
        self, source: LogSource, keys: LogKeys, other_note: str
    ) -> tuple[Checkpoint, Checkpoint]:
        """Check that another auditor's checkpoint of the log and the accepted one are one
        history (asking the node for a consistency proof between them); the older and the
        newer. On a split view both notes are kept as evidence first.

        Raises:
            ConfigError: no checkpoint of this log accepted yet.
            AuditError: the other note is not signed by the log's key.
            SplitViewError: the two checkpoints are not one history.
        """
        mine = self.store.load(replace(keys, witnesses={})).checkpoint
        if mine is None:
            raise ConfigError(
                f"no checkpoint of {keys.agency_id} accepted yet: run "
                f"`comity audit verify {keys.agency_id}` first"
            )
        theirs = open_checkpoint(other_note, keys.verifier)
        old, new = ordered(mine, theirs)
        proof: Sequence[bytes] = []
        if 0 < old.size < new.size:
            proof = await source.consistency_proof(old.size, new.size)
        try:
            check_one_history(mine, theirs, proof)
        except SplitViewError:
            self.store.keep_split_view(keys.agency_id, other_note)
            raise
        return old, new


def agency_of_bundle(bundle: ProofBundle) -> str:
    """The agency whose log the bundle's checkpoint names (verified afterwards).

    Raises:
        ConfigError: the checkpoint is not a Comity audit log's.
    """
    origin = bundle.checkpoint.split("\n", 1)[0]
    agency = agency_of_origin(origin)
    if agency is None:
        raise ConfigError(f"the bundle's checkpoint is not a Comity audit log's ({origin!r})")
    return agency


def check_proof(bundle: ProofBundle, keys: LogKeys, *, quorum: int) -> ProvenRecord:
    """Verify a bundle against the log's keys and a witness quorum.

    Raises:
        AuditError: the checkpoint's signature or origin is wrong.
        BundleError: the record is not proven, or too few witnesses cosigned.
    """
    return verify_bundle(bundle, keys.verifier, witnesses=keys.witnesses, quorum=quorum)


@dataclass(frozen=True)
class Patience:
    """How long to wait for witnesses, and how to tell time (tests pass their own)."""

    timeout_s: float
    poll_s: float = COSIGN_POLL_S
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


async def cosigned_bundle(
    bundle: ProofBundle, source: LogSource, keys: LogKeys, *, quorum: int, patience: Patience
) -> ProofBundle:
    """``bundle`` itself when its checkpoint carries ``quorum`` cosignatures; else the same
    record proven in the log's newest checkpoint once one covering it is cosigned by
    ``quorum`` witnesses (the node collects cosignatures on its own schedule).

    Raises:
        NotCosignedError: no such checkpoint within ``patience.timeout_s``.
        AuditError, BundleError: the bundle or a checkpoint does not verify.
    """
    if len(cosignature_times(bundle.checkpoint, keys.witnesses)) >= quorum:
        return bundle
    deadline = patience.clock() + patience.timeout_s
    while True:
        note = await source.checkpoint()
        checkpoint = open_checkpoint(note, keys.verifier)
        cosigned = cosignature_times(note, keys.witnesses)
        if checkpoint.size > bundle.index and len(cosigned) >= quorum:
            proof = await source.inclusion_proof(bundle.index, checkpoint.size)
            fresh = replace(bundle, proof=tuple(proof), checkpoint=note)
            check_proof(fresh, keys, quorum=quorum)
            return fresh
        if patience.clock() >= deadline:
            raise NotCosignedError(
                f"no checkpoint of {keys.agency_id} covering record {bundle.index} was "
                f"cosigned by {quorum} witness(es) within {patience.timeout_s:g}s: the "
                "witnesses may be unreachable"
            )
        await patience.sleep(patience.poll_s)
