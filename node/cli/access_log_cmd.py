# SPDX-License-Identifier: Apache-2.0
"""``comity access-log``: who did and read what at this node, for its data-protection officer.

The entries come from the private openings of the node's audit log (needs the oversight
role); the query itself becomes an audit leaf, so reading the access log is in it too.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from node.cli import output
from node.cli.local_client import LocalClient, local_socket
from node.errors import MalformedError
from node.gen.comity.v1 import local_pb2
from node.timeutil import format_ms, now_ms

AddConfig = Callable[[argparse.ArgumentParser], None]
_RELATIVE = re.compile(r"^(\d{1,5})([hd])$")


def register(commands: Any, add_config: AddConfig) -> None:
    """Add ``access-log`` to the top-level parser's subparsers."""
    command = commands.add_parser(
        "access-log", help="who did and read what at this node (data-protection officer)"
    )
    command.add_argument("--user", default="", help="only what this user did or approved")
    command.add_argument("--exchange", default="", metavar="ID", help="only this request")
    command.add_argument(
        "--since",
        default="",
        help="only from this time: 2026-12-01, 2026-12-01T09:00Z, or 24h / 7d ago",
    )
    command.add_argument("--limit", type=int, default=100, help="at most N entries (max 1000)")
    command.set_defaults(handler=access_log_command)
    add_config(command)
    command.add_argument("--json", action="store_true", help="machine-readable output")


def parse_since(text: str, *, now: int) -> int:
    """``--since`` as Unix milliseconds.

    Raises:
        MalformedError: neither a date, a date and time, nor ``<N>h`` / ``<N>d``.
    """
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        unit = "hours" if relative.group(2) == "h" else "days"
        back = int(timedelta(**{unit: int(relative.group(1))}).total_seconds() * 1000)
        return max(now - back, 0)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise MalformedError(
            f"--since {text!r} is not a date (2026-12-01), a date and time "
            "(2026-12-01T09:00Z) or a span back from now (24h, 7d)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(int(when.timestamp() * 1000), 0)


def access_log_command(args: argparse.Namespace, console: Console) -> int:
    request = local_pb2.AccessLogRequest(
        user=args.user,
        request_id=args.exchange,
        since_ms=parse_since(args.since, now=now_ms()) if args.since else 0,
        limit=max(args.limit, 1),
    )
    with LocalClient(local_socket(args.config)) as client:
        entries = client.access_log(request).entries
    if args.json:
        output.print_json(console, [entry_dict(e) for e in entries])
        return 0
    table = Table("leaf", "time (UTC)", "event", "user", "unit", "approved by", "agency",
                  "request", "subject", "detail")  # fmt: skip
    for e in entries:
        table.add_row(
            str(e.leaf), format_ms(e.at_ms), e.event, e.user or "(not signed in)", e.unit,
            e.approved_by or "-", e.agency, e.request_id or "-", e.subject or "-",
            e.detail or "-",
        )  # fmt: skip
    console.print(table)
    return 0


def entry_dict(entry: local_pb2.AccessLogEntry) -> dict[str, Any]:
    return {
        "leaf": entry.leaf,
        "event": entry.event,
        "at": format_ms(entry.at_ms),
        "user": entry.user,
        "unit": entry.unit,
        "approved_by": entry.approved_by or None,
        "agency": entry.agency,
        "request_id": entry.request_id or None,
        "subject": entry.subject or None,
        "detail": entry.detail or None,
        "reason": entry.reason or None,
    }
