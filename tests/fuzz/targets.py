# SPDX-License-Identifier: Apache-2.0
"""One fuzz target per parser that takes bytes from outside the node.

Each target feeds the input to the parser (and, where the parser hands on to verification,
to that too, with the fixed keys of :mod:`tests.fuzz.keys`). The input must either parse or be
refused with the module's documented error, a :class:`~node.errors.ComityError` subclass;
any other exception escapes and is a crash. Where a parser promises more (a canonical form
that validates to itself, a value that converts back to the same bytes, integers a database
column and a clock can hold), the target checks that promise with ``assert``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from node.audit.note import Checkpoint, NoteError, NoteVerifier, open_note, verify_cosignatures
from node.audit.proof import BundleError, ProofBundle, verify_bundle
from node.audit.verify import AuditError
from node.crypto.envelope import open_envelope, verify_receipt
from node.errors import (
    ConfigError,
    DirectoryError,
    FormValidationError,
    MalformedError,
    ReceiptError,
    SealError,
    SignatureError,
    UnknownKeyError,
    UnknownRequestTypeError,
)
from node.federation.document import parse_directory
from node.federation.rules import check_self_signed
from node.forms.indicators import canonicalize_indicator
from node.forms.minimize import NotMinimalError, minimize
from node.forms.registry import FormType, get_form_type, get_message_type
from node.forms.validate import validate_form
from node.indicators.sets import IndicatorError, IndicatorSet, IndicatorSignatureError, verify_set
from node.indicators.stix import import_bundle
from node.indicators.tlp import Tlp
from node.members import read_member_card
from node.model.envelope import EnvelopeHeader, ReceiptBody
from node.wire import (
    envelope_from_bytes,
    envelope_to_bytes,
    receipt_from_bytes,
    receipt_to_bytes,
)
from tests.fuzz.keys import (
    EXCHANGE_ID,
    LOG_VERIFIER,
    MESSAGE_ID,
    RECIPIENT,
    RECIPIENT_KEYS,
    SENDER,
    SENDER_KEYS,
    SET_OWNER_KEY,
    WITNESSES,
)

INT64_MAX = (1 << 63) - 1
ENVELOPE_DIGEST = hashlib.sha256(b"the envelope the receipt acknowledges").digest()
SIGNATURE_BYTES = 64


def _text(data: bytes) -> str | None:
    """Text parsers are handed ``str``; bytes that are not UTF-8 never reach them."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _storable(name: str, value: int) -> None:
    assert 0 <= value <= INT64_MAX, f"{name} {value} does not fit a 64-bit database column"


def _instant(name: str, value: int) -> None:
    _storable(name, value)
    try:
        datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, ValueError, OSError) as e:
        raise AssertionError(f"{name} {value} is not a time a clock can show") from e


def _check_header(header: EnvelopeHeader) -> None:
    _storable("sequence", header.sequence)
    _storable("directory_version", header.directory_version)
    _instant("created_at_ms", header.created_at_ms)
    _instant("expires_at_ms", header.expires_at_ms)


def _check_receipt_body(body: ReceiptBody) -> None:
    _instant("received_at_ms", body.received_at_ms)
    _storable("audit_leaf_index", body.audit_leaf_index)


def envelope(data: bytes) -> None:
    """Wire decoding (steps 1-2 of the receive table), then open-then-verify (steps 8-10)."""
    try:
        sealed = envelope_from_bytes(data)
    except MalformedError:
        return
    _check_header(sealed.header)
    assert envelope_from_bytes(envelope_to_bytes(sealed)) == sealed
    try:
        open_envelope(
            sealed,
            recipient_keys=RECIPIENT_KEYS,
            sender_signing_keys={SENDER_KEYS.signing_key_id: SENDER_KEYS.signing_public},
            sender_encryption_key=SENDER_KEYS.encryption_public,
        )
    except (UnknownKeyError, SealError, SignatureError):
        return


