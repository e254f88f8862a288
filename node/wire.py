# SPDX-License-Identifier: Apache-2.0
"""Converts the messages that carry signed data: envelopes, receipts and indicator entries.

These are converted here, apart from any one service, because their bytes are signed, stored
and checked by several layers. Inbound conversion is strict (steps 1-2 of the receive table
in proto/README.md): unknown fields, wrong protocol versions, malformed ids and out-of-range
sizes are refused with a MalformedError naming the field, before any cryptography runs.

Every other message is converted beside the code that sends or answers it, in
``node/transport``: a service's request and answer messages in its servicer module
(``*_servicer.py``, with the ``*_from_proto`` a client needs next to the ``*_to_proto``), the
Local service's views in ``local_servicer.py`` and ``local_*.py`` (one module per group of
commands), and outgoing call messages in ``peer_client.py``. Outside ``node/transport`` and
this module only ``node/cli`` handles generated messages; services store envelopes and
receipts through the ``*_to_bytes`` and ``*_from_bytes`` functions here, which take and give
domain types.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from node.errors import MalformedError
from node.gen.comity.v1 import envelope_pb2, local_pb2
from node.ids import (
    parse_agency_id,
    parse_exchange_id,
    parse_key_id,
    parse_message_id,
)
from node.indicators.sets import Indicator
from node.model.envelope import (
    PROTOCOL_VERSION,
    EnvelopeHeader,
    ReceiptBody,
    ReceiptStatus,
    SealedEnvelope,
    SignatureEntry,
    SignedReceipt,
)

MAX_PAYLOAD_BYTES = 1 << 20
SEAL_OVERHEAD_BYTES = 40  # 24-byte nonce + 16-byte Poly1305 tag
MAX_SIGNATURES = 8
SIGNATURE_BYTES = 64
DIGEST_BYTES = 32
MAX_PAYLOAD_TYPE_CHARS = 128
MAX_COUNTER = (1 << 63) - 1
"""Sequences, directory versions and leaf indexes are stored in signed 64-bit columns."""
MAX_INSTANT_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last instant a ``datetime`` (and so the CLI) can show;
far enough below 2^63 that adding a deadline to it cannot overflow a 64-bit column."""


def refuse_unknown_fields(message: Message, *, what: str) -> None:
    """Refuse fields this version does not know: they could change a message's meaning.

    Raises:
        MalformedError: ``message`` carries unknown fields.
    """
    if len(UnknownFieldSet(message)):
        raise MalformedError(f"{what} carries fields unknown to protocol version 1")


def _signatures(
    entries: Iterable[envelope_pb2.Signature], *, what: str, least: int = 1
) -> tuple[SignatureEntry, ...]:
    """The signature entries, each key id once.

    ``least`` is 0 for envelopes: an unsigned envelope is well formed on the wire and
    refused as unauthenticated when its signatures are checked (step 13).
    """
    result = []
    for entry in entries:
        refuse_unknown_fields(entry, what=f"{what}.signatures")
        if len(entry.signature) != SIGNATURE_BYTES:
            raise MalformedError(f"{what}.signatures: a signature must be {SIGNATURE_BYTES} bytes")
        result.append(
            SignatureEntry(
                key_id=parse_key_id(entry.key_id, field=f"{what}.signatures.key_id"),
                signature=bytes(entry.signature),
            )
        )
    if not least <= len(result) <= MAX_SIGNATURES:
        raise MalformedError(f"{what} must carry {least} to {MAX_SIGNATURES} signatures")
    if len({entry.key_id for entry in result}) != len(result):
        # One key's signature listed twice would count twice wherever signatures are counted.
        raise MalformedError(f"{what}.signatures lists a key id twice")
    return tuple(result)


def _check_version(version: int, *, what: str) -> None:
    if version != PROTOCOL_VERSION:
        raise MalformedError(f"{what}.protocol_version must be {PROTOCOL_VERSION}, got {version}")


