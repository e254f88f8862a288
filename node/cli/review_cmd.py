# SPDX-License-Identifier: Apache-2.0
"""``comity review …`` and the requester's lifecycle commands: moving a request along.

Each command builds one lifecycle message (schemas/messages/) from its options and sends it
through the local node, which checks that the move is this party's and allowed now, signs it,
and delivers it; the answer shows the request as it stands afterwards.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console

from node.cli import output
from node.cli.local_client import LocalClient
from node.config import load_config
from node.errors import ConfigError
from node.gen.comity.v1 import local_pb2
from node.model.lifecycle import AWAITING_REVIEWER


def _client(args: argparse.Namespace) -> LocalClient:
    return LocalClient(load_config(args.config).local_socket)


def queue(args: argparse.Namespace, console: Console) -> int:
    """Inbound requests waiting for this agency's reviewers, oldest first."""
    with _client(args) as client:
        inbound = list(client.all_requests(direction=local_pb2.DIRECTION_INBOUND))
    waiting = sorted(
        (s for s in inbound if s.state in AWAITING_REVIEWER),
        key=lambda s: s.created_at_ms,
    )
    if args.json:
        output.print_json(console, [output.summary_dict(s) for s in waiting])
    elif waiting:
        output.print_list(console, waiting)
    else:
        console.print("Nothing waits for review.")
    return 0


def _send(args: argparse.Namespace, console: Console, kind: str, fields: dict[str, Any]) -> int:
    body = json.dumps({"form_version": f"{kind}.v1", **fields}, ensure_ascii=False).encode()
    with _client(args) as client:
        detail = client.send_message(request_id=args.request_id, kind=kind, body_json=body)
    if getattr(args, "json", False):
        output.print_json(console, output.detail_dict(detail))
        return 0
    summary = detail.summary
    console.print(
        f"Sent {kind} on request [bold]{summary.request_id}[/bold]: it is "
        f"[bold]{summary.state}[/bold] now"
        + (f" (delivery {detail.delivery.status})" if detail.HasField("delivery") else "")
        + "."
    )
    return 0


def _optional(**fields: object) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v}


def start(args: argparse.Namespace, console: Console) -> int:
    return _send(args, console, "review", _optional(note=args.note))


def clarify(args: argparse.Namespace, console: Console) -> int:
    return _send(args, console, "clarification-request", {"questions": args.question})


def decide(args: argparse.Namespace, console: Console) -> int:
    outcome = {"accept": "accepted", "partial": "partially_accepted", "refuse": "refused"}[
        args.outcome
    ]
    if outcome != "accepted" and not args.ground:
        raise ConfigError("a refusal or a partial acceptance needs at least one --ground")
    if outcome == "partially_accepted" and not args.scope:
        raise ConfigError("a partial acceptance needs --scope: what will and will not be done")
    fields = {"outcome": outcome, "reason": args.reason} | _optional(
        grounds=args.ground, scope=args.scope
    )
    return _send(args, console, "decision", fields)


def preserve(args: argparse.Namespace, console: Console) -> int:
    fields = {"preserved_until": args.until} | _optional(note=args.note)
    return _send(args, console, "preservation-confirmation", fields)


def extend(args: argparse.Namespace, console: Console) -> int:
    return _send(args, console, "extension", {"preserved_until": args.until})


def execute(args: argparse.Namespace, console: Console) -> int:
    return _send(args, console, "execution", {"summary": args.summary})


def close(args: argparse.Namespace, console: Console) -> int:
    return _send(args, console, "closure", _optional(reason=args.reason))


def answer(args: argparse.Namespace, console: Console) -> int:
    return _send(args, console, "clarification-answer", {"answers": args.answer})


def withdraw(args: argparse.Namespace, console: Console) -> int:
    return _send(args, console, "withdrawal", {"reason": args.reason})


def ask_extension(args: argparse.Namespace, console: Console) -> int:
    fields = {"additional_days": args.days, "reason": args.reason}
    return _send(args, console, "extension-request", fields)
