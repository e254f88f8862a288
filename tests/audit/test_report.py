# SPDX-License-Identifier: Apache-2.0
"""Transparency statistics: counts, suppression of small counts, CSV and HTML output."""

from __future__ import annotations

import csv
import io

from node.audit.leaf import Leaf, PublicFields, build_leaf, hour_of
from node.audit.report import build_report, report_csv, report_html

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