def receipt(data: bytes) -> None:
    """Wire decoding of a receipt, then the sender's check of what it acknowledges."""
    try:
        signed = receipt_from_bytes(data)
    except MalformedError:
        return
    _check_receipt_body(signed.body)
    assert receipt_from_bytes(receipt_to_bytes(signed)) == signed
    try:
        verify_receipt(
            signed,
            receiver_signing_keys={RECIPIENT_KEYS.signing_key_id: RECIPIENT_KEYS.signing_public},
            message_id=MESSAGE_ID,
            exchange_id=EXCHANGE_ID,
            sender=SENDER,
            receiver=RECIPIENT,
            envelope_digest=ENVELOPE_DIGEST,
        )
    except ReceiptError:
        return


def _form_type(name: str) -> FormType:
    try:
        return get_form_type(name)
    except UnknownRequestTypeError:
        return get_message_type(name)


def form(data: bytes) -> None:
    """``<type or message kind>\\n<form JSON>``: validation, canonical form, minimization."""
    name, _, raw = data.partition(b"\n")
    try:
        form_type = _form_type(name.decode("utf-8", "replace"))
        canonical = validate_form(form_type, raw)
    except (UnknownRequestTypeError, FormValidationError):
        return
    assert validate_form(form_type, canonical) == canonical, "canonical form is not canonical"
    if form_type.is_message:
        return
    for strip in (False, True):
        try:
            minimize(form_type.name, canonical, strip=strip)
        except (FormValidationError, NotMinimalError):
            continue


def indicator(data: bytes) -> None:
    """``<indicator type>\\n<value>``: the canonical form, which must be its own canonical form."""
    text = _text(data)
    if text is None:
        return
    kind, _, value = text.partition("\n")
    try:
        canonical = canonicalize_indicator(kind, value)
    except FormValidationError:
        return
    assert canonicalize_indicator(kind, canonical) == canonical, "canonical form moves"


def directory(data: bytes) -> None:
    """A directory document: parsing, then its own roots' signatures."""
    try:
        check_self_signed(parse_directory(data))
    except DirectoryError:
        return


def member_card(data: bytes) -> None:
    """A member card (TOML) as an agency hands it to the key ceremony."""
    text = _text(data)
    if text is None:
        return
    try:
        read_member_card(text)
    except ConfigError:
        return


_LABELS = tuple(Tlp)


def stix(data: bytes) -> None:
    """``<label byte><STIX 2.1 bundle JSON>``: import into a set with that label."""
    text = _text(data[1:])
    if not data or text is None:
        return
    try:
        import_bundle(text, into=_LABELS[data[0] % len(_LABELS)])
    except IndicatorError:
        return


def indicator_set(data: bytes) -> None:
    """``<64-byte signature><set document>``: the owner's signature, then the document."""
    signature, document = data[:SIGNATURE_BYTES], data[SIGNATURE_BYTES:]
    with contextlib.suppress(IndicatorError):
        IndicatorSet.from_bytes(document)
    try:
        verify_set(document, signature, [bytes(SET_OWNER_KEY.verify_key)])
    except (IndicatorError, IndicatorSignatureError):
        return


def note(data: bytes) -> None:
    """A signed note: verifier key, signature lines, checkpoint body, witness cosignatures."""
    text = _text(data)
    if text is None:
        return
    for check in (
        lambda: NoteVerifier.parse(text),
        lambda: Checkpoint.parse(open_note(text, [LOG_VERIFIER])[0]),
        lambda: Checkpoint.parse(text),
        lambda: verify_cosignatures(text, WITNESSES),
    ):
        try:
            check()
        except NoteError:
            continue


def proof(data: bytes) -> None:
    """A tlog-proof bundle: parsing, then inclusion, openings and a one-witness quorum."""
    text = _text(data)
    if text is None:
        return
    try:
        bundle = ProofBundle.parse(text)
    except BundleError:
        return
    assert ProofBundle.parse(bundle.text()) == bundle
    try:
        verify_bundle(bundle, LOG_VERIFIER, witnesses=WITNESSES, quorum=1)
    except (AuditError, BundleError):
        return


TARGETS: dict[str, Callable[[bytes], None]] = {
    "envelope": envelope,
    "receipt": receipt,
    "form": form,
    "indicator": indicator,
    "directory": directory,
    "member_card": member_card,
    "stix": stix,
    "indicator_set": indicator_set,
    "note": note,
    "proof": proof,
}
