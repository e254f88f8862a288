# SPDX-License-Identifier: Apache-2.0
"""``comity request …``: file, list and show requests through the local node."""

from __future__ import annotations

import argparse
import json
import uuid

from rich.console import Console

from node.cli import output
from node.cli.local_client import LocalClient, OutcomeUnknownError
from node.config import load_config
from node.errors import ConfigError
from node.gen.comity.v1 import local_pb2

_DIRECTIONS = {
    None: local_pb2.DIRECTION_UNSPECIFIED,
    "outbound": local_pb2.DIRECTION_OUTBOUND,
    "inbound": local_pb2.DIRECTION_INBOUND,
}


def _client(args: argparse.Namespace) -> LocalClient:
    return LocalClient(load_config(args.config).local_socket)


def _read_form(args: argparse.Namespace) -> bytes:
    try:
        form: bytes = args.form.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the form {args.form}: {e.strerror}") from e
    return form


def preview_request(args: argparse.Namespace, console: Console) -> int:
    """Show exactly what filing would sign and send; send nothing."""
    with _client(args) as client:
        preview = client.preview_request(
            request_type=args.request_type,
            recipient=args.recipient,
            form_json=_read_form(args),
            strip=args.strip_identifiers,
        )
    result = {
        "request_type": preview.request_type,
        "recipient": preview.recipient,
        "payload_type": preview.payload_type,
        "legal_basis": preview.legal_basis,
        "due_hours_after_receipt": preview.deadline_hours or None,
        "stripped": list(preview.notes),
        "form": json.loads(preview.form_json),
    }
    if args.json:
        output.print_json(console, result)
        return 0
    console.print(
        f"This {preview.request_type} request to {preview.recipient} under "
        f"{preview.legal_basis} would leave the node as {len(preview.form_json)} bytes, signed "
        f"and sealed to {preview.recipient}'s key"
        + (f"; due {preview.deadline_hours} h after receipt." if preview.deadline_hours else ".")
    )
    for note in preview.notes:
        console.print(f"  stripped: {note}")
    console.print("Exactly this form, nothing else:")
    console.print_json(preview.form_json.decode("utf-8"))
    return 0


def add_file_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="file under this key (default: a new one); a request filed under it before is "
        "shown instead of being filed again. Use the key an interrupted run printed",
    )


def add_list_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--limit", type=int, default=50, help="requests per page (1-1000)")
    pages = command.add_mutually_exclusive_group()
    pages.add_argument("--page-token", default="", help="the page a previous listing named")
    pages.add_argument("--all", action="store_true", help="every request, page after page")


def file_request(args: argparse.Namespace, console: Console) -> int:
    form = _read_form(args)
    # One key per invocation, so that repeating an interrupted run under it is safe.
    key = args.idempotency_key or f"cli-{uuid.uuid4()}"
    with _client(args) as client:
        try:
            detail = client.file_request(
                request_type=args.request_type,
                recipient=args.recipient,
                form_json=form,
                strip=args.strip_identifiers,
                campaign_id=args.campaign,
                idempotency_key=key,
            )
        except OutcomeUnknownError as e:
            raise OutcomeUnknownError(
                "the local node stopped answering before it said whether the request was "
                "filed; it may have been. Run the same command again with --idempotency-key "
                f"{key}: it files the request if it was not filed, and shows it if it was",
                idempotency_key=key,
            ) from e
    if args.json:
        output.print_json(console, output.detail_dict(detail))
        return 0
    summary = detail.summary
    console.print(
        f"Request [bold]{summary.request_id}[/bold] ({summary.request_type}) to "
        f"{summary.peer}: {summary.state}"
    )
    if detail.HasField("receipt"):
        receipt = output.receipt_dict(detail.receipt)
        output.print_receipt(console, receipt, verified=detail.receipt_verified)
    return 0


def list_requests(args: argparse.Namespace, console: Console) -> int:
    """One page of requests (the next page's token follows it), or with --all every one."""
    if not 1 <= args.limit <= 1000:
        raise ConfigError("--limit must be between 1 and 1000")
    direction = _DIRECTIONS[args.direction]
    next_token = ""
    with _client(args) as client:
        if args.all:
            summaries = list(client.all_requests(direction=direction))
        else:
            response = client.list_requests(
                direction=direction, limit=args.limit, page_token=args.page_token
            )
            summaries, next_token = list(response.requests), response.next_page_token
    if args.json:
        output.print_json(console, [output.summary_dict(s) for s in summaries])
    else:
        output.print_list(console, summaries)
    if next_token:
        # On standard error, so that --json output stays one JSON document.
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"More requests follow: add --page-token {next_token} (or list --all)."
        )
    return 0


def show_request(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        detail = client.get_request(args.request_id)
    if args.json:
        output.print_json(console, output.detail_dict(detail))
    else:
        output.print_detail(console, detail)
        if args.form:
            console.print("Form:")
            console.print_json(detail.form_json.decode("utf-8"))
    return 0


def overdue(args: argparse.Namespace, console: Console) -> int:
    """Requests past their deadline, both directions, most overdue first."""
    with _client(args) as client:
        summaries = list(client.overdue().requests)
    if args.json:
        output.print_json(console, [output.summary_dict(s) for s in summaries])
    elif summaries:
        output.print_overdue(console, summaries)
    else:
        console.print("Nothing is overdue.")
    return 0


def node_status(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        status = client.node_status()
    if args.json:
        output.print_json(console, output.status_dict(status))
    else:
        output.print_status(console, status)
    return 0
