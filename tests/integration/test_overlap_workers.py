# SPDX-License-Identifier: Apache-2.0
"""A large overlap check between real nodes runs on their worker processes, gives the same
count, and a stopped node leaves no worker behind."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

from node.ids import AgencyId
from node.indicators.psi_workers import PARALLEL_FROM
from node.indicators.sets import Indicator
from tests.integration.harness import make_configs, running_federation

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")


def accounts(first: int, last: int) -> list[Indicator]:
    return [Indicator.of("platform_account", f"chirper:user{i}") for i in range(first, last)]


async def test_a_large_check_counts_on_worker_processes_that_stop_with_the_node(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    configs = make_configs(tmp_path, node_database_urls)
    async with running_federation(configs) as fed:
        for agency, start in ((UNIT, 0), (AUTHORITY, PARALLEL_FROM - 100)):
            service = fed.nodes[agency].indicators
            created = await service.create(tlp="green", recipients=[], clients={})
            await service.add(created.indicator_set.set_id, accounts(start, start + PARALLEL_FROM))

        first = await fed.nodes[UNIT].overlap.check(AUTHORITY, reason="a large check")
        assert (first.mine, first.theirs, first.shared) == (PARALLEL_FROM, PARALLEL_FROM, 100)
        assert fed.nodes[UNIT].psi.cached == PARALLEL_FROM
        assert multiprocessing.active_children()
        # Again, from the cached points of each side's own items.
        assert (
            await fed.nodes[UNIT].overlap.check(AUTHORITY, reason="a large check")
        ).shared == 100

    assert multiprocessing.active_children() == []
