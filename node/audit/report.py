# SPDX-License-Identifier: Apache-2.0
"""Transparency statistics from verified logs' public fields, small counts suppressed.

Counts exchanges (distinct exchange ids, whichever ends logged them) by request type, legal
basis and pair of agencies, and events by kind — the local ones too (reads of case content,
user changes, refused calls …), by kind alone: who acted is only in a leaf's commitments.
Answered overlap checks (``overlap.answered``) are not exchanges: they are counted apart, by
pair of asking and answering agency. Any count below the suppression threshold is published
as ``"<N"`` so that rare combinations cannot single out a case. Renders as JSON, CSV, or one
self-contained HTML page (inline SVG bars, no scripts, no external files) that a secretariat
can publish as it is. Pure: no I/O.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from node.audit.leaf import LOCAL_EVENTS, OVERLAP_ANSWERED, Leaf

SUPPRESS_BELOW = 5


@dataclass(frozen=True)
class Deadline:
    """A legal basis's deadline as the report applies it (from the legal-basis profiles)."""

    hours: int
    until: str
    """``decision`` or ``execution``."""


def build_report(
    logs: Mapping[str, Iterable[Leaf]],
    *,
    suppress_below: int = SUPPRESS_BELOW,
    deadlines: Mapping[str, Deadline] | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """Statistics over the logs' public fields. With ``deadlines`` (by legal basis) and
    ``now_ms``, also times to decision and deadline breaches, to the hour (leaves carry only
    the hour)."""
    listed = {agency: list(leaves) for agency, leaves in logs.items()}
    timing = _timing(listed, deadlines or {}, now_ms, suppress_below)
    exchanges: dict[str, tuple[str, str, str, str]] = {}
    events: Counter[str] = Counter()
    overlap_checks: Counter[str] = Counter()
    # A decision is logged at both ends: count each (exchange, ground) once.
    grounds: set[tuple[str, str]] = set()
    for leaves in listed.values():
        for leaf in leaves:
            p = leaf.public
            events[p.event] += 1
            if p.event == OVERLAP_ANSWERED:
                overlap_checks[f"{p.sender} -> {p.recipient}"] += 1
                continue
            if p.event in LOCAL_EVENTS:
                continue  # one node's own record: no exchange to count
            exchanges.setdefault(
                p.exchange_id, (p.request_type, p.legal_basis, p.sender, p.recipient)
            )
            if p.event.startswith("decision.") and p.refusal_ground:
                grounds.update((p.exchange_id, g) for g in p.refusal_ground.split(","))
    by = {
        "request_type": Counter(t for t, _, _, _ in exchanges.values()),
        "legal_basis": Counter(b for _, b, _, _ in exchanges.values()),
        "pair": Counter(f"{s} -> {r}" for _, _, s, r in exchanges.values()),
    }

    def shown(counter: Counter[str]) -> dict[str, int | str]:
        return {
            k: v if v >= suppress_below else f"<{suppress_below}"
            for k, v in sorted(counter.items())
        }

    return {
        "logs": sorted(listed),
        "suppressed_below": suppress_below,
        "exchanges": _shown_total(len(exchanges), suppress_below),
        "by_request_type": shown(by["request_type"]),
        "by_legal_basis": shown(by["legal_basis"]),
        "by_pair": shown(by["pair"]),
        "refusals_by_ground": shown(Counter(ground for _, ground in grounds)),
        **timing,
        "overlap_checks_by_pair": shown(overlap_checks),
        "events": shown(events),
    }


def _hour(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%HZ").replace(tzinfo=UTC)


def _first_hours(logs: Mapping[str, list[Leaf]]) -> dict[str, dict[str, datetime]]:
    """For each exchange, the first hour at which each step was logged at either end."""
    steps = {
        "request.received": "received",
        "decision.sent": "decision",
        "decision.received": "decision",
        "execution.sent": "execution",
        "execution.received": "execution",
    }
    found: dict[str, dict[str, datetime]] = {}
    for leaves in logs.values():
        for leaf in leaves:
            step = steps.get(leaf.public.event)
            if step is None:
                continue
            hours = found.setdefault(leaf.public.exchange_id, {})
            hour = _hour(leaf.public.hour)
            hours[step] = min(hours.get(step, hour), hour)
    return found


def _timing(
    logs: Mapping[str, list[Leaf]],
    deadlines: Mapping[str, Deadline],
    now_ms: int | None,
    suppress_below: int,
) -> dict[str, Any]:
    kinds = {
        leaf.public.exchange_id: (leaf.public.request_type, leaf.public.legal_basis)
        for leaves in logs.values()
        for leaf in leaves
    }
    waits: dict[str, list[float]] = {}
    breaches: Counter[str] = Counter()
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC) if now_ms is not None else None
    for exchange_id, hours in _first_hours(logs).items():
        received = hours.get("received")
        if received is None:
            continue
        request_type, basis = kinds[exchange_id]
        if "decision" in hours:
            waits.setdefault(request_type, []).append(
                (hours["decision"] - received).total_seconds() / 3600
            )
        deadline = deadlines.get(basis)
        if deadline is None or now is None:
            continue
        reached = hours.get(deadline.until) or now
        if (reached - received).total_seconds() / 3600 > deadline.hours:
            breaches[basis] += 1
    median = {
        t: round(statistics.median(w), 1)
        if len(w) >= suppress_below
        else f"<{suppress_below} decided"
        for t, w in sorted(waits.items())
    }
    shown = {
        b: n if n >= suppress_below else f"<{suppress_below}" for b, n in sorted(breaches.items())
    }
    return {"median_hours_to_decision_by_type": median, "deadline_breaches_by_legal_basis": shown}


def _shown_total(value: int, suppress_below: int) -> int | str:
    return value if value >= suppress_below or value == 0 else f"<{suppress_below}"


_SECTIONS = (
    ("by_request_type", "Exchanges by request type"),
    ("by_legal_basis", "Exchanges by legal basis"),
    ("by_pair", "Exchanges by requesting and requested agency"),
    ("refusals_by_ground", "Refusals by ground"),
    ("median_hours_to_decision_by_type", "Median hours from receipt to decision, by type"),
    ("deadline_breaches_by_legal_basis", "Deadline breaches by legal basis"),
    ("overlap_checks_by_pair", "Overlap checks answered, by asking and answering agency"),
    ("events", "Logged events"),
)


def report_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "key", "count"])
    writer.writerow(["total", "exchanges", report["exchanges"]])
    for section, _ in _SECTIONS:
        for key, count in report[section].items():
            writer.writerow([section, key, count])
    return out.getvalue()


