# SPDX-License-Identifier: Apache-2.0
"""Privacy-scoped audit leaves: public fields for statistics, salted commitments to the rest.

A leaf is canonical JSON (sorted keys, no insignificant whitespace, version tag ``v``). Its
public fields are what a treaty secretariat may see: event, request type, legal basis, the two
agencies, the random exchange id both ends share, the hour, a refusal ground. Every sensitive
field (exact time, case reference, envelope digest, …) appears only as a commitment
``SHA-256(JSON ["<salt base64url>", "<name>", "<value>"])`` with a fresh 128-bit salt, in the
manner of SD-JWT disclosures; decoy commitments pad every leaf to the same number, sorted, so
neither the count nor the order tells which fields a leaf commits to. The openings (salt,
name, value) stay in the node's private store. Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from node.errors import ComityError, ErrorKind

LEAF_VERSION = 1
COMMITMENTS_PER_LEAF = 12
"""Every leaf commits to this many digests (real ones padded with decoys). Leaves written
when it was 8 keep their 8 and verify as they are: the count is not part of the format."""
SALT_BYTES = 16
MAX_LEAF_BYTES = 64 * 1024
MESSAGE_KINDS = (
    "review",
    "clarification-request",
    "clarification-answer",
    "decision",
    "preservation-confirmation",
    "extension-request",
    "extension",
    "execution",
    "evidence",
    "withdrawal",
    "closure",
)
"""The lifecycle messages after a request (node.model.lifecycle); each is logged as
``<kind>.sent`` by its sender and ``<kind>.received`` by its recipient."""
OVERLAP_ANSWERED = "overlap.answered"
EXCHANGE_EVENTS = frozenset(
    {"request.sent", "request.received", "receipt.sent", "receipt.received"}
    | {f"{kind}.{end}" for kind in MESSAGE_KINDS for end in ("sent", "received")}
    | {"disclosure.opened", "data.erased"}
    | {OVERLAP_ANSWERED}
)
"""Events both ends of an exchange log. ``disclosure.opened``: openings of a leaf were
released to a role (the leaf commits to which, to whom and why). ``data.erased``: the
openings of an exchange's leaves were erased when their retention ended.
``overlap.answered``: this node answered another agency's overlap check or consented reveal
(sender: the asker, recipient: this node, exchange: the check's random id, request type and
legal basis empty; the leaf commits to the exact time, the digest of the asker's points, their
number and the asker's stated reason); the asker logs nothing, so it has no counterpart."""
LOCAL_EVENTS = frozenset(
    {
        "case.read",
        "case.evidence-listed",
        "case.evidence-read",
        "user.added",
        "user.enabled",
        "user.disabled",
        "user.roles-changed",
        "token.created",
        "token.revoked",
        "call.refused",
        "indicators.shared",
        "reveal.decided",
        "group.pull-answered",
        "sighting.reported",
        "access-log.read",
    }
)
"""Events of one node alone, with no counterpart at a peer: who read case content (the form,
the evidence list, an evidence file), changes to users, roles and tokens, local calls
refused, indicator sets shared, reveal consents decided, sharing-group pulls answered,
sightings reported, and the data-protection officer's own reading of the access log. Their
public fields name the event, this agency (and the other agency, if any), the exchange (if
any) and the hour; the person is only in the commitments (``officer`` …)."""
EVENTS = EXCHANGE_EVENTS | LOCAL_EVENTS


class OpeningName(StrEnum):
    """The sensitive fields a leaf commits to, by the name their openings carry (the name is
    part of what is committed, so these spellings are fixed)."""

    EXACT_TIME_MS = "exact_time_ms"
    CASE_REFERENCE = "case_reference"
    ENVELOPE_DIGEST = "envelope_digest"
    REQUESTING_UNIT = "requesting_unit"
    """The requesting authority and unit of the form (forms name a unit, not an officer)."""
    JUSTIFICATION = "justification"
    """Why the request was made (the form's necessity); on ``request.*`` leaves. On
    ``overlap.answered``: the reason the asker stated for the check."""
    INPUT_DIGEST = "input_digest"
    """On ``overlap.answered``: hex SHA-256 of the asker's points (node/indicators/psi.py)."""
    ITEMS = "items"
    """On ``overlap.answered``: how many points the asker sent."""
    OPENED_LEAF = "opened_leaf"
    """On ``disclosure.opened``: the index of the leaf whose openings were released."""
    ROLE = "role"
    """On ``disclosure.opened``: to whom (agency, court, oversight, secretariat)."""
    RELEASED_FIELDS = "released_fields"
    """On ``disclosure.opened``: the names of the openings released, comma-separated."""
    REASON = "reason"
    """On ``disclosure.opened``: why they were released; on a message or a local event: the
    reason the person gave (a withdrawal's, an extension's)."""
    ORDER = "order"
    """On ``disclosure.opened`` to a court: the order the release answers."""
    OFFICER = "officer"
    """The user of this node who acted (filed, sent, read, released, changed), wherever a
    person did; absent where the node acted on its own."""
    OFFICER_UNIT = "officer_unit"
    """The unit that user belonged to when they acted."""
    APPROVER = "approver"
    """The user who approved the action, when it ran after a second person's approval."""
    SUBJECT = "subject"
    """On local events: what the action was about (a user, a token id, an operation, an
    indicator set, a reveal, a group, an evidence file, a query)."""
    DETAIL = "detail"
    """On local events: the rest of what happened (roles granted, the refusal's code …)."""


class LeafError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_leaf"


@dataclass(frozen=True, kw_only=True)
class PublicFields:
    event: str
    request_type: str
    legal_basis: str
    sender: str
    recipient: str
    exchange_id: str
    hour: str
    """The event's time coarsened to the hour, e.g. ``2026-11-24T02Z``."""
    refusal_ground: str | None = None
    promised_leaf: int | None = None
    """On ``receipt.received``: the leaf index the receiver's signed receipt promised."""


_DISCLOSURE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, kw_only=True)
class Opening:
    """What opens one commitment: released by role, never published."""

    name: str
    value: str
    salt: bytes

    def commitment(self) -> bytes:
        salt = base64.urlsafe_b64encode(self.salt).rstrip(b"=").decode()
        disclosed = _DISCLOSURE.encode([salt, self.name, self.value])
        return hashlib.sha256(disclosed.encode()).digest()


