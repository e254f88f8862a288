# SPDX-License-Identifier: Apache-2.0
"""Write the seed corpus: ``python -m tests.fuzz.seeds`` (rewrites every ``seed-*`` file).

Seeds are small valid inputs made with the project's own builders and examples, plus a few
edge cases, so that the fuzzer starts past the parsers' first checks. Files named
``crash-*`` are inputs that once crashed a parser; they are kept, never rewritten here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from nacl.signing import SigningKey

from node.audit.leaf import OpeningName, PublicFields, build_leaf, hour_of
from node.audit.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes
from node.audit.note import Checkpoint, cosign, sign_note
from node.audit.proof import ProofBundle
from node.crypto.envelope import seal_envelope, sign_receipt
from node.federation import ceremony
from node.indicators.sets import Indicator, IndicatorSet, sign_set
from node.indicators.stix import export_bundle
from node.indicators.tlp import Tlp
from node.model.envelope import EnvelopeHeader, ReceiptBody, ReceiptStatus
from node.wire import envelope_to_bytes, receipt_to_bytes
from tests.federation.build import NOW_MS, card_with_keys
from tests.fuzz.keys import (
    EXCHANGE_ID,
    LOG_ORIGIN,
    LOG_VERIFIER,
    MESSAGE_ID,
    RECIPIENT,
    RECIPIENT_KEYS,
    SENDER,
    SENDER_KEYS,
    SET_OWNER_KEY,
    WITNESS_NAME,
)
from tests.fuzz.targets import ENVELOPE_DIGEST, TARGETS

CORPUS = Path(__file__).parent / "corpus"
EXAMPLES = Path(__file__).parents[2] / "schemas" / "examples"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
INDICATORS = (
    ("platform_account", "Chirper:@Orbit_Watch_77"),
    ("url", "https://paste.example.org/raw/p/Zx81kQ?b=2&a=1#top"),
    ("domain", "Bücher.Example.ORG."),
    ("ip", "192.0.2.0/24"),
    ("ip", "2001:db8::1"),
    ("email", "Someone@Example.org"),
    ("phone", "+372 5123 4567"),
    ("content_sha256", SHA),
    ("pdq", SHA),
    ("campaign_id", "campaign--6f1b1e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"),
)


def _envelopes() -> Iterator[tuple[str, bytes]]:
    header = EnvelopeHeader(
        message_id=MESSAGE_ID,
        exchange_id=EXCHANGE_ID,
        sequence=1,
        sender=SENDER,
        recipient=RECIPIENT,
        created_at_ms=NOW_MS,
        expires_at_ms=NOW_MS + 86_400_000,
        directory_version=1,
        payload_type="application/vnd.comity.request.preservation.v1+json",
        sender_encryption_key_id=SENDER_KEYS.encryption_key_id,
        recipient_encryption_key_id=RECIPIENT_KEYS.encryption_key_id,
    )
    sealed = seal_envelope(
        header=header,
        payload=(EXAMPLES / "preservation.example.json").read_bytes(),
        sender_keys=SENDER_KEYS,
        recipient_encryption_key=RECIPIENT_KEYS.encryption_public,
    )
    yield "valid", envelope_to_bytes(sealed)


def _receipts() -> Iterator[tuple[str, bytes]]:
    body = ReceiptBody(
        message_id=MESSAGE_ID,
        exchange_id=EXCHANGE_ID,
        receiver=RECIPIENT,
        sender=SENDER,
        envelope_digest=ENVELOPE_DIGEST,
        status=ReceiptStatus.REGISTERED,
        received_at_ms=NOW_MS,
        audit_leaf_index=7,
    )
    yield "valid", receipt_to_bytes(sign_receipt(body, keys=RECIPIENT_KEYS))


def _forms() -> Iterator[tuple[str, bytes]]:
    for path in sorted(EXAMPLES.glob("*.example.json")):
        name = path.name.removesuffix(".example.json")
        yield name, name.encode() + b"\n" + path.read_bytes()
    yield "withdrawal", b'withdrawal\n{"form_version":"withdrawal.v1","reason":"solved"}'
    yield "not-json", b"preservation\n{"


def _indicators() -> Iterator[tuple[str, bytes]]:
    for n, (kind, value) in enumerate(INDICATORS):
        yield f"{n:02}-{kind}", f"{kind}\n{value}".encode()


def _directories() -> Iterator[tuple[str, bytes]]:
    roots = [SigningKey(hashlib.sha256(b"root %d" % n).digest()) for n in range(2)]
    cards = [card_with_keys(SENDER, SENDER_KEYS), card_with_keys(RECIPIENT, RECIPIENT_KEYS, "PT")]
    document = ceremony.signed_directory(cards, root_keys=roots, threshold=2, now_ms=NOW_MS)
    yield "valid", document.to_json()


def _member_cards() -> Iterator[tuple[str, bytes]]:
    from node.members import member_card
    from node.tls import generate_tls_identity

    certificate, _ = generate_tls_identity(SENDER)
    text = member_card(
        agency_id=SENDER,
        country="EE",
        roles=["central_authority"],
        endpoint="127.0.0.1:7401",
        keys=SENDER_KEYS,
        tls_certificate=certificate,
    )
    yield "valid", text.encode()


def _a_set(tlp: Tlp) -> IndicatorSet:
    kinds = [(k, v) for k, v in INDICATORS if k != "pdq" or tlp in (Tlp.AMBER_STRICT, Tlp.RED)]
    return IndicatorSet(
        set_id="5d0c1f1e-0f1e-4b7a-9c3d-2e1f0a9b8c7d",
        owner=SENDER,
        version=2,
        tlp=tlp,
        recipients=(RECIPIENT,),
        clients={RECIPIENT: ("cc-authority",)} if tlp is Tlp.AMBER else {},
        indicators=tuple(Indicator.of(k, v, confidence=80, first_seen_ms=1) for k, v in kinds),
        created_ms=NOW_MS,
    )


def _stix() -> Iterator[tuple[str, bytes]]:
    for n, tlp in enumerate((Tlp.AMBER_STRICT, Tlp.CLEAR)):
        yield (
            tlp.name.lower(),
            bytes([list(Tlp).index(tlp) + 5 * n]) + export_bundle(_a_set(tlp)).encode(),
        )


def _indicator_sets() -> Iterator[tuple[str, bytes]]:
    for tlp in (Tlp.AMBER, Tlp.RED):
        document = _a_set(tlp).to_bytes()
        yield tlp.name.lower(), sign_set(document, SET_OWNER_KEY) + document


def _bundle() -> ProofBundle:
    public = PublicFields(
        event="request.received",
        request_type="preservation",
        legal_basis="budapest-art29",
        sender=SENDER,
        recipient=RECIPIENT,
        exchange_id=EXCHANGE_ID,
        hour=hour_of(NOW_MS),
    )
    leaves = [
        build_leaf(public, {OpeningName.CASE_REFERENCE: f"EE-CYB-2026-{n:04}"})[0].to_bytes()
        for n in range(5)
    ]
    leaf, openings = build_leaf(public, {OpeningName.CASE_REFERENCE: "EE-CYB-2026-0417"})
    leaves.append(leaf.to_bytes())
    hashes = [leaf_hash(x) for x in leaves]
    root = root_from_leaf_hashes(hashes)
    checkpoint = Checkpoint(origin=LOG_ORIGIN, size=len(leaves), root=root).text()
    note = sign_note(checkpoint, name=LOG_ORIGIN, key=RECIPIENT_KEYS.checkpoint)
    note = cosign(note, name=WITNESS_NAME, key=SENDER_KEYS.witness, timestamp=NOW_MS // 1000)
    index = len(leaves) - 1
    path = inclusion_proof(index, len(leaves), lambda a, b: root_from_leaf_hashes(hashes[a:b]))
    return ProofBundle(
        index=index, leaf=leaves[index], openings=openings, proof=tuple(path), checkpoint=note
    )


def _notes() -> Iterator[tuple[str, bytes]]:
    bundle = _bundle()
    yield "cosigned-checkpoint", bundle.checkpoint.encode()
    yield "verifier", LOG_VERIFIER.text().encode()


def _proofs() -> Iterator[tuple[str, bytes]]:
    yield "cosigned", _bundle().text().encode()


SEEDS = {
    "envelope": _envelopes,
    "receipt": _receipts,
    "form": _forms,
    "indicator": _indicators,
    "directory": _directories,
    "member_card": _member_cards,
    "stix": _stix,
    "indicator_set": _indicator_sets,
    "note": _notes,
    "proof": _proofs,
}


def main() -> None:
    assert set(SEEDS) == set(TARGETS)
    for target, seeds in SEEDS.items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("seed-*"):
            old.unlink()
        for name, data in seeds():
            (directory / f"seed-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
