# SPDX-License-Identifier: Apache-2.0
"""C2SP signed notes, checkpoints and cosignatures, against the upstream example."""

from __future__ import annotations

import base64

import pytest
from nacl.signing import SigningKey

from node.audit.note import (
    EM_DASH,
    Checkpoint,
    NoteError,
    NoteVerifier,
    cosign,
    open_note,
    sign_note,
    verify_cosignatures,
)

# The golang.org/x/mod/sumdb/note example that the C2SP signed-note spec builds on.
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
SIGNATURE = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
NOTE = f"{TEXT}\n{EM_DASH} PeterNeumann {SIGNATURE}\n"


def test_known_answer_signature_and_verifier_key() -> None:
    key = SigningKey(SEED)
    assert sign_note(TEXT, name="PeterNeumann", key=key) == NOTE
    verifier = NoteVerifier.parse(VKEY)
    assert verifier.text() == VKEY
    assert NoteVerifier.for_key("PeterNeumann", bytes(key.verify_key)).text() == VKEY
    assert open_note(NOTE, [verifier]) == (TEXT, ["PeterNeumann"])


def test_unknown_signers_are_ignored_but_one_known_is_needed() -> None:
    other = SigningKey.generate()
    note = NOTE + sign_note(TEXT, name="Other", key=other).split("\n\n", 1)[1]
    assert open_note(note, [NoteVerifier.parse(VKEY)]) == (TEXT, ["PeterNeumann"])
    with pytest.raises(NoteError, match="not signed by any known key"):
        open_note(note, [NoteVerifier.for_key("Nobody", bytes(other.verify_key))])


@pytest.mark.parametrize(
    "note",
    [
        NOTE.replace("your problem is", "your problem was"),
        NOTE.replace("x08go", "x08gp"),
    ],
)
def test_tampering_is_refused(note: str) -> None:
    with pytest.raises(NoteError):
        open_note(note, [NoteVerifier.parse(VKEY)])


@pytest.mark.parametrize(
    ("note", "match"),
    [
        (TEXT, "blank line"),
        (f"{TEXT}\n- PeterNeumann {SIGNATURE}\n", "signature line"),
        (f"{TEXT}\n{EM_DASH} PeterNeumann !!!\n", "base64"),
    ],
)
def test_malformed_notes_are_refused(note: str, match: str) -> None:
    with pytest.raises(NoteError, match=match):
        open_note(note, [NoteVerifier.parse(VKEY)])


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_bad_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        NoteVerifier.parse(vkey)


def test_checkpoint_round_trip_and_signing() -> None:
    checkpoint = Checkpoint(
        origin="comity.example/ee-cyber-unit/audit/2026", size=42, root=bytes(range(32))
    )
    text = checkpoint.text()
    assert text.splitlines() == [
        "comity.example/ee-cyber-unit/audit/2026",
        "42",
        base64.b64encode(bytes(range(32))).decode(),
    ]
    assert Checkpoint.parse(text) == checkpoint
    key = SigningKey.generate()
    note = sign_note(text, name=checkpoint.origin, key=key)
    verifier = NoteVerifier.for_key(checkpoint.origin, bytes(key.verify_key))
    body, _ = open_note(note, [verifier])
    assert Checkpoint.parse(body) == checkpoint


@pytest.mark.parametrize(
    "text", ["origin\n42\n", "origin\n042\nAAAA\n", "origin\nx\nAAAA\n", "origin\n1\nAAAA\n"]
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_witness_cosignatures() -> None:
    log_key, witness = SigningKey.generate(), SigningKey.generate()
    checkpoint = Checkpoint(origin="comity.example/x/audit", size=1, root=bytes(32)).text()
    note = sign_note(checkpoint, name="comity.example/x/audit", key=log_key)
    cosigned = cosign(note, name="witness.example", key=witness, timestamp=1_790_000_000)
    witnesses = {"witness.example": bytes(witness.verify_key)}
    assert verify_cosignatures(cosigned, witnesses) == {"witness.example": 1_790_000_000}
    assert verify_cosignatures(note, witnesses) == {}
    # The log's own signature still verifies with the cosignature line added.
    verifier = NoteVerifier.for_key("comity.example/x/audit", bytes(log_key.verify_key))
    assert open_note(cosigned, [verifier])[0] == checkpoint
    tampered = cosigned.replace("\n1\n", "\n2\n")
    with pytest.raises(NoteError):
        verify_cosignatures(tampered, witnesses)