@dataclass(frozen=True, kw_only=True)
class Leaf:
    public: PublicFields
    commitments: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        p = self.public
        document: dict[str, Any] = {
            "v": LEAF_VERSION,
            "event": p.event,
            "type": p.request_type,
            "basis": p.legal_basis,
            "from": p.sender,
            "to": p.recipient,
            "exchange": p.exchange_id,
            "hour": p.hour,
            "ground": p.refusal_ground,
            "promise": p.promised_leaf,
            "commitments": [c.hex() for c in self.commitments],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Leaf:
        """Parse a leaf as an auditor receives it.

        Raises:
            LeafError: not a version-1 leaf in canonical form.
        """
        if len(data) > MAX_LEAF_BYTES:
            raise LeafError("leaf is larger than 64 KiB")
        try:
            document = json.loads(data)
            public = PublicFields(
                event=document["event"],
                request_type=document["type"],
                legal_basis=document["basis"],
                sender=document["from"],
                recipient=document["to"],
                exchange_id=document["exchange"],
                hour=document["hour"],
                refusal_ground=document["ground"],
                promised_leaf=document["promise"],
            )
            commitments = tuple(bytes.fromhex(c) for c in document["commitments"])
        except (ValueError, KeyError, TypeError) as e:
            raise LeafError("leaf is not a version-1 audit leaf") from e
        promise = public.promised_leaf
        if promise is not None and (not isinstance(promise, int) or isinstance(promise, bool)):
            raise LeafError("leaf promise must be a leaf index or null")
        leaf = cls(public=public, commitments=commitments)
        if document.get("v") != LEAF_VERSION or leaf.to_bytes() != data:
            raise LeafError("leaf is not in canonical version-1 form")
        return leaf

    def opens(self, opening: Opening) -> bool:
        return opening.commitment() in self.commitments


def hour_of(instant_ms: int) -> str:
    return datetime.fromtimestamp(instant_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%HZ")


def build_leaf(
    public: PublicFields, sensitive: Mapping[OpeningName, str]
) -> tuple[Leaf, tuple[Opening, ...]]:
    """A leaf committing to ``sensitive`` fields, padded with decoys, and its openings.

    Raises:
        LeafError: an unknown event, or more sensitive fields than a leaf holds.
    """
    if public.event not in EVENTS:
        raise LeafError(f"unknown audit event {public.event!r}")
    if len(sensitive) > COMMITMENTS_PER_LEAF:
        raise LeafError(f"a leaf commits to at most {COMMITMENTS_PER_LEAF} fields")
    # One read of the system's random source for every salt and decoy of the leaf.
    decoy_count = COMMITMENTS_PER_LEAF - len(sensitive)
    entropy = secrets.token_bytes(SALT_BYTES * len(sensitive) + 32 * decoy_count)
    openings = tuple(
        Opening(name=name, value=value, salt=entropy[i * SALT_BYTES : (i + 1) * SALT_BYTES])
        for i, (name, value) in enumerate(sorted(sensitive.items()))
    )
    spare = entropy[SALT_BYTES * len(sensitive) :]
    decoys = [spare[i * 32 : (i + 1) * 32] for i in range(decoy_count)]
    commitments = tuple(sorted([o.commitment() for o in openings] + decoys))
    return Leaf(public=public, commitments=commitments), openings
