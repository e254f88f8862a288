# SPDX-License-Identifier: Apache-2.0
"""The demo's people: officers with their own roles at each node, and what each may not do."""

from __future__ import annotations

import json
import re

from rich.console import Console

from node.cli.demo_tools import Officer, cli, file_request, step
from node.config import NodeConfig
from node.errors import ConfigError
from node.forms.registry import schemas_dir


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
        "Each node's admin adds the officers: at the unit an investigator, a supervisor and "
        "the data-protection officer; at Portugal a reviewer and an operator who keeps the "
        "node running. Each signs in as themselves (here with a service token each, since the "
        "demo runs as one login). An emergency request waits for the supervisor's approval; "
        "the reviewer works Portugal's queue; the operator, who may see the node's health but "
        "never a case, is refused the form; the data-protection officer reads who opened the "
        "case, from the tamper-evident log.",
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
    _four_eyes(console, unit, authority, kadri)


def _four_eyes(console: Console, unit: NodeConfig, authority: NodeConfig, kadri: Officer) -> None:
    """An emergency request held until a second person approves; then who read it."""
    mart = enrol(console, unit, "mart", "Cyber Unit", "supervisor")
    ines = enrol(console, unit, "ines", "Data Protection Office", "oversight")
    form = schemas_dir() / "examples" / "emergency-disclosure.example.json"
    held = cli(
        console, unit, "request", "file", "emergency-disclosure", "--to", authority.agency_id,
        "--form", str(form), as_user=kadri, expect_failure=True,
    )  # fmt: skip
    pending = re.search(r"pending approval (\S+?);", held)
    if pending is None:
        raise ConfigError("the emergency request was not held for approval")
    cli(console, unit, "approvals", "approve", pending.group(1), "--reason", "imminent risk",
        as_user=mart)  # fmt: skip
    listed = cli(console, unit, "request", "list", "--json", show=False, as_user=kadri)
    newest = json.loads(listed)[0]
    if newest["request_type"] != "emergency-disclosure":
        raise ConfigError("the approved emergency request was not filed")
    cli(console, unit, "request", "show", newest["request_id"], as_user=kadri)
    cli(console, unit, "access-log", "--exchange", newest["request_id"], as_user=ines)
