# SPDX-License-Identifier: Apache-2.0
"""Recording exchange events in the node's audit log, inside the caller's transaction.

Every event is appended in the same transaction as the change it records, so the log can
neither miss an event that happened nor show one that did not. The public part of a leaf
carries vocabulary and ids only; the case reference, the exact time and the envelope's digest
go in as salted commitments whose openings stay in the node's private store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from nacl.signing import SigningKey
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from node.audit.leaf import OpeningName, PublicFields, build_leaf, hour_of
from node.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
)
from node.audit.names import log_origin
from node.audit.note import Checkpoint, sign_note
from node.audit.tiles import TILE_HEIGHT, TILE_WIDTH, TiledTree, TileLevels
from node.errors import MalformedError
from node.ids import AgencyId, ExchangeId
from node.model.people import NODE_ACTOR, Actor
from node.storage import audit_repo
from node.storage.database import Database
from node.storage.engine import transaction

T = TypeVar("T")


def record_event(
    session: Session,
    *,
    event: str,
    request_type: str,
    form_json: bytes,
    sender: AgencyId,
    recipient: AgencyId,
    exchange_id: ExchangeId,
    instant_ms: int,
    envelope_digest: bytes,
    promised_leaf: int | None = None,
    refusal_ground: str | None = None,
    actor: Actor = NODE_ACTOR,
    reason: str | None = None,
) -> int:
    """Append one event's leaf and openings; return the leaf's index. ``actor`` (who acted,
    if a person) and ``reason`` (one they gave) go in as commitments only."""
    form = _form(form_json)
    public = PublicFields(
        event=event,
        request_type=request_type,
        legal_basis=str(form.get("legal_basis", "unknown")),
        sender=sender,
        recipient=recipient,
        exchange_id=exchange_id,
        hour=hour_of(instant_ms),
        promised_leaf=promised_leaf,
        refusal_ground=refusal_ground,
    )
    sensitive = {
        OpeningName.EXACT_TIME_MS: str(instant_ms),
        OpeningName.CASE_REFERENCE: str(form.get("case_reference", "")),
        OpeningName.ENVELOPE_DIGEST: envelope_digest.hex(),
        OpeningName.REQUESTING_UNIT: _requesting_unit(form),
        **(
            {OpeningName.JUSTIFICATION: str(form.get("necessity", ""))}
            if event.startswith("request.")
            else {}
        ),
        **officer_fields(actor),
        **({OpeningName.REASON: reason} if reason else {}),
    }
    return append_leaf(session, public, sensitive, now_ms=instant_ms)


def append_leaf(
    session: Session, public: PublicFields, sensitive: Mapping[OpeningName, str], *, now_ms: int
) -> int:
    """Append a leaf committing to ``sensitive`` and keep its openings; return its index."""
    return append_leaves(session, [(public, sensitive)], now_ms=now_ms)


def append_leaves(
    session: Session,
    events: Sequence[tuple[PublicFields, Mapping[OpeningName, str]]],
    *,
    now_ms: int,
) -> int:
    """Append one leaf per (public fields, sensitive fields), in one batch; return the first
    leaf's index."""
    batch = []
    for public, sensitive in events:
        leaf, openings = build_leaf(public, sensitive)
        data = leaf.to_bytes()
        batch.append(
            audit_repo.NewLeaf(
                leaf=data,
                leaf_hash=leaf_hash(data),
                openings=[(o.name, o.value, o.salt) for o in openings],
                exchange_id=public.exchange_id or None,
            )
        )
    return audit_repo.append_audit_leaves(session, batch, now_ms=now_ms)


def officer_fields(actor: Actor) -> dict[OpeningName, str]:
    """The commitments naming who acted: a person and their unit, and the approver of an
    action run after approval; nothing for the node acting on its own."""
    if not actor.is_person:
        return {}
    fields = {OpeningName.OFFICER: actor.name, OpeningName.OFFICER_UNIT: actor.unit}
    if actor.approved_by:
        fields[OpeningName.APPROVER] = actor.approved_by
    return fields


def _requesting_unit(form: Mapping[str, object]) -> str:
    authority = form.get("requesting_authority")
    if not isinstance(authority, dict):
        return ""
    return " / ".join(str(authority[k]) for k in ("name", "unit") if authority.get(k))


def _form(form_json: bytes) -> dict[str, object]:
    # The form was validated before it was stored; a stored form is always a JSON object.
    value = json.loads(form_json)
    return value if isinstance(value, dict) else {}


