# SPDX-License-Identifier: Apache-2.0
"""Recording exchange events in the node's audit log, inside the caller's transaction.

Every event is appended in the same transaction as the change it records, so the log can
neither miss an event that happened nor show one that did not. The public part of a leaf
carries vocabulary and ids only; the case reference, the exact time and the envelope's digest
go in as salted commitments whose openings stay in the node's private store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlmodel import Session

from node.audit.leaf import PublicFields, build_leaf, hour_of
from node.audit.merkle import leaf_hash
from node.storage import repo


def record_event(
    session: Session,
    *,
    event: str,
    request_type: str,
    form_json: bytes,
    sender: str,
    recipient: str,
    exchange_id: str,
    instant_ms: int,
    envelope_digest: bytes,
    extra: Mapping[str, str] | None = None,
) -> int:
    """Append one event's leaf and openings; return the leaf's index."""
    form = _form(form_json)
    public = PublicFields(
        event=event,
        request_type=request_type,
        legal_basis=str(form.get("legal_basis", "unknown")),
        sender=sender,
        recipient=recipient,
        exchange_id=exchange_id,
        hour=hour_of(instant_ms),
    )
    sensitive = {
        "exact_time_ms": str(instant_ms),
        "case_reference": str(form.get("case_reference", "")),
        "envelope_digest": envelope_digest.hex(),
        **(extra or {}),
    }
    leaf, openings = build_leaf(public, sensitive)
    data = leaf.to_bytes()
    return repo.append_audit_leaf(
        session,
        leaf=data,
        leaf_hash=leaf_hash(data),
        openings=[(o.name, o.value, o.salt) for o in openings],
        now_ms=instant_ms,
    )


def _form(form_json: bytes) -> dict[str, object]:
    # The form was validated before it was stored; a stored form is always a JSON object.
    value = json.loads(form_json)
    return value if isinstance(value, dict) else {}
