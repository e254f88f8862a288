# SPDX-License-Identifier: Apache-2.0
"""Database tables. Table classes stay here; nothing outside storage builds them by hand."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

# Named constraints let Alembic's batch mode rebuild SQLite tables and drop constraints on
# PostgreSQL by name.
MAX_ERROR_CHARS = 1000
"""Stored error texts (``last_error``, notes) are cut to this many characters."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(SQLModel):
    metadata = metadata


class Exchange(Base, table=True):
    """One request and everything that follows it, at one end."""

    __tablename__ = "exchange"
    __table_args__ = (
        CheckConstraint("direction IN ('outbound', 'inbound')", name="direction"),
        Index("ix_exchange_direction_created", "direction", "created_at_ms"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    request_type: str = Field(sa_column=Column(String(64), nullable=False))
    direction: str = Field(sa_column=Column(String(16), nullable=False))
    peer: str = Field(sa_column=Column(String(64), nullable=False))
    state: str = Field(sa_column=Column(String(32), nullable=False))
    form_json: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_error: str | None = Field(
        default=None, sa_column=Column(String(MAX_ERROR_CHARS), nullable=True)
    )
    preserved_until_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    """For a preserved request: when the preservation ends."""
    due_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    """When the requested party must have decided or executed it (legal-basis profile), counted
    from receipt; both ends compute it from the receipt's time."""
    idempotency_key: str | None = Field(
        default=None, sa_column=Column(String(128), nullable=True, unique=True)
    )
    """The key an outbound request was filed under (the caller's, so a call whose outcome it
    does not know can be repeated without filing twice)."""
    idempotency_digest: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary(32), nullable=True)
    )
    """SHA-256 of what was asked under the key (type, recipient, form, options): the same key
    with a different request is refused."""


class Message(Base, table=True):
    """One envelope sent or received, with its receipt."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("exchange_id", "direction", "sequence", name="uq_message_position"),
    )

    message_id: str = Field(sa_column=Column(String(36), primary_key=True))
    exchange_id: str = Field(
        sa_column=Column(String(36), ForeignKey("exchange.id"), nullable=False, index=True)
    )
    direction: str = Field(sa_column=Column(String(16), nullable=False))
    sequence: int = Field(sa_column=Column(BigInteger, nullable=False))
    sender: str = Field(sa_column=Column(String(64), nullable=False))
    recipient: str = Field(sa_column=Column(String(64), nullable=False))
    payload_type: str = Field(sa_column=Column(String(128), nullable=False))
    envelope: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    envelope_digest: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    stored_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    receipt: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    receipt_verified: bool = Field(default=False, nullable=False)
    state: str = Field(
        default="applied", sa_column=Column(String(16), nullable=False, server_default="applied")
    )
    """``applied``; ``held`` (arrived before an earlier message of its sender, applied when the
    gap fills); ``refused`` (not allowed in the state it met when its turn came)."""
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    """A lifecycle message's validated body (a request's form is on its exchange)."""
    note: str | None = Field(default=None, sa_column=Column(String(MAX_ERROR_CHARS), nullable=True))
    """Why a message was refused when its turn came."""


class Outbox(Base, table=True):
    """A message waiting for, or done with, delivery: written with the change that caused it.

    A delivery worker claims a due row by setting ``claimed_by`` and a lease; a worker that
    dies loses its claim when the lease runs out, so another can take the row over.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_outbox_due", "status", "next_attempt_at_ms"),
    )

    message_id: str = Field(
        sa_column=Column(String(36), ForeignKey("message.message_id"), primary_key=True)
    )
    exchange_id: str = Field(sa_column=Column(String(36), nullable=False))
    recipient: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, nullable=False)
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    next_attempt_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_attempt_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_error: str | None = Field(default=None, sa_column=Column(String(MAX_ERROR_CHARS)))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(64)))
    claim_expires_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    trace_context: str | None = Field(default=None, sa_column=Column(String(512)))
    """W3C trace context of the filing, so the delivery joins the filer's trace."""


