# SPDX-License-Identifier: Apache-2.0
"""Envelopes and receipts as domain values (wire format: proto/comity/v1/envelope.proto)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from node.ids import AgencyId, ExchangeId, KeyId, MessageId

PROTOCOL_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class SignatureEntry:
    key_id: KeyId
    signature: bytes


@dataclass(frozen=True, kw_only=True)
class EnvelopeHeader:
    """Every routing field of an envelope; all of them are covered by the signature."""

    protocol_version: int = PROTOCOL_VERSION
    message_id: MessageId
    exchange_id: ExchangeId
    sequence: int
    sender: AgencyId
    recipient: AgencyId
    created_at_ms: int
    expires_at_ms: int
    directory_version: int
    payload_type: str
    sender_encryption_key_id: KeyId
    recipient_encryption_key_id: KeyId


@dataclass(frozen=True, kw_only=True)
class SealedEnvelope:
    """An envelope as it travels: header, sealed payload, signatures."""

    header: EnvelopeHeader
    sealed_payload: bytes
    signatures: tuple[SignatureEntry, ...]


@dataclass(frozen=True, kw_only=True)
class OpenedEnvelope:
    """An envelope whose signatures verified and whose payload opened."""

    header: EnvelopeHeader
    payload: bytes
    digest: bytes
    """SHA-256 over the envelope's signed bytes: what receipts acknowledge."""


class ReceiptStatus(IntEnum):
    REGISTERED = 1


@dataclass(frozen=True, kw_only=True)
class ReceiptBody:
    """The signed content of a receipt."""

    protocol_version: int = PROTOCOL_VERSION
    message_id: MessageId
    exchange_id: ExchangeId
    receiver: AgencyId
    sender: AgencyId
    envelope_digest: bytes
    status: ReceiptStatus
    received_at_ms: int
    audit_leaf_index: int
    """Where the receiver's audit log records this envelope (its "request.received" leaf)."""


@dataclass(frozen=True, kw_only=True)
class SignedReceipt:
    body: ReceiptBody
    signatures: tuple[SignatureEntry, ...]
