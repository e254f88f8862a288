# SPDX-License-Identifier: Apache-2.0
"""Sharing groups: tags, sealed and signed key offers, log folding and page checks."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from node.crypto.keys import key_id
from node.ids import AgencyId
from node.indicators.groups import (
    MAX_PAGE,
    TAG_BYTES,
    Group,
    GroupError,
    GroupKeyError,
    GroupKeyOffer,
    GroupMembershipError,
    TagEntry,
    TagPage,
    check_pull,
    live_tags,
    new_group_key,
    next_entries,
    open_group_key,
    seal_group_key,
    sign_offer,
    tag,
    verify_offer,
    verify_page,
)

GROUP_ID = "5d0c1f1e-0f1e-4b7a-9c3d-2e1f0a9b8c7d"
OTHER_GROUP = "0b6f3f57-3c55-4c0e-8a43-2f2b1d7e9a10"
SECRET = "+37251234567"
OWNER_SIGNING = SigningKey.generate()
OWNER_SEAL, MEMBER_SEAL = PrivateKey.generate(), PrivateKey.generate()


def a_group(**changes: Any) -> Group:
    fields: dict[str, Any] = {
        "group_id": GROUP_ID,
        "name": "doxxing wave",
        "owner": "aa-unit",
        "members": ("aa-unit", "bb-authority", "cc-authority"),
        "epoch": 1,
    }
    return Group(**{**fields, **changes})


def an_offer(key: bytes, **changes: Any) -> GroupKeyOffer:
    fields: dict[str, Any] = {
        "group": a_group(),
        "recipient": "bb-authority",
        "sealed_to": key_id(bytes(MEMBER_SEAL.public_key)),
        "sealed_by": key_id(bytes(OWNER_SEAL.public_key)),
        "sealed_key": seal_group_key(
            key, owner_secret=OWNER_SEAL, recipient_public=bytes(MEMBER_SEAL.public_key)
        ),
        "created_ms": 1_764_000_000_000,
    }
    return GroupKeyOffer(**{**fields, **changes})


def test_members_holding_the_same_key_compute_the_same_tag() -> None:
    key = new_group_key()
    first = tag(key, GROUP_ID, "phone", SECRET)
    assert len(first) == TAG_BYTES
    assert tag(key, GROUP_ID, "phone", SECRET) == first


@pytest.mark.parametrize(
    ("key_change", "group_id", "kind", "value"),
    [
        (True, GROUP_ID, "phone", SECRET),  # another epoch's key
        (False, OTHER_GROUP, "phone", SECRET),  # another group
        (False, GROUP_ID, "platform_account", SECRET),  # another type
        (False, GROUP_ID, "phone", "+37251234568"),  # another value
        (False, GROUP_ID, "phone\0", SECRET[1:]),  # the separator cannot be shifted
    ],
)
def test_a_tag_changes_with_key_group_type_and_value(
    key_change: bool, group_id: str, kind: str, value: str
) -> None:
    key = new_group_key()
    other_key = new_group_key() if key_change else key
    assert tag(other_key, group_id, kind, value) != tag(key, GROUP_ID, "phone", SECRET)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"group_id": "not-a-uuid"}, "a group id is a UUID"),
        ({"group_id": GROUP_ID.upper()}, "lower-case canonical form"),
        ({"name": ""}, "name is 1-128"),
        ({"members": ("bb-authority", "aa-unit")}, "sorted"),
        ({"members": ("aa-unit", "aa-unit")}, "once each"),
        ({"members": ("bb-authority", "cc-authority")}, "owner is one of its members"),
        ({"members": ("aa-unit",)}, "2-64 members"),
        ({"epoch": 0}, "positive integer"),
    ],
)
def test_a_malformed_group_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(GroupError, match=message):
        a_group(**changes)


def test_membership_is_checked_by_agency() -> None:
    group = a_group()
    group.check_member(AgencyId("cc-authority"))
    assert group.others(AgencyId("aa-unit")) == ("bb-authority", "cc-authority")
    with pytest.raises(GroupMembershipError, match="dd-outsider is not a member"):
        group.check_member(AgencyId("dd-outsider"))


def test_an_offer_round_trips_and_its_key_opens_only_for_the_recipient() -> None:
    key = new_group_key()
    offer = an_offer(key)
    document = offer.to_bytes()
    signature = sign_offer(document, OWNER_SIGNING)
    received = verify_offer(document, signature, [bytes(OWNER_SIGNING.verify_key)])
    assert received == offer
    opened = open_group_key(
        received.sealed_key,
        recipient_secret=MEMBER_SEAL,
        owner_public=bytes(OWNER_SEAL.public_key),
    )
    assert opened == key
    with pytest.raises(GroupKeyError, match="seal does not open"):
        open_group_key(
            received.sealed_key,
            recipient_secret=PrivateKey.generate(),
            owner_public=bytes(OWNER_SEAL.public_key),
        )


def test_an_offer_signed_by_another_key_or_changed_is_refused() -> None:
    document = an_offer(new_group_key()).to_bytes()
    owner = [bytes(OWNER_SIGNING.verify_key)]
    with pytest.raises(GroupKeyError, match="not signed by the group owner"):
        verify_offer(document, sign_offer(document, SigningKey.generate()), owner)
    signature = sign_offer(document, OWNER_SIGNING)
    tampered = document.replace(b"bb-authority", b"dd-authority", 1)
    with pytest.raises(GroupKeyError):
        verify_offer(tampered, signature, owner)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[]", "has exactly"),
        (b"not json", "is a JSON object"),
        (b'{"v":1}', "has exactly"),
    ],
)
def test_a_malformed_offer_names_what_is_wrong(document: bytes, message: str) -> None:
    with pytest.raises(GroupError, match=message):
        GroupKeyOffer.from_bytes(document)


def test_an_offer_not_in_canonical_form_is_refused() -> None:
    document = an_offer(new_group_key()).to_bytes()
    with pytest.raises(GroupError, match="canonical form"):
        GroupKeyOffer.from_bytes(document.replace(b'{"created_ms"', b'{ "created_ms"', 1))


def test_a_sealed_key_of_the_wrong_size_is_refused() -> None:
    sealed = seal_group_key(
        b"short", owner_secret=OWNER_SEAL, recipient_public=bytes(MEMBER_SEAL.public_key)
    )
    with pytest.raises(GroupKeyError, match="32 bytes"):
        open_group_key(
            sealed, recipient_secret=MEMBER_SEAL, owner_public=bytes(OWNER_SEAL.public_key)
        )


def entry(seq: int, tag_byte: int, *, tombstone: bool = False, epoch: int = 1) -> TagEntry:
    return TagEntry(seq=seq, epoch=epoch, tag=bytes([tag_byte]) * TAG_BYTES, tombstone=tombstone)


def test_the_newest_entry_of_a_tag_decides_whether_it_is_live() -> None:
    entries = [
        entry(4, 1),  # re-added after its tombstone
        entry(1, 1),
        entry(2, 2),
        entry(3, 1, tombstone=True),
        entry(5, 2, tombstone=True),
        entry(6, 3, epoch=2),  # another epoch does not count
    ]
    assert live_tags(entries, 1) == {bytes([1]) * TAG_BYTES}
    assert live_tags(entries, 2) == {bytes([3]) * TAG_BYTES}


def test_next_entries_tombstone_what_went_and_add_what_came() -> None:
    live = {bytes([1]) * TAG_BYTES, bytes([2]) * TAG_BYTES}
    wanted = {bytes([2]) * TAG_BYTES, bytes([3]) * TAG_BYTES}
    entries = next_entries(live=live, wanted=wanted, epoch=1, after_seq=7)
    assert entries == [entry(8, 1, tombstone=True), entry(9, 3)]
    assert live_tags([*[entry(n, t[0]) for n, t in enumerate(live, 1)], *entries], 1) == wanted
    assert next_entries(live=wanted, wanted=wanted, epoch=1, after_seq=9) == []


def test_a_page_must_continue_the_log_without_gaps() -> None:
    verify_page(TagPage(entries=(entry(4, 1), entry(5, 2)), last_seq=9), after_seq=3, limit=2)
    verify_page(TagPage(entries=(), last_seq=3), after_seq=3, limit=10)


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (TagPage(entries=(entry(5, 1),), last_seq=5), "numbered 5, not 4"),
        (TagPage(entries=(entry(4, 1), entry(4, 2)), last_seq=5), "numbered 4, not 5"),
        (TagPage(entries=(entry(4, 1), entry(6, 2)), last_seq=6), "numbered 6, not 5"),
        (TagPage(entries=(entry(4, 1), entry(5, 1), entry(6, 1)), last_seq=6), "3 entries"),
        (
            TagPage(entries=(TagEntry(seq=4, epoch=1, tag=b"short"),), last_seq=4),
            "a tag is 16 bytes",
        ),
        (TagPage(entries=(entry(4, 1, epoch=0),), last_seq=4), "epoch is a positive"),
        (TagPage(entries=(entry(4, 1),), last_seq=3), "newest entry 3 is before 4"),
        (TagPage(entries=(), last_seq=2), "newest entry 2 is before 3"),
    ],
)
def test_a_page_that_breaks_the_log_is_refused(page: TagPage, message: str) -> None:
    with pytest.raises(GroupError, match=message):
        verify_page(page, after_seq=3, limit=2)


def test_pull_numbers_are_checked() -> None:
    assert check_pull(after_seq=0, limit=0) == MAX_PAGE
    assert check_pull(after_seq=5, limit=10) == 10
    with pytest.raises(GroupError, match="limit is between"):
        check_pull(after_seq=0, limit=MAX_PAGE + 1)
    with pytest.raises(GroupError, match="after_seq is between"):
        check_pull(after_seq=2**63, limit=1)


def test_an_offer_never_carries_the_key_in_clear() -> None:
    key = new_group_key()
    offer = an_offer(key)
    assert base64.b64encode(key) not in offer.to_bytes()
    assert replace(offer, created_ms=1).to_bytes() != offer.to_bytes()
