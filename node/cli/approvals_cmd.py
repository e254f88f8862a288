# SPDX-License-Identifier: Apache-2.0
"""``comity approvals``: four-eyes approval of the actions the node's policy holds.

A person who asks for such an action (an emergency filing, a refusal on the ground of
protected expression, a release to a court, sharing a TLP:RED or TLP:AMBER+STRICT set) is told
``pending approval <id>; a supervisor runs: comity approvals approve <id>`` and the command
exits with :data:`PENDING_EXIT`. A supervisor who is not that person approves (the action
then runs, as the person who asked) or rejects it with a reason.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from node.cli import output
from node.cli.local_client import LocalClient, local_socket
from node.errors import ComityError
from node.gen.comity.v1 import local_pb2
from node.gen.comity.v1 import local_people_pb2 as pb
from node.model.approvals import ApprovalStatus
from node.timeutil import format_ms

AddConfig = Callable[[argparse.ArgumentParser], None]
PENDING_CODE = "approval_required"
PENDING_EXIT = 3
"""The exit status of a command whose action now waits for a supervisor's approval."""
_ANSWERS_WITH_REQUEST = frozenset({"FileRequest", "SendMessage"})


def register(commands: Any, add_config: AddConfig) -> None:
    """Add ``approvals`` to the top-level parser's subparsers."""
    parser = commands.add_parser("approvals", help="four-eyes approval of held actions")
    sub = parser.add_subparsers(dest="approvals_command", required=True, metavar="COMMAND")
    list_ = sub.add_parser("list", help="approvals, newest first (a supervisor sees all)")
    list_.add_argument("--status", choices=[s.value for s in ApprovalStatus], default="")
    list_.add_argument("--user", default="", help="only those this user asked for")
    list_.add_argument("--limit", type=int, default=50, help="at most this many (max 500)")
    list_.set_defaults(handler=list_approvals)
    show = sub.add_parser("show", help="one approval: what it holds, who decided, the outcome")
    show.add_argument("approval_id")
    show.add_argument("--request", action="store_true", help="also print the held request")
    show.set_defaults(handler=show_approval)
    approve = sub.add_parser("approve", help="approve and run a held action (supervisor)")
    approve.add_argument("approval_id")
    approve.add_argument("--reason", default="", help="why (optional)")
    approve.set_defaults(handler=decide, approve=True)
    reject = sub.add_parser("reject", help="reject a held action, saying why (supervisor)")
    reject.add_argument("approval_id")
    reject.add_argument("--reason", required=True, help="why")
    reject.set_defaults(handler=decide, approve=False)
    for command in (list_, show, approve, reject):
        add_config(command)
        command.add_argument("--json", action="store_true", help="machine-readable output")


def report_pending(error: ComityError, console: Console) -> int | None:
    """For an action the node holds for approval: say so and return :data:`PENDING_EXIT`."""
    if error.code != PENDING_CODE:
        return None
    console.print(error.message, markup=False, highlight=False)
    return PENDING_EXIT


def list_approvals(args: argparse.Namespace, console: Console) -> int:
    request = pb.ListApprovalsRequest(
        status=args.status, requested_by=args.user, limit=max(args.limit, 0)
    )
    with _client(args) as client:
        approvals = client.call(client.approvals.ListApprovals, request).approvals
    if args.json:
        output.print_json(console, [approval_dict(a) for a in approvals])
        return 0
    table = Table("approval", "status", "policy", "asked by", "asked at", "decided by")
    for a in approvals:
        table.add_row(
            a.approval_id,
            a.status,
            a.policy,
            a.requested_by,
            format_ms(a.requested_at_ms),
            a.decided_by or "-",
        )
    console.print(table)
    return 0


def show_approval(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        approval = client.call(
            client.approvals.GetApproval, pb.GetApprovalRequest(approval_id=args.approval_id)
        )
    _print(args, console, approval, request=args.request)
    return 0


def decide(args: argparse.Namespace, console: Console) -> int:
    request = pb.DecideApprovalRequest(
        approval_id=args.approval_id, approve=args.approve, reason=args.reason
    )
    with _client(args) as client:
        approval = client.call(client.approvals.DecideApproval, request)
    _print(args, console, approval, request=False)
    return 1 if approval.status == ApprovalStatus.FAILED.value else 0


def approval_dict(a: pb.Approval, *, request: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "approval_id": a.approval_id,
        "status": a.status,
        "policy": a.policy,
        "operation": a.operation,
        "summary": a.summary,
        "requested_by": a.requested_by,
        "requester_unit": a.requester_unit,
        "requested_at": format_ms(a.requested_at_ms),
        "expires_at": format_ms(a.expires_at_ms),
        "decided_by": a.decided_by or None,
        "decided_at": format_ms(a.decided_at_ms) if a.decided_at_ms else None,
        "reason": a.reason or None,
        "error_code": a.error_code or None,
        "error_message": a.error_message or None,
        "finished_at": format_ms(a.finished_at_ms) if a.finished_at_ms else None,
        "request_id": _request_id(a),
    }
    if request:
        shown["request"] = a.request_json
    return shown


def _request_id(a: pb.Approval) -> str | None:
    """The case the approved action filed or acted on, from its answer."""
    if not a.result or a.operation not in _ANSWERS_WITH_REQUEST:
        return None
    return local_pb2.RequestDetail.FromString(a.result).summary.request_id or None


def _print(args: argparse.Namespace, console: Console, a: pb.Approval, *, request: bool) -> None:
    shown = approval_dict(a, request=request)
    if args.json:
        output.print_json(console, shown)
        return
    console.print(f"[bold]approval {a.approval_id}[/bold]: {a.status} ({a.policy})")
    console.print(f"  {a.summary}", markup=False, highlight=False)
    console.print(f"  asked by {a.requested_by} ({a.requester_unit}) at {shown['requested_at']}")
    if a.decided_by:
        console.print(f"  decided by {a.decided_by} at {shown['decided_at']}")
    else:
        console.print(f"  approvable until {shown['expires_at']}")
    for label, key in (("reason", "reason"), ("request", "request_id")):
        if shown[key]:
            console.print(f"  {label}: {shown[key]}", markup=False, highlight=False)
    if a.error_code:
        console.print(f"  failed: {a.error_message} [{a.error_code}]", markup=False)
    if request:
        console.print(a.request_json, markup=False, highlight=False)


def _client(args: argparse.Namespace) -> LocalClient:
    return LocalClient(local_socket(args.config))
