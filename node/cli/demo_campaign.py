# SPDX-License-Identifier: Apache-2.0
"""The demo's campaign step: two agencies whose cases overlap link them into one campaign and
file coordinated preservation requests that name it."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from node.cli.demo_tools import cli, step
from node.config import NodeConfig
from node.errors import ConfigError
from node.forms.registry import schemas_dir

CAMPAIGN_NAME = "Orbit watch accounts"


def run_campaign(
    console: Console, workdir: Path, configs: dict[str, NodeConfig], unit_set: str
) -> None:
    unit, ireland = configs["ee-cyber-unit"], configs["ie-central-authority"]
    portugal = configs["pt-central-authority"]
    step(
        console,
        "17. The two cases become one campaign, and both agencies ask Portugal to preserve",
        "Estonia links Ireland's case to a new campaign by the private count (six shared "
        "accounts; still neither side sees the other's list) and alerts Ireland under Budapest "
        "Art. 26. Ireland adopts the campaign under the same id. Each then files its own "
        "preservation request to Portugal naming the campaign, so Portugal sees the two "
        "requests belong together.",
    )
    created = json.loads(cli(console, unit, "campaign", "create", CAMPAIGN_NAME, "--json"))
    campaign_id = created["campaign_id"]
    link = json.loads(
        cli(
            console,
            unit,
            *("campaign", "link", campaign_id, "--with", ireland.agency_id),
            *("--set", unit_set, "--json"),
        )
    )
    if not link["linked"]:
        raise ConfigError("Ireland's case was not linked into the campaign")
    examples = schemas_dir() / "examples"
    alert_form = str(examples / "campaign-alert.example.json")
    cli(console, unit, "campaign", "alert", campaign_id, "--form", alert_form)
    cli(console, ireland, "campaign", "create", CAMPAIGN_NAME, "--id", campaign_id)
    for config, form in (
        (unit, examples / "preservation.example.json"),
        (ireland, _irish_form(workdir)),
    ):
        cli(
            console,
            config,
            *("request", "file", "preservation", "--to", portugal.agency_id),
            *("--form", str(form), "--campaign", campaign_id),
        )
    cli(console, portugal, "campaign", "create", CAMPAIGN_NAME, "--id", campaign_id)
    shown = json.loads(
        cli(console, portugal, "campaign", "show", campaign_id, "--json", show=False)
    )
    cli(console, portugal, "campaign", "show", campaign_id)
    senders = {r["peer"] for r in shown["requests"] if r["request_type"] == "preservation"}
    if senders != {unit.agency_id, ireland.agency_id}:
        raise ConfigError(f"Portugal does not see both preservation requests: {senders}")


def _irish_form(workdir: Path) -> Path:
    """The example preservation request, as Ireland's authority would write it."""
    form = json.loads((schemas_dir() / "examples" / "preservation.example.json").read_text())
    form["requesting_authority"] = {
        "name": "Garda National Cyber Crime Bureau",
        "country": "IE",
        "unit": "Online harassment team",
    }
    form["case_reference"] = "IE-GNCCB-2026-0093"
    path = workdir / "ie-preservation.json"
    path.write_text(json.dumps(form, ensure_ascii=False))
    return path
