# SPDX-License-Identifier: Apache-2.0
"""``comity indicators report`` and ``comity indicators sightings``: sightings and false
positives, sent by a holder of a set to its owner (kept and sent again until the owner has
them), what the owner received, and where a holder's own reports stand."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from node.cli import output
from node.cli.local_client import LocalClient, local_socket
from node.gen.comity.v1 import local_pb2
from node.indicators.sightings import MAX_NOTE_CHARS
from node.timeutil import format_ms

KINDS = {"seen": "seen", "false-positive": "false_positive"}


@dataclass
class Tally:
    """What the owner heard about one indicator: reports per agency, by kind."""

    seen: Counter[str] = field(default_factory=Counter)
    false_positive: Counter[str] = field(default_factory=Counter)

    def add(self, view: local_pb2.SightingView) -> None:
        (self.seen if view.kind == "seen" else self.false_positive)[view.reporter] += 1

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"seen": dict(self.seen), "false_positive": dict(self.false_positive)}


def tally(sightings: local_pb2.SightingList) -> dict[tuple[str, str], Tally]:
    """Reports counted per indicator (type, value)."""
    counts: dict[tuple[str, str], Tally] = {}
    for view in sightings.sightings:
        counts.setdefault((view.type, view.value), Tally()).add(view)
    return counts


def describe(counter: Counter[str]) -> str:
    """``3 (bb-central-authority 2, cc-central-authority 1)``, or ``-``."""
    if not counter:
        return "-"
    by_agency = ", ".join(f"{agency} {n}" for agency, n in sorted(counter.items()))
    return f"{sum(counter.values())} ({by_agency})"


def report(args: argparse.Namespace, console: Console) -> int:
    """Tell a set's owner this agency saw one of its indicators, or found it wrong; says
    whether the owner took the report or it is queued for the owner."""
    with LocalClient(local_socket(args.config)) as client:
        sent = client.report_sighting(
            args.set_id, indicator=(args.type, args.value), kind=KINDS[args.kind], note=args.note
        )
    what = "sighting" if sent.kind == "seen" else "false positive"
    made = f"Report {sent.sighting_id} of a {what} of a {sent.type} indicator of set {sent.set_id}"
    if sent.delivery == "pending":
        console.print(
            f"{made} is queued for {sent.owner}, which cannot take it now "
            f"({escape(sent.last_error)}); the node will keep offering it "
            f"(see `comity indicators sightings {sent.set_id}`)."
        )
        return 0
    console.print(f"{made} sent to {sent.owner}.")
    return 0


def sightings(args: argparse.Namespace, console: Console) -> int:
    """The reports about one set: at its owner every report it received; at a holder the
    reports this agency made, with their delivery."""
    with LocalClient(local_socket(args.config)) as client:
        found = list(client.list_sightings(args.set_id).sightings)
    if args.json:
        output.print_json(console, [_sighting_dict(s) for s in found])
        return 0
    if not found:
        console.print(f"No sighting or false-positive report about set {args.set_id} here.")
        return 0
    received = [s for s in found if not s.delivery]
    if received:
        console.print(_received_table(received))
    made = [s for s in found if s.delivery]
    if made:
        console.print(_made_table(made))
    return 0


def _received_table(views: list[local_pb2.SightingView]) -> Table:
    table = Table("received", "agency", "kind", "type", "value", "note")
    for s in views:
        # Another agency wrote the note: shown as text, never as console markup.
        table.add_row(
            format_ms(s.received_at_ms), s.reporter, s.kind, s.type, escape(s.value), _note(s)
        )
    return table


def _made_table(views: list[local_pb2.SightingView]) -> Table:
    table = Table(
        "made", "to", "kind", "type", "value", "note", "delivery", "attempts", "last error"
    )
    for s in views:
        table.add_row(
            format_ms(s.reported_at_ms),
            s.owner,
            s.kind,
            s.type,
            escape(s.value),
            _note(s),
            _delivery(s),
            str(s.attempts),
            escape(s.last_error) or "-",
        )
    return table


def _note(view: local_pb2.SightingView) -> str:
    return escape(view.note) if view.HasField("note") else "-"


def _delivery(view: local_pb2.SightingView) -> str:
    if view.delivery == "pending":
        return f"pending, next {format_ms(view.next_attempt_at_ms)}"
    return view.delivery


def _sighting_dict(view: local_pb2.SightingView) -> dict[str, object]:
    return {
        "sighting_id": view.sighting_id,
        "set_id": view.set_id,
        "reporter": view.reporter,
        "kind": view.kind,
        "type": view.type,
        "value": view.value,
        "note": view.note if view.HasField("note") else None,
        "reported_at_ms": view.reported_at_ms,
        "received_at_ms": view.received_at_ms,
        "delivery": _delivery_dict(view) if view.delivery else None,
    }


def _delivery_dict(view: local_pb2.SightingView) -> dict[str, object]:
    return {
        "to": view.owner,
        "state": view.delivery,
        "attempts": view.attempts,
        "last_error": view.last_error or None,
        "next_attempt_at_ms": view.next_attempt_at_ms or None,
    }


def add_commands(sub: Any, add_config_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """``indicators report`` and ``indicators sightings``."""
    sent = sub.add_parser(
        "report", help="tell a set's owner this agency saw one of its indicators, or found it wrong"
    )
    sent.add_argument("set_id")
    sent.add_argument("--type", required=True, help="the indicator's type, e.g. phone")
    sent.add_argument("--value", required=True, help="the indicator's value")
    sent.add_argument("--kind", required=True, choices=sorted(KINDS), help="seen or false-positive")
    sent.add_argument(
        "--note", help=f"a short note for the owner (at most {MAX_NOTE_CHARS} characters)"
    )
    sent.set_defaults(handler=report)
    listing = sub.add_parser(
        "sightings",
        help="the sighting and false-positive reports about a set: at its owner those received, "
        "at a holder those this agency made, with their delivery",
    )
    listing.add_argument("set_id")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=sightings)
    for command in (sent, listing):
        add_config_option(command)
