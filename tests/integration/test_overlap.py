# SPDX-License-Identifier: Apache-2.0
"""Private overlap counting between real nodes: the count, the limits, bad points, the
audit record, and what a malicious asker can still learn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from node.cli.main import main
from node.errors import PeerRejectedError
from node.ids import AgencyId
from node.indicators.psi import (
    blind_items,
    blind_points,
    hash_to_points,
    input_digest,
    item_bytes,
    new_secret,
)
from node.indicators.sets import Indicator
from node.storage import indicator_repo
from node.storage.engine import transaction
from tests.integration.harness import (
    Federation,
    answered_checks,
    make_configs,
    running_federation,
)

REASON = "doxxing campaign against a journalist: do the two cases share accounts?"
UNIT, AUTHORITY, THIRD = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)


@pytest.fixture
async def limited(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    """Each peer may ask the central authority for two overlap checks a day."""
    configs = make_configs(tmp_path, node_database_urls)
    configs[AUTHORITY] = replace(configs[AUTHORITY], overlap_checks_per_day=2)
    async with running_federation(configs) as federation:
        yield federation


def accounts(names: Iterable[str]) -> list[bytes]:
    return [item_bytes("platform_account", f"chirper:{n}") for n in names]


def usage(fed: Federation, agency: str, requester: str) -> indicator_repo.OverlapUsage:
    with transaction(fed.nodes[agency].engine) as session:
        return indicator_repo.overlap_usage(session, requester=requester, since_ms=0)


async def own_set(fed: Federation, agency: str, accounts: list[str], tlp: str = "green") -> str:
    service = fed.nodes[agency].indicators
    created = await service.create(tlp=tlp, recipients=[], clients={})
    set_id = created.indicator_set.set_id
    await service.add(set_id, [Indicator.of("platform_account", f"chirper:{a}") for a in accounts])
    return set_id


async def test_two_agencies_learn_how_many_accounts_they_share(
    limited: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = limited
    await own_set(fed, UNIT, [f"user{i}" for i in range(40)])
    await own_set(fed, AUTHORITY, [f"user{i}" for i in range(30, 100)])
    # A set the authority merely received is someone else's case: it does not count.
    shared_in = await own_set(fed, THIRD, [f"user{i}" for i in range(40)])
    await fed.nodes[THIRD].indicators.share(shared_in, AUTHORITY)

    result = await fed.nodes[UNIT].overlap.check(AUTHORITY, reason=REASON)
    assert (result.mine, result.theirs, result.shared) == (40, 70, 10)

    config = str(fed.configs[UNIT].config_path)
    code = await asyncio.to_thread(
        main,
        ["overlap", "check", "--with", AUTHORITY, "--reason", REASON, "--json", "--config", config],
    )
    out = capsys.readouterr().out
    assert code == 0
    answer = json.loads(out)
    assert answer.pop("check_id") in answered_checks(fed, AUTHORITY)
    assert answer == {"agency": AUTHORITY, "mine": 40, "theirs": 70, "shared": 10}

    # The third check within 24 hours is refused, and counts nothing.
    with pytest.raises(PeerRejectedError) as caught:
        await fed.nodes[UNIT].overlap.check(AUTHORITY, reason=REASON)
    assert caught.value.peer_code == "overlap_limit"
    # Another agency has its own allowance.
    assert (await fed.nodes[THIRD].overlap.check(AUTHORITY, reason=REASON)).shared == 10
    assert len(answered_checks(fed, AUTHORITY)) == 3


async def test_a_check_with_only_some_sets(fed: Federation) -> None:
    first = await own_set(fed, UNIT, ["a", "b"])
    await own_set(fed, UNIT, ["c", "d"])
    await own_set(fed, AUTHORITY, ["b", "c"])
    assert (await fed.nodes[UNIT].overlap.check(AUTHORITY, reason=REASON)).shared == 2
    only = await fed.nodes[UNIT].overlap.check(AUTHORITY, [first], reason=REASON)
    assert (only.mine, only.shared) == (2, 1)


async def test_invalid_points_are_refused(fed: Federation) -> None:
    unit = fed.nodes[UNIT]
    authority = unit.directory.find(AUTHORITY)
    assert authority is not None
    with pytest.raises(PeerRejectedError) as caught:
        await unit.peers.count_overlap(authority, [bytes(32)], REASON)
    assert caught.value.peer_code == "bad_overlap"


async def test_concurrent_checks_never_exceed_the_daily_limit(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    """Checks that arrive together are counted one after another: on PostgreSQL, 8 at once
    against a limit of 3 used to pass the count together, and more than 3 were answered."""
    configs = make_configs(tmp_path, node_database_urls)
    configs[AUTHORITY] = replace(configs[AUTHORITY], overlap_checks_per_day=3)
    async with running_federation(configs) as fed:
        await own_set(fed, UNIT, ["user1"])
        for _ in range(5):  # the race was lost in most rounds, not all
            results = await asyncio.gather(
                *(fed.nodes[UNIT].overlap.check(AUTHORITY, reason=REASON) for _ in range(8)),
                return_exceptions=True,
            )
            refused = [r for r in results if isinstance(r, PeerRejectedError)]
            assert {r.peer_code for r in refused} == {"overlap_limit"}
            assert len(results) - len(refused) == 3
            with transaction(fed.nodes[AUTHORITY].engine) as session:
                used = indicator_repo.overlap_usage(session, requester=UNIT, since_ms=0)
                assert used.checks == 3
                session.execute(text("DELETE FROM overlap_check"))  # a new day's allowance


async def test_every_answered_check_is_logged_with_commitments_only(fed: Federation) -> None:
    await own_set(fed, AUTHORITY, ["a", "b", "c"])
    authority = fed.nodes[UNIT].directory.find(AUTHORITY)
    assert authority is not None
    points = blind_items(accounts(str(n) for n in range(12)), new_secret())
    check_id, _, _ = await fed.nodes[UNIT].peers.count_overlap(authority, points, REASON)

    leaf, openings = answered_checks(fed, AUTHORITY)[check_id]
    p = leaf.public
    # Public: the two agencies and the hour, nothing of the case.
    assert (p.sender, p.recipient, p.request_type, p.legal_basis) == (UNIT, AUTHORITY, "", "")
    assert REASON.encode() not in leaf.to_bytes()
    committed = {o.name: o.value for o in openings}
    assert committed.pop("exact_time_ms").isdigit()
    assert committed == {
        "input_digest": input_digest(points).hex(),
        "items": "12",
        "justification": REASON,
    }
    assert all(leaf.opens(o) for o in openings)
    # The asker logs nothing: a check is not an exchange.
    assert answered_checks(fed, UNIT) == {}


async def test_repeated_non_canonical_and_unexplained_points_are_refused_uncounted(
    fed: Federation,
) -> None:
    authority = fed.nodes[UNIT].directory.find(AUTHORITY)
    assert authority is not None
    points = blind_items(accounts(str(n) for n in range(12)), new_secret())
    # X25519 ignores the top bit: the same point spelled a second way.
    respelled = (int.from_bytes(points[0], "little") | 1 << 255).to_bytes(32, "little")
    for sent, reason, problem in [
        ([*points, points[3]], REASON, "repeats an earlier point"),
        ([respelled, *points], REASON, "not a canonical"),
        (points, "  ", "states its reason"),
    ]:
        with pytest.raises(PeerRejectedError, match=problem) as caught:
            await fed.nodes[UNIT].peers.count_overlap(authority, sent, reason)
        assert caught.value.peer_code == "bad_overlap"
    assert usage(fed, AUTHORITY, UNIT) == indicator_repo.OverlapUsage(checks=0, items=0)
    assert answered_checks(fed, AUTHORITY) == {}


async def test_a_check_smaller_than_the_minimum_is_refused(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    configs = make_configs(tmp_path, node_database_urls)
    configs[AUTHORITY] = replace(configs[AUTHORITY], overlap_min_items=10)
    async with running_federation(configs) as fed:
        await own_set(fed, AUTHORITY, [f"user{i}" for i in range(5)])
        await own_set(fed, UNIT, [f"user{i}" for i in range(9)])
        with pytest.raises(PeerRejectedError) as caught:
            await fed.nodes[UNIT].overlap.check(AUTHORITY, reason=REASON)
        assert caught.value.peer_code == "overlap_too_small"
        assert usage(fed, AUTHORITY, UNIT).checks == 0
        await own_set(fed, UNIT, ["user9"])
        assert (await fed.nodes[UNIT].overlap.check(AUTHORITY, reason=REASON)).shared == 5


async def test_a_malicious_asker_learns_membership_only_within_its_item_budget(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    """The attack no proof can stop in this protocol (README, "What a malicious asker can
    learn"): blinding each chosen value with its own secret, the asker learns which of them
    the answerer holds, in one check. The answerer charges every value to the asker's daily
    item budget and logs how many there were."""
    configs = make_configs(tmp_path, node_database_urls)
    configs[AUTHORITY] = replace(configs[AUTHORITY], overlap_items_per_day=40)
    async with running_federation(configs) as fed:
        held = {f"user{i}" for i in range(0, 2000, 3)}
        await own_set(fed, AUTHORITY, sorted(held))
        authority = fed.nodes[UNIT].directory.find(AUTHORITY)
        assert authority is not None

        async def attack(guesses: list[str]) -> list[str]:
            secrets = [new_secret() for _ in guesses]
            points = [
                blind_points([point], secret)[0]
                for point, secret in zip(hash_to_points(accounts(guesses)), secrets, strict=True)
            ]
            _, doubled, theirs = await fed.nodes[UNIT].peers.count_overlap(
                authority, sorted(points), REASON
            )
            answered = set(doubled)
            return [
                guess
                for guess, secret in zip(guesses, secrets, strict=True)
                if answered.intersection(blind_points(theirs, secret))
            ]

        guesses = [f"user{i}" for i in range(22)]
        assert await attack(guesses) == [g for g in guesses if g in held]
        [(_, openings)] = answered_checks(fed, AUTHORITY).values()
        assert {o.name: o.value for o in openings}["items"] == "22"
        # 22 of the 40 items a day are used: 22 more guesses are refused.
        with pytest.raises(PeerRejectedError) as caught:
            await attack([f"user{i}" for i in range(22, 44)])
        assert caught.value.peer_code == "overlap_limit"
        assert usage(fed, AUTHORITY, UNIT) == indicator_repo.OverlapUsage(checks=1, items=22)


async def test_concurrent_checks_never_exceed_the_item_budget(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    configs = make_configs(tmp_path, node_database_urls)
    configs[AUTHORITY] = replace(
        configs[AUTHORITY], overlap_checks_per_day=100, overlap_items_per_day=30
    )
    async with running_federation(configs) as fed:
        await own_set(fed, UNIT, [f"user{i}" for i in range(10)])
        results = await asyncio.gather(
            *(fed.nodes[UNIT].overlap.check(AUTHORITY, reason=REASON) for _ in range(8)),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, PeerRejectedError)]
        assert {r.peer_code for r in refused} == {"overlap_limit"}
        assert len(results) - len(refused) == 3
        assert usage(fed, AUTHORITY, UNIT) == indicator_repo.OverlapUsage(checks=3, items=30)
        assert len(answered_checks(fed, AUTHORITY)) == 3