class AuditHead(Base, table=True):
    """The audit log's size: one row. Appenders increment it under a row lock, which
    serialises appends across replicas and numbers leaves without gaps."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))


class AuditLeaf(Base, table=True):
    """One leaf of the node's append-only Merkle log (public fields and commitments only)."""

    __tablename__ = "audit_leaf"

    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    leaf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    exchange_id: str | None = Field(
        default=None, sa_column=Column(String(64), nullable=True, index=True)
    )
    """The leaf's public exchange id, indexed so one request's records can be found."""


class AuditTile(Base, table=True):
    """One full tile of audit leaves (2**8 of them, leaves [idx*256, idx*256+256)): their
    hashes, concatenated, and the tile's root. Derived from the leaves and never changed: it
    spares proofs the whole log, and a proof reads one row instead of 256."""

    __tablename__ = "audit_tile"

    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    hashes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuditOpening(Base, table=True):
    """What opens one commitment of a leaf. Private to the node; erased when retention ends."""

    __tablename__ = "audit_opening"

    leaf_idx: int = Field(
        sa_column=Column(BigInteger, ForeignKey("audit_leaf.idx"), primary_key=True)
    )
    name: str = Field(sa_column=Column(String(64), primary_key=True))
    value: str = Field(sa_column=Column(String(4096), nullable=False))
    salt: bytes = Field(sa_column=Column(LargeBinary(16), nullable=False))


class AuditCheckpoint(Base, table=True):
    """Every checkpoint the node signed: evidence of what it showed the world at each size."""

    __tablename__ = "audit_checkpoint"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    note: str = Field(sa_column=Column(String(4096), nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class WitnessState(Base, table=True):
    """What this node, as a witness, last cosigned for each log: the only state it trusts."""

    __tablename__ = "witness_state"

    origin: str = Field(sa_column=Column(String(256), primary_key=True))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class AuditCosignature(Base, table=True):
    """A witness's cosignature line over one of this node's checkpoints."""

    __tablename__ = "audit_cosignature"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    witness: str = Field(sa_column=Column(String(256), primary_key=True))
    line: str = Field(sa_column=Column(String(1024), nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class TrustedDirectory(Base, table=True):
    """Every federation directory version this node accepted, as received (signed JSON).

    The highest version is the one the node trusts; keeping the older ones records when each
    was superseded, which decides how long envelopes addressed under it are still accepted.
    """

    __tablename__ = "trusted_directory"

    version: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    document: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    accepted_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class Evidence(Base, table=True):
    """A set of evidence files in an exchange: its signed manifest, sent or received."""

    __tablename__ = "evidence"

    evidence_id: str = Field(sa_column=Column(String(36), primary_key=True))
    exchange_id: str = Field(
        sa_column=Column(String(36), ForeignKey("exchange.id"), nullable=False, index=True)
    )
    direction: str = Field(sa_column=Column(String(16), nullable=False))
    manifest: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    """The evidence message's body (schemas/messages/evidence.v1.json)."""
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    complete: bool = Field(default=False, nullable=False)
    """Every chunk is here (received: and verified against the manifest)."""


class EvidenceChunk(Base, table=True):
    """One chunk of one evidence file, in plaintext at rest in the node's own database."""

    __tablename__ = "evidence_chunk"

    evidence_id: str = Field(
        sa_column=Column(
            String(36), ForeignKey("evidence.evidence_id"), primary_key=True, autoincrement=False
        )
    )
    item: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class IndicatorSetRow(Base, table=True):
    """An indicator set as this node holds it: its own (``received_from`` empty) or a peer's,
    the newest version's signed document with the owner's signature."""

    __tablename__ = "indicator_set"

    set_id: str = Field(sa_column=Column(String(128), primary_key=True))
    owner: str = Field(sa_column=Column(String(64), nullable=False))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    tlp: str = Field(sa_column=Column(String(32), nullable=False))
    revoked: bool = Field(sa_column=Column(Boolean, nullable=False))
    document: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary(64), nullable=False))
    received_from: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class IndicatorRow(Base, table=True):
    """One indicator of a set's newest version, indexed by canonical value for lookups."""

    __tablename__ = "indicator"
    __table_args__ = (Index("ix_indicator_type_value", "type", "value"),)

    set_id: str = Field(
        sa_column=Column(String(128), ForeignKey("indicator_set.set_id"), primary_key=True)
    )
    type: str = Field(sa_column=Column(String(32), primary_key=True))
    value: str = Field(sa_column=Column(String(2048), primary_key=True))
    confidence: int = Field(sa_column=Column(Integer, nullable=False))
    expires_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class IndicatorShare(Base, table=True):
    """Which agency this node passed a set to, and the version it passed: revocations and
    new versions go to the same agencies."""

    __tablename__ = "indicator_share"

    set_id: str = Field(
        sa_column=Column(String(128), ForeignKey("indicator_set.set_id"), primary_key=True)
    )
    recipient: str = Field(sa_column=Column(String(64), primary_key=True))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    shared_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class IndicatorOffer(Base, table=True):
    """A version of a set this node owes an agency, written in the transaction that shared the
    set or made the new version (a tombstone) that must follow it. Offered again with backoff
    until the agency holds that version or a newer one, or refuses it for good; a worker claims
    a due row under a lease, as for the request outbox, so replicas do not offer it twice at
    once (a second offer of one version would change nothing at the receiver anyway)."""

    __tablename__ = "indicator_offer"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_indicator_offer_due", "status", "next_attempt_at_ms"),
    )

    set_id: str = Field(
        sa_column=Column(String(128), ForeignKey("indicator_set.set_id"), primary_key=True)
    )
    recipient: str = Field(sa_column=Column(String(64), primary_key=True))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    """The version owed: the newest this node held when it was owed."""
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_attempt_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_error: str | None = Field(default=None, sa_column=Column(String(MAX_ERROR_CHARS)))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(128)))
    claim_expires_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))


