# SPDX-License-Identifier: Apache-2.0
"""Sharing groups: indicators travel between members as blinded tags under a group key.

A group has an owner agency, its member agencies (the owner among them) and a key epoch. For
each epoch the owner makes a random 32-byte key and hands it to every member in a
:class:`GroupKeyOffer`: canonical JSON naming the group, its members and the epoch, with the key
sealed (X25519 ``crypto_box``) to the recipient's directory encryption key, signed by the owner's
message key. A tag is keyed BLAKE2b over ``type || 0x00 || canonical value``, 16 bytes, with the
group id as salt and a fixed personalisation, so a tag means nothing outside its group and epoch
and two members holding the same indicator compute the same tag. Rotation is a new epoch whose
key goes to the remaining members only: a removed member keeps old tags but can derive no new
ones.

Every member publishes its tags in a log of its own, numbered 1, 2, 3 … with no gaps: an entry
adds a tag or tombstones (withdraws) one. Members copy each other's logs page by page from the
last number they hold, so nothing is missed or copied twice, and withdrawals reach everyone.
Pure: no I/O. Errors never carry an indicator value or a tag.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import Box, PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey
from nacl.utils import random

from node.errors import ComityError, ErrorKind
from node.ids import AgencyId, KeyId

KEY_BYTES = 32
TAG_BYTES = 16
MAX_MEMBERS = 64
MAX_NAME = 128
MAX_PAGE = 1000
"""Most entries one pull answers with."""
MAX_SEQ = 2**62
OFFER_FORMAT = 1
SIGNING_CONTEXT = b"comity/group-key/v1\n"
_PERSON = b"comity/group-tag"
_OFFER_FIELDS = {
    "v",
    "group_id",
    "name",
    "owner",
    "members",
    "epoch",
    "recipient",
    "sealed_to",
    "sealed_by",
    "sealed_key",
    "created_ms",
}


class GroupError(ComityError):
    """A group, offer or log page that breaks the rules; the message names the field."""

    kind = ErrorKind.INVALID_INPUT
    code = "bad_group"


class GroupMembershipError(ComityError):
    """The agency is not a member of the group (or the group is unknown to this node)."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "not_group_member"


class GroupKeyError(ComityError):
    """A group key offer whose signature or seal does not verify."""

    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_group_key"


@dataclass(frozen=True, kw_only=True)
class Group:
    group_id: str
    """A UUID; its 16 bytes salt every tag of the group."""
    name: str
    owner: AgencyId
    members: tuple[AgencyId, ...]
    """Every member agency, the owner included, sorted."""
    epoch: int

    def __post_init__(self) -> None:
        _check_group_id(self.group_id)
        if not 0 < len(self.name) <= MAX_NAME:
            raise GroupError(f"a group's name is 1-{MAX_NAME} characters")
        if list(self.members) != sorted(set(self.members)):
            raise GroupError("a group's members are listed once each, sorted")
        if self.owner not in self.members:
            raise GroupError("the group's owner is one of its members")
        if not 2 <= len(self.members) <= MAX_MEMBERS:
            raise GroupError(f"a group has 2-{MAX_MEMBERS} members, its owner included")
        if not 0 < self.epoch <= MAX_SEQ:
            raise GroupError("a group's key epoch is a positive integer")

    def others(self, agency: AgencyId) -> tuple[AgencyId, ...]:
        """Every member but ``agency``."""
        return tuple(m for m in self.members if m != agency)

    def check_member(self, agency: AgencyId) -> None:
        """Raises: GroupMembershipError: ``agency`` is not a member."""
        if agency not in self.members:
            raise GroupMembershipError(f"{agency} is not a member of group {self.group_id}")


def _check_group_id(group_id: str) -> None:
    try:
        parsed = uuid.UUID(group_id)
    except (ValueError, TypeError) as e:
        raise GroupError("a group id is a UUID") from e
    if str(parsed) != group_id:
        raise GroupError("a group id is a UUID in lower-case canonical form")


def new_group_key() -> bytes:
    return bytes(random(KEY_BYTES))


