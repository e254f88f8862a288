# SPDX-License-Identifier: Apache-2.0
"""Cross-node reconciliation: both ends of every exchange must have logged it, alike.

Given the verified leaves of several nodes' logs, match events by the exchange id both ends
share. A request one end logged as sent must be logged as received at the other end, and the
other way round; a receipt logged as sent must be logged as received; both ends must agree on
the public fields. Local events (:data:`~node.audit.leaf.LOCAL_EVENTS`: reads of case
content, user changes, refused calls …) are one node's own record and have no counterpart at
the peer: they are not matched; nor is an ``overlap.answered`` leaf (the asking node logs
nothing for a check it asked), and events without a counterpart are not judged. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from node.audit.leaf import LOCAL_EVENTS, MESSAGE_KINDS, Leaf

# (event at one end, event that must exist at the other end, which end logs the other)
_COUNTERPARTS = (
    ("request.sent", "request.received", "to"),
    ("request.received", "request.sent", "from"),
    ("receipt.sent", "receipt.received", "from"),
    ("receipt.received", "receipt.sent", "to"),
    *((f"{kind}.sent", f"{kind}.received", "to") for kind in MESSAGE_KINDS),
    *((f"{kind}.received", f"{kind}.sent", "from") for kind in MESSAGE_KINDS),
)


@dataclass(frozen=True)
class Finding:
    kind: str
    """``hidden`` (one end logged it, the other did not), ``mismatch`` (they disagree), or
    ``broken_promise`` (a receipt named a leaf that does not record the request)."""
    exchange_id: str
    node: str
    detail: str


def reconcile(logs: Mapping[str, Iterable[Leaf]]) -> list[Finding]:
    """Findings across the logs of the agencies in ``logs`` (agency id -> its leaves, in log
    order).

    Only pairs where both agencies' logs are present are judged.
    """
    ordered = {agency: list(leaves) for agency, leaves in logs.items()}
    # Several messages of one kind can pass in one exchange: count them at both ends.
    index: dict[tuple[str, str, str], list[Leaf]] = {}
    for agency, leaves in ordered.items():
        for leaf in leaves:
            if leaf.public.event in LOCAL_EVENTS:
                continue
            index.setdefault((agency, leaf.public.exchange_id, leaf.public.event), []).append(leaf)
    findings: list[Finding] = []
    for (agency, exchange_id, event), group in sorted(index.items()):
        leaf = group[0]
        for mine, theirs, end in _COUNTERPARTS:
            if event != mine:
                continue
            other = leaf.public.recipient if end == "to" else leaf.public.sender
            if other not in logs:
                continue
            counterparts = index.get((other, exchange_id, theirs), [])
            if len(counterparts) < len(group):
                findings.append(
                    Finding(
                        "hidden",
                        exchange_id,
                        other,
                        f"{agency} logged {event} {len(group)} time(s); {other} logged "
                        f"{theirs} {len(counterparts)} time(s)",
                    )
                )
            elif any(_public(c) != _public(leaf) for c in counterparts):
                findings.append(
                    Finding(
                        "mismatch",
                        exchange_id,
                        other,
                        f"{agency}'s {event} and {other}'s {theirs} disagree "
                        "on type, legal basis or agencies",
                    )
                )
    findings += _broken_promises(ordered)
    return findings


def _broken_promises(logs: Mapping[str, list[Leaf]]) -> list[Finding]:
    """Each receipt the requester logged names the receiver's leaf for the request: check
    that the receiver's log holds exactly that leaf there."""
    findings = []
    for leaves in logs.values():
        for leaf in leaves:
            p = leaf.public
            receiver = logs.get(p.recipient)
            if p.event != "receipt.received" or receiver is None:
                continue
            if not _promise_kept(receiver, p.promised_leaf, p.exchange_id):
                findings.append(
                    Finding(
                        "broken_promise",
                        p.exchange_id,
                        p.recipient,
                        f"the receipt promised leaf {p.promised_leaf}, which does not record "
                        "this request",
                    )
                )
    return findings


def _promise_kept(receiver: list[Leaf], index: int | None, exchange_id: str) -> bool:
    if index is None or not 0 <= index < len(receiver):
        return False
    promised = receiver[index].public
    return (promised.event, promised.exchange_id) == ("request.received", exchange_id)


def _public(leaf: Leaf) -> tuple[str, str, str, str]:
    p = leaf.public
    return (p.request_type, p.legal_basis, p.sender, p.recipient)
