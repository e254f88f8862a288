# SPDX-License-Identifier: Apache-2.0
"""Federation membership as services see it, and the member card an agency hands out.

A :class:`MemberEntry` is a member as the directory lists it, every key with its validity;
its view at an instant is a :class:`Member`, with only the keys active then. Services depend
on the small :class:`Directory` protocol; the threshold-signed federation directory
(node.federation) implements it and parses its entries into these types.

A member card (``member.toml``, written by ``comity node init``) carries an agency's public
keys and certificate to the secretariat, which adds it to the directory; reading one validates
everything and names the field that is wrong.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import tomli_w

from node.crypto.keys import AgencyKeys, decode_public_key, encode_public_key, key_id
from node.errors import ComityError, ConfigError
from node.ids import AgencyId, KeyId, parse_agency_id
from node.tls import check_certificate_profile

ROLES = frozenset(
    {"requesting", "central_authority", "point_of_contact_24_7", "secretariat", "oversight"}
)
_MEMBER_KEYS = frozenset(
    {
        "agency_id",
        "country",
        "roles",
        "endpoint",
        "signing_key",
        "encryption_key",
        "checkpoint_key",
        "witness_key",
        "tls_certificate",
    }
)
PURPOSES = ("signing", "encryption", "checkpoint", "witness")
"""What a member's keys are for; each member lists at least one key of each."""
_COUNTRY = re.compile(r"[A-Z]{2}")
_ENDPOINT = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")


@dataclass(frozen=True, kw_only=True)
class Member:
    agency_id: AgencyId
    country: str
    roles: frozenset[str]
    endpoint: str
    signing_keys: Mapping[KeyId, bytes]
    encryption_key: bytes
    checkpoint_key: bytes
    """Ed25519 key that signs the agency's audit-log checkpoints."""
    witness_key: bytes
    """Ed25519 key with which the agency cosigns other logs' checkpoints as a witness."""
    tls_certificate: bytes
    tls_fingerprint: str
    """``sha256:`` and the hex SHA-256 of the DER certificate (see node.tls)."""
    signing_key_order: tuple[KeyId, ...] = ()
    """Key ids of ``signing_keys``, newest first: the one to sign with is the first held."""
    encryption_keys: Mapping[KeyId, bytes] = field(default_factory=dict)
    """Every active encryption key by key id, newest first (``encryption_key`` is the first):
    during a rotation's overlap, envelopes sealed with either are accepted."""

    @property
    def encryption_key_id(self) -> KeyId:
        return key_id(self.encryption_key)


@dataclass(frozen=True, kw_only=True)
class MemberKey:
    """One public key of a member, for one purpose, with its validity period."""

    purpose: str
    public_key: bytes
    valid_from_ms: int
    valid_until_ms: int | None = None
    revoked_at_ms: int | None = None

    @property
    def key_id(self) -> KeyId:
        return key_id(self.public_key)

    def active_at(self, instant_ms: int) -> bool:
        """Within its validity period and not revoked at ``instant_ms``."""
        if instant_ms < self.valid_from_ms:
            return False
        if self.valid_until_ms is not None and instant_ms >= self.valid_until_ms:
            return False
        return self.revoked_at_ms is None or instant_ms < self.revoked_at_ms


@dataclass(frozen=True, kw_only=True)
class MemberEntry:
    """A member as the directory lists it: every key it ever had in this version."""

    agency_id: AgencyId
    country: str
    roles: frozenset[str]
    endpoint: str
    tls_certificate: bytes
    tls_fingerprint: str
    keys: tuple[MemberKey, ...]

    def key(self, kid: str) -> MemberKey | None:
        return next((k for k in self.keys if k.key_id == kid), None)

    def view_at(self, instant_ms: int) -> Member | None:
        """The member as it stands at ``instant_ms``: every active signing key (rotation
        overlaps), the newest active key of each other purpose. None when it has no active
        signing or encryption key (revoked or expired)."""
        # Newest first; among keys valid from the same second, the one listed last is newer.
        active = [
            k
            for _, k in sorted(
                enumerate(self.keys),
                key=lambda pair: (pair[1].valid_from_ms, pair[0]),
                reverse=True,
            )
            if k.active_at(instant_ms)
        ]
        signing_active = [k for k in active if k.purpose == "signing"]
        signing = {k.key_id: k.public_key for k in signing_active}
        newest = {
            purpose: next((k for k in active if k.purpose == purpose), None)
            for purpose in PURPOSES[1:]
        }
        if not signing or any(k is None for k in newest.values()):
            return None
        return Member(
            agency_id=self.agency_id,
            country=self.country,
            roles=self.roles,
            endpoint=self.endpoint,
            signing_keys=signing,
            encryption_key=_public(newest["encryption"]),
            checkpoint_key=_public(newest["checkpoint"]),
            witness_key=_public(newest["witness"]),
            tls_certificate=self.tls_certificate,
            tls_fingerprint=self.tls_fingerprint,
            signing_key_order=tuple(k.key_id for k in signing_active),
            encryption_keys={k.key_id: k.public_key for k in active if k.purpose == "encryption"},
        )