def tag(key: bytes, group_id: str, kind: str, value: str) -> bytes:
    """The blinded tag of one canonical indicator in one group and epoch (by its key)."""
    return hashlib.blake2b(
        f"{kind}\0{value}".encode(),
        digest_size=TAG_BYTES,
        key=key,
        salt=_salt(group_id),
        person=_PERSON,
    ).digest()


@functools.lru_cache(maxsize=256)
def _salt(group_id: str) -> bytes:
    """The group id's 16 bytes (parsed once per group: tagging runs millions of times)."""
    return uuid.UUID(group_id).bytes


# --- key delivery -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GroupKeyOffer:
    group: Group
    recipient: AgencyId
    sealed_to: KeyId
    """Key id of the recipient's encryption key the group key is sealed to."""
    sealed_by: KeyId
    """Key id of the owner's encryption key that sealed it."""
    sealed_key: bytes
    created_ms: int

    def to_bytes(self) -> bytes:
        document = {
            "v": OFFER_FORMAT,
            "group_id": self.group.group_id,
            "name": self.group.name,
            "owner": self.group.owner,
            "members": list(self.group.members),
            "epoch": self.group.epoch,
            "recipient": self.recipient,
            "sealed_to": self.sealed_to,
            "sealed_by": self.sealed_by,
            "sealed_key": base64.b64encode(self.sealed_key).decode("ascii"),
            "created_ms": self.created_ms,
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> GroupKeyOffer:
        """Parse an offer as received.

        Raises:
            GroupError: not a canonical version-1 offer; the message names the field.
        """
        if len(data) > 64 * 1024:
            raise GroupError("a group key offer is at most 64 KiB")
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise GroupError("a group key offer is a JSON object") from e
        offer = _parse_offer(document)
        if offer.to_bytes() != data:
            raise GroupError("the group key offer is not in canonical form")
        return offer


def _parse_offer(document: object) -> GroupKeyOffer:
    if not isinstance(document, dict) or set(document) != _OFFER_FIELDS:
        raise GroupError(f"a group key offer has exactly: {', '.join(sorted(_OFFER_FIELDS))}")
    if document["v"] != OFFER_FORMAT:
        raise GroupError("unknown group key offer format")
    members = document["members"]
    if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
        raise GroupError("members is a list of agency ids")
    try:
        sealed = base64.b64decode(_text(document, "sealed_key", 256), validate=True)
    except (binascii.Error, ValueError) as e:
        raise GroupError("sealed_key is base64") from e
    group = Group(
        group_id=_text(document, "group_id", 36),
        name=_text(document, "name", MAX_NAME),
        owner=AgencyId(_text(document, "owner", 64)),
        members=tuple(AgencyId(m) for m in members),
        epoch=_count(document["epoch"], "epoch"),
    )
    return GroupKeyOffer(
        group=group,
        recipient=AgencyId(_text(document, "recipient", 64)),
        sealed_to=KeyId(_text(document, "sealed_to", 64)),
        sealed_by=KeyId(_text(document, "sealed_by", 64)),
        sealed_key=sealed,
        created_ms=_count(document["created_ms"], "created_ms"),
    )


def _text(document: dict[str, object], name: str, longest: int) -> str:
    value = document[name]
    if not isinstance(value, str) or not 0 < len(value) <= longest:
        raise GroupError(f"{name} is a string of 1-{longest} characters")
    return value


def _count(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQ:
        raise GroupError(f"{name} is a non-negative integer")
    return value


def seal_group_key(key: bytes, *, owner_secret: PrivateKey, recipient_public: bytes) -> bytes:
    return bytes(Box(owner_secret, PublicKey(recipient_public)).encrypt(key))


def open_group_key(sealed: bytes, *, recipient_secret: PrivateKey, owner_public: bytes) -> bytes:
    """Raises: GroupKeyError: the seal does not open, or holds no 32-byte key."""
    try:
        key = bytes(Box(recipient_secret, PublicKey(owner_public)).decrypt(sealed))
    except (CryptoError, ValueError) as e:
        raise GroupKeyError("the group key's seal does not open with this node's key") from e
    if len(key) != KEY_BYTES:
        raise GroupKeyError(f"a group key is {KEY_BYTES} bytes")
    return key


def sign_offer(document: bytes, key: SigningKey) -> bytes:
    return bytes(key.sign(SIGNING_CONTEXT + document).signature)


def verify_offer(document: bytes, signature: bytes, owner_keys: Sequence[bytes]) -> GroupKeyOffer:
    """The offer, once one of its owner's active signing keys verifies the signature.

    Raises:
        GroupKeyError: no listed key of the owner signed it.
        GroupError: the document is not a valid offer.
    """
    for key in owner_keys:
        try:
            VerifyKey(key).verify(SIGNING_CONTEXT + document, signature)
        except (BadSignatureError, ValueError):
            continue
        return GroupKeyOffer.from_bytes(document)
    raise GroupKeyError("the group key offer is not signed by the group owner's listed key")


# --- the per-member logs ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TagEntry:
    seq: int
    epoch: int
    tag: bytes
    tombstone: bool = False


@dataclass(frozen=True, kw_only=True)
class TagPage:
    """One answer to a pull: entries after the asked number, and the publisher's newest one."""

    entries: tuple[TagEntry, ...]
    last_seq: int


def live_tags(entries: Iterable[TagEntry], epoch: int) -> set[bytes]:
    """Tags of ``epoch`` whose newest entry adds them (entries in any order)."""
    newest: dict[bytes, TagEntry] = {}
    for entry in entries:
        if entry.epoch == epoch and (entry.tag not in newest or newest[entry.tag].seq < entry.seq):
            newest[entry.tag] = entry
    return {t for t, entry in newest.items() if not entry.tombstone}


def next_entries(
    *, live: set[bytes], wanted: set[bytes], epoch: int, after_seq: int
) -> list[TagEntry]:
    """The entries that turn ``live`` into ``wanted``: tombstones first, then additions, in a
    fixed order (sorted tags), numbered from ``after_seq + 1``."""
    changes = [(t, True) for t in sorted(live - wanted)] + [
        (t, False) for t in sorted(wanted - live)
    ]
    return [
        TagEntry(seq=after_seq + n, epoch=epoch, tag=t, tombstone=dead)
        for n, (t, dead) in enumerate(changes, start=1)
    ]


def check_pull(*, after_seq: int, limit: int) -> int:
    """The page size to answer with (``limit`` 0: the largest).

    Raises:
        GroupError: a number out of range.
    """
    if not 0 <= after_seq <= MAX_SEQ:
        raise GroupError(f"after_seq is between 0 and {MAX_SEQ}")
    if not 0 <= limit <= MAX_PAGE:
        raise GroupError(f"limit is between 1 and {MAX_PAGE} (0: {MAX_PAGE})")
    return limit or MAX_PAGE


def verify_page(page: TagPage, *, after_seq: int, limit: int) -> None:
    """Check a page a publisher answered: numbered on from ``after_seq`` without gaps, no more
    than asked, well-formed tags, a newest number that covers them.

    Raises:
        GroupError: the page breaks one of these rules; the message says which.
    """
    if len(page.entries) > limit:
        raise GroupError(f"the page holds {len(page.entries)} entries; {limit} were asked for")
    for n, entry in enumerate(page.entries, start=1):
        if entry.seq != after_seq + n:
            raise GroupError(f"entry {n} is numbered {entry.seq}, not {after_seq + n}")
        if len(entry.tag) != TAG_BYTES:
            raise GroupError(f"entry {entry.seq}: a tag is {TAG_BYTES} bytes")
        if not 0 < entry.epoch <= MAX_SEQ:
            raise GroupError(f"entry {entry.seq}: the epoch is a positive integer")
    newest = after_seq + len(page.entries)
    if not newest <= page.last_seq <= MAX_SEQ:
        raise GroupError(f"the publisher's newest entry {page.last_seq} is before {newest}")
