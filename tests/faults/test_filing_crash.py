# SPDX-License-Identifier: Apache-2.0
"""A filing cut short by a crash (kill -9 between the commit and the answer): the CLI says the
outcome is unknown and names its key; run again under that key, it files nothing twice; and the
restarted node sends the request at once, not after the dead run's claim would have lapsed."""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w

from node.cli.local_client import LocalClient
from node.cli.processes import comity_command, spawn_node, wait_until_serving
from node.config import load_config
from node.faults import KILL_POINT_ENV
from node.forms.registry import schemas_dir
from ops.chaos.campaign import RECEIVER, SENDER, Nodes, exchanges, make_nodes

FORM = schemas_dir() / "examples" / "preservation.example.json"
DELIVERY_TIMEOUT_S = 30.0
"""The sender's call deadline: its claims' lease is twice that and five seconds (65 s)."""
PROMPT_S = 20.0
"""Well inside the lease: the time a restarted sender may take to deliver."""


def file_request(config_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``comity request file`` as a person would run it, in a process of its own."""
    command = comity_command(
        "request", "file", "preservation", "--to", RECEIVER, "--form", str(FORM),
        "--config", str(config_path), *extra,
    )  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def with_long_lease(nodes: Nodes) -> None:
    path = nodes.configs[SENDER].config_path
    document = tomllib.loads(path.read_text())
    document["federation"]["delivery_timeout_s"] = DELIVERY_TIMEOUT_S
    path.write_text(tomli_w.dumps(document))
    nodes.configs[SENDER] = load_config(path)


def pending(nodes: Nodes) -> int:
    with LocalClient(nodes.configs[SENDER].local_socket) as client:
        return client.node_status().outbox_pending


@pytest.mark.slow
def test_a_filing_cut_by_a_crash_is_repeated_under_its_key_and_sent_at_once(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    nodes = Nodes(make_nodes(tmp_path, node_database_urls), tmp_path)
    with_long_lease(nodes)
    sender = nodes.configs[SENDER]
    try:
        nodes.start(RECEIVER)
        nodes.processes[SENDER] = spawn_node(
            sender, tmp_path / "sender-killed.log", env={KILL_POINT_ENV: "file.after_commit"}
        )
        wait_until_serving(sender, nodes.processes[SENDER], timeout_s=60)

        cut = file_request(sender.config_path)
        assert nodes.processes[SENDER].wait(timeout=60) == 137  # died after the commit
        assert cut.returncode == 1
        assert "[outcome_unknown]" in cut.stderr
        assert "may have been" in cut.stderr
        key = re.search(r"--idempotency-key (\S+):", cut.stderr)
        assert key is not None, cut.stderr

        nodes.start(SENDER)  # back, without the kill point
        restarted = time.monotonic()
        again = file_request(sender.config_path, "--idempotency-key", key[1], "--json")
        assert again.returncode == 0, again.stderr
        request_id = json.loads(again.stdout)["request_id"]
        while pending(nodes) and time.monotonic() - restarted < PROMPT_S:
            time.sleep(0.2)
        assert pending(nodes) == 0, "the restarted node waited for its own dead claim"
    finally:
        nodes.stop_all()
    # Filed once (before the crash), registered once, delivered.
    assert exchanges(nodes.configs[SENDER], direction="outbound") == {request_id: "delivered"}
    assert exchanges(nodes.configs[RECEIVER], direction="inbound") == {request_id: "registered"}