class OverlapCheck(Base, table=True):
    """An overlap check a peer asked this node for: counted against its daily limit."""

    __tablename__ = "overlap_check"

    # Integer, not BigInteger: SQLite numbers rows itself only for an INTEGER primary key.
    id: int | None = Field(
        default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True)
    )
    requester: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class Campaign(Base, table=True):
    """Cases this node linked, or was told belong together. The id is a UUID that agencies
    quote to each other (a ``campaign_id`` indicator); the name is this node's own label."""

    __tablename__ = "campaign"

    campaign_id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class CampaignCase(Base, table=True):
    """One case of a campaign: an indicator set held here (``kind`` set, ``ref`` its id), or
    another agency's case known only by a private overlap count (``kind`` agency, ``ref`` the
    agency). ``shared`` is how many values linked it."""

    __tablename__ = "campaign_case"
    __table_args__ = (CheckConstraint("kind IN ('set', 'agency')", name="kind"),)

    campaign_id: str = Field(
        sa_column=Column(String(64), ForeignKey("campaign.campaign_id"), primary_key=True)
    )
    kind: str = Field(sa_column=Column(String(16), primary_key=True))
    ref: str = Field(sa_column=Column(String(128), primary_key=True))
    agency: str = Field(sa_column=Column(String(64), nullable=False))
    shared: int = Field(sa_column=Column(Integer, nullable=False))
    linked_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class BenignValue(Base, table=True):
    """A value known to be harmless (a platform's support account, a shortener's home page):
    it never links cases into a campaign."""

    __tablename__ = "benign_value"

    type: str = Field(sa_column=Column(String(32), primary_key=True))
    value: str = Field(sa_column=Column(String(2048), primary_key=True))
    added_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class OverlapReveal(Base, table=True):
    """A signed request to reveal which indicators two agencies share: one this agency sent
    (``outbound``: asked, revealed) or received (``inbound``: pending, consented, refused,
    used). ``document`` is the signed canonical request (node/indicators/reveal.py); after a
    reveal the asker keeps only how many matched, never which."""

    __tablename__ = "overlap_reveal"
    __table_args__ = (
        CheckConstraint("direction IN ('outbound', 'inbound')", name="direction"),
        CheckConstraint(
            "state IN ('asked', 'revealed', 'pending', 'consented', 'refused', 'used')",
            name="state",
        ),
    )

    request_id: str = Field(sa_column=Column(String(36), primary_key=True))
    direction: str = Field(sa_column=Column(String(16), nullable=False))
    requester: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    responder: str = Field(sa_column=Column(String(64), nullable=False))
    items: int = Field(sa_column=Column(Integer, nullable=False))
    document: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary(64), nullable=False))
    created_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    decided_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    shared: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))


