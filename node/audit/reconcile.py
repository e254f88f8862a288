# SPDX-License-Identifier: Apache-2.0
"""Cross-node reconciliation: both ends of every exchange must have logged it, alike.

Given the verified leaves of several nodes' logs, match events by the exchange id both ends
share. A request one end logged as sent must be logged as received at the other end, and the
other way round; a receipt logged as sent must be logged as received; both ends must agree on
the public fields. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from node.audit.leaf import Leaf

# (event at one end, event that must exist at the other end, which end logs the other)
_COUNTERPARTS = (
    ("request.sent", "request.received", "to"),
    ("request.received", "request.sent", "from"),
    ("receipt.sent", "receipt.received", "from"),
    ("receipt.received", "receipt.sent", "to"),
)


@dataclass(frozen=True)
class Finding:
    kind: str
    """``hidden`` (one end logged it, the other did not) or ``mismatch`` (they disagree)."""
    exchange_id: str
    node: str
    detail: str


def reconcile(logs: Mapping[str, Iterable[Leaf]]) -> list[Finding]:
    """Findings across the logs of the agencies in ``logs`` (agency id -> its leaves).

    Only pairs where both agencies' logs are present are judged.
    """
    index: dict[tuple[str, str, str], Leaf] = {}
    for agency, leaves in logs.items():
        for leaf in leaves:
            index[(agency, leaf.public.exchange_id, leaf.public.event)] = leaf
    findings: list[Finding] = []
    for (agency, exchange_id, event), leaf in sorted(index.items()):
        for mine, theirs, end in _COUNTERPARTS:
            if event != mine:
                continue
            other = leaf.public.recipient if end == "to" else leaf.public.sender
            if other not in logs:
                continue
            counterpart = index.get((other, exchange_id, theirs))
            if counterpart is None:
                findings.append(
                    Finding(
                        "hidden",
                        exchange_id,
                        other,
                        f"{agency} logged {event}; {other} has no {theirs}",
                    )
                )
            elif _public(counterpart) != _public(leaf):
                findings.append(
                    Finding(
                        "mismatch",
                        exchange_id,
                        other,
                        f"{agency}'s {event} and {other}'s {theirs} disagree "
                        "on type, legal basis or agencies",
                    )
                )
    return findings


def _public(leaf: Leaf) -> tuple[str, str, str, str]:
    p = leaf.public
    return (p.request_type, p.legal_basis, p.sender, p.recipient)