def report_html(report: Mapping[str, Any], *, title: str = "Comity transparency report") -> str:
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        (
            "<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;"
            "color:#1b1b1b}h1{font-size:1.6rem}h2{font-size:1.1rem;margin-top:2rem}"
            "td{padding:.15rem .6rem}.n{text-align:right;font-variant-numeric:tabular-nums}"
            "svg rect{fill:#2f5d8a}</style></head><body>"
        ),
        f"<h1>{html.escape(title)}</h1>",
        (
            f"<p>Logs: {html.escape(', '.join(report['logs']))}. Exchanges: "
            f"<strong>{html.escape(str(report['exchanges']))}</strong>. Counts below "
            f"{report['suppressed_below']} are shown as &lt;{report['suppressed_below']}.</p>"
        ),
    ]
    for section, heading in _SECTIONS:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(_table_with_bars(report[section]))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table_with_bars(counts: Mapping[str, float | str]) -> str:
    if not counts:
        return "<p>None.</p>"
    numbers = [c for c in counts.values() if isinstance(c, int | float)]
    largest = max(numbers, default=1) or 1
    rows = []
    for key, count in counts.items():
        width = int(240 * count / largest) if isinstance(count, int | float) else 0
        bar = (
            f'<svg width="240" height="12" role="img" aria-label="{html.escape(str(count))}">'
            f'<rect width="{width}" height="12"/></svg>'
        )
        rows.append(
            f"<tr><td>{html.escape(key)}</td><td class=n>{html.escape(str(count))}"
            f"</td><td>{bar}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"
