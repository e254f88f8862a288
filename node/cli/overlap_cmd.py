# SPDX-License-Identifier: Apache-2.0
"""``comity overlap ask|requests|consent|refuse|reveal``: learning *which* indicators two
agencies share, on a signed request and with the other agency's consent."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Column, Table

from node.cli import output
from node.cli.local_client import LocalClient, local_socket
from node.errors import ConfigError
from node.gen.comity.v1 import local_pb2
from node.timeutil import format_ms

HOUR_MS = 3600 * 1000
MAX_VALID_HOURS = 7 * 24

Handler = Callable[[argparse.Namespace, Console], int]


def add_commands(sub: Any, add_config_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the check and the reveal commands to ``comity overlap``'s subcommands."""
    check = sub.add_parser(
        "check", help="how many of this agency's indicators another agency also holds"
    )
    check.add_argument("--with", dest="agency", required=True, help="agency id")
    check.add_argument(
        "--reason", required=True, help="why (case context): the other node logs a commitment to it"
    )
    check.add_argument(
        "--set", dest="set_id", action="append", help="only this set of ours (repeat)"
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_option(check)
    check.set_defaults(handler=_check_overlap)

    def command(name: str, help_: str, handler: Handler) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_)
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        add_config_option(parser)
        parser.set_defaults(handler=handler)
        return parser

    ask_ = command("ask", "ask another agency to consent to revealing which we share", ask)
    ask_.add_argument("--with", dest="agency", required=True, help="agency id")
    ask_.add_argument(
        "--reason", required=True, help="why, for the person who decides (case context)"
    )
    ask_.add_argument("--set", dest="set_id", action="append", help="only this set of ours")
    ask_.add_argument(
        "--valid-hours", type=float, default=72.0, help="how long consent may be given and used"
    )
    command("requests", "reveal requests sent and received, with their state", requests)
    for name, help_, handler in (
        ("consent", "consent to a pending reveal request (one reveal)", consent),
        ("refuse", "refuse a pending reveal request", refuse),
        ("reveal", "run a consented reveal: which of our indicators they hold", reveal),
    ):
        command(name, help_, handler).add_argument("request_id", help="the request's id")


def _client(args: argparse.Namespace) -> LocalClient:
    return LocalClient(local_socket(args.config))


def ask(args: argparse.Namespace, console: Console) -> int:
    """Sign and send a reveal request."""
    if not 0 < args.valid_hours <= MAX_VALID_HOURS:
        raise ConfigError(f"--valid-hours must be more than 0 and at most {MAX_VALID_HOURS}")
    with _client(args) as client:
        view = client.ask_reveal(
            agency=args.agency,
            reason=args.reason,
            set_ids=args.set_id or [],
            valid_ms=int(args.valid_hours * HOUR_MS),
        )
    if args.json:
        output.print_json(console, view_dict(view))
        return 0
    console.print(
        f"Reveal request {view.request_id} sent to {view.responder} for {view.items} "
        f"indicator(s), valid until {format_ms(view.expires_ms)}. Once they consent: "
        f"comity overlap reveal {view.request_id}"
    )
    return 0


def requests(args: argparse.Namespace, console: Console) -> int:
    """Reveal requests this node sent and received."""
    with _client(args) as client:
        views = list(client.list_reveal_requests().requests)
    if args.json:
        output.print_json(console, [view_dict(v) for v in views])
        return 0
    if not views:
        console.print("No reveal requests.")
        return 0
    request_column = Column("request", no_wrap=True)
    table = Table(request_column, "direction", "from", "to", "items", "state", "expires", "reason")
    for v in views:
        table.add_row(
            v.request_id,
            v.direction,
            v.requester,
            v.responder,
            str(v.items),
            v.state,
            format_ms(v.expires_ms),
            v.reason,
        )
    console.print(table)
    return 0


def consent(args: argparse.Namespace, console: Console) -> int:
    return _decide(args, console, consent=True)


def refuse(args: argparse.Namespace, console: Console) -> int:
    return _decide(args, console, consent=False)


def _decide(args: argparse.Namespace, console: Console, *, consent: bool) -> int:
    with _client(args) as client:
        view = client.decide_reveal(args.request_id, consent=consent)
    if args.json:
        output.print_json(console, view_dict(view))
        return 0
    if consent:
        console.print(
            f"Consented: {view.requester} may run one reveal of {view.items} indicator(s) "
            f"until {format_ms(view.expires_ms)}."
        )
    else:
        console.print(f"Refused reveal request {view.request_id} from {view.requester}.")
    return 0


def reveal(args: argparse.Namespace, console: Console) -> int:
    """Run a consented reveal and print this agency's own indicators the other side holds."""
    with _client(args) as client, console.status("revealing the shared indicators"):
        result = client.reveal_overlap(args.request_id)
    matches = [{"type": m.type, "value": m.value} for m in result.matches]
    if args.json:
        output.print_json(
            console,
            {
                "agency": result.agency,
                "request_id": result.request_id,
                "mine": result.mine,
                "theirs": result.theirs,
                "shared": len(matches),
                "matches": matches,
            },
        )
        return 0
    console.print(
        f"{len(matches)} of this agency's {result.mine} indicator(s) are among "
        f"{result.agency}'s {result.theirs}. {result.agency} did not learn which."
    )
    if matches:
        table = Table("type", "value")
        for m in matches:
            table.add_row(m["type"], m["value"])
        console.print(table)
    return 0


def view_dict(view: local_pb2.RevealRequestView) -> dict[str, Any]:
    return {
        "request_id": view.request_id,
        "direction": view.direction,
        "requester": view.requester,
        "responder": view.responder,
        "set_ids": list(view.set_ids),
        "items": view.items,
        "reason": view.reason,
        "created_at": format_ms(view.created_ms),
        "expires_at": format_ms(view.expires_ms),
        "state": view.state,
        "decided_at": format_ms(view.decided_ms) if view.HasField("decided_ms") else None,
        "shared": view.shared if view.HasField("shared") else None,
    }


def _check_overlap(args: argparse.Namespace, console: Console) -> int:
    # Loaded when it runs: the check needs the indicator commands, which import much.
    from node.cli import indicators_cmd

    return indicators_cmd.check_overlap(args, console)
