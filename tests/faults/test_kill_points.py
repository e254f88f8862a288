# SPDX-License-Identifier: Apache-2.0
"""Crashes at the exact moments that matter: after a commit, before the reply that tells.

Each case starts the two nodes as processes, makes one of them die (as with kill -9) at a
named kill point while a request goes through, restarts it, and checks that the request is
registered exactly once at the receiver and delivered at the sender.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from node.cli.local_client import LocalClient
from node.cli.processes import spawn_node, wait_until_serving
from node.errors import ComityError
from node.faults import KILL_POINT_ENV
from node.forms.registry import schemas_dir
from ops.chaos.campaign import RECEIVER, SENDER, Nodes, Report, compare, exchanges, make_nodes

FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


def file_once(nodes: Nodes) -> str | None:
    """File one request; its id, or None when the sender died before it could answer."""
    try:
        with LocalClient(nodes.configs[SENDER].local_socket) as client:
            return client.file_request(
                request_type="preservation", recipient=RECEIVER, form_json=FORM
            ).summary.request_id
    except ComityError:
        return None


def wait_for_exit(nodes: Nodes, agency: str) -> int:
    process = nodes.processes[agency]
    return process.wait(timeout=60)


def wait_delivered(nodes: Nodes, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with LocalClient(nodes.configs[SENDER].local_socket) as client:
            if client.node_status().outbox_pending == 0:
                return
        time.sleep(0.2)
    pytest.fail("the outbox did not drain")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("victim", "point"),
    [
        (RECEIVER, "receive.after_commit"),
        (SENDER, "deliver.before_record"),
        (SENDER, "file.after_commit"),
    ],
)
def test_crash_between_commit_and_reply_loses_and_duplicates_nothing(
    tmp_path: Path, node_database_urls: Callable[[str], str], victim: str, point: str
) -> None:
    configs = make_nodes(tmp_path, node_database_urls)
    nodes = Nodes(configs, tmp_path)
    try:
        for agency in (RECEIVER, SENDER):
            env = {KILL_POINT_ENV: point} if agency == victim else None
            nodes.processes[agency] = spawn_node(
                configs[agency], tmp_path / f"{agency}.log", env=env
            )
            wait_until_serving(configs[agency], nodes.processes[agency], timeout_s=60)
        request_id = file_once(nodes)
        assert wait_for_exit(nodes, victim) == 137  # it died exactly there
        nodes.start(victim)  # back, without the kill point
        wait_delivered(nodes)
    finally:
        nodes.stop_all()
    report = Report()
    sent = {request_id} if request_id else set()
    compare(configs, sent, report)
    assert (report.lost, report.duplicated, report.disagreements) == ([], [], [])
    # Whether or not the sender lived to answer, the request was stored and went through once.
    outbound = exchanges(configs[SENDER], direction="outbound")
    inbound = exchanges(configs[RECEIVER], direction="inbound")
    assert list(outbound.values()) == ["delivered"]
    assert list(inbound.values()) == ["registered"]
    assert inbound.keys() == outbound.keys() >= sent
