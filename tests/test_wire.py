# SPDX-License-Identifier: Apache-2.0
"""Strict protobuf conversion, and: no single bit flip or truncation of an envelope is accepted."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from node import wire
from node.crypto.envelope import open_envelope, sign_receipt
from node.errors import ComityError, MalformedError, SignatureError
from node.gen.comity.v1 import envelope_pb2
from node.model.envelope import ReceiptBody, ReceiptStatus, SealedEnvelope
from tests.crypto.helpers import Pair, make_pair

PAIR = make_pair()
# About 2 KiB on the wire, as in the reliability reference's exhaustive check.
PAYLOAD = b'{"summary_of_facts":"' + b"x" * 1750 + b'"}'
ENVELOPE = PAIR.seal(PAYLOAD)
WIRE = wire.envelope_to_bytes(ENVELOPE)


def accept(data: bytes, pair: Pair = PAIR) -> bytes:
    """The receiver's parse-and-open path: what it would act on."""
    return open_envelope(
        wire.envelope_from_bytes(data),
        recipient_keys=pair.recipient,
        sender_signing_keys=pair.sender_signing_keys,  # type: ignore[arg-type]
        sender_encryption_key=pair.sender.encryption_public,
    ).payload


def test_the_unmodified_envelope_is_accepted() -> None:
    assert 1900 <= len(WIRE) <= 2300
    assert accept(WIRE) == PAYLOAD


def test_every_single_bit_flip_is_refused() -> None:
    accepted = []
    for bit in range(len(WIRE) * 8):
        mutated = bytearray(WIRE)
        mutated[bit // 8] ^= 1 << (bit % 8)
        try:
            accept(bytes(mutated))
        except ComityError:
            continue
        accepted.append(bit)
    assert accepted == []


def test_every_truncation_is_refused() -> None:
    for length in range(len(WIRE)):
        with pytest.raises(ComityError):
            accept(WIRE[:length])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=8))
def test_random_byte_changes_are_refused(changes: list[tuple[int, int]]) -> None:
    mutated = bytearray(WIRE)
    for position, mask in changes:
        mutated[position % len(mutated)] ^= mask
    assume(bytes(mutated) != WIRE)  # two changes of one byte can cancel out
    with pytest.raises(ComityError):
        accept(bytes(mutated))


def test_envelope_round_trip() -> None:
    assert wire.envelope_from_bytes(WIRE) == ENVELOPE


def proto(**changes: object) -> envelope_pb2.Envelope:
    message = wire.envelope_to_proto(ENVELOPE)
    for name, value in changes.items():
        if name == "signatures":
            del message.signatures[:]
            message.signatures.extend(value)  # type: ignore[arg-type]
        else:
            setattr(message, name, value)
    return message


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"protocol_version": 2}, "protocol_version"),
        ({"message_id": "not-a-uuid"}, "message_id"),
        ({"message_id": "11111111-1111-1111-8111-111111111111"}, "UUIDv4"),
        ({"exchange_id": ""}, "exchange_id"),
        ({"sequence": 0}, "sequence"),
        ({"sender": "Bad Agency"}, "sender"),
        ({"recipient": ""}, "recipient"),
        ({"created_at_ms": 0}, "created_at_ms"),
        ({"payload_type": ""}, "payload_type"),
        ({"payload_type": "a b"}, "payload_type"),
        ({"sender_encryption_key_id": "XYZ"}, "sender_encryption_key_id"),
        ({"sealed_payload": b"short"}, "sealed_payload"),
        ({"sealed_payload": bytes(wire.MAX_PAYLOAD_BYTES + 41)}, "sealed_payload"),
        (
            {"signatures": [envelope_pb2.Signature(key_id="a" * 32, signature=bytes(64))] * 2},
            "key id twice",
        ),
        ({"directory_version": 0}, "directory_version"),
        ({"signatures": [envelope_pb2.Signature(key_id="a" * 32, signature=b"x")]}, "64 bytes"),
    ],
)
def test_malformed_fields_are_named(changes: dict[str, object], named: str) -> None:
    with pytest.raises(MalformedError, match=named):
        wire.envelope_from_proto(proto(**changes))


def test_an_unsigned_envelope_parses_and_is_refused_as_unauthenticated() -> None:
    unsigned = wire.envelope_to_bytes(replace(ENVELOPE, signatures=()))
    with pytest.raises(SignatureError, match="no signature"):
        accept(unsigned)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"sequence": 2**63}, "sequence"),  # issue 13 point 10
        ({"directory_version": 2**64 - 1}, "directory_version"),
        ({"expires_at_ms": 2**63 - 1}, "expires_at_ms"),
        ({"created_at_ms": wire.MAX_INSTANT_MS + 1}, "created_at_ms"),
    ],
)
def test_integers_beyond_a_database_column_or_a_clock_are_refused(
    changes: dict[str, object], named: str
) -> None:
    """Found by fuzzing (tests/fuzz/corpus/envelope/crash-*): they parsed, then overflowed."""
    with pytest.raises(MalformedError, match=named):
        wire.envelope_from_proto(proto(**changes))


def test_the_largest_bounded_values_are_accepted() -> None:
    largest = proto(
        sequence=wire.MAX_COUNTER,
        directory_version=wire.MAX_COUNTER,
        expires_at_ms=wire.MAX_INSTANT_MS,
    )
    assert wire.envelope_from_proto(largest).header.sequence == wire.MAX_COUNTER


def test_unknown_fields_are_refused() -> None:
    data = WIRE + b"\xa0\x06\x01"  # field 100, varint 1
    with pytest.raises(MalformedError, match="unknown"):
        wire.envelope_from_bytes(data)


def test_receipt_round_trip_and_refusals() -> None:
    header = ENVELOPE.header
    receipt = sign_receipt(
        ReceiptBody(
            message_id=header.message_id,
            exchange_id=header.exchange_id,
            receiver=header.recipient,
            sender=header.sender,
            envelope_digest=bytes(32),
            status=ReceiptStatus.REGISTERED,
            received_at_ms=1,
            audit_leaf_index=0,
        ),
        keys=PAIR.recipient,
    )
    data = wire.receipt_to_bytes(receipt)
    assert wire.receipt_from_bytes(data) == receipt
    short = wire.receipt_to_proto(
        replace(receipt, body=replace(receipt.body, envelope_digest=b"1"))
    )
    with pytest.raises(MalformedError, match="envelope_digest"):
        wire.receipt_from_proto(short)
    unknown_status = wire.receipt_to_proto(receipt)
    unknown_status.status = 9  # type: ignore[assignment]
    with pytest.raises(MalformedError, match="status"):
        wire.receipt_from_proto(unknown_status)
    with pytest.raises(MalformedError, match="not a valid protobuf"):
        wire.receipt_from_bytes(b"\xff\xff\xff")
    # issue 13 point 10, and tests/fuzz/corpus/receipt/crash-*: the sender's delivery task
    # added a deadline to this and overflowed its 64-bit column.
    far = wire.receipt_to_proto(receipt)
    far.received_at_ms = 2**63 - 1
    with pytest.raises(MalformedError, match="received_at_ms"):
        wire.receipt_from_proto(far)
    far = wire.receipt_to_proto(receipt)
    far.audit_leaf_index = 2**63
    with pytest.raises(MalformedError, match="audit_leaf_index"):
        wire.receipt_from_proto(far)


def test_sealed_envelope_type_is_what_the_wire_carries() -> None:
    assert isinstance(wire.envelope_from_bytes(WIRE), SealedEnvelope)
