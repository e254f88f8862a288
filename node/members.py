# SPDX-License-Identifier: Apache-2.0
"""Federation membership behind one small interface.

For now membership is a static TOML file that every node loads (a later version replaces it
with a threshold-signed directory behind the same :class:`Directory` protocol). Loading
validates everything and names the member and field that is wrong.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import tomli_w

from node.crypto.keys import AgencyKeys, decode_public_key, encode_public_key, key_id
from node.errors import ComityError, ConfigError
from node.ids import AgencyId, KeyId, parse_agency_id
from node.tls import certificate_agency, certificate_fingerprint

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

    @property
    def encryption_key_id(self) -> KeyId:
        return key_id(self.encryption_key)

    @property
    def tls_fingerprint(self) -> str:
        return certificate_fingerprint(self.tls_certificate)


class Directory(Protocol):
    """What a node needs to know about the federation."""

    @property
    def version(self) -> int: ...

    def find(self, agency_id: str) -> Member | None: ...

    def members(self) -> Sequence[Member]: ...

    def trust_roots(self) -> bytes:
        """PEM certificates of every member: the only TLS peers a node accepts."""
        ...


class StaticDirectory:
    """Membership read from a members file."""

    def __init__(self, *, version: int, members: Sequence[Member]) -> None:
        self._version = version
        self._members = {m.agency_id: m for m in members}

    @property
    def version(self) -> int:
        return self._version

    def find(self, agency_id: str) -> Member | None:
        return self._members.get(AgencyId(agency_id))

    def members(self) -> Sequence[Member]:
        return list(self._members.values())

    def trust_roots(self) -> bytes:
        return b"".join(m.tls_certificate for m in self._members.values())

    @classmethod
    def from_file(cls, path: Path) -> StaticDirectory:
        """Load and check a members file.

        Raises:
            ConfigError: the file is missing or anything in it is invalid.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read members file {path}: {e.strerror}") from e
        return cls.from_toml(text, source=str(path))

    @classmethod
    def from_toml(cls, text: str, *, source: str) -> StaticDirectory:
        """Parse and check members-file text.

        Raises:
            ConfigError: invalid TOML, unknown keys, bad values or duplicates.
        """
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{source}: not valid TOML: {e}") from e
        unknown = set(document) - {"version", "member"}
        if unknown:
            raise ConfigError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
        version = document.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ConfigError(f"{source}: version must be a positive integer")
        entries = document.get("member", [])
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{source}: at least one [[member]] is required")
        members = [_member(entry, f"{source}: member {i + 1}") for i, entry in enumerate(entries)]
        _refuse_duplicates(members, source)
        return cls(version=version, members=members)


def _refuse_duplicates(members: Sequence[Member], source: str) -> None:
    agencies: set[str] = set()
    keys: set[str] = set()
    for member in members:
        if member.agency_id in agencies:
            raise ConfigError(f"{source}: agency {member.agency_id} is listed twice")
        agencies.add(member.agency_id)
        for kid in (
            *member.signing_keys,
            member.encryption_key_id,
            key_id(member.checkpoint_key),
            key_id(member.witness_key),
        ):
            if kid in keys:
                raise ConfigError(f"{source}: key {kid} of {member.agency_id} is used twice")
            keys.add(kid)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value


def _member(entry: object, where: str) -> Member:
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
    signing = _key(entry, "signing_key", where)
    certificate = _text(entry, "tls_certificate", where).encode()
    try:
        issued_to = certificate_agency(certificate)
    except ConfigError as e:
        raise ConfigError(f"{where}: tls_certificate: {e.message}") from e
    if issued_to != agency:
        raise ConfigError(f"{where}: tls_certificate is not issued to {agency}")
    return Member(
        agency_id=agency,
        country=country,
        roles=_roles(entry.get("roles"), where),
        endpoint=endpoint,
        signing_keys={key_id(signing): signing},
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
    _member(tomllib.loads(text)["member"][0], "member card")
    return text


def build_members_file(cards: Sequence[str], *, version: int = 1) -> str:
    """Merge member cards into one members file, checked as a whole.

    Raises:
        ConfigError: a card is invalid, or agencies or keys repeat.
    """
    entries: list[Any] = []
    for index, card in enumerate(cards, start=1):
        try:
            entries.extend(tomllib.loads(card).get("member", []))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"member card {index} is not valid TOML: {e}") from e
    text = tomli_w.dumps({"version": version, "member": entries}, multiline_strings=True)
    StaticDirectory.from_toml(text, source="members file")
    return text