def _payload_type(value: str) -> str:
    if not value or len(value) > MAX_PAYLOAD_TYPE_CHARS or not value.isascii():
        raise MalformedError("payload_type must be 1-128 ASCII characters")
    if not value.isprintable() or " " in value:
        raise MalformedError("payload_type must be printable and without spaces")
    return value


def envelope_from_proto(msg: envelope_pb2.Envelope) -> SealedEnvelope:
    """Turn a wire envelope into a domain value, refusing anything malformed.

    Raises:
        MalformedError: the field that breaks the wire format's rules.
    """
    refuse_unknown_fields(msg, what="envelope")
    _check_version(msg.protocol_version, what="envelope")
    if not 1 <= msg.sequence <= MAX_COUNTER:
        raise MalformedError(f"envelope.sequence must be from 1 to {MAX_COUNTER}")
    if not 1 <= msg.directory_version <= MAX_COUNTER:
        raise MalformedError(f"envelope.directory_version must be from 1 to {MAX_COUNTER}")
    for name in ("created_at_ms", "expires_at_ms"):
        if not 0 < getattr(msg, name) <= MAX_INSTANT_MS:
            raise MalformedError(f"envelope.{name} must be from 1 to {MAX_INSTANT_MS}")
    size = len(msg.sealed_payload)
    if not SEAL_OVERHEAD_BYTES < size <= MAX_PAYLOAD_BYTES + SEAL_OVERHEAD_BYTES:
        raise MalformedError("envelope.sealed_payload size is out of range (payload max 1 MiB)")
    header = EnvelopeHeader(
        message_id=parse_message_id(msg.message_id),
        exchange_id=parse_exchange_id(msg.exchange_id),
        sequence=msg.sequence,
        sender=parse_agency_id(msg.sender, field="envelope.sender"),
        recipient=parse_agency_id(msg.recipient, field="envelope.recipient"),
        created_at_ms=msg.created_at_ms,
        expires_at_ms=msg.expires_at_ms,
        directory_version=msg.directory_version,
        payload_type=_payload_type(msg.payload_type),
        sender_encryption_key_id=parse_key_id(
            msg.sender_encryption_key_id, field="envelope.sender_encryption_key_id"
        ),
        recipient_encryption_key_id=parse_key_id(
            msg.recipient_encryption_key_id, field="envelope.recipient_encryption_key_id"
        ),
    )
    return SealedEnvelope(
        header=header,
        sealed_payload=bytes(msg.sealed_payload),
        signatures=_signatures(msg.signatures, what="envelope", least=0),
    )


def envelope_to_proto(env: SealedEnvelope) -> envelope_pb2.Envelope:
    h = env.header
    return envelope_pb2.Envelope(
        protocol_version=h.protocol_version,
        message_id=h.message_id,
        exchange_id=h.exchange_id,
        sequence=h.sequence,
        sender=h.sender,
        recipient=h.recipient,
        created_at_ms=h.created_at_ms,
        expires_at_ms=h.expires_at_ms,
        directory_version=h.directory_version,
        payload_type=h.payload_type,
        sender_encryption_key_id=h.sender_encryption_key_id,
        recipient_encryption_key_id=h.recipient_encryption_key_id,
        sealed_payload=env.sealed_payload,
        signatures=[_signature_to_proto(s) for s in env.signatures],
    )


def _signature_to_proto(entry: SignatureEntry) -> envelope_pb2.Signature:
    return envelope_pb2.Signature(key_id=entry.key_id, signature=entry.signature)


def _parse(message: Message, data: bytes, *, what: str) -> None:
    try:
        message.ParseFromString(data)
    except DecodeError as e:
        raise MalformedError(f"{what} is not a valid protobuf message") from e


def envelope_from_bytes(data: bytes) -> SealedEnvelope:
    """Parse and check a serialised envelope.

    Raises:
        MalformedError: not protobuf, or a field breaks the wire format's rules.
    """
    msg = envelope_pb2.Envelope()
    _parse(msg, data, what="envelope")
    return envelope_from_proto(msg)


