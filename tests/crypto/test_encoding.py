# SPDX-License-Identifier: Apache-2.0
"""The signed-bytes encoding, checked against proto/README.md byte for byte."""

from __future__ import annotations

import struct
from dataclasses import fields, replace

import pytest

from node.crypto.encoding import envelope_signed_bytes, receipt_signed_bytes
from node.ids import AgencyId, ExchangeId, KeyId, MessageId
from node.model.envelope import EnvelopeHeader, ReceiptBody, ReceiptStatus

HEADER = EnvelopeHeader(
    message_id=MessageId("11111111-1111-4111-8111-111111111111"),
    exchange_id=ExchangeId("22222222-2222-4222-8222-222222222222"),
    sequence=3,
    sender=AgencyId("aa-unit"),
    recipient=AgencyId("bb-authority"),
    created_at_ms=1_790_000_000_000,
    expires_at_ms=1_790_086_400_000,
    directory_version=7,
    payload_type="application/x",
    sender_encryption_key_id=KeyId("a" * 32),
    recipient_encryption_key_id=KeyId("b" * 32),
)


def field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def test_envelope_encoding_matches_the_protocol_document() -> None:
    expected = b"".join(
        field(part)
        for part in (
            b"comity/v1/envelope",
            (1).to_bytes(8, "big"),
            b"11111111-1111-4111-8111-111111111111",
            b"22222222-2222-4222-8222-222222222222",
            (3).to_bytes(8, "big"),
            b"aa-unit",
            b"bb-authority",
            struct.pack(">q", 1_790_000_000_000),
            struct.pack(">q", 1_790_086_400_000),
            (7).to_bytes(8, "big"),
            b"application/x",
            b"a" * 32,
            b"b" * 32,
            b"PAYLOAD",
        )
    )
    assert envelope_signed_bytes(HEADER, b"PAYLOAD") == expected


@pytest.mark.parametrize("name", [f.name for f in fields(EnvelopeHeader)])
def test_every_header_field_is_covered(name: str) -> None:
    value = getattr(HEADER, name)
    changed = (
        value + 1 if isinstance(value, int) else value[:-1] + ("c" if value[-1] != "c" else "d")
    )
    other = replace(HEADER, **{name: changed})  # type: ignore[arg-type]
    assert envelope_signed_bytes(other, b"P") != envelope_signed_bytes(HEADER, b"P")


def test_moving_bytes_between_fields_changes_the_encoding() -> None:
    """Length prefixes make the encoding unambiguous: 'ab'+'c' differs from 'a'+'bc'."""
    one = replace(HEADER, payload_type="application/xy")
    two = replace(HEADER, payload_type="application/x")
    assert envelope_signed_bytes(one, b"") != envelope_signed_bytes(two, b"y")


def test_receipt_encoding_matches_the_protocol_document() -> None:
    body = ReceiptBody(
        message_id=HEADER.message_id,
        exchange_id=HEADER.exchange_id,
        receiver=AgencyId("bb-authority"),
        sender=AgencyId("aa-unit"),
        envelope_digest=bytes(range(32)),
        status=ReceiptStatus.REGISTERED,
        received_at_ms=-1,
        audit_leaf_index=41,
    )
    expected = b"".join(
        field(part)
        for part in (
            b"comity/v1/receipt",
            (1).to_bytes(8, "big"),
            b"11111111-1111-4111-8111-111111111111",
            b"22222222-2222-4222-8222-222222222222",
            b"bb-authority",
            b"aa-unit",
            bytes(range(32)),
            (1).to_bytes(8, "big"),
            b"\xff" * 8,
            (41).to_bytes(8, "big"),
        )
    )
    assert receipt_signed_bytes(body) == expected
