# SPDX-License-Identifier: Apache-2.0
"""The secretariat's key ceremony: drafting directory versions and signing them.

Every edit works on the ``signed`` part of a directory. Editing a document that carries
signatures starts the next version (signatures cleared, since they covered the old
content); editing an unsigned draft keeps its version. Each root key holder signs a copy
offline (:func:`sign`); the copies are merged (:func:`merge`) once enough have signed. Every
result is parsed again, so a draft that breaks a rule is refused at the step that broke it.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Sequence
from typing import Any

from nacl.signing import SigningKey

from node.crypto.keys import encode_public_key, key_id
from node.errors import DirectoryError
from node.federation.document import (
    DOCUMENT_TYPE,
    SignedDirectory,
    format_instant,
    parse_directory,
    signed_bytes,
)
from node.ids import KeyId
from node.members import MemberCard
from node.tls import check_certificate_profile

DAY_MS = 24 * 3600 * 1000


def new_directory(
    *, root_keys: Sequence[bytes], threshold: int, now_ms: int, valid_days: float
) -> SignedDirectory:
    """Version 1, unsigned, with no members yet."""
    signed = {
        "type": DOCUMENT_TYPE,
        "version": 1,
        "issued_at": format_instant(now_ms),
        "expires": format_instant(now_ms + int(valid_days * DAY_MS)),
        "roots": {"threshold": threshold, "keys": [encode_public_key(k) for k in root_keys]},
        "members": [],
    }
    return _build(signed, {})


def _build(signed: dict[str, Any], signatures: dict[str, str]) -> SignedDirectory:
    document = {
        "signed": signed,
        "signatures": [{"key_id": k, "signature": v} for k, v in sorted(signatures.items())],
    }
    return parse_directory(json.dumps(document).encode())


def _next(document: SignedDirectory, *, now_ms: int, valid_days: float | None) -> dict[str, Any]:
    """A mutable copy of ``signed`` to edit: the next version if the document was signed."""
    signed = copy.deepcopy(dict(document.signed))
    if document.signatures:
        signed["version"] = document.version + 1
    signed["issued_at"] = format_instant(now_ms)
    if valid_days is not None:
        signed["expires"] = format_instant(now_ms + int(valid_days * DAY_MS))
    return signed


def _member(signed: dict[str, Any], agency_id: str) -> dict[str, Any]:
    for entry in signed["members"]:
        if entry["agency_id"] == agency_id:
            return entry  # type: ignore[no-any-return]
    raise DirectoryError("not-listed", f"agency {agency_id} is not in the directory")


def add_member(
    document: SignedDirectory,
    card: MemberCard,
    *,
    now_ms: int,
    valid_days: float | None = None,
) -> SignedDirectory:
    """List a new agency from its member card, every key valid from now.

    Raises:
        ConfigError: the card's certificate does not name the agency.
        DirectoryError: the agency or one of its keys is already listed.
    """
    check_certificate_profile(card.tls_certificate, card.agency_id)
    signed = _next(document, now_ms=now_ms, valid_days=valid_days)
    since = format_instant(now_ms)
    keys = (
        ("signing", card.signing_key),
        ("encryption", card.encryption_key),
        ("checkpoint", card.checkpoint_key),
        ("witness", card.witness_key),
    )
    signed["members"].append(
        {
            "agency_id": card.agency_id,
            "country": card.country,
            "roles": sorted(card.roles),
            "endpoint": card.endpoint,
            "tls_certificate": card.tls_certificate.decode("ascii"),
            "keys": [
                {"purpose": purpose, "public_key": encode_public_key(key), "valid_from": since}
                for purpose, key in keys
            ],
        }
    )
    return _build(signed, {})


def remove_member(
    document: SignedDirectory, agency_id: str, *, now_ms: int, valid_days: float | None = None
) -> SignedDirectory:
    """Drop an agency: from this version on, no node accepts it or sends to it."""
    signed = _next(document, now_ms=now_ms, valid_days=valid_days)
    _member(signed, agency_id)
    signed["members"] = [m for m in signed["members"] if m["agency_id"] != agency_id]
    return _build(signed, {})


def set_endpoint(
    document: SignedDirectory,
    agency_id: str,
    *,
    endpoint: str | None = None,
    tls_certificate: bytes | None = None,
    now_ms: int,
    valid_days: float | None = None,
) -> SignedDirectory:
    """Change where an agency's node listens, or the certificate it presents.

    Raises:
        ConfigError: the certificate does not name the agency (common name and DNS name).
        DirectoryError: the agency is not listed.
    """
    if tls_certificate is not None:
        check_certificate_profile(tls_certificate, agency_id)
    signed = _next(document, now_ms=now_ms, valid_days=valid_days)
    entry = _member(signed, agency_id)
    if endpoint is not None:
        entry["endpoint"] = endpoint
    if tls_certificate is not None:
        entry["tls_certificate"] = tls_certificate.decode("ascii")
    return _build(signed, {})


def rotate_key(
    document: SignedDirectory,
    agency_id: str,
    *,
    purpose: str,
    new_key: bytes,
    overlap_ms: int,
    now_ms: int,
    valid_days: float | None = None,
) -> SignedDirectory:
    """Add ``new_key`` valid from now; the agency's current keys of ``purpose`` stay valid
    for ``overlap_ms`` more, so messages signed just before the switch still verify."""
    signed = _next(document, now_ms=now_ms, valid_days=valid_days)
    entry = _member(signed, agency_id)
    until = format_instant(now_ms + overlap_ms)
    for key in entry["keys"]:
        ends_later = "valid_until" not in key or key["valid_until"] > until
        if key["purpose"] == purpose and "revoked_at" not in key and ends_later:
            key["valid_until"] = until
    entry["keys"].append(
        {
            "purpose": purpose,
            "public_key": encode_public_key(new_key),
            "valid_from": format_instant(now_ms),
        }
    )
    return _build(signed, {})


def revoke_key(
    document: SignedDirectory,
    agency_id: str,
    *,
    key: str,
    at_ms: int,
    now_ms: int,
    valid_days: float | None = None,
) -> SignedDirectory:
    """Revoke one of an agency's keys (by key id) from ``at_ms`` on.

    Raises:
        DirectoryError: the agency does not list that key.
    """
    signed = _next(document, now_ms=now_ms, valid_days=valid_days)
    entry = _member(signed, agency_id)
    for listed in entry["keys"]:
        if key_id(base64.b64decode(listed["public_key"])) == key:
            listed["revoked_at"] = format_instant(at_ms)
            return _build(signed, {})
    raise DirectoryError("not-listed", f"{agency_id} has no key {key}")


def set_roots(
    document: SignedDirectory,
    *,
    root_keys: Sequence[bytes],
    threshold: int,
    now_ms: int,
    valid_days: float | None = None,
) -> SignedDirectory:
    """Replace the root key set. Nodes accept the result only if a threshold of the old
    root keys and a threshold of the new ones sign it."""
    signed = _next(document, now_ms=now_ms, valid_days=valid_days)
    signed["roots"] = {"threshold": threshold, "keys": [encode_public_key(k) for k in root_keys]}
    return _build(signed, {})


def renew(document: SignedDirectory, *, now_ms: int, valid_days: float) -> SignedDirectory:
    """The same content as a new version with a new expiry (before the old one expires)."""
    return _build(_next(document, now_ms=now_ms, valid_days=valid_days), {})


def sign(document: SignedDirectory, key: SigningKey) -> SignedDirectory:
    """Add one root key holder's signature (replacing an earlier one by the same key)."""
    signature = key.sign(signed_bytes(document.signed)).signature
    signatures = _encoded(document)
    signatures[key_id(bytes(key.verify_key))] = base64.b64encode(signature).decode("ascii")
    return _build(copy.deepcopy(dict(document.signed)), signatures)


