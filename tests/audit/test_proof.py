# SPDX-License-Identifier: Apache-2.0
"""Offline proof bundles (C2SP tlog-proof@v1) and who may see which openings."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace

import pytest
from nacl.signing import SigningKey

from node.audit.disclosure import (
    DisclosureError,
    NotEntitledError,
    check_reason,
    released_to,
    remote_role,
)
from node.audit.leaf import Opening, OpeningName, PublicFields, build_leaf, hour_of
from node.audit.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes
from node.audit.note import Checkpoint, NoteVerifier, cosign, sign_note
from node.audit.proof import PROOF_HEADER, BundleError, ProofBundle, verify_bundle
from node.audit.verify import AuditError

ORIGIN = "comity/bb-central-authority/audit/v1"
KEY = SigningKey.generate()
VERIFIER = NoteVerifier.for_key(ORIGIN, bytes(KEY.verify_key))
WITNESS = SigningKey.generate()
WITNESS_NAME = "comity/aa-cyber-unit/witness"
SENSITIVE = {
    OpeningName.CASE_REFERENCE: "EE-CYB-2026-0417",
    OpeningName.JUSTIFICATION: "the accounts may delete the posts",
    OpeningName.REQUESTING_UNIT: "Police and Border Guard Board / Cybercrime Bureau",
}


def log(n: int) -> tuple[list[bytes], list[tuple[Opening, ...]]]:
    public = PublicFields(
        event="request.received",
        request_type="preservation",
        legal_basis="budapest-art29",
        sender="aa-cyber-unit",
        recipient="bb-central-authority",
        exchange_id="2b1c7e0e-4a4f-4f58-9a53-1c2d3e4f5a6b",
        hour=hour_of(0),
    )
    built = [build_leaf(public, {**SENSITIVE, OpeningName.EXACT_TIME_MS: str(i)}) for i in range(n)]
    return [leaf.to_bytes() for leaf, _ in built], [openings for _, openings in built]


def bundle_for(index: int, size: int = 13, *, witnessed: bool = False) -> ProofBundle:
    leaves, openings = log(size)
    hashes = [leaf_hash(x) for x in leaves]
    root = root_from_leaf_hashes(hashes)
    note = sign_note(Checkpoint(origin=ORIGIN, size=size, root=root).text(), name=ORIGIN, key=KEY)
    if witnessed:
        note = cosign(note, name=WITNESS_NAME, key=WITNESS, timestamp=1_700_000_000)
    proof = inclusion_proof(index, size, lambda a, b: root_from_leaf_hashes(hashes[a:b]))
    return ProofBundle(
        index=index,
        leaf=leaves[index],
        openings=openings[index],
        proof=tuple(proof),
        checkpoint=note,
    )


@pytest.mark.parametrize(("index", "size"), [(0, 1), (0, 13), (6, 13), (12, 13), (31, 64)])
def test_a_bundle_round_trips_and_proves_its_record(index: int, size: int) -> None:
    bundle = bundle_for(index, size)
    text = bundle.text()
    lines = text.split("\n")
    assert lines[0] == PROOF_HEADER
    assert lines[1].startswith("extra ")
    assert lines[2] == f"index {index}"
    assert text.endswith(bundle.checkpoint)
    assert ProofBundle.parse(text) == bundle
    record = verify_bundle(ProofBundle.parse(text), VERIFIER)
    assert record.index == index
    assert record.size == size
    assert record.opened["case_reference"] == "EE-CYB-2026-0417"
    assert record.public.event == "request.received"


def test_witness_cosignatures_count_towards_the_quorum() -> None:
    witnesses = {WITNESS_NAME: bytes(WITNESS.verify_key)}
    record = verify_bundle(bundle_for(3, witnessed=True), VERIFIER, witnesses=witnesses, quorum=1)
    assert record.witnesses == {WITNESS_NAME: 1_700_000_000}
    with pytest.raises(BundleError, match="cosigned by 0 witness"):
        verify_bundle(bundle_for(3), VERIFIER, witnesses=witnesses, quorum=1)


def _other_leaf(b: ProofBundle) -> ProofBundle:
    return replace(b, leaf=bundle_for(4).leaf)


def _forged_opening(b: ProofBundle) -> ProofBundle:
    first = b.openings[0]
    return replace(b, openings=(replace(first, value="someone else"), *b.openings[1:]))


def _short_proof(b: ProofBundle) -> ProofBundle:
    return replace(b, proof=b.proof[:-1])


def _wrong_index(b: ProofBundle) -> ProofBundle:
    return replace(b, index=b.index + 1)


def _index_beyond(b: ProofBundle) -> ProofBundle:
    return replace(b, index=99)


Tamper = Callable[[ProofBundle], ProofBundle]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_other_leaf, "inclusion proof does not lead"),
        (_forged_opening, "opens nothing in the leaf"),
        (_short_proof, "does not lead|not proven"),
        (_wrong_index, "not proven"),
        (_index_beyond, "outside a tree"),
    ],
)
def test_a_tampered_bundle_is_refused(tamper: Tamper, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        verify_bundle(tamper(bundle_for(5)), VERIFIER)


def test_a_checkpoint_signed_by_another_key_is_refused() -> None:
    stranger = NoteVerifier.for_key(ORIGIN, bytes(SigningKey.generate().verify_key))
    with pytest.raises(AuditError, match="checkpoint rejected"):
        verify_bundle(bundle_for(5), stranger)


def _replace_line(n: int, value: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        head, _, checkpoint = text.partition("\n\n")
        lines = head.split("\n")
        lines[n] = value
        return "\n".join(lines) + "\n\n" + checkpoint

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_replace_line(0, "c2sp.org/tlog-proof@v2"), "first line"),
        (_replace_line(1, "index 5"), "'extra' line"),
        (_replace_line(1, "extra !!!"), "not a Comity leaf"),
        (_replace_line(1, "extra " + base64.b64encode(b"{}").decode()), "not a Comity leaf"),
        (_replace_line(2, "index 05"), "index <decimal>"),
        (_replace_line(2, "index \uff15"), "index <decimal>"),
        (_replace_line(2, "idx 5"), "index <decimal>"),
        (_replace_line(3, "not base64!"), "proof hash 0 is not base64"),
        (_replace_line(3, base64.b64encode(b"short").decode()), "proof hash 0 is not 32 bytes"),
        (lambda text: text.replace("\n\n", "\n"), "no empty line"),
        (lambda text: text + "x" * 300_000, "at most 256 KiB"),
    ],
)
def test_a_malformed_bundle_names_what_is_wrong(edit: Callable[[str], str], message: str) -> None:
    with pytest.raises(BundleError, match=message):
        ProofBundle.parse(edit(bundle_for(5).text()))


OPENINGS = tuple(
    Opening(name=name, value="v", salt=b"\x00" * 16)
    for name in ("case_reference", "exact_time_ms", "justification", "requesting_unit")
)


@pytest.mark.parametrize(
    ("role", "released"),
    [
        ("agency", {"case_reference", "exact_time_ms", "justification", "requesting_unit"}),
        ("court", {"case_reference", "exact_time_ms", "justification", "requesting_unit"}),
        ("oversight", {"justification", "requesting_unit"}),
        ("secretariat", set()),
    ],
)
def test_each_role_gets_only_its_openings(role: str, released: set[str]) -> None:
    assert {o.name for o in released_to(role, OPENINGS)} == released


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(DisclosureError, match="unknown role 'press'"):
        released_to("press", OPENINGS)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ({"oversight"}, "oversight"),
        ({"secretariat", "central_authority"}, "secretariat"),
        ({"oversight", "secretariat"}, "oversight"),
    ],
)
def test_a_members_role_decides_what_it_may_ask_for(roles: set[str], expected: str) -> None:
    assert remote_role(roles) == expected


def test_a_member_without_an_audit_role_may_not_ask() -> None:
    with pytest.raises(NotEntitledError, match="only an oversight body or the secretariat"):
        remote_role({"central_authority", "requesting"})


@pytest.mark.parametrize(
    ("role", "reason", "order", "message"),
    [
        ("agency", " ", None, "needs a reason"),
        ("agency", "x" * 501, None, "longer than 500"),
        ("court", "trial", None, "names the order"),
        ("court", "trial", " ", "names the order"),
        ("court", "trial", "o" * 501, "order reference is longer"),
    ],
)
def test_a_release_states_why(role: str, reason: str, order: str | None, message: str) -> None:
    with pytest.raises(DisclosureError, match=message):
        check_reason(role, reason, order)
    check_reason("court", "trial", "ORD-2026-17")


def test_a_proof_hash_outside_ascii_is_refused() -> None:
    """Found by fuzzing: b64decode raises a plain ValueError for characters beyond ASCII."""
    head, _, checkpoint = bundle_for(3).text().partition("\n\n")
    with pytest.raises(BundleError, match="proof hash 0 is not base64"):
        ProofBundle.parse(head.replace("index 3\n", "index 3\n\u00e9") + "\n\n" + checkpoint)
