# SPDX-License-Identifier: Apache-2.0
"""Sealing and opening envelopes; signing and verifying receipts; every refusal path."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node.crypto.encoding import envelope_digest
from node.crypto.envelope import open_envelope, sign_receipt, verify_receipt
from node.crypto.keys import AgencyKeys
from node.errors import ReceiptError, SealError, SignatureError, UnknownKeyError
from node.ids import AgencyId
from node.model.envelope import ReceiptBody, ReceiptStatus, SealedEnvelope, SignatureEntry
from tests.crypto.helpers import Pair, make_pair

PAYLOAD = b'{"form_version":"preservation.v1"}'


@pytest.fixture
def pair() -> Pair:
    return make_pair()


def open_(pair: Pair, sealed: SealedEnvelope) -> bytes:
    return open_envelope(
        sealed,
        recipient_keys=pair.recipient,
        sender_signing_keys=pair.sender_signing_keys,  # type: ignore[arg-type]
        sender_encryption_key=pair.sender.encryption_public,
    ).payload


def test_round_trip_returns_payload_and_digest(pair: Pair) -> None:
    sealed = pair.seal(PAYLOAD)
    assert PAYLOAD not in sealed.sealed_payload
    opened = open_envelope(
        sealed,
        recipient_keys=pair.recipient,
        sender_signing_keys=pair.sender_signing_keys,  # type: ignore[arg-type]
        sender_encryption_key=pair.sender.encryption_public,
    )
    assert opened.payload == PAYLOAD
    assert opened.digest == envelope_digest(sealed.header, PAYLOAD)


def test_nonces_are_fresh(pair: Pair) -> None:
    assert pair.seal(PAYLOAD).sealed_payload[:24] != pair.seal(PAYLOAD).sealed_payload[:24]


def test_other_recipient_cannot_open(pair: Pair) -> None:
    intruder = Pair(sender=pair.sender, recipient=AgencyKeys.generate())
    sealed = pair.seal(PAYLOAD)
    forged = replace(
        sealed,
        header=replace(
            sealed.header, recipient_encryption_key_id=intruder.recipient.encryption_key_id
        ),
    )
    with pytest.raises(SealError):
        open_(intruder, forged)


def test_recipient_key_id_mismatch_is_unknown_key(pair: Pair) -> None:
    other = Pair(sender=pair.sender, recipient=AgencyKeys.generate())
    with pytest.raises(UnknownKeyError, match="recipient_encryption_key_id"):
        open_(other, pair.seal(PAYLOAD))


def test_sender_encryption_key_mismatch_is_unknown_key(pair: Pair) -> None:
    sealed = pair.seal(PAYLOAD)
    with pytest.raises(UnknownKeyError, match="sender_encryption_key_id"):
        open_envelope(
            sealed,
            recipient_keys=pair.recipient,
            sender_signing_keys=pair.sender_signing_keys,  # type: ignore[arg-type]
            sender_encryption_key=AgencyKeys.generate().encryption_public,
        )


def test_tampered_ciphertext_does_not_open(pair: Pair) -> None:
    sealed = pair.seal(PAYLOAD)
    data = bytearray(sealed.sealed_payload)
    data[-1] ^= 0x01
    with pytest.raises(SealError):
        open_(pair, replace(sealed, sealed_payload=bytes(data)))


def test_changed_routing_field_breaks_the_signature(pair: Pair) -> None:
    sealed = pair.seal(PAYLOAD)
    moved = replace(sealed, header=replace(sealed.header, expires_at_ms=2_000_000_000_000))
    with pytest.raises(SignatureError):
        open_(pair, moved)


def test_signature_by_unlisted_key_is_unknown_key(pair: Pair) -> None:
    impostor = Pair(sender=AgencyKeys.generate(), recipient=pair.recipient)
    sealed = pair.seal(PAYLOAD)
    resigned = impostor.sender.signing.sign(b"x").signature
    forged = replace(
        sealed,
        signatures=(SignatureEntry(key_id=impostor.sender.signing_key_id, signature=resigned),),
    )
    with pytest.raises(UnknownKeyError):
        open_(pair, forged)


def test_envelope_without_signature_is_refused(pair: Pair) -> None:
    with pytest.raises(SignatureError, match="no signature"):
        open_(pair, replace(pair.seal(PAYLOAD), signatures=()))


def test_every_signature_must_verify(pair: Pair) -> None:
    sealed = pair.seal(PAYLOAD)
    good = sealed.signatures[0]
    bad = replace(good, signature=bytes(64))
    with pytest.raises(SignatureError):
        open_(pair, replace(sealed, signatures=(good, bad)))


def test_one_signature_listed_twice_is_refused(pair: Pair) -> None:
    sealed = pair.seal(PAYLOAD)
    with pytest.raises(SignatureError, match="more than one signature"):
        open_(pair, replace(sealed, signatures=sealed.signatures * 2))


def test_seal_refuses_a_header_naming_other_keys(pair: Pair) -> None:
    with pytest.raises(ValueError, match="recipient"):
        pair.seal(PAYLOAD, recipient_encryption_key_id=AgencyKeys.generate().encryption_key_id)


def receipt_body(pair: Pair, digest: bytes) -> ReceiptBody:
    header = pair.header()
    return ReceiptBody(
        message_id=header.message_id,
        exchange_id=header.exchange_id,
        receiver=header.recipient,
        sender=header.sender,
        envelope_digest=digest,
        status=ReceiptStatus.REGISTERED,
        received_at_ms=1_790_000_001_000,
        audit_leaf_index=7,
    )


def check(pair: Pair, body: ReceiptBody, receipt_body_: ReceiptBody, **changes: object) -> None:
    receipt = sign_receipt(receipt_body_, keys=pair.recipient)
    expected: dict[str, object] = {
        "message_id": body.message_id,
        "exchange_id": body.exchange_id,
        "sender": body.sender,
        "receiver": body.receiver,
        "envelope_digest": body.envelope_digest,
    }
    expected.update(changes)
    verify_receipt(
        receipt,
        receiver_signing_keys={pair.recipient.signing_key_id: pair.recipient.signing_public},
        **expected,  # type: ignore[arg-type]
    )


def test_receipt_round_trip(pair: Pair) -> None:
    body = receipt_body(pair, bytes(range(32)))
    check(pair, body, body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_id", "00000000-0000-4000-8000-000000000000"),
        ("exchange_id", "00000000-0000-4000-8000-000000000000"),
        ("sender", AgencyId("zz-other")),
        ("receiver", AgencyId("zz-other")),
        ("envelope_digest", bytes(32)),
    ],
)
def test_receipt_for_something_else_is_refused(pair: Pair, field: str, value: object) -> None:
    body = receipt_body(pair, bytes(range(32)))
    with pytest.raises(ReceiptError, match=field):
        check(pair, body, body, **{field: value})


def test_receipt_signed_by_another_key_is_refused(pair: Pair) -> None:
    body = receipt_body(pair, bytes(range(32)))
    receipt = sign_receipt(body, keys=AgencyKeys.generate())
    with pytest.raises(ReceiptError, match="not listed"):
        verify_receipt(
            receipt,
            receiver_signing_keys={pair.recipient.signing_key_id: pair.recipient.signing_public},
            message_id=body.message_id,
            exchange_id=body.exchange_id,
            sender=body.sender,
            receiver=body.receiver,
            envelope_digest=body.envelope_digest,
        )


def test_altered_receipt_is_refused(pair: Pair) -> None:
    body = receipt_body(pair, bytes(range(32)))
    receipt = sign_receipt(body, keys=pair.recipient)
    altered = replace(receipt, body=replace(body, received_at_ms=1))
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(
            altered,
            receiver_signing_keys={pair.recipient.signing_key_id: pair.recipient.signing_public},
            message_id=body.message_id,
            exchange_id=body.exchange_id,
            sender=body.sender,
            receiver=body.receiver,
            envelope_digest=body.envelope_digest,
        )