def check_root_signer(
    document: SignedDirectory, key: SigningKey, *, trusted: SignedDirectory | None = None
) -> None:
    """Refuse to sign with a key that is not a root key of ``document``, or of the
    ``trusted`` version it replaces (whose holders co-sign a change of roots).

    A signature by any other key counts for nothing at a node, yet shows up in the
    document as if it were a holder's consent.

    Raises:
        DirectoryError: rule ``not-a-root-key``.
    """
    roots = _known_roots(document, trusted)
    if bytes(key) in roots.values():
        raise DirectoryError(
            "not-a-root-key",
            "the key file holds a root PUBLIC key; sign with the holder's private key file",
        )
    kid = key_id(bytes(key.verify_key))
    if kid not in roots:
        hint = "" if trusted else " (for a change of roots, give the trusted version too)"
        raise DirectoryError(
            "not-a-root-key",
            f"key {kid} is not a root key of version {document.version}{hint}",
        )


def unknown_signers(
    document: SignedDirectory, *, trusted: SignedDirectory | None = None
) -> list[KeyId]:
    """Key ids of signatures on ``document`` by keys that are neither its root keys nor
    those of the ``trusted`` version."""
    roots = _known_roots(document, trusted)
    return sorted(k for k in document.signatures if k not in roots)


def _known_roots(document: SignedDirectory, trusted: SignedDirectory | None) -> dict[KeyId, bytes]:
    roots = dict(document.body.roots.keys)
    if trusted is not None:
        roots.update(trusted.body.roots.keys)
    return roots


def merge(documents: Sequence[SignedDirectory]) -> SignedDirectory:
    """One document carrying every signature of copies of the same signed content.

    Raises:
        DirectoryError: rule ``merge-mismatch`` when the copies differ in content.
    """
    first = documents[0]
    signatures = _encoded(first)
    for other in documents[1:]:
        if other.signed_bytes() != first.signed_bytes():
            raise DirectoryError(
                "merge-mismatch",
                f"copies differ in content (versions {first.version} and {other.version}); "
                "only copies of one draft can be merged",
            )
        signatures.update(_encoded(other))
    return _build(copy.deepcopy(dict(first.signed)), signatures)


def _encoded(document: SignedDirectory) -> dict[str, str]:
    return {k: base64.b64encode(v).decode("ascii") for k, v in document.signatures.items()}


def signed_directory(
    cards: Sequence[MemberCard],
    *,
    root_keys: Sequence[SigningKey],
    threshold: int,
    now_ms: int,
    valid_days: int = 365,
) -> SignedDirectory:
    """Version 1 listing ``cards``, signed by every key of ``root_keys`` (set-up and tests)."""
    document = new_directory(
        root_keys=[bytes(k.verify_key) for k in root_keys],
        threshold=threshold,
        now_ms=now_ms,
        valid_days=valid_days,
    )
    for card in cards:
        document = add_member(document, card, now_ms=now_ms)
    for key in root_keys:
        document = sign(document, key)
    return document
