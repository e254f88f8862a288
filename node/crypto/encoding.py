# SPDX-License-Identifier: Apache-2.0
"""The bytes that get signed (proto/README.md, "The encoding that is signed").

Every field, integers included, is an 8-byte big-endian length followed by its bytes, so no
two different field lists encode to the same bytes. Signatures never cover a protobuf
serialisation, which is not canonical across implementations.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

from node.model.envelope import EnvelopeHeader, ReceiptBody

ENVELOPE_DOMAIN = b"comity/v1/envelope"
RECEIPT_DOMAIN = b"comity/v1/receipt"


def _u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def _i64(value: int) -> bytes:
    return struct.pack(">q", value)


def _utf8(value: str) -> bytes:
    return value.encode("utf-8")


def encode_fields(fields: Iterable[bytes]) -> bytes:
    return b"".join(_u64(len(field)) + field for field in fields)


def envelope_signed_bytes(header: EnvelopeHeader, payload: bytes) -> bytes:
    return encode_fields(
        (
            ENVELOPE_DOMAIN,
            _u64(header.protocol_version),
            _utf8(header.message_id),
            _utf8(header.exchange_id),
            _u64(header.sequence),
            _utf8(header.sender),
            _utf8(header.recipient),
            _i64(header.created_at_ms),
            _i64(header.expires_at_ms),
            _u64(header.directory_version),
            _utf8(header.payload_type),
            _utf8(header.sender_encryption_key_id),
            _utf8(header.recipient_encryption_key_id),
            payload,
        )
    )


def envelope_digest(header: EnvelopeHeader, payload: bytes) -> bytes:
    """SHA-256 over the envelope's signed bytes: what a receipt acknowledges."""
    return hashlib.sha256(envelope_signed_bytes(header, payload)).digest()


def receipt_signed_bytes(body: ReceiptBody) -> bytes:
    return encode_fields(
        (
            RECEIPT_DOMAIN,
            _u64(body.protocol_version),
            _utf8(body.message_id),
            _utf8(body.exchange_id),
            _utf8(body.receiver),
            _utf8(body.sender),
            body.envelope_digest,
            _u64(int(body.status)),
            _i64(body.received_at_ms),
            _u64(body.audit_leaf_index),
        )
    )
