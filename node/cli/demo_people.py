# SPDX-License-Identifier: Apache-2.0
"""The demo's people: officers with their own roles at each node, and what each may not do."""

from __future__ import annotations

import json

from rich.console import Console

from node.cli.demo_tools import Officer, cli, file_request, step
from node.config import NodeConfig
from node.errors import ConfigError


def enrol(console: Console, config: NodeConfig, name: str, unit: str, role: str) -> Officer:
    """Add a user with one role at ``config``'s node and give it a token (the demo runs as one
    login; officers at a real node sign in as their own logins)."""
    cli(console, config, "users", "add", name, "--unit", unit, "--role", role)
    args = ("tokens", "create", "--user", name, "--label", "demo", "--json")
    made = json.loads(cli(console, config, *args, show=False))
    return Officer(name=name, token=made["secret"])


def run_people(console: Console, unit: NodeConfig, authority: NodeConfig) -> None:
    step(
        console,
        "18. People: every action is someone's, and each may do only their part",
        "Each node's admin adds the officers: at the unit an investigator, at Portugal a "
        "reviewer and an operator who keeps the node running. Each signs in as themselves "
        "(here with a service token each, since the demo runs as one login). The investigator "
        "files, the reviewer works Portugal's queue, and the operator, who may see the node's "
        "health but never a case, is refused the form.",
    )
    kadri = enrol(console, unit, "kadri", "Cyber Unit", "investigator")
    joana = enrol(console, authority, "joana", "Central Authority", "reviewer")
    rui = enrol(console, authority, "rui", "IT Operations", "operator")
    cli(console, unit, "whoami", as_user=kadri)
    request_id = file_request(console, unit, authority, as_user=kadri)
    cli(console, authority, "review", "start", request_id, as_user=joana)
    refusal = cli(
        console, authority, "request", "show", request_id, "--form",
        as_user=rui, expect_failure=True,
    )  # fmt: skip
    if "access_denied" not in refusal:
        raise ConfigError("the operator was not refused the form")
    cli(console, authority, "node", "status", as_user=rui)
