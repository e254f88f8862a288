# SPDX-License-Identifier: Apache-2.0
"""Transparency statistics from verified logs' public fields, small counts suppressed.

Counts exchanges (distinct exchange ids, whichever ends logged them) by request type, legal
basis and pair of agencies, and events by kind. Any count below the suppression threshold is
published as ``"<N"`` so that rare combinations cannot single out a case. Renders as JSON,
CSV, or one self-contained HTML page (inline SVG bars, no scripts, no external files) that a
secretariat can publish as it is. Pure: no I/O.
"""

from __future__ import annotations

import csv
import html
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from node.audit.leaf import Leaf

SUPPRESS_BELOW = 5


def build_report(
    logs: Mapping[str, Iterable[Leaf]], *, suppress_below: int = SUPPRESS_BELOW
) -> dict[str, Any]:
    exchanges: dict[str, tuple[str, str, str, str]] = {}
    events: Counter[str] = Counter()
    for leaves in logs.values():
        for leaf in leaves:
            p = leaf.public
            exchanges.setdefault(
                p.exchange_id, (p.request_type, p.legal_basis, p.sender, p.recipient)
            )
            events[p.event] += 1
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
        "logs": sorted(logs),
        "suppressed_below": suppress_below,
        "exchanges": _shown_total(len(exchanges), suppress_below),
        "by_request_type": shown(by["request_type"]),
        "by_legal_basis": shown(by["legal_basis"]),
        "by_pair": shown(by["pair"]),
        "events": shown(events),
    }


def _shown_total(value: int, suppress_below: int) -> int | str:
    return value if value >= suppress_below or value == 0 else f"<{suppress_below}"


_SECTIONS = (
    ("by_request_type", "Exchanges by request type"),
    ("by_legal_basis", "Exchanges by legal basis"),
    ("by_pair", "Exchanges by requesting and requested agency"),
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


def _table_with_bars(counts: Mapping[str, int | str]) -> str:
    if not counts:
        return "<p>None.</p>"
    largest = max((c for c in counts.values() if isinstance(c, int)), default=1)
    rows = []
    for key, count in counts.items():
        width = int(240 * count / largest) if isinstance(count, int) else 0
        bar = (
            f'<svg width="240" height="12" role="img" aria-label="{html.escape(str(count))}">'
            f'<rect width="{width}" height="12"/></svg>'
        )
        rows.append(
            f"<tr><td>{html.escape(key)}</td><td class=n>{html.escape(str(count))}"
            f"</td><td>{bar}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"