class SharingGroupRow(Base, table=True):
    """A sharing group this node owns or was given a key for, at its newest key epoch."""

    __tablename__ = "sharing_group"

    group_id: str = Field(sa_column=Column(String(36), primary_key=True))
    name: str = Field(sa_column=Column(String(128), nullable=False))
    owner: str = Field(sa_column=Column(String(64), nullable=False))
    epoch: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class SharingGroupMember(Base, table=True):
    """A member agency of a group at its newest epoch (the owner included)."""

    __tablename__ = "sharing_group_member"

    group_id: str = Field(
        sa_column=Column(String(36), ForeignKey("sharing_group.group_id"), primary_key=True)
    )
    agency: str = Field(sa_column=Column(String(64), primary_key=True))


class SharingGroupKey(Base, table=True):
    """A group's key for one epoch: made here (owner) or opened from the owner's offer."""

    __tablename__ = "sharing_group_key"

    group_id: str = Field(
        sa_column=Column(String(36), ForeignKey("sharing_group.group_id"), primary_key=True)
    )
    epoch: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    key: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    stored_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class GroupPublication(Base, table=True):
    """One of this agency's indicator sets published into a group: its live indicators are
    kept in the group's log as tags."""

    __tablename__ = "group_publication"

    group_id: str = Field(
        sa_column=Column(String(36), ForeignKey("sharing_group.group_id"), primary_key=True)
    )
    set_id: str = Field(
        sa_column=Column(String(128), ForeignKey("indicator_set.set_id"), primary_key=True)
    )
    published_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class GroupTagRow(Base, table=True):
    """One entry of a member's tag log in a group: this node's own (publisher = this agency)
    or copied from the member's node, numbered by the publisher without gaps."""

    __tablename__ = "group_tag"
    __table_args__ = (Index("ix_group_tag_tag", "tag"),)

    group_id: str = Field(
        sa_column=Column(String(36), ForeignKey("sharing_group.group_id"), primary_key=True)
    )
    publisher: str = Field(sa_column=Column(String(64), primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    epoch: int = Field(sa_column=Column(BigInteger, nullable=False))
    tag: bytes = Field(sa_column=Column(LargeBinary(16), nullable=False))
    tombstone: bool = Field(sa_column=Column(Boolean, nullable=False))


class IndicatorSighting(Base, table=True):
    """A sighting or false-positive report an agency holding one of this node's sets sent
    about one of its indicators: the signed document as it arrived, and its fields for
    counting. The note is case content, kept here and never logged."""

    __tablename__ = "indicator_sighting"

    sighting_id: str = Field(sa_column=Column(String(64), primary_key=True))
    set_id: str = Field(
        sa_column=Column(
            String(128), ForeignKey("indicator_set.set_id"), nullable=False, index=True
        )
    )
    type: str = Field(sa_column=Column(String(32), nullable=False))
    value: str = Field(sa_column=Column(String(2048), nullable=False))
    reporter: str = Field(sa_column=Column(String(64), nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    note: str | None = Field(default=None, sa_column=Column(String(280), nullable=True))
    reported_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    received_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    document: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary(64), nullable=False))


class SightingReport(Base, table=True):
    """A sighting or false-positive report this node made about a set it received, owed to
    the set's owner: the signed document, written in the transaction that decided to send it,
    and sent again with backoff until the owner acknowledges it or refuses it for good. A
    worker claims a due row under a lease, as for set offers; a report sent twice anyway is
    stored once by the owner, which deduplicates by report id. The document holds the note,
    which is case content: kept here, never logged."""

    __tablename__ = "sighting_report"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_sighting_report_due", "status", "next_attempt_at_ms"),
    )

    sighting_id: str = Field(sa_column=Column(String(64), primary_key=True))
    set_id: str = Field(
        sa_column=Column(
            String(128), ForeignKey("indicator_set.set_id"), nullable=False, index=True
        )
    )
    owner: str = Field(sa_column=Column(String(64), nullable=False))
    """The set's owner: the agency the report goes to."""
    made_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    document: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary(64), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_attempt_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_error: str | None = Field(default=None, sa_column=Column(String(MAX_ERROR_CHARS)))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(128)))
    claim_expires_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
