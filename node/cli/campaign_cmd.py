# SPDX-License-Identifier: Apache-2.0
"""``comity campaign …``: link cases into campaigns, alert the agencies concerned, and keep the
list of known-benign values that never link anything."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from node.cli import output
from node.cli.local_client import LocalClient, local_socket
from node.errors import ConfigError
from node.gen.comity.v1 import local_pb2
from node.timeutil import format_ms

AddConfig = Callable[[argparse.ArgumentParser], None]


def register(commands: Any, add_config: AddConfig) -> None:
    """Add ``comity campaign`` and its subcommands to the top-level parser's subparsers."""
    parser = commands.add_parser("campaign", help="cases linked into campaigns, and alerts")
    sub = parser.add_subparsers(dest="campaign_command", required=True, metavar="COMMAND")
    create = sub.add_parser("create", help="a new campaign, or adopt another agency's by its id")
    create.add_argument("name", help="this node's name for it")
    create.add_argument("--id", dest="campaign_id", default="", help="the UUID to adopt")
    create.set_defaults(handler=create_campaign)
    detect = sub.add_parser("detect", help="link the cases held here that share values")
    detect.add_argument("--name", default="", help="name for campaigns created now")
    detect.set_defaults(handler=detect_campaigns)
    link = sub.add_parser(
        "link", help="link another agency's case by a private overlap count (never which values)"
    )
    link.add_argument("campaign_id")
    link.add_argument("--with", dest="agency", required=True, help="agency id")
    link.add_argument("--set", dest="set_id", action="append", help="our set to count (repeat)")
    link.set_defaults(handler=link_agency)
    list_ = sub.add_parser("list", help="campaigns at this node")
    list_.set_defaults(handler=list_campaigns)
    show = sub.add_parser("show", help="one campaign: its cases and the requests naming it")
    show.add_argument("campaign_id")
    show.set_defaults(handler=show_campaign)
    alert = sub.add_parser(
        "alert", help="file a campaign alert (spontaneous information) to the agencies concerned"
    )
    alert.add_argument("campaign_id")
    alert.add_argument("--form", required=True, type=Path, help="a campaign-alert.v1 form")
    alert.add_argument("--to", dest="recipient", action="append", help="only this agency")
    alert.set_defaults(handler=alert_campaign)
    benign = sub.add_parser("benign", help="known-benign values, which never link cases")
    benign.add_argument("action", choices=("list", "add", "remove"))
    benign.add_argument("type", nargs="?", help="indicator type, e.g. url")
    benign.add_argument("value", nargs="?", help="the value")
    benign.set_defaults(handler=change_benign)
    for command in (create, detect, link, list_, show, alert, benign):
        add_config(command)
        command.add_argument("--json", action="store_true", help="machine-readable output")


def _client(args: argparse.Namespace) -> LocalClient:
    return LocalClient(local_socket(args.config))


def campaign_dict(view: local_pb2.CampaignView) -> dict[str, Any]:
    return {
        "campaign_id": view.campaign_id,
        "name": view.name,
        "created_at": format_ms(view.created_at_ms),
        "agencies": list(view.agencies),
        "cases": [
            {"kind": c.kind, "ref": c.ref, "agency": c.agency, "shared": c.shared}
            for c in view.cases
        ],
        "requests": [output.summary_dict(r) for r in view.requests],
    }


def _print_campaign(console: Console, view: local_pb2.CampaignView) -> None:
    console.print(f"Campaign [bold]{view.campaign_id}[/bold]: {view.name}")
    console.print(f"  agencies concerned: {', '.join(view.agencies) or '(none yet)'}")
    if not view.cases:
        console.print("  no case linked at this node")
        return
    table = Table("case", "agency", "shared values", "linked")
    for case in view.cases:
        label = f"set {case.ref}" if case.kind == "set" else "their case (count only)"
        table.add_row(label, case.agency, str(case.shared), format_ms(case.linked_at_ms))
    console.print(table)


