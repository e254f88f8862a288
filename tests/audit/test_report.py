# SPDX-License-Identifier: Apache-2.0
"""Transparency statistics: counts, suppression of small counts, CSV and HTML output."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from node.audit.leaf import Leaf, PublicFields, build_leaf, hour_of
from node.audit.report import Deadline, build_report, report_csv, report_html

A, B, C = "aa-cyber-unit", "bb-central-authority", "cc-central-authority"


def leaf(event: str, exchange: str, recipient: str = B, basis: str = "budapest-art29") -> Leaf:
    public = PublicFields(
        event=event,
        request_type="preservation",
        legal_basis=basis,
        sender=A,
        recipient=recipient,
        exchange_id=exchange,
        hour=hour_of(0),
    )
    return build_leaf(public, {})[0]


LOGS = {
    A: [leaf("request.sent", f"x{i}") for i in range(7)]
    + [leaf("request.sent", "y0", recipient=C, basis="eu-e-evidence-preservation-order")],
    B: [leaf("request.received", f"x{i}") for i in range(7)],
}


def test_counts_exchanges_once_and_suppresses_small_counts() -> None:
    report = build_report(LOGS)
    assert report["exchanges"] == 8
    assert report["by_request_type"] == {"preservation": 8}
    assert report["by_legal_basis"] == {
        "budapest-art29": 7,
        "eu-e-evidence-preservation-order": "<5",
    }
    assert report["by_pair"] == {f"{A} -> {B}": 7, f"{A} -> {C}": "<5"}
    assert report["events"] == {"request.received": 7, "request.sent": 8}


def test_a_small_total_is_suppressed_too() -> None:
    assert build_report({A: LOGS[A][:2]})["exchanges"] == "<5"
    assert build_report({})["exchanges"] == 0


def test_csv_and_html_carry_the_same_figures() -> None:
    report = build_report(LOGS)
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert rows[0] == ["section", "key", "count"]
    assert ["by_pair", f"{A} -> {C}", "<5"] in rows
    page = report_html(report, title="Report <2026>")
    assert page.startswith("<!doctype html>")
    assert "Report &lt;2026&gt;" in page
    assert "&lt;5" in page
    assert "<script" not in page
    assert "http" not in page  # self-contained: nothing fetched from elsewhere


def timed_leaf(event: str, exchange: str, hour: str, basis: str = "budapest-art29") -> Leaf:
    public = PublicFields(
        event=event,
        request_type="preservation",
        legal_basis=basis,
        sender="aa-unit",
        recipient="bb-authority",
        exchange_id=exchange,
        hour=hour,
    )
    return build_leaf(public, {})[0]


def test_times_to_decision_and_deadline_breaches_to_the_hour() -> None:
    leaves = []
    for i in range(6):
        exchange = f"x{i}"
        leaves.append(timed_leaf("request.received", exchange, "2026-11-01T00Z"))
        if i < 5:  # five decided, after 10, 20, 30, 40 and 100 hours
            hour = [10, 20, 30, 40, 100][i]
            leaves.append(
                timed_leaf(
                    "decision.sent", exchange, f"2026-11-{1 + hour // 24:02d}T{hour % 24:02d}Z"
                )
            )
    deadlines = {"budapest-art29": Deadline(hours=72, until="decision")}
    now = int(datetime(2026, 11, 10, tzinfo=UTC).timestamp() * 1000)
    report = build_report(
        {"bb-authority": leaves}, suppress_below=1, deadlines=deadlines, now_ms=now
    )
    assert report["median_hours_to_decision_by_type"] == {"preservation": 30.0}
    # The 100-hour decision and the one never decided (216 hours by now) are late.
    assert report["deadline_breaches_by_legal_basis"] == {"budapest-art29": 2}
    suppressed = build_report({"bb-authority": leaves}, deadlines=deadlines, now_ms=now)
    assert suppressed["deadline_breaches_by_legal_basis"] == {"budapest-art29": "<5"}


def test_local_events_are_counted_by_kind_and_are_no_exchange() -> None:
    local = [leaf("case.read", "x0"), leaf("call.refused", ""), leaf("user.added", "")]
    report = build_report({A: [*LOGS[A], *local], B: LOGS[B]})
    assert report["exchanges"] == 8
    assert report["by_request_type"] == {"preservation": 8}
    assert report["events"]["case.read"] == "<5"
    assert set(report["events"]) >= {"call.refused", "user.added"}


def test_answered_overlap_checks_are_counted_by_pair_not_as_exchanges() -> None:
    checks = [
        build_leaf(
            PublicFields(
                event="overlap.answered",
                request_type="",
                legal_basis="",
                sender=A if i < 6 else C,
                recipient=B,
                exchange_id=f"check-{i}",
                hour=hour_of(0),
            ),
            {},
        )[0]
        for i in range(7)
    ]
    report = build_report({A: LOGS[A], B: LOGS[B] + checks})
    assert report["exchanges"] == 8
    assert report["by_request_type"] == {"preservation": 8}
    assert report["overlap_checks_by_pair"] == {f"{A} -> {B}": 6, f"{C} -> {B}": "<5"}
    assert report["events"]["overlap.answered"] == 7
    assert ["overlap_checks_by_pair", f"{A} -> {B}", "6"] in csv.reader(
        io.StringIO(report_csv(report))
    )
