# SPDX-License-Identifier: Apache-2.0
"""A node killed in the middle of migrating its database starts on the next try.

The node process dies (as with kill -9) after one migration was applied and stamped but
before the migration transaction committed: on a fresh database during the first start,
and during an upgrade from the previous schema. The restarted node must migrate and serve.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from node.cli.processes import spawn_node, wait_until_serving
from node.faults import KILL_POINT_ENV
from node.storage.engine import create_engine, current_revision, downgrade, head_revision, upgrade
from ops.chaos.campaign import RECEIVER, Nodes, make_nodes

PREVIOUS = "0016"


def _prepare_previous_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine)
        downgrade(engine, PREVIOUS)
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("start_from", ["fresh", "upgrade"])
def test_a_node_killed_mid_migration_starts_again(
    tmp_path: Path, node_database_urls: Callable[[str], str], start_from: str
) -> None:
    configs = make_nodes(tmp_path, node_database_urls)
    config = configs[RECEIVER]
    if start_from == "upgrade":
        _prepare_previous_schema(config.database_url)
    before = _revision(config.database_url)
    nodes = Nodes(configs, tmp_path)
    try:
        victim = spawn_node(
            config, tmp_path / "killed.log", env={KILL_POINT_ENV: "migrate.after_step"}
        )
        assert victim.wait(timeout=60) == 137  # died inside the migration
        # Nothing of the interrupted migration was kept: the schema it started from.
        assert _revision(config.database_url) == before
        nodes.start(RECEIVER)
        wait_until_serving(config, nodes.processes[RECEIVER], timeout_s=60)
    finally:
        nodes.stop_all()
    assert _revision(config.database_url) == head_revision()
