# SPDX-License-Identifier: Apache-2.0
"""Nodes as real OS processes: graceful shutdown on SIGTERM, and the demo end to end."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from node.cli.processes import comity_command, spawn_node, wait_until_serving
from node.config import USER_ROLES, NodeConfig, init_node
from node.federation.setup import federate
from tests.ports import free_port


def new_node(tmp_path: Path) -> NodeConfig:
    return init_node(
        directory=tmp_path / "n",
        agency_id="aa-cyber-unit",
        country="EE",
        roles=["requesting"],
        listen=f"127.0.0.1:{free_port()}",
        admin_roles=USER_ROLES,
    )


def test_node_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = new_node(tmp_path)
    log = tmp_path / "node.log"
    federate([config], roots_dir=tmp_path / "roots")
    process = spawn_node(config, log)
    try:
        wait_until_serving(config, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert "stopped" in text
    assert "Traceback" not in text


def test_node_without_a_directory_says_what_is_missing(tmp_path: Path) -> None:
    config = new_node(tmp_path)
    result = subprocess.run(
        comity_command("node", "serve", "--config", str(config.config_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no federation directory" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(480)  # four nodes and every step of the demo, on two cores
def test_demo_runs_end_to_end() -> None:
    result = subprocess.run(
        comity_command("demo"), capture_output=True, text=True, timeout=460, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "registered" in result.stdout
    assert "Demo complete" in result.stdout
    assert "[access_denied]" in result.stdout  # the operator refused the form
