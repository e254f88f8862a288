# SPDX-License-Identifier: Apache-2.0
"""``comity indicators …``: this agency's indicator sets and those shared with it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from node import wire
from node.cli import output, sightings_cmd
from node.cli.local_client import LocalClient, local_socket
from node.errors import ConfigError
from node.gen.comity.v1 import local_pb2
from node.ids import AgencyId
from node.indicators.sets import IndicatorSet
from node.indicators.stix import export_bundle, import_bundle
from node.indicators.tlp import Tlp
from node.timeutil import format_ms

IMPORT_BATCH = 1000
_DETAILS = ("confidence", "first_seen_ms", "last_seen_ms", "expires_ms", "quality")


def _client(args: argparse.Namespace) -> LocalClient:
    return LocalClient(local_socket(args.config))


def create(args: argparse.Namespace, console: Console) -> int:
    clients: dict[str, list[str]] = {}
    for grant in args.client or []:
        recipient, sep, client = grant.partition(":")
        if not sep or not recipient or not client:
            raise ConfigError(f"--client takes RECIPIENT:CLIENT, not {grant!r}")
        clients.setdefault(recipient, []).append(client)
    with _client(args) as client:
        view = client.create_indicator_set(
            tlp=args.tlp, recipients=args.recipient or [], clients=clients
        )
    console.print(f"Created indicator set [bold]{view.set_id}[/bold] under {view.tlp}.")
    return 0


def add(args: argparse.Namespace, console: Console) -> int:
    entry = local_pb2.IndicatorEntry(type=args.type, value=args.value)
    if args.confidence is not None:
        entry.confidence = args.confidence
    if args.expires is not None:
        entry.expires_ms = _instant(args.expires, "--expires")
    with _client(args) as client:
        view = client.add_indicators(args.set_id, [entry])
    console.print(
        f"Set {view.set_id} is now version {view.version} with {view.indicator_count} indicator(s)."
    )
    return 0


def import_file(args: argparse.Namespace, console: Console) -> int:
    """A JSON list of {"type", "value", optional confidence / *_ms}, or a STIX 2.1 bundle,
    added in batches."""
    document = _read_json(args.file)
    with _client(args) as client:
        if isinstance(document, dict) and document.get("type") == "bundle":
            label = Tlp.parse(client.get_indicator_set(args.set_id).tlp)
            text = args.file.read_text(encoding="utf-8")
            entries = [wire.indicator_to_proto(i) for i in import_bundle(text, into=label)]
        elif isinstance(document, list):
            entries = [_entry(item, n) for n, item in enumerate(document)]
        else:
            raise ConfigError(f"{args.file} holds neither a JSON list nor a STIX 2.1 bundle")
    with _client(args) as client, Progress(console=console, transient=True) as progress:
        task = progress.add_task("importing", total=len(entries))
        view, discarded = None, 0
        for start in range(0, len(entries), IMPORT_BATCH):
            view = client.add_indicators(args.set_id, entries[start : start + IMPORT_BATCH])
            discarded += view.discarded
            progress.update(task, completed=min(len(entries), start + IMPORT_BATCH))
    if view is None:
        raise ConfigError(f"{args.file} holds no indicators")
    console.print(
        f"Imported {len(entries) - discarded} indicator(s): set {view.set_id} is now version "
        f"{view.version} with {view.indicator_count}."
    )
    if discarded:
        console.print(f"Left out {discarded} pdq hash(es) of quality 49 or less.")
    return 0


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"cannot read {path} as JSON: {e}") from e


def export(args: argparse.Namespace, console: Console) -> int:
    """The set as a STIX 2.1 bundle with its TLP 2.0 marking."""
    with _client(args) as client:
        view = client.get_indicator_set(args.set_id)
    text = export_bundle(_set_of(view))
    if args.out is None:
        console.print(text, markup=False, highlight=False)
    else:
        args.out.write_text(text + "\n", encoding="utf-8")
        console.print(f"Wrote {len(view.indicators)} indicator(s) as STIX 2.1 to {args.out}.")
    return 0


def _set_of(view: local_pb2.IndicatorSetView) -> IndicatorSet:
    return IndicatorSet(
        set_id=view.set_id,
        owner=AgencyId(view.owner),
        version=view.version,
        tlp=Tlp.parse(view.tlp),
        recipients=tuple(AgencyId(r) for r in view.recipients),
        clients={g.recipient: tuple(g.clients) for g in view.clients},
        indicators=tuple(wire.indicator_from_proto(i) for i in view.indicators),
        revoked=view.revoked,
    )


def _entry(item: object, n: int) -> local_pb2.IndicatorEntry:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise ConfigError(f"item {n} must be an object with a string 'type' and 'value'")
    if not isinstance(item.get("value"), str):
        raise ConfigError(f"item {n} must be an object with a string 'type' and 'value'")
    unknown = set(item) - {"type", "value", *_DETAILS}
    if unknown:
        raise ConfigError(f"item {n} has unknown fields: {', '.join(sorted(unknown))}")
    entry = local_pb2.IndicatorEntry(type=item["type"], value=item["value"])
    for name in _DETAILS:
        if item.get(name) is not None:
            if not isinstance(item[name], int) or isinstance(item[name], bool):
                raise ConfigError(f"item {n}: {name} must be an integer")
            setattr(entry, name, item[name])
    return entry


def _instant(text: str, option: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise ConfigError(f"{option} takes an ISO 8601 instant, e.g. 2027-01-31T00:00Z") from e
    if moment.tzinfo is None:
        raise ConfigError(f"{option} needs a time zone, e.g. 2027-01-31T00:00Z")
    return int(moment.timestamp() * 1000)


def list_sets(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        sets = list(client.list_indicator_sets().sets)
    if args.json:
        output.print_json(console, [_set_dict(s) for s in sets])
        return 0
    table = Table("set", "owner", "TLP", "version", "indicators", "from", "shared with")
    for s in sets:
        table.add_row(
            s.set_id,
            s.owner,
            s.tlp + (" (revoked)" if s.revoked else ""),
            str(s.version),
            str(s.indicator_count),
            s.received_from or "-",
            ", ".join(s.shared_with) or "-",
        )
    console.print(table)
    return 0


def show(args: argparse.Namespace, console: Console) -> int:
    """One set with its indicators; for this agency's own sets, with the sightings and false
    positives the agencies holding it reported."""
    with _client(args) as client:
        view = client.get_indicator_set(args.set_id)
        tallies = sightings_cmd.tally(client.list_sightings(args.set_id))
    if args.json:
        shown = _set_dict(view)
        shown["sightings"] = [
            {"type": kind, "value": value, **counts.as_dict()}
            for (kind, value), counts in sorted(tallies.items())
        ]
        output.print_json(console, shown)
        return 0
    console.print(
        f"Set {view.set_id} of {view.owner}, version {view.version}, {view.tlp}"
        + (" (revoked)" if view.revoked else "")
    )
    if view.recipients:
        console.print(f"  for: {', '.join(view.recipients)}")
    for grant in view.clients:
        console.print(f"  {grant.recipient} may pass it to: {', '.join(grant.clients)}")
    own = not view.received_from
    columns = ("seen", "false positives") if own else ()
    table = Table("type", "value", "confidence", "expires", *columns)
    for i in view.indicators:
        expires = format_ms(i.expires_ms) if i.HasField("expires_ms") else "-"
        counts = tallies.get((i.type, i.value), sightings_cmd.Tally())
        reports = (
            sightings_cmd.describe(counts.seen),
            sightings_cmd.describe(counts.false_positive),
        )
        table.add_row(i.type, i.value, str(i.confidence), expires, *(reports if own else ()))
    console.print(table)
    if view.deliveries:
        console.print(_delivery_rows(view))
    return 0


def share(args: argparse.Namespace, console: Console) -> int:
    """Answers at once when the recipient took the set; otherwise says it is queued."""
    with _client(args) as client:
        view = client.share_indicator_set(args.set_id, args.recipient)
    pending = _pending(view, [args.recipient])
    if pending:
        console.print(
            f"Set {view.set_id} version {view.version} is queued for {args.recipient}, which "
            f"cannot take it now ({escape(pending[0].last_error)}); the node will keep offering it "
            f"(see `comity indicators show {view.set_id}`)."
        )
        return 0
    console.print(
        f"Set {view.set_id} version {view.version} passed to {args.recipient} ({view.tlp})."
    )
    return 0


def revoke(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        view = client.revoke_indicator_set(args.set_id)
    waiting = {d.recipient for d in view.deliveries if d.state == "pending"}
    told = ", ".join(r for r in view.shared_with if r not in waiting) or "no one"
    console.print(f"Set {view.set_id} revoked (version {view.version}); sent to: {told}.")
    if waiting:
        console.print(
            f"Queued for {', '.join(sorted(waiting))} (not reachable now); the node will keep "
            "offering the revocation."
        )
    return 0


def _pending(
    view: local_pb2.IndicatorSetView, recipients: Sequence[str]
) -> list[local_pb2.SetDelivery]:
    """The deliveries to ``recipients`` still owed their version of the set."""
    return [d for d in view.deliveries if d.recipient in recipients and d.state == "pending"]


def _delivery_rows(view: local_pb2.IndicatorSetView) -> Table:
    table = Table("shared with", "holds version", "state", "owed version", "attempts", "detail")
    for d in view.deliveries:
        detail = escape(d.last_error) or "-"
        if d.HasField("next_attempt_at_ms"):
            detail += f"; next try {format_ms(d.next_attempt_at_ms)}"
        table.add_row(
            d.recipient,
            str(d.delivered_version or "-"),
            d.state,
            str(d.owed_version or "-"),
            str(d.attempts),
            detail,
        )
    return table


def _delivery_dict(d: local_pb2.SetDelivery) -> dict[str, Any]:
    return {
        "recipient": d.recipient,
        "delivered_version": d.delivered_version or None,
        "state": d.state,
        "owed_version": d.owed_version or None,
        "attempts": d.attempts,
        "last_error": d.last_error or None,
        "next_attempt_at_ms": d.next_attempt_at_ms if d.HasField("next_attempt_at_ms") else None,
    }


def _set_dict(view: local_pb2.IndicatorSetView) -> dict[str, Any]:
    return {
        "set_id": view.set_id,
        "owner": view.owner,
        "version": view.version,
        "tlp": view.tlp,
        "recipients": list(view.recipients),
        "clients": {g.recipient: list(g.clients) for g in view.clients},
        "revoked": view.revoked,
        "received_from": view.received_from or None,
        "indicator_count": view.indicator_count,
        "shared_with": list(view.shared_with),
        "deliveries": [_delivery_dict(d) for d in view.deliveries],
        "indicators": [asdict(wire.indicator_from_proto(i)) for i in view.indicators],
    }


def check_overlap(args: argparse.Namespace, console: Console) -> int:
    """How many of this agency's own indicators the other agency's own ones share."""
    with _client(args) as client, console.status(f"counting the overlap with {args.agency}"):
        count = client.check_overlap(args.agency, args.set_id or [], args.reason)
    if args.json:
        output.print_json(
            console,
            {
                "agency": count.agency,
                "mine": count.mine,
                "theirs": count.theirs,
                "shared": count.shared,
                "check_id": count.check_id,
            },
        )
        return 0
    console.print(
        f"{count.shared} of this agency's {count.mine} indicator(s) are among "
        f"{count.agency}'s {count.theirs}. Neither side learned which; {count.agency} "
        f"logged the check as {count.check_id}."
    )
    return 0


def match_pdq(args: argparse.Namespace, console: Console) -> int:
    """PDQ hashes this node holds near a given one."""
    with _client(args) as client:
        matches = list(client.match_pdq(args.hash, args.max_distance).matches)
    if args.json:
        output.print_json(
            console,
            [
                {"set_id": m.set_id, "owner": m.owner, "value": m.value, "distance": m.distance}
                for m in matches
            ],
        )
        return 0
    if not matches:
        console.print("No PDQ hash held here is that close.")
        return 0
    table = Table("distance", "pdq", "set", "owner")
    for m in matches:
        table.add_row(str(m.distance), m.value, m.set_id, m.owner)
    console.print(table)
    return 0
