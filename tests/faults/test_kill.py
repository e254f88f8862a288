# SPDX-License-Identifier: Apache-2.0
"""SIGKILL at random moments, on SQLite and PostgreSQL: nothing lost, nothing applied twice.

CI runs a few dozen cycles; ``python -m ops.chaos.campaign`` runs long campaigns.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.chaos.campaign import make_nodes, run_campaign

CYCLES = int(os.environ.get("COMITY_KILL_CYCLES", "24"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_cycles_lose_nothing_and_duplicate_nothing(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    configs = make_nodes(tmp_path, node_database_urls)
    report = run_campaign(configs, tmp_path, cycles=CYCLES, seed=CYCLES)
    print("\n".join(report.lines()))  # noqa: T201 (the campaign's figures, shown with -s)
    assert report.cycles == CYCLES
    assert report.sent > CYCLES  # the load really ran through the kills
    assert report.lost == []
    assert report.duplicated == []
    assert report.disagreements == []
    assert report.undrained == 0
    assert report.delivered == report.sent
