# SPDX-License-Identifier: Apache-2.0
"""The federation directory document: parsing, canonical bytes, and member views.

A directory is JSON: ``{"signed": {...}, "signatures": [...]}``. What a node trusts is the
``signed`` part; its canonical bytes (:func:`signed_bytes`) are what the secretariat's root
keys sign. Parsing refuses anything ambiguous: duplicate JSON keys, unknown fields, repeated
keys or members, and impossible validity periods. Every refusal names its rule
(:class:`DirectoryError`). Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from node.crypto.encoding import encode_fields
from node.crypto.keys import key_id
from node.errors import ConfigError, DirectoryError
from node.ids import AgencyId, KeyId
from node.members import PURPOSES, MemberEntry, MemberKey
from node.resources import schemas_dir
from node.tls import certificate_agency, certificate_fingerprint

DOCUMENT_TYPE = "comity.directory.v1"
SIGNING_DOMAIN = b"comity/v1/directory"
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_INTEGER_DIGITS = 20
_SCHEMA_FILE = "federation/directory.v1.json"


@dataclass(frozen=True, kw_only=True)
class RootKeys:
    """The secretariat's root keys and how many of them must sign."""

    keys: Mapping[KeyId, bytes]
    threshold: int


@dataclass(frozen=True, kw_only=True)
class DirectoryBody:
    """The ``signed`` part of a directory, parsed."""

    version: int
    issued_at_ms: int
    expires_ms: int
    roots: RootKeys
    members: tuple[MemberEntry, ...]

    def member(self, agency_id: str) -> MemberEntry | None:
        return next((m for m in self.members if m.agency_id == agency_id), None)


@dataclass(frozen=True, kw_only=True)
class SignedDirectory:
    """A parsed directory document with its signatures (not yet verified)."""

    body: DirectoryBody
    signed: Mapping[str, Any] = field(repr=False)
    signatures: Mapping[KeyId, bytes]

    @property
    def version(self) -> int:
        return self.body.version

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.signed)

    def to_json(self) -> bytes:
        """The document as a file: ``signed`` in canonical form, then the signatures."""
        document = {
            "signed": self.signed,
            "signatures": [
                {"key_id": kid, "signature": base64.b64encode(sig).decode("ascii")}
                for kid, sig in sorted(self.signatures.items())
            ],
        }
        return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8; the schema allows no floats."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_bytes(signed: Mapping[str, Any]) -> bytes:
    """What root keys sign: the length-prefixed domain and canonical JSON of ``signed``."""
    return encode_fields((SIGNING_DOMAIN, canonical_json(signed)))


