# SPDX-License-Identifier: Apache-2.0
"""Private overlap counting between real nodes: the count, the limit, and bad points."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from node.cli.main import main
from node.errors import PeerRejectedError
from node.ids import AgencyId
from node.indicators.sets import Indicator
from node.storage import indicator_repo
from node.storage.engine import transaction
from tests.integration.harness import Federation, make_configs, running_federation

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

    result = await fed.nodes[UNIT].overlap.check(AUTHORITY)
    assert (result.mine, result.theirs, result.shared) == (40, 70, 10)

    config = str(fed.configs[UNIT].config_path)
    code = await asyncio.to_thread(
        main, ["overlap", "check", "--with", AUTHORITY, "--json", "--config", config]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out) == {"agency": AUTHORITY, "mine": 40, "theirs": 70, "shared": 10}

    # The third check within 24 hours is refused, and counts nothing.
    with pytest.raises(PeerRejectedError) as caught:
        await fed.nodes[UNIT].overlap.check(AUTHORITY)
    assert caught.value.peer_code == "overlap_limit"
    # Another agency has its own allowance.
    assert (await fed.nodes[THIRD].overlap.check(AUTHORITY)).shared == 10


async def test_a_check_with_only_some_sets(fed: Federation) -> None:
    first = await own_set(fed, UNIT, ["a", "b"])
    await own_set(fed, UNIT, ["c", "d"])
    await own_set(fed, AUTHORITY, ["b", "c"])
    assert (await fed.nodes[UNIT].overlap.check(AUTHORITY)).shared == 2
    only = await fed.nodes[UNIT].overlap.check(AUTHORITY, [first])
    assert (only.mine, only.shared) == (2, 1)


async def test_invalid_points_are_refused(fed: Federation) -> None:
    unit = fed.nodes[UNIT]
    authority = unit.directory.find(AUTHORITY)
    assert authority is not None
    with pytest.raises(PeerRejectedError) as caught:
        await unit.peers.count_overlap(authority, [bytes(32)])
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
                *(fed.nodes[UNIT].overlap.check(AUTHORITY) for _ in range(8)),
                return_exceptions=True,
            )
            refused = [r for r in results if isinstance(r, PeerRejectedError)]
            assert {r.peer_code for r in refused} == {"overlap_limit"}
            assert len(results) - len(refused) == 3
            with transaction(fed.nodes[AUTHORITY].engine) as session:
                recorded = indicator_repo.count_overlap_checks(session, requester=UNIT, since_ms=0)
                assert recorded == 3
                session.execute(text("DELETE FROM overlap_check"))  # a new day's allowance