class AuditService:
    """Signs checkpoints of the node's log and answers auditors with leaves and proofs.

    Roots and proofs come from the roots of full 256-leaf tiles (stored, and kept in memory
    with every node above them) plus the leaf hashes of at most two tiles: their cost does
    not grow with the log.
    """

    def __init__(
        self, *, database: Database, key: SigningKey, agency_id: AgencyId, clock: Callable[[], int]
    ) -> None:
        self._database = database
        self._key = key
        self.origin = log_origin(agency_id)
        self._clock = clock
        self._levels = TileLevels()
        self._levels_lock = threading.Lock()
        self._full_tiles: dict[int, list[list[bytes]]] = {}
        self._known_size = 0
        """A size the log has reached: it only grows, so smaller sizes need no query."""

    async def checkpoint(self) -> str:
        """The newest signed checkpoint with the witnesses' cosignature lines collected for it."""

        def load() -> str:
            note = self._signed_checkpoint()
            size = int(note.split("\n", 2)[1])
            with transaction(self._database.engine) as session:
                lines = [row.line + "\n" for row in audit_repo.cosignatures(session, size=size)]
            return note + "".join(lines)

        return await self._database.run(load)

    async def signed_checkpoint(self) -> str:
        """A checkpoint of the log as it stands, signed by this node (anew only if it grew)."""
        return await self._database.run(self._signed_checkpoint)

    def _signed_checkpoint(self) -> str:
        with transaction(self._database.engine) as session:
            size = audit_repo.audit_size(session)
            latest = audit_repo.latest_checkpoint(session)
            if latest is not None and latest.size == size:
                return latest.note
            root = self._tree(session, size).root()
            text = Checkpoint(origin=self.origin, size=size, root=root).text()
            note = sign_note(text, name=self.origin, key=self._key)
            audit_repo.save_checkpoint(session, size=size, note=note, now_ms=self._clock())
            return note

    async def covering_checkpoint(self, index: int) -> str:
        """A checkpoint that includes leaf ``index``: the newest one witnesses cosigned (with
        their lines), else one signed now."""

        def load() -> str:
            with transaction(self._database.engine) as session:
                cosigned = audit_repo.newest_cosigned_checkpoint(session, above=index)
                if cosigned is not None:
                    lines = audit_repo.cosignatures(session, size=cosigned.size)
                    return cosigned.note + "".join(row.line + "\n" for row in lines)
            return self._signed_checkpoint()

        return await self._database.run(load)

    async def leaves(self, *, start: int, end: int) -> list[bytes]:
        """Leaves [start, end).

        Raises:
            MalformedError: an empty, too large or out-of-range window.
        """

        def load() -> list[bytes]:
            with transaction(self._database.engine) as session:
                _check_window(start, end, audit_repo.audit_size(session))
                return [row.leaf for row in audit_repo.audit_leaves(session, start=start, end=end)]

        return await self._database.run(load)

    async def inclusion_proof(self, *, index: int, size: int) -> list[bytes]:
        """Raises: MalformedError for a size beyond the log, ProofError for a bad index."""
        return await self._database.run(
            lambda: self._prove(size, lambda tree: inclusion_proof(index, size, tree.subtree))
        )

    async def consistency_proof(self, *, old_size: int, new_size: int) -> list[bytes]:
        """Raises: MalformedError for a size beyond the log, ProofError for bad sizes."""
        return await self._database.run(
            lambda: self._prove(
                new_size, lambda tree: consistency_proof(old_size, new_size, tree.subtree)
            )
        )

    async def root(self, size: int) -> bytes:
        """The root of the tree of the log's first ``size`` leaves.

        Raises: MalformedError for a size beyond the log.
        """
        return await self._database.run(lambda: self._prove(size, lambda tree: tree.root()))

    def _prove(self, size: int, prove: Callable[[TiledTree], T]) -> T:
        with transaction(self._database.engine) as session:
            if size > self._known_size:
                self._known_size = audit_repo.audit_size(session)
                if size > self._known_size:
                    raise MalformedError(f"the log has {self._known_size} leaves, not {size}")
            return prove(self._tree(session, size))

    def _tree(self, session: Session, size: int) -> TiledTree:
        """The tree of ``size`` leaves, reading leaf hashes through ``session``."""
        self._extend_levels(size)

        def read(start: int, end: int) -> list[bytes]:
            if end - start == TILE_WIDTH:  # a full tile: one stored row
                hashes = audit_repo.audit_tile_hashes(session, start // TILE_WIDTH)
                if hashes is not None:
                    return [hashes[i : i + 32] for i in range(0, len(hashes), 32)]
            return audit_repo.audit_leaf_hash_range(session, start=start, end=end)

        return TiledTree(self._levels, size, read, self._full_tiles)

    def _extend_levels(self, size: int) -> None:
        """Bring the in-memory tile levels up to every full tile below ``size``: stored tile
        roots first, then computed from the leaves (and stored) for tiles not yet stored."""
        needed = size >> TILE_HEIGHT
        with self._levels_lock:
            if self._levels.full_tiles >= needed:
                return
            with transaction(self._database.engine) as session:
                for root in audit_repo.audit_tile_roots(
                    session, start=self._levels.full_tiles, end=needed
                ):
                    self._levels.add_tile_root(root)
            while self._levels.full_tiles < needed:
                self._compute_tiles(min(needed, self._levels.full_tiles + TILES_PER_BATCH))

    def _compute_tiles(self, end: int) -> None:
        start = self._levels.full_tiles
        with transaction(self._database.engine) as session:
            hashes = audit_repo.audit_leaf_hash_range(
                session, start=start * TILE_WIDTH, end=end * TILE_WIDTH
            )
        tiles = [
            (
                root_from_leaf_hashes(hashes[i : i + TILE_WIDTH]),
                b"".join(hashes[i : i + TILE_WIDTH]),
            )
            for i in range(0, len(hashes), TILE_WIDTH)
        ]
        try:
            with transaction(self._database.engine) as session:
                audit_repo.save_audit_tiles(session, start=start, tiles=tiles)
        except IntegrityError:
            pass  # another replica stored the same tiles first: tiles are deterministic
        for root, _ in tiles:
            self._levels.add_tile_root(root)


MAX_LEAVES_PER_CALL = 1000
TILES_PER_BATCH = 64


def _check_window(start: int, end: int, size: int) -> None:
    if not 0 <= start < end <= size or end - start > MAX_LEAVES_PER_CALL:
        raise MalformedError(
            f"leaves [{start}, {end}) are not a window of at most {MAX_LEAVES_PER_CALL} "
            f"within the log's {size} leaves"
        )