def envelope_to_bytes(env: SealedEnvelope) -> bytes:
    return envelope_to_proto(env).SerializeToString()


def receipt_from_proto(msg: envelope_pb2.Receipt) -> SignedReceipt:
    """Turn a wire receipt into a domain value, refusing anything malformed.

    Raises:
        MalformedError: the field that breaks the wire format's rules.
    """
    refuse_unknown_fields(msg, what="receipt")
    _check_version(msg.protocol_version, what="receipt")
    if len(msg.envelope_digest) != DIGEST_BYTES:
        raise MalformedError(f"receipt.envelope_digest must be {DIGEST_BYTES} bytes")
    if not 0 <= msg.received_at_ms <= MAX_INSTANT_MS:
        raise MalformedError(f"receipt.received_at_ms must be from 0 to {MAX_INSTANT_MS}")
    if msg.audit_leaf_index > MAX_COUNTER:
        raise MalformedError(f"receipt.audit_leaf_index must be at most {MAX_COUNTER}")
    try:
        status = ReceiptStatus(msg.status)
    except ValueError as e:
        raise MalformedError("receipt.status is not a known status") from e
    body = ReceiptBody(
        message_id=parse_message_id(msg.message_id),
        exchange_id=parse_exchange_id(msg.exchange_id),
        receiver=parse_agency_id(msg.receiver, field="receipt.receiver"),
        sender=parse_agency_id(msg.sender, field="receipt.sender"),
        envelope_digest=bytes(msg.envelope_digest),
        status=status,
        received_at_ms=msg.received_at_ms,
        audit_leaf_index=msg.audit_leaf_index,
    )
    return SignedReceipt(body=body, signatures=_signatures(msg.signatures, what="receipt"))


def receipt_to_proto(receipt: SignedReceipt) -> envelope_pb2.Receipt:
    b = receipt.body
    return envelope_pb2.Receipt(
        protocol_version=b.protocol_version,
        message_id=b.message_id,
        exchange_id=b.exchange_id,
        receiver=b.receiver,
        sender=b.sender,
        envelope_digest=b.envelope_digest,
        status=int(b.status),  # type: ignore[arg-type]
        received_at_ms=b.received_at_ms,
        audit_leaf_index=b.audit_leaf_index,
        signatures=[_signature_to_proto(s) for s in receipt.signatures],
    )


def receipt_to_bytes(receipt: SignedReceipt) -> bytes:
    return receipt_to_proto(receipt).SerializeToString()


def receipt_from_bytes(data: bytes) -> SignedReceipt:
    """Parse a stored receipt.

    Raises:
        MalformedError: the bytes are not a well-formed receipt.
    """
    msg = envelope_pb2.Receipt()
    _parse(msg, data, what="receipt")
    return receipt_from_proto(msg)


_INDICATOR_TIMES = ("first_seen_ms", "last_seen_ms", "expires_ms")


def indicator_to_proto(indicator: Indicator) -> local_pb2.IndicatorEntry:
    entry = local_pb2.IndicatorEntry(
        type=indicator.type, value=indicator.value, confidence=indicator.confidence
    )
    for name in _INDICATOR_TIMES:
        value = getattr(indicator, name)
        if value is not None:
            setattr(entry, name, value)
    return entry


def indicator_from_proto(entry: local_pb2.IndicatorEntry) -> Indicator:
    """The indicator, its value canonicalised.

    Raises:
        FormValidationError: the type is unknown or the value breaks its rules.
        IndicatorError: a confidence or time out of range.
    """
    details: dict[str, Any] = {
        name: getattr(entry, name)
        for name in ("confidence", "first_seen_ms", "last_seen_ms", "expires_ms")
        if entry.HasField(name)
    }
    return Indicator.of(entry.type, entry.value, **details)
