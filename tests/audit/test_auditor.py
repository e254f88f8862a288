# SPDX-License-Identifier: Apache-2.0
"""The auditor's workflow against an in-memory log: honest logs verify and are accepted;
altered, back-dated, forked and split-view logs are reported; a proof bundle waits for its
witnesses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from node.audit.auditor import (
    Auditor,
    CheckpointStore,
    LogKeys,
    NotCosignedError,
    Patience,
    agency_of_bundle,
    check_proof,
    cosigned_bundle,
)
from node.audit.leaf import Opening, OpeningName, PublicFields, build_leaf, hour_of
from node.audit.merkle import consistency_proof, inclusion_proof, leaf_hash, root_from_leaf_hashes
from node.audit.names import log_origin, witness_name
from node.audit.note import Checkpoint, NoteVerifier, cosign, sign_note
from node.audit.policy import DEFAULT_PROOF_QUORUM
from node.audit.proof import BundleError, ProofBundle
from node.audit.splitview import SplitViewError
from node.audit.verify import AuditError
from node.errors import ConfigError

AGENCY = "bb-central-authority"
KEY = SigningKey.generate()
WITNESSES = {witness_name(a): SigningKey.generate() for a in ("aa-cyber-unit", "cc-ca")}
KEYS = LogKeys(
    agency_id=AGENCY,
    verifier=NoteVerifier.for_key(log_origin(AGENCY), bytes(KEY.verify_key)),
    witnesses={name: bytes(key.verify_key) for name, key in WITNESSES.items()},
)
NOW_MS = 1_780_000_000_000
PAGE = 3


def leaf(n: int, *, at_ms: int = NOW_MS) -> tuple[bytes, tuple[Opening, ...]]:
    public = PublicFields(
        event="request.received",
        request_type="preservation",
        legal_basis="budapest-art29",
        sender="aa-cyber-unit",
        recipient=AGENCY,
        exchange_id=f"2b1c7e0e-4a4f-4f58-9a53-1c2d3e4f5a{n:02x}",
        hour=hour_of(at_ms),
    )
    built, openings = build_leaf(public, {OpeningName.CASE_REFERENCE: f"EE-{n}"})
    return built.to_bytes(), openings


@dataclass
class MemoryLog:
    """A member's log held in memory, served a page at a time, as the gRPC source serves it.

    ``served`` replaces what the node hands out without changing what it signed (a node
    hiding or altering leaves); ``cosigners`` are the witnesses that have cosigned so far.
    """

    data: list[bytes] = field(default_factory=list)
    served: list[bytes] | None = None
    cosigners: list[str] = field(default_factory=list)
    checkpoint_calls: int = 0

    def add(self, *data: bytes) -> None:
        self.data.extend(data)

    def subtree(self, start: int, end: int) -> bytes:
        return root_from_leaf_hashes([leaf_hash(x) for x in self.data[start:end]])

    def note(self) -> str:
        root = self.subtree(0, len(self.data))
        text = Checkpoint(origin=log_origin(AGENCY), size=len(self.data), root=root).text()
        note = sign_note(text, name=log_origin(AGENCY), key=KEY)
        for name in self.cosigners:
            note = cosign(note, name=name, key=WITNESSES[name], timestamp=NOW_MS // 1000)
        return note

    async def checkpoint(self) -> str:
        self.checkpoint_calls += 1
        return self.note()

    async def leaves(self, start: int, end: int) -> Sequence[bytes]:
        served = self.data if self.served is None else self.served
        return served[start : min(end, start + PAGE)]

    async def consistency_proof(self, old_size: int, new_size: int) -> Sequence[bytes]:
        return consistency_proof(old_size, new_size, self.subtree)

    async def inclusion_proof(self, index: int, size: int) -> Sequence[bytes]:
        return inclusion_proof(index, size, self.subtree)


def honest(n: int) -> MemoryLog:
    log = MemoryLog(cosigners=sorted(WITNESSES))
    log.add(*(leaf(i)[0] for i in range(n)))
    return log


@pytest.fixture
def auditor(tmp_path: Path) -> Auditor:
    return Auditor(CheckpointStore(tmp_path / "audit-state"))


async def test_an_honest_log_verifies_page_by_page_and_its_checkpoint_is_accepted(
    auditor: Auditor,
) -> None:
    log = honest(7)
    seen: list[int] = []
    result = await auditor.verify(log, KEYS, quorum=2, progress=seen.append)
    assert (result.size, result.consistent_with) == (7, None)
    assert result.events == {"request.received": 7}
    assert result.witnesses == sorted(WITNESSES)
    assert seen == [3, 6, 7]
    assert auditor.store.path(AGENCY).read_text(encoding="utf-8") == log.note()

    log.add(leaf(7)[0], leaf(8)[0])
    grown = await auditor.verify(log, KEYS)
    assert (grown.size, grown.consistent_with) == (9, 7)


async def test_an_altered_or_hidden_leaf_is_reported_and_nothing_is_accepted(
    auditor: Auditor,
) -> None:
    log = honest(5)
    log.served = [*log.data[:2], leaf(99)[0], *log.data[3:]]
    with pytest.raises(AuditError, match="a leaf was altered, removed or hidden"):
        await auditor.verify(log, KEYS)
    log.served = log.data[:4]
    with pytest.raises(AuditError, match="served 4 leaves for a log of 5"):
        await auditor.verify(log, KEYS)
    assert not auditor.store.path(AGENCY).exists()


async def test_a_back_dated_leaf_is_reported(auditor: Auditor) -> None:
    log = honest(3)
    log.add(leaf(3, at_ms=NOW_MS - 3 * 24 * 3600 * 1000)[0])
    with pytest.raises(AuditError, match=r"leaf 3 .*back-dated"):
        await auditor.verify(log, KEYS)


async def test_a_forked_history_does_not_extend_the_accepted_checkpoint(
    auditor: Auditor,
) -> None:
    log = honest(5)
    await auditor.verify(log, KEYS)
    accepted = auditor.store.path(AGENCY).read_text(encoding="utf-8")
    fork = honest(0)
    fork.add(*(leaf(i + 50)[0] for i in range(8)))
    with pytest.raises(AuditError, match="accepted"):
        await auditor.verify(fork, KEYS)
    assert auditor.store.path(AGENCY).read_text(encoding="utf-8") == accepted


async def test_too_few_witnesses_fail_the_quorum(auditor: Auditor) -> None:
    log = honest(2)
    log.cosigners = log.cosigners[:1]
    with pytest.raises(AuditError, match="cosigned by 1 witness"):
        await auditor.verify(log, KEYS, quorum=2)


async def test_another_auditors_checkpoint_of_a_fork_is_a_split_view(auditor: Auditor) -> None:
    log = honest(6)
    with pytest.raises(ConfigError, match="run `comity audit verify"):
        await auditor.compare(log, KEYS, log.note())
    await auditor.verify(log, KEYS)
    log.add(leaf(6)[0])
    old, new = await auditor.compare(log, KEYS, log.note())
    assert (old.size, new.size) == (6, 7)

    fork = honest(0)
    fork.add(*(leaf(i + 50)[0] for i in range(9)))
    with pytest.raises(SplitViewError):
        await auditor.compare(fork, KEYS, fork.note())
    evidence = auditor.store.split_view_path(AGENCY).read_text(encoding="utf-8")
    assert fork.note() in evidence


def bundle(log: MemoryLog, index: int) -> ProofBundle:
    data, openings = log.data[index], ()
    return ProofBundle(
        index=index,
        leaf=data,
        openings=openings,
        proof=tuple(inclusion_proof(index, len(log.data), log.subtree)),
        checkpoint=log.note(),
    )


class FakeTime:
    """A clock that moves only when the auditor sleeps; witnesses cosign after ``after``."""

    def __init__(self, log: MemoryLog, *, cosign_after_s: float | None) -> None:
        self.now = 0.0
        self.log = log
        self.cosign_after_s = cosign_after_s

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.cosign_after_s is not None and self.now >= self.cosign_after_s:
            self.log.cosigners = sorted(WITNESSES)


def test_a_bundle_without_cosignatures_fails_the_default_quorum() -> None:
    log = honest(4)
    log.cosigners = []
    uncosigned = bundle(log, 2)
    assert check_proof(uncosigned, KEYS, quorum=0).index == 2
    with pytest.raises(BundleError, match="cosigned by 0 witness"):
        check_proof(uncosigned, KEYS, quorum=DEFAULT_PROOF_QUORUM)
    assert agency_of_bundle(uncosigned) == AGENCY


async def test_a_bundle_waits_for_a_cosigned_checkpoint_covering_it() -> None:
    log = honest(4)
    log.cosigners = []
    early = bundle(log, 2)
    log.add(leaf(4)[0])  # the release itself is logged after the record
    time = FakeTime(log, cosign_after_s=3.0)
    patience = Patience(timeout_s=10.0, poll_s=1.0, clock=time.clock, sleep=time.sleep)
    fresh = await cosigned_bundle(early, log, KEYS, quorum=2, patience=patience)
    record = check_proof(fresh, KEYS, quorum=2)
    assert (record.index, record.size, sorted(record.witnesses)) == (2, 5, sorted(WITNESSES))
    assert (fresh.leaf, fresh.openings) == (early.leaf, early.openings)
    assert time.now == 3.0

    # A bundle that already carries the quorum is not asked about again.
    calls = log.checkpoint_calls
    assert await cosigned_bundle(fresh, log, KEYS, quorum=2, patience=patience) is fresh
    assert log.checkpoint_calls == calls


async def test_a_bundle_gives_up_when_no_witness_cosigns_in_time() -> None:
    log = honest(4)
    log.cosigners = []
    time = FakeTime(log, cosign_after_s=None)
    patience = Patience(timeout_s=5.0, poll_s=1.0, clock=time.clock, sleep=time.sleep)
    with pytest.raises(NotCosignedError, match=r"covering record 1 was cosigned by 1 witness"):
        await cosigned_bundle(bundle(log, 1), log, KEYS, quorum=1, patience=patience)
    assert time.now == 5.0
