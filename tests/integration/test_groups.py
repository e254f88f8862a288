# SPDX-License-Identifier: Apache-2.0
"""Sharing groups between real nodes over mutual TLS: keys handed to members only, tags
published, copied by sequence number and matched, tombstones and rotations propagated, and
refusals that change nothing."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from sqlalchemy import delete, func
from sqlmodel import col, select

from node.cli.main import main
from node.errors import ErrorKind, PeerRejectedError, UnknownAgencyError
from node.ids import AgencyId
from node.indicators.groups import (
    TAG_BYTES,
    Group,
    GroupKeyOffer,
    GroupMembershipError,
    new_group_key,
    seal_group_key,
    sign_offer,
)
from node.indicators.sets import Indicator, IndicatorError
from node.indicators.tlp import TlpEgressError
from node.services.group_views import GroupView
from node.storage import group_repo
from node.storage.engine import transaction
from node.storage.tables import (
    GroupPublication,
    GroupTagRow,
    SharingGroupKey,
    SharingGroupMember,
    SharingGroupRow,
)
from node.transport.groups_servicer import GroupsClient
from tests.integration.harness import Federation

UNIT, AUTHORITY, THIRD = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
PHONE, ACCOUNT, DOMAIN = "+372 5123 4567", "Chirper:@Orbit_Watch_77", "doxx-board.example"
CANONICAL_PHONE = "+37251234567"
GROUP_TABLES = (SharingGroupRow, SharingGroupMember, SharingGroupKey, GroupPublication, GroupTagRow)


async def own_set(fed: Federation, agency: str, tlp: str, *items: tuple[str, str]) -> str:
    service = fed.nodes[agency].indicators
    recipients = [a for a in (UNIT, AUTHORITY, THIRD) if a != agency] if tlp != "green" else []
    created = await service.create(tlp=tlp, recipients=recipients, clients={})
    set_id = created.indicator_set.set_id
    await service.add(set_id, [Indicator.of(kind, value) for kind, value in items])
    return set_id


async def a_group(fed: Federation, *members: AgencyId) -> GroupView:
    view = await fed.nodes[UNIT].groups.create("doxxing wave", list(members))
    assert view.undelivered == ()
    return view


def group_rows(fed: Federation, agency: str) -> dict[str, int]:
    with transaction(fed.nodes[agency].engine) as session:
        return {
            table.__tablename__: session.exec(select(func.count()).select_from(table)).one()
            for table in GROUP_TABLES
        }


def client_of(fed: Federation, agency: str) -> GroupsClient:
    return GroupsClient(peers=fed.nodes[agency].peers, timeout_s=2.0)


async def matched(fed: Federation, agency: str, group_id: str) -> dict[str, tuple[str, ...]]:
    found = await fed.nodes[agency].groups.matches(group_id)
    return {m.value: m.agencies for m in found.matches}


async def test_members_match_published_indicators_without_exchanging_them(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    unit_set = await own_set(fed, UNIT, "green", ("phone", PHONE), ("platform_account", ACCOUNT))
    authority_set = await own_set(fed, AUTHORITY, "green", ("phone", PHONE), ("domain", DOMAIN))
    group = (await a_group(fed, AUTHORITY, THIRD)).group
    for agency in (AUTHORITY, THIRD):
        held = await fed.nodes[agency].groups.get(group.group_id)
        assert held.group == group

    published = await fed.nodes[UNIT].groups.publish(group.group_id, unit_set)
    assert published.published_sets == (unit_set,)
    assert published.own_seq == 2
    await fed.nodes[AUTHORITY].groups.publish(group.group_id, authority_set)

    outcomes = await fed.nodes[UNIT].groups.sync(group.group_id)
    assert {(o.publisher, o.fetched, o.held_seq, o.error) for o in outcomes} == {
        (AUTHORITY, 2, 2, None),
        (THIRD, 0, 0, None),
    }
    assert await matched(fed, UNIT, group.group_id) == {CANONICAL_PHONE: (AUTHORITY,)}
    await fed.nodes[AUTHORITY].groups.sync()
    assert await matched(fed, AUTHORITY, group.group_id) == {CANONICAL_PHONE: (UNIT,)}
    # THIRD holds both logs but no indicator of its own: it learns no value.
    await fed.nodes[THIRD].groups.sync(group.group_id)
    assert await matched(fed, THIRD, group.group_id) == {}

    # The cursor: a second sync copies nothing and stores nothing twice.
    before = group_rows(fed, UNIT)
    again = await fed.nodes[UNIT].groups.sync(group.group_id)
    assert [o.fetched for o in again] == [0, 0]
    assert group_rows(fed, UNIT) == before

    # Only 16-byte tags travelled; no log line carries a value or a tag.
    with transaction(fed.nodes[THIRD].engine) as session:
        tags = list(session.exec(select(GroupTagRow.tag)))
    assert len(tags) == 4
    assert all(len(t) == TAG_BYTES for t in tags)
    for record in caplog.records:
        text = record.getMessage()
        assert CANONICAL_PHONE not in text
        assert all(t.hex() not in text for t in tags)


async def test_a_revoked_set_reaches_the_other_members_as_tombstones(fed: Federation) -> None:
    unit_set = await own_set(fed, UNIT, "green", ("phone", PHONE))
    authority_set = await own_set(fed, AUTHORITY, "green", ("phone", PHONE))
    group = (await a_group(fed, AUTHORITY, THIRD)).group
    await fed.nodes[UNIT].groups.publish(group.group_id, unit_set)
    await fed.nodes[AUTHORITY].groups.publish(group.group_id, authority_set)
    await fed.nodes[UNIT].groups.sync(group.group_id)
    assert await matched(fed, UNIT, group.group_id) == {CANONICAL_PHONE: (AUTHORITY,)}

    await fed.nodes[AUTHORITY].indicators.revoke(authority_set)
    outcomes = await fed.nodes[UNIT].groups.sync(group.group_id)
    assert {o.publisher: o.fetched for o in outcomes} == {AUTHORITY: 1, THIRD: 0}
    assert await matched(fed, UNIT, group.group_id) == {}
    with transaction(fed.nodes[UNIT].engine) as session:
        entries = group_repo.entries_after(
            session, group_id=group.group_id, publisher=AUTHORITY, after_seq=0, limit=10
        )
    assert [(e.seq, e.tombstone) for e in entries] == [(1, False), (2, True)]


async def test_rotation_leaves_the_removed_member_without_the_new_key(fed: Federation) -> None:
    unit_set = await own_set(fed, UNIT, "green", ("phone", PHONE))
    third_set = await own_set(fed, THIRD, "green", ("phone", PHONE))
    authority_set = await own_set(fed, AUTHORITY, "green", ("phone", PHONE))
    group = (await a_group(fed, AUTHORITY, THIRD)).group
    for agency, set_id in ((UNIT, unit_set), (THIRD, third_set), (AUTHORITY, authority_set)):
        await fed.nodes[agency].groups.publish(group.group_id, set_id)
    await fed.nodes[UNIT].groups.sync(group.group_id)
    assert await matched(fed, UNIT, group.group_id) == {CANONICAL_PHONE: (AUTHORITY, THIRD)}

    rotated = await fed.nodes[UNIT].groups.rotate(group.group_id, [THIRD])
    assert rotated.group.epoch == 2
    assert rotated.group.members == (UNIT, AUTHORITY)
    assert rotated.undelivered == ()
    authority_view = await fed.nodes[AUTHORITY].groups.get(group.group_id)
    assert authority_view.group == rotated.group
    # The removed member keeps epoch 1 and never sees the key of epoch 2.
    third = fed.nodes[THIRD]
    assert (await third.groups.get(group.group_id)).group.epoch == 1
    with transaction(third.engine) as session:
        assert group_repo.group_key(session, group.group_id, 2) is None

    # The remaining members republished under the new key and match again.
    await fed.nodes[UNIT].groups.sync(group.group_id)
    assert await matched(fed, UNIT, group.group_id) == {CANONICAL_PHONE: (AUTHORITY,)}
    # The removed member can no longer pull from anyone.
    refused = await third.groups.sync(group.group_id)
    assert {o.publisher for o in refused} == {UNIT, AUTHORITY}
    for outcome in refused:
        assert isinstance(outcome.error, PeerRejectedError)
        assert outcome.error.kind is ErrorKind.PERMISSION_DENIED
        assert outcome.error.peer_code == "not_group_member"
        assert outcome.fetched == 0

    with pytest.raises(GroupMembershipError, match="owned by"):
        await fed.nodes[AUTHORITY].groups.rotate(group.group_id, [])


async def test_only_members_may_pull_a_log(fed: Federation) -> None:
    unit_set = await own_set(fed, UNIT, "green", ("phone", PHONE))
    group = (await a_group(fed, AUTHORITY)).group
    await fed.nodes[UNIT].groups.publish(group.group_id, unit_set)
    unit_member = fed.nodes[THIRD].directory.find(UNIT)
    assert unit_member is not None
    for group_id in (group.group_id, "0b6f3f57-3c55-4c0e-8a43-2f2b1d7e9a10"):
        with pytest.raises(PeerRejectedError) as caught:
            await client_of(fed, THIRD).pull_tags(
                unit_member, group_id=group_id, after_seq=0, limit=10
            )
        assert caught.value.kind is ErrorKind.PERMISSION_DENIED
        assert caught.value.peer_code == "not_group_member"
    page = await client_of(fed, AUTHORITY).pull_tags(
        unit_member, group_id=group.group_id, after_seq=0, limit=10
    )
    assert [e.seq for e in page.entries] == [1]
    assert page.last_seq == 1


async def test_bad_pulls_and_offers_are_refused_and_change_nothing(fed: Federation) -> None:
    group = (await a_group(fed, AUTHORITY)).group
    unit_member = fed.nodes[AUTHORITY].directory.find(UNIT)
    authority_member = fed.nodes[UNIT].directory.find(AUTHORITY)
    assert unit_member is not None
    assert authority_member is not None
    client = client_of(fed, AUTHORITY)
    for after_seq, limit, message in ((0, 5000, "limit is between"), (2**63, 1, "after_seq")):
        with pytest.raises(PeerRejectedError, match=message) as caught:
            await client.pull_tags(
                unit_member, group_id=group.group_id, after_seq=after_seq, limit=limit
            )
        assert caught.value.kind is ErrorKind.INVALID_INPUT

    before = group_rows(fed, AUTHORITY)
    unit_keys, third_keys = fed.keys(UNIT), fed.keys(THIRD)
    offer = GroupKeyOffer(
        group=Group(
            group_id=group.group_id,
            name=group.name,
            owner=UNIT,
            members=group.members,
            epoch=2,
        ),
        recipient=AUTHORITY,
        sealed_to=authority_member.encryption_key_id,
        sealed_by=unit_keys.encryption_key_id,
        sealed_key=seal_group_key(
            new_group_key(),
            owner_secret=unit_keys.encryption,
            recipient_public=authority_member.encryption_key,
        ),
        created_ms=1,
    )
    document = offer.to_bytes()
    unit_client, third_client = client_of(fed, UNIT), client_of(fed, THIRD)
    cases = [
        (unit_client, document, sign_offer(document, third_keys.signing), "bad_group_key"),
        (third_client, document, sign_offer(document, unit_keys.signing), "not_group_member"),
        (unit_client, b'{"v":1}', sign_offer(b'{"v":1}', unit_keys.signing), "bad_group"),
    ]
    for sender, body, signature, code in cases:
        with pytest.raises(PeerRejectedError) as caught:
            await sender.offer_group_key(authority_member, body, signature)
        assert caught.value.peer_code == code
    stale = GroupKeyOffer(**{**offer.__dict__, "group": group})
    stale_document = stale.to_bytes()
    with pytest.raises(PeerRejectedError) as caught:
        await unit_client.offer_group_key(
            authority_member, stale_document, sign_offer(stale_document, unit_keys.signing)
        )
    assert caught.value.peer_code == "replayed_message_id"
    assert group_rows(fed, AUTHORITY) == before
    assert (await fed.nodes[AUTHORITY].groups.get(group.group_id)).group.epoch == 1


async def test_a_log_with_a_gap_is_refused_whole(fed: Federation) -> None:
    unit_set = await own_set(
        fed, UNIT, "green", ("phone", PHONE), ("platform_account", ACCOUNT), ("domain", DOMAIN)
    )
    group = (await a_group(fed, AUTHORITY)).group
    await fed.nodes[UNIT].groups.publish(group.group_id, unit_set)
    # A publisher whose log lost an entry (here: deleted behind the node's back).
    with transaction(fed.nodes[UNIT].engine) as session:
        session.execute(
            delete(GroupTagRow).where(
                col(GroupTagRow.group_id) == group.group_id, col(GroupTagRow.seq) == 2
            )
        )
    before = group_rows(fed, AUTHORITY)
    [outcome] = await fed.nodes[AUTHORITY].groups.sync(group.group_id)
    assert outcome.error is not None
    assert outcome.error.code == "bad_group"
    assert "numbered 3, not 2" in outcome.error.message
    assert (outcome.fetched, outcome.held_seq) == (0, 0)
    assert group_rows(fed, AUTHORITY) == before


async def test_publishing_needs_a_label_that_allows_every_member(fed: Federation) -> None:
    red = await own_set(fed, UNIT, "red", ("phone", PHONE))
    group = (await a_group(fed, AUTHORITY, THIRD)).group
    # Named for AUTHORITY and THIRD: allowed.
    assert (await fed.nodes[UNIT].groups.publish(group.group_id, red)).own_seq == 1

    service = fed.nodes[UNIT].indicators
    created = await service.create(tlp="amber+strict", recipients=[AUTHORITY], clients={})
    narrow = created.indicator_set.set_id
    await service.add(narrow, [Indicator.of("domain", DOMAIN)])
    before = group_rows(fed, UNIT)
    with pytest.raises(TlpEgressError, match=f"group member {THIRD}"):
        await fed.nodes[UNIT].groups.publish(group.group_id, narrow)
    received = await own_set(fed, AUTHORITY, "green", ("phone", PHONE))
    await fed.nodes[AUTHORITY].indicators.share(received, UNIT)
    with pytest.raises(IndicatorError, match=f"belongs to {AUTHORITY}"):
        await fed.nodes[UNIT].groups.publish(group.group_id, received)
    with pytest.raises(UnknownAgencyError):
        await fed.nodes[UNIT].groups.create("x", [AgencyId("zz-nobody")])
    assert group_rows(fed, UNIT) == before


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_the_cli_creates_publishes_syncs_and_matches(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    unit = ("--config", str(fed.configs[UNIT].config_path))
    authority = ("--config", str(fed.configs[AUTHORITY].config_path))
    unit_set = await own_set(fed, UNIT, "green", ("phone", PHONE))
    authority_set = await own_set(fed, AUTHORITY, "green", ("phone", PHONE))
    code, out, err = await cli(
        capsys, "groups", "create", "wave", "--member", AUTHORITY, "--json", *unit
    )
    assert code == 0, err
    group_id = json.loads(out)["group_id"]
    code, _, err = await cli(capsys, "groups", "publish", group_id, unit_set, *unit)
    assert code == 0, err
    code, _, err = await cli(capsys, "groups", "publish", group_id, authority_set, *authority)
    assert code == 0, err
    code, out, err = await cli(capsys, "groups", "sync", group_id, "--json", *unit)
    assert code == 0, err
    assert json.loads(out) == [
        {
            "group_id": group_id,
            "publisher": AUTHORITY,
            "fetched": 1,
            "held_seq": 1,
            "error_code": None,
        }
    ]
    code, out, err = await cli(capsys, "groups", "matches", group_id, "--json", *unit)
    assert code == 0, err
    assert json.loads(out) == [{"type": "phone", "value": CANONICAL_PHONE, "agencies": [AUTHORITY]}]
    code, out, err = await cli(capsys, "groups", "list", "--json", *authority)
    assert code == 0, err
    listed = json.loads(out)
    assert [(g["group_id"], g["owner"], g["epoch"]) for g in listed] == [(group_id, UNIT, 1)]
    assert listed[0]["published_sets"] == [authority_set]
    code, out, err = await cli(capsys, "groups", "rotate", group_id, *unit)
    assert code == 0, err
    assert "key epoch 2" in out
    code, out, err = await cli(capsys, "groups", "list", *authority)
    assert code == 0, err
    assert "wave" in out
    assert group_id in out
    code, _, err = await cli(capsys, "groups", "publish", group_id, "no-such-set", *unit)
    assert code == 1
    assert "[not_found]" in err


async def named_set(fed: Federation, agency: str, recipients: list[AgencyId]) -> str:
    service = fed.nodes[agency].indicators
    created = await service.create(tlp="amber+strict", recipients=recipients, clients={})
    set_id = created.indicator_set.set_id
    await service.add(set_id, [Indicator.of("phone", PHONE)])
    return set_id


async def test_an_added_member_sees_only_tags_of_sets_whose_labels_allow_it(
    fed: Federation,
) -> None:
    group = (await a_group(fed, AUTHORITY)).group
    # The authority's set names only the unit; the unit's own set is GREEN.
    narrow = await named_set(fed, AUTHORITY, [UNIT])
    await fed.nodes[AUTHORITY].groups.publish(group.group_id, narrow)
    await fed.nodes[UNIT].groups.publish(
        group.group_id, await own_set(fed, UNIT, "green", ("phone", PHONE))
    )
    newcomer_set = await own_set(fed, THIRD, "green", ("phone", PHONE))

    added = await fed.nodes[UNIT].groups.rotate(group.group_id, [], [THIRD])
    assert added.group.members == (UNIT, AUTHORITY, THIRD)
    assert (added.group.epoch, added.undelivered) == (2, ())
    assert (await fed.nodes[THIRD].groups.get(group.group_id)).group == added.group
    await fed.nodes[THIRD].groups.sync(group.group_id)
    # The newcomer matches the unit's GREEN set, not the set the authority named the unit for:
    # the authority tombstoned those tags when the key of the new member list reached it.
    assert await matched(fed, THIRD, group.group_id) == {CANONICAL_PHONE: (UNIT,)}
    await fed.nodes[THIRD].groups.publish(group.group_id, newcomer_set)
    await fed.nodes[UNIT].groups.sync(group.group_id)
    assert await matched(fed, UNIT, group.group_id) == {CANONICAL_PHONE: (THIRD,)}


async def test_adding_an_agency_a_published_set_does_not_allow_is_refused(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    group = (await a_group(fed, AUTHORITY)).group
    await fed.nodes[UNIT].groups.publish(group.group_id, await named_set(fed, UNIT, [AUTHORITY]))
    before = group_rows(fed, UNIT)
    with pytest.raises(TlpEgressError, match=THIRD):
        await fed.nodes[UNIT].groups.rotate(group.group_id, [], [THIRD])
    for bad, error in (([AUTHORITY], "member already"), ([AgencyId("zz-nobody")], "zz-nobody")):
        with pytest.raises(Exception, match=error):
            await fed.nodes[UNIT].groups.rotate(group.group_id, [], bad)
    assert group_rows(fed, UNIT) == before
    assert group_rows(fed, THIRD)["sharing_group"] == 0
    config = str(fed.configs[UNIT].config_path)
    code = await asyncio.to_thread(
        main, ["groups", "rotate", group.group_id, "--add", THIRD, "--config", config]
    )
    assert code != 0
    assert "tlp_forbids" in capsys.readouterr().err
