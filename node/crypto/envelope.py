# SPDX-License-Identifier: Apache-2.0
"""Sign-then-seal envelopes, open-then-verify them, and sign and verify receipts.

Opening runs steps 8-10 of the receive table in proto/README.md. The payload is returned only
after every signature verified; nothing here parses it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import Box, PublicKey
from nacl.signing import VerifyKey

from node.crypto.encoding import envelope_signed_bytes, receipt_signed_bytes
from node.crypto.keys import AgencyKeys, key_id
from node.errors import ReceiptError, SealError, SignatureError, UnknownKeyError
from node.ids import AgencyId, ExchangeId, KeyId, MessageId
from node.model.envelope import (
    EnvelopeHeader,
    OpenedEnvelope,
    ReceiptBody,
    SealedEnvelope,
    SignatureEntry,
    SignedReceipt,
)


def _sign(data: bytes, keys: AgencyKeys) -> tuple[SignatureEntry, ...]:
    signature = keys.signing.sign(data).signature
    return (SignatureEntry(key_id=keys.signing_key_id, signature=signature),)


def seal_envelope(
    *,
    header: EnvelopeHeader,
    payload: bytes,
    sender_keys: AgencyKeys,
    recipient_encryption_key: bytes,
) -> SealedEnvelope:
    """Sign the plaintext with every routing field, then seal it to the recipient.

    Raises:
        ValueError: the header names other encryption keys than the ones used.
    """
    if header.sender_encryption_key_id != sender_keys.encryption_key_id:
        raise ValueError("header.sender_encryption_key_id is not the sender's encryption key")
    if header.recipient_encryption_key_id != key_id(recipient_encryption_key):
        raise ValueError("header.recipient_encryption_key_id is not the recipient's key")
    signatures = _sign(envelope_signed_bytes(header, payload), sender_keys)
    box = Box(sender_keys.encryption, PublicKey(recipient_encryption_key))
    return SealedEnvelope(
        header=header, sealed_payload=bytes(box.encrypt(payload)), signatures=signatures
    )


def open_envelope(
    sealed: SealedEnvelope,
    *,
    recipient_keys: AgencyKeys,
    sender_signing_keys: Mapping[KeyId, bytes],
    sender_encryption_key: bytes,
) -> OpenedEnvelope:
    """Check key ids, open the seal, verify every signature; return the plaintext.

    Raises:
        UnknownKeyError: a key id the membership does not list for that agency.
        SealError: the sealed payload does not open.
        SignatureError: no signature, or one that does not verify.
    """
    header = sealed.header
    if header.sender_encryption_key_id != key_id(sender_encryption_key):
        raise UnknownKeyError("sender_encryption_key_id is not the sender's listed key")
    if header.recipient_encryption_key_id != recipient_keys.encryption_key_id:
        raise UnknownKeyError("recipient_encryption_key_id is not this node's encryption key")
    box = Box(recipient_keys.encryption, PublicKey(sender_encryption_key))
    try:
        payload = box.decrypt(sealed.sealed_payload)
    except (CryptoError, ValueError, TypeError) as e:
        raise SealError("sealed_payload does not open with the listed keys") from e
    signed = envelope_signed_bytes(header, payload)
    _verify_all(signed, sealed.signatures, sender_signing_keys, error=SignatureError)
    return OpenedEnvelope(header=header, payload=payload, digest=hashlib.sha256(signed).digest())


def _verify_all(
    data: bytes,
    signatures: tuple[SignatureEntry, ...],
    keys: Mapping[KeyId, bytes],
    *,
    error: type[SignatureError | ReceiptError],
) -> None:
    """Every signature must be by a listed key and verify; at least one is required, and
    no key may sign twice."""
    if not signatures:
        raise error("no signature")
    for entry in signatures:
        public = keys.get(entry.key_id)
        if public is None:
            raise UnknownKeyError(f"signature key {entry.key_id} is not listed for the signer")
        try:
            VerifyKey(public).verify(data, entry.signature)
        except (BadSignatureError, ValueError, TypeError) as e:
            raise error(f"signature by key {entry.key_id} does not verify") from e
    if len({entry.key_id for entry in signatures}) != len(signatures):
        raise error("a key id is listed with more than one signature")


def sign_receipt(body: ReceiptBody, *, keys: AgencyKeys) -> SignedReceipt:
    return SignedReceipt(body=body, signatures=_sign(receipt_signed_bytes(body), keys))


def verify_receipt(
    receipt: SignedReceipt,
    *,
    receiver_signing_keys: Mapping[KeyId, bytes],
    message_id: MessageId,
    exchange_id: ExchangeId,
    sender: AgencyId,
    receiver: AgencyId,
    envelope_digest: bytes,
) -> None:
    """Check a receipt's signatures and that it acknowledges exactly what was sent.

    Raises:
        ReceiptError: a signature fails, a key is unknown, or a field does not match.
    """
    try:
        _verify_all(
            receipt_signed_bytes(receipt.body),
            receipt.signatures,
            receiver_signing_keys,
            error=ReceiptError,
        )
    except UnknownKeyError as e:
        raise ReceiptError(f"receipt: {e.message}") from e
    body = receipt.body
    expected = {
        "message_id": (body.message_id, message_id),
        "exchange_id": (body.exchange_id, exchange_id),
        "sender": (body.sender, sender),
        "receiver": (body.receiver, receiver),
    }
    for field, (got, want) in expected.items():
        if got != want:
            raise ReceiptError(f"receipt {field} does not match the message sent")
    if not hmac.compare_digest(body.envelope_digest, envelope_digest):
        raise ReceiptError("receipt envelope_digest does not match what was sent")
