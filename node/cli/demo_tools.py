# SPDX-License-Identifier: Apache-2.0
"""What the demo's steps share: headings, and running ``comity`` at an agency's node."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from node.cli.processes import comity_command
from node.config import NodeConfig
from node.errors import ConfigError
from node.forms.registry import schemas_dir


@dataclass(frozen=True)
class Officer:
    """A user of one node, signing in with a service token (the demo has one login only)."""

    name: str
    token: str


def step(console: Console, title: str, text: str) -> None:
    console.print(Rule(f"[bold]{title}[/bold]"))
    console.print(text)


def cli(
    console: Console,
    config: NodeConfig,
    *args: str,
    show: bool = True,
    expect_failure: bool = False,
    as_user: Officer | None = None,
) -> str:
    """Run ``comity ARGS`` at ``config``'s node (as ``as_user``, else as the login running the
    demo); its output, or its error when a failure is what the demo expects."""
    command = comity_command(*args, "--config", str(config.config_path))
    environment = dict(os.environ)
    environment.pop("COMITY_TOKEN", None)
    who = f"at {config.agency_id}"
    if as_user is not None:
        environment["COMITY_TOKEN"] = as_user.token
        who = f"{as_user.name} at {config.agency_id}"
    if show:
        console.print(f"[dim]$ comity {' '.join(args)}   # {who}[/dim]")
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=60, env=environment
    )
    if show:
        console.print(result.stdout.rstrip(), markup=False, highlight=False)
    if expect_failure:
        if result.returncode == 0:
            raise ConfigError(f"`comity {' '.join(args)}` should have failed")
        console.print(result.stderr.rstrip(), markup=False, highlight=False)
        return result.stdout + result.stderr
    if result.returncode != 0:
        raise ConfigError(f"`comity {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def expect_state(config: NodeConfig, request_id: str, state: str) -> dict[str, object]:
    detail: dict[str, object] = json.loads(
        cli(Console(quiet=True), config, "request", "show", request_id, "--json", show=False)
    )
    if detail["state"] != state:
        raise ConfigError(f"expected state {state} at {config.agency_id}, got {detail['state']}")
    return detail


def file_request(
    console: Console,
    unit: NodeConfig,
    authority: NodeConfig,
    *,
    request_type: str = "preservation",
    form: Path | None = None,
    as_user: Officer | None = None,
) -> str:
    """File a request (by default the example preservation request) from ``unit``; its id."""
    form = form or schemas_dir() / "examples" / f"{request_type}.example.json"
    cli(
        console,
        unit,
        "request",
        "file",
        request_type,
        "--to",
        authority.agency_id,
        "--form",
        str(form),
        as_user=as_user,
    )
    listed = cli(console, unit, "request", "list", "--json", show=False, as_user=as_user)
    newest = json.loads(listed)[0]
    return str(newest["request_id"])