def _public(key: MemberKey | None) -> bytes:
    assert key is not None
    return key.public_key


class Directory(Protocol):
    """What a node needs to know about the federation (node.federation implements it)."""

    @property
    def version(self) -> int: ...

    @property
    def expires_ms(self) -> int:
        """When this version stops being trusted (freeze protection)."""
        ...

    def find(self, agency_id: str) -> Member | None:
        """The member as it stands now: only its currently active keys. None when it is not
        listed or has no active signing or encryption key."""
        ...

    def members(self) -> Sequence[Member]: ...

    def entry(self, agency_id: str) -> MemberEntry | None:
        """Everything listed for an agency, expired and revoked keys included."""
        ...

    def entries(self) -> Sequence[MemberEntry]:
        """Every listed member, with or without active keys."""
        ...

    def superseded_at(self, version: int) -> int | None:
        """When this node accepted a newer version than ``version`` (None: not superseded)."""
        ...

    def trust_roots(self) -> bytes:
        """PEM certificates of every member: the only TLS peers a node accepts."""
        ...


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value


@dataclass(frozen=True, kw_only=True)
class MemberCard:
    """An agency's public card: what the secretariat needs to list it."""

    agency_id: AgencyId
    country: str
    roles: frozenset[str]
    endpoint: str
    signing_key: bytes
    encryption_key: bytes
    checkpoint_key: bytes
    witness_key: bytes
    tls_certificate: bytes


def read_member_card(text: str, *, source: str = "member card") -> MemberCard:
    """Parse and check a member card.

    Raises:
        ConfigError: invalid TOML, unknown keys or bad values, naming the field.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from e
    except ValueError as e:  # an integer beyond Python's 4,300-digit conversion limit
        raise ConfigError(f"{source}: a number is too long") from e
    entries = document.get("member")
    if set(document) != {"member"} or not isinstance(entries, list) or len(entries) != 1:
        raise ConfigError(f"{source}: a member card holds exactly one [[member]] table")
    return _card(entries[0], source)


def _card(entry: object, where: str) -> MemberCard:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(entry) - _MEMBER_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    try:
        agency = parse_agency_id(_text(entry, "agency_id", where))
    except ComityError as e:
        raise ConfigError(f"{where}: {e.message}") from e
    where = f"{where} ({agency})"
    country = _text(entry, "country", where)
    if not _COUNTRY.fullmatch(country):
        raise ConfigError(f"{where}: country must be an ISO 3166-1 alpha-2 code like PT")
    endpoint = _text(entry, "endpoint", where)
    if not _ENDPOINT.fullmatch(endpoint):
        raise ConfigError(f"{where}: endpoint must be host:port")
    certificate = _text(entry, "tls_certificate", where).encode()
    try:
        check_certificate_profile(certificate, agency)
    except ConfigError as e:
        raise ConfigError(f"{where}: tls_certificate: {e.message}") from e
    return MemberCard(
        agency_id=agency,
        country=country,
        roles=_roles(entry.get("roles"), where),
        endpoint=endpoint,
        signing_key=_key(entry, "signing_key", where),
        encryption_key=_key(entry, "encryption_key", where),
        checkpoint_key=_key(entry, "checkpoint_key", where),
        witness_key=_key(entry, "witness_key", where),
        tls_certificate=certificate,
    )


def _key(entry: Mapping[str, Any], field: str, where: str) -> bytes:
    try:
        return decode_public_key(_text(entry, field, where), field=field)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e.message}") from e


def _roles(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value):
        raise ConfigError(f"{where}: roles must be a non-empty list of role names")
    unknown = set(value) - ROLES
    if unknown:
        raise ConfigError(f"{where}: unknown role(s) {sorted(unknown)}; known: {sorted(ROLES)}")
    return frozenset(value)


def member_card(
    *,
    agency_id: str,
    country: str,
    roles: Sequence[str],
    endpoint: str,
    keys: AgencyKeys,
    tls_certificate: bytes,
) -> str:
    """The TOML of one ``[[member]]`` entry: the public card an agency hands out."""
    entry = {
        "agency_id": agency_id,
        "country": country,
        "roles": list(roles),
        "endpoint": endpoint,
        "signing_key": encode_public_key(keys.signing_public),
        "encryption_key": encode_public_key(keys.encryption_public),
        "checkpoint_key": encode_public_key(keys.checkpoint_public),
        "witness_key": encode_public_key(keys.witness_public),
        "tls_certificate": tls_certificate.decode("ascii"),
    }
    text = tomli_w.dumps({"member": [entry]}, multiline_strings=True)
    read_member_card(text)
    return text
