# SPDX-License-Identifier: Apache-2.0
"""Federation membership as services see it, and the member card an agency hands out.

Services depend on the small :class:`Directory` protocol; the threshold-signed federation
directory (node.federation) implements it. A member card (``member.toml``, written by
``comity node init``) carries an agency's public keys and certificate to the secretariat,
which adds it to the directory; reading one validates everything and names the field that is
wrong.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import tomli_w

from node.crypto.keys import AgencyKeys, decode_public_key, encode_public_key, key_id
from node.errors import ComityError, ConfigError, PeerIdentityError
from node.ids import AgencyId, KeyId, parse_agency_id
from node.tls import certificate_agency

if TYPE_CHECKING:
    from node.federation.document import MemberEntry

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

    def superseded_at(self, version: int) -> int | None:
        """When this node accepted a newer version than ``version`` (None: not superseded)."""
        ...

    def trust_roots(self) -> bytes:
        """PEM certificates of every member: the only TLS peers a node accepts."""
        ...


def member_by_certificate(directory: Directory, fingerprint: str | None) -> Member:
    """The member whose listed TLS certificate a mutual-TLS client presented.

    Raises:
        PeerIdentityError: no member lists that certificate.
    """
    member = next((m for m in directory.members() if m.tls_fingerprint == fingerprint), None)
    if member is None:
        raise PeerIdentityError("the TLS client is not a federation member")
    return member


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
        issued_to = certificate_agency(certificate)
    except ConfigError as e:
        raise ConfigError(f"{where}: tls_certificate: {e.message}") from e
    if issued_to != agency:
        raise ConfigError(f"{where}: tls_certificate is not issued to {agency}")
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