def format_instant(instant_ms: int) -> str:
    return datetime.fromtimestamp(instant_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> int:
    """Milliseconds since the epoch of a ``YYYY-MM-DDTHH:MM:SSZ`` instant."""
    try:
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as e:
        raise DirectoryError(
            "malformed", f"{text!r} is not an instant like 2026-01-31T09:00:00Z"
        ) from e
    return int(parsed.timestamp()) * 1000


@cache
def _validator() -> Draft202012Validator:
    path = schemas_dir() / _SCHEMA_FILE
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read the directory schema {path}") from e
    return Draft202012Validator(schema)


def parse_directory(data: bytes) -> SignedDirectory:
    """Parse and check a directory document (not its signatures).

    Raises:
        DirectoryError: with rule ``malformed``, ``duplicate-json-key``, ``unknown-field``,
            ``duplicate-root-key``, ``bad-threshold``, ``duplicate-member``,
            ``duplicate-member-key``, ``duplicate-signature``, ``missing-key`` or
            ``bad-validity``.
    """
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DirectoryError("malformed", f"document is larger than {MAX_DOCUMENT_BYTES} bytes")
    document = _load_json(data)
    _check_schema(document)
    signed = document["signed"]
    return SignedDirectory(
        body=_body(signed),
        signed=signed,
        signatures=_signatures(document["signatures"]),
    )


def _load_json(data: bytes) -> Any:
    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise DirectoryError("duplicate-json-key", f"JSON key(s) {repeated} appear twice")
        return dict(pairs)

    def refuse_constant(name: str) -> None:
        raise DirectoryError("malformed", f"{name} is not allowed in a directory")

    try:
        return json.loads(
            data.decode("utf-8"),
            object_pairs_hook=refuse_duplicates,
            parse_constant=refuse_constant,
            parse_float=lambda _: refuse_constant("a fractional number"),
            parse_int=_integer,
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DirectoryError("malformed", f"not UTF-8 JSON: {e}") from e


def _integer(text: str) -> int:
    # The schema's largest integer has 16 digits; Python refuses to convert more than 4,300
    # (CVE-2020-10735) with a bare ValueError.
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise DirectoryError("malformed", f"an integer has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _check_schema(document: object) -> None:
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = errors[0]
    where = _path(error)
    if error.validator == "additionalProperties":
        raise DirectoryError("unknown-field", f"{where}: {error.message}")
    raise DirectoryError("malformed", f"{where}: breaks the schema rule '{error.validator}'")


def _path(error: ValidationError) -> str:
    text = "$"
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _body(signed: Mapping[str, Any]) -> DirectoryBody:
    issued = parse_instant(signed["issued_at"])
    expires = parse_instant(signed["expires"])
    if expires <= issued:
        raise DirectoryError("bad-validity", "expires is not after issued_at")
    members = tuple(_member(entry, f"members[{i}]") for i, entry in enumerate(signed["members"]))
    _refuse_repeats(members)
    return DirectoryBody(
        version=signed["version"],
        issued_at_ms=issued,
        expires_ms=expires,
        roots=_roots(signed["roots"]),
        members=members,
    )


def _roots(roots: Mapping[str, Any]) -> RootKeys:
    keys: dict[KeyId, bytes] = {}
    for text in roots["keys"]:
        raw = base64.b64decode(text)
        if key_id(raw) in keys:
            # Listing a key twice would let one holder count twice towards the threshold.
            raise DirectoryError("duplicate-root-key", f"root key {key_id(raw)} is listed twice")
        keys[key_id(raw)] = raw
    threshold = roots["threshold"]
    if threshold > len(keys):
        raise DirectoryError(
            "bad-threshold", f"threshold {threshold} is more than the {len(keys)} root key(s)"
        )
    return RootKeys(keys=keys, threshold=threshold)


def _member(entry: Mapping[str, Any], where: str) -> MemberEntry:
    agency = AgencyId(entry["agency_id"])
    where = f"{where} ({agency})"
    certificate = entry["tls_certificate"].encode("ascii", "replace")
    try:
        issued_to = certificate_agency(certificate)
        fingerprint = certificate_fingerprint(certificate)
    except ConfigError as e:
        raise DirectoryError("malformed", f"{where}.tls_certificate: {e.message}") from e
    if issued_to != agency:
        raise DirectoryError("malformed", f"{where}.tls_certificate is not issued to {agency}")
    keys = tuple(_member_key(k, f"{where}.keys[{i}]") for i, k in enumerate(entry["keys"]))
    missing = [p for p in PURPOSES if not any(k.purpose == p for k in keys)]
    if missing:
        raise DirectoryError("missing-key", f"{where} has no {', '.join(missing)} key")
    return MemberEntry(
        agency_id=agency,
        country=entry["country"],
        roles=frozenset(entry["roles"]),
        endpoint=entry["endpoint"],
        tls_certificate=certificate,
        tls_fingerprint=fingerprint,
        keys=keys,
    )


def _member_key(entry: Mapping[str, Any], where: str) -> MemberKey:
    key = MemberKey(
        purpose=entry["purpose"],
        public_key=base64.b64decode(entry["public_key"]),
        valid_from_ms=parse_instant(entry["valid_from"]),
        valid_until_ms=_optional_instant(entry.get("valid_until")),
        revoked_at_ms=_optional_instant(entry.get("revoked_at")),
    )
    if key.valid_until_ms is not None and key.valid_until_ms <= key.valid_from_ms:
        raise DirectoryError("bad-validity", f"{where}: valid_until is not after valid_from")
    return key


def _optional_instant(text: str | None) -> int | None:
    return None if text is None else parse_instant(text)


def _refuse_repeats(members: Sequence[MemberEntry]) -> None:
    agencies: set[str] = set()
    keys: set[str] = set()
    for member in members:
        if member.agency_id in agencies:
            raise DirectoryError("duplicate-member", f"agency {member.agency_id} is listed twice")
        agencies.add(member.agency_id)
        for key in member.keys:
            if key.key_id in keys:
                raise DirectoryError(
                    "duplicate-member-key",
                    f"key {key.key_id} ({member.agency_id}, {key.purpose}) is listed twice",
                )
            keys.add(key.key_id)


def _signatures(entries: Sequence[Mapping[str, str]]) -> dict[KeyId, bytes]:
    signatures: dict[KeyId, bytes] = {}
    for entry in entries:
        kid = KeyId(entry["key_id"])
        if kid in signatures:
            # Two signatures under one key id: refuse rather than pick one.
            raise DirectoryError("duplicate-signature", f"key {kid} signed twice")
        signatures[kid] = base64.b64decode(entry["signature"])
    return signatures
