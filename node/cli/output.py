# SPDX-License-Identifier: Apache-2.0
"""How the CLI shows requests and receipts: tables for people, JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from node.gen.comity.v1 import envelope_pb2, local_pb2
from node.timeutil import format_ms

_DIRECTIONS = {
    local_pb2.DIRECTION_OUTBOUND: "outbound",
    local_pb2.DIRECTION_INBOUND: "inbound",
}


def summary_dict(summary: local_pb2.RequestSummary) -> dict[str, Any]:
    return {
        "request_id": summary.request_id,
        "request_type": summary.request_type,
        "direction": _DIRECTIONS.get(summary.direction, "unknown"),
        "peer": summary.peer,
        "state": summary.state,
        "created_at": format_ms(summary.created_at_ms),
        "updated_at": format_ms(summary.updated_at_ms),
        "due_at": format_ms(summary.due_at_ms) if summary.due_at_ms else None,
        "overdue": summary.overdue,
    }


def receipt_dict(receipt: envelope_pb2.Receipt) -> dict[str, Any]:
    return {
        "message_id": receipt.message_id,
        "receiver": receipt.receiver,
        "sender": receipt.sender,
        "status": envelope_pb2.ReceiptStatus.Name(receipt.status)
        .removeprefix("RECEIPT_STATUS_")
        .lower(),
        "envelope_digest": receipt.envelope_digest.hex(),
        "received_at": format_ms(receipt.received_at_ms),
        "signed_by": [s.key_id for s in receipt.signatures],
    }


def delivery_dict(delivery: local_pb2.Delivery) -> dict[str, Any]:
    pending = delivery.status == "pending"
    return {
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": format_ms(delivery.next_attempt_at_ms) if pending else None,
        "last_attempt_at": (
            format_ms(delivery.last_attempt_at_ms) if delivery.last_attempt_at_ms else None
        ),
        "last_error": delivery.last_error or None,
    }


def detail_dict(detail: local_pb2.RequestDetail) -> dict[str, Any]:
    result = summary_dict(detail.summary)
    result["delivery"] = delivery_dict(detail.delivery) if detail.HasField("delivery") else None
    result["form"] = json.loads(detail.form_json) if detail.form_json else None
    result["receipt"] = receipt_dict(detail.receipt) if detail.HasField("receipt") else None
    result["receipt_verified"] = detail.receipt_verified
    result["last_error"] = detail.last_error or None
    result["signed_by"] = list(detail.signed_by)
    result["preserved_until"] = (
        format_ms(detail.preserved_until_ms) if detail.preserved_until_ms else None
    )
    result["history"] = [history_dict(entry) for entry in detail.history]
    return result


def history_dict(entry: local_pb2.HistoryEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "direction": _DIRECTIONS.get(entry.direction, "unknown"),
        "sequence": entry.sequence,
        "state": entry.state,
        "created_at": format_ms(entry.created_at_ms),
        "body": json.loads(entry.body_json) if entry.body_json else None,
        "delivery": entry.delivery or None,
        "note": entry.note or None,
    }


def print_history(console: Console, history: list[dict[str, Any]]) -> None:
    table = Table("#", "when (UTC)", "message", "direction", "state", "details")
    for number, entry in enumerate(history, start=1):
        state = entry["state"] + (f" ({entry['note']})" if entry["note"] else "")
        if entry["delivery"] and entry["delivery"] != "delivered":
            state += f", delivery {entry['delivery']}"
        table.add_row(
            str(number),
            entry["created_at"],
            entry["kind"],
            entry["direction"],
            state,
            _details(entry["kind"], entry["body"] or {}),
        )
    console.print(table)


def _details(kind: str, body: dict[str, Any]) -> str:
    if kind == "evidence":
        names = ", ".join(str(item["name"]) for item in body.get("items", []))
        return f"{len(body.get('items', []))} file(s): {names}"
    return "; ".join(
        f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in body.items()
        if k != "form_version"
    )


def print_json(console: Console, value: object) -> None:
    console.print_json(json.dumps(value, ensure_ascii=False))


def print_list(console: Console, summaries: list[local_pb2.RequestSummary]) -> None:
    if not summaries:
        console.print("No requests yet.")
        return
    table = Table("request id", "type", "direction", "peer", "state", "updated (UTC)")
    for s in summaries:
        d = summary_dict(s)
        table.add_row(
            d["request_id"],
            d["request_type"],
            d["direction"],
            d["peer"],
            d["state"],
            d["updated_at"],
        )
    console.print(table)


def print_overdue(console: Console, summaries: list[local_pb2.RequestSummary]) -> None:
    table = Table("request id", "type", "direction", "peer", "state", "due (UTC)")
    for s in summaries:
        d = summary_dict(s)
        table.add_row(
            d["request_id"], d["request_type"], d["direction"], d["peer"], d["state"], d["due_at"]
        )
    console.print(table)


def print_detail(console: Console, detail: local_pb2.RequestDetail) -> None:
    d = detail_dict(detail)
    table = Table(show_header=False, box=None)
    for key in (
        "request_id",
        "request_type",
        "direction",
        "peer",
        "state",
        "created_at",
        "updated_at",
    ):
        table.add_row(key.replace("_", " "), str(d[key]))
    if d["due_at"]:
        table.add_row(
            "due", d["due_at"] + (" [bold red]OVERDUE[/bold red]" if d["overdue"] else "")
        )
    if d["preserved_until"]:
        table.add_row("preserved until", d["preserved_until"])
    if d["signed_by"]:
        table.add_row("signed with key", ", ".join(d["signed_by"]))
    if d["last_error"]:
        table.add_row("last error", d["last_error"])
    if d["delivery"]:
        _delivery_rows(table, d["delivery"])
    console.print(table)
    if not d["receipt"]:
        console.print("No receipt yet.")
    elif detail.summary.direction == local_pb2.DIRECTION_INBOUND:
        print_receipt(console, d["receipt"], title="Signed receipt issued by this node")
    else:
        print_receipt(console, d["receipt"], verified=detail.receipt_verified)
    if len(d["history"]) > 1:
        print_history(console, d["history"])


def _delivery_rows(table: Table, delivery: dict[str, Any]) -> None:
    text = f"{delivery['status']}, {delivery['attempts']} attempt(s)"
    if delivery["next_attempt_at"]:
        text += f", next attempt {delivery['next_attempt_at']}"
    table.add_row("delivery", text)
    if delivery["last_error"] and delivery["status"] != "delivered":
        table.add_row("delivery error", delivery["last_error"])


def print_receipt(
    console: Console, receipt: dict[str, Any], *, verified: bool = False, title: str = ""
) -> None:
    """A receipt; outbound ones say whether signature and digest were verified."""
    if not title:
        mark = "[green]verified[/green]" if verified else "[red]NOT verified[/red]"
        title = f"Signed receipt from the recipient ({mark})"
    console.print(f"{title}:")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in receipt.items():
        table.add_row(
            key.replace("_", " "), ", ".join(value) if isinstance(value, list) else str(value)
        )
    console.print(table)


def status_dict(status: local_pb2.NodeStatus) -> dict[str, Any]:
    return {
        "agency_id": status.agency_id,
        "directory_version": status.directory_version,
        "directory_expires": format_ms(status.directory_expires_at_ms),
        "requests": {"outbound": status.requests_outbound, "inbound": status.requests_inbound},
        "outbox": {
            "pending": status.outbox_pending,
            "capacity": status.outbox_capacity,
            "failed": status.outbox_failed,
        },
        "indicator_set_offers": {
            "pending": status.set_offers_pending,
            "failed": status.set_offers_failed,
        },
        "sighting_reports": {
            "pending": status.sighting_reports_pending,
            "failed": status.sighting_reports_failed,
        },
        "peers": [
            {
                "peer": p.peer,
                "pending": p.pending,
                "oldest_pending_since": format_ms(p.oldest_pending_since_ms),
                "max_attempts": p.max_attempts,
                "next_attempt_at": format_ms(p.next_attempt_at_ms),
                "last_error": p.last_error or None,
                "alert": p.alert,
                "claimed_elsewhere": p.claimed_elsewhere,
                "claims_end_at": format_ms(p.claims_end_at_ms) if p.claimed_elsewhere else None,
            }
            for p in status.peers
        ],
    }


def _print_indicator_queues(console: Console, d: dict[str, Any]) -> None:
    """Set versions and sighting reports still owed to other agencies, shown only when any
    are."""
    offers = d["indicator_set_offers"]
    if offers["pending"] or offers["failed"]:
        console.print(
            f"Indicator sets: {offers['pending']} version(s) still offered to other agencies, "
            f"{offers['failed']} refused for good (comity indicators show SET_ID)."
        )
    reports = d["sighting_reports"]
    if reports["pending"] or reports["failed"]:
        console.print(
            f"Sighting reports: {reports['pending']} still offered to set owners, "
            f"{reports['failed']} refused for good (comity indicators sightings SET_ID)."
        )


def print_status(console: Console, status: local_pb2.NodeStatus) -> None:
    d = status_dict(status)
    console.print(
        f"Node [bold]{d['agency_id']}[/bold]: {d['requests']['outbound']} outbound and "
        f"{d['requests']['inbound']} inbound requests."
    )
    console.print(
        f"Federation directory version {d['directory_version']}, expires {d['directory_expires']}."
    )
    outbox = d["outbox"]
    console.print(
        f"Outbox: {outbox['pending']} pending of {outbox['capacity']}, "
        f"{outbox['failed']} failed for good."
    )
    _print_indicator_queues(console, d)
    if not d["peers"]:
        console.print("Every delivery is done.")
        return
    table = Table(
        "peer", "pending", "waiting since (UTC)", "attempts", "next attempt", "last error"
    )
    for p in d["peers"]:
        peer = f"[bold red]ALERT {p['peer']}[/bold red]" if p["alert"] else p["peer"]
        table.add_row(
            peer,
            str(p["pending"]),
            p["oldest_pending_since"],
            str(p["max_attempts"]),
            p["next_attempt_at"],
            p["last_error"] or "",
        )
    console.print(table)
    for p in d["peers"]:
        if p["claimed_elsewhere"]:
            console.print(
                f"{p['claimed_elsewhere']} delivery(ies) to {p['peer']} held by another "
                f"process's claim until {p['claims_end_at']}: another replica is sending them, "
                "or one that stopped; its claims lapse then and this node takes them over."
            )