def create_campaign(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        view = client.create_campaign(args.name, args.campaign_id)
    if args.json:
        output.print_json(console, campaign_dict(view))
    else:
        console.print(f"Created campaign {view.campaign_id}: {view.name}")
    return 0


def detect_campaigns(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client, console.status("linking the cases held here"):
        found = client.detect_campaigns(args.name)
    if args.json:
        output.print_json(
            console,
            {
                "campaigns": [campaign_dict(v) for v in found.campaigns],
                "created": list(found.created),
                "noisy_values": found.noisy_values,
                "benign_values": found.benign_values,
            },
        )
        return 0
    for view in found.campaigns:
        new = "new" if view.campaign_id in found.created else "extended"
        console.print(f"{new}: ", end="")
        _print_campaign(console, view)
    if not found.campaigns:
        console.print("No new links.")
    console.print(
        f"Left out: {found.noisy_values} value(s) held in too many sets, "
        f"{found.benign_values} known-benign value(s)."
    )
    return 0


def link_agency(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client, console.status(f"counting the overlap with {args.agency}"):
        link = client.link_campaign_agency(args.campaign_id, args.agency, args.set_id or [])
    count = link.overlap
    if args.json:
        output.print_json(
            console,
            {
                "agency": count.agency,
                "mine": count.mine,
                "theirs": count.theirs,
                "shared": count.shared,
                "linked": link.linked,
                "campaign": campaign_dict(link.campaign),
            },
        )
        return 0
    verdict = "linked into the campaign" if link.linked else "too few to link"
    console.print(
        f"{count.shared} of this agency's {count.mine} indicator(s) are among {count.agency}'s "
        f"{count.theirs}: {verdict}. Neither side learned which."
    )
    return 0


def list_campaigns(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        views = list(client.list_campaigns().campaigns)
    if args.json:
        output.print_json(console, [campaign_dict(v) for v in views])
        return 0
    table = Table("campaign", "name", "cases", "agencies concerned", "created")
    for view in views:
        table.add_row(
            view.campaign_id,
            view.name,
            str(len(view.cases)),
            ", ".join(view.agencies),
            format_ms(view.created_at_ms),
        )
    console.print(table if views else "No campaigns.")
    return 0


def show_campaign(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        view = client.get_campaign(args.campaign_id)
    if args.json:
        output.print_json(console, campaign_dict(view))
        return 0
    _print_campaign(console, view)
    if view.requests:
        console.print("Requests naming it:")
        output.print_list(console, list(view.requests))
    return 0


def alert_campaign(args: argparse.Namespace, console: Console) -> int:
    try:
        form = args.form.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the form {args.form}: {e.strerror}") from e
    with _client(args) as client:
        alerts = list(client.alert_campaign(args.campaign_id, form, args.recipient or []).requests)
    if args.json:
        output.print_json(console, [output.summary_dict(s) for s in alerts])
        return 0
    for summary in alerts:
        console.print(
            f"Campaign alert [bold]{summary.request_id}[/bold] to {summary.peer}: {summary.state}"
        )
    return 0


def change_benign(args: argparse.Namespace, console: Console) -> int:
    if args.action != "list" and (args.type is None or args.value is None):
        raise ConfigError(f"campaign benign {args.action} takes a TYPE and a VALUE")
    entry = [local_pb2.IndicatorEntry(type=args.type, value=args.value)] if args.type else []
    with _client(args) as client:
        answer = client.change_benign_values(
            add=entry if args.action == "add" else [],
            remove=entry if args.action == "remove" else [],
        )
    values = [{"type": v.type, "value": v.value} for v in answer.values]
    if args.json:
        output.print_json(console, {"changed": answer.changed, "values": values})
        return 0
    if args.action != "list":
        console.print(
            f"{answer.changed} value(s) {args.action}{'ed' if args.action == 'add' else 'd'}."
        )
    for value in values:
        console.print(f"  {value['type']}  {value['value']}", markup=False)
    return 0
