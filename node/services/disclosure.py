# SPDX-License-Identifier: Apache-2.0
"""Releasing audit openings by role, and erasing them when their retention ends.

Every release appends a ``disclosure.opened`` leaf in the same transaction that reads the
openings, so no opening leaves the node unlogged. What is released comes back as an offline
proof bundle (C2SP tlog-proof) that the recipient verifies against the node's checkpoint key.
Erasure deletes the openings (the salts go with them, so the commitments can no longer be
opened: crypto-shredding) while the leaves, the tree and every proof stay as they were; each
erased exchange gets a ``data.erased`` leaf.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from node.audit.disclosure import check_reason, released_to
from node.audit.leaf import Leaf, Opening, OpeningName, PublicFields, hour_of
from node.audit.note import Checkpoint, split_note
from node.audit.proof import ProofBundle
from node.errors import NotFoundError
from node.forms.profiles import profiles
from node.ids import AgencyId
from node.model.people import Actor
from node.services.access import current_actor
from node.services.attribution import (
    AccessEntry,
    AccessQuery,
    access_entries,
    describe,
    record_local,
)
from node.services.audit import AuditService, append_leaf, append_leaves, officer_fields
from node.storage import audit_repo
from node.storage.database import Database
from node.storage.engine import transaction
from node.storage.tables import AuditLeaf

DAY_MS = 24 * 3600 * 1000
ERASE_BATCH = 500


@dataclass(frozen=True, kw_only=True)
class Release:
    role: str
    reason: str
    recipient: str = ""
    """Who receives it: an agency id, else ``court`` for a court and this agency for itself."""
    order: str | None = None
    """The court order a court release answers."""


@dataclass(frozen=True)
class Erasure:
    leaves: int
    exchanges: int


class DisclosureService:
    def __init__(
        self,
        *,
        database: Database,
        audit: AuditService,
        agency_id: AgencyId,
        clock: Callable[[], int],
    ) -> None:
        self._database = database
        self._audit = audit
        self._me = agency_id
        self._clock = clock

    async def prove(self, target: str, release: Release) -> list[tuple[int, str]]:
        """Bundles (leaf index, tlog-proof text) for ``target``: a leaf index, or a request
        id for every leaf of that exchange. Each release is logged before it is returned.

        Raises:
            DisclosureError: an unknown role, or no reason (or no order, for a court).
            NotFoundError: no such leaf or request in this node's log.
        """
        check_reason(release.role, release.reason, release.order)
        actor = current_actor()  # database threads do not see the call's context
        indices = await self._database.run(lambda: self._resolve(target))
        bundles = []
        for index in indices:
            leaf, openings = await self._database.run(partial(self._release, index, release, actor))
            note = await self._audit.covering_checkpoint(index)
            size = Checkpoint.parse(split_note(note)[0]).size
            proof = await self._audit.inclusion_proof(index=index, size=size)
            bundle = ProofBundle(
                index=index, leaf=leaf, openings=openings, proof=tuple(proof), checkpoint=note
            )
            bundles.append((index, bundle.text()))
        return bundles

    def _resolve(self, target: str) -> list[int]:
        with transaction(self._database.engine) as session:
            if target.isascii() and target.isdigit():
                if audit_repo.audit_leaf(session, int(target)) is None:
                    raise NotFoundError(f"this node's log has no leaf {target}")
                return [int(target)]
            indices = audit_repo.audit_indices_of_exchange(session, target)
            if not indices:
                raise NotFoundError(f"this node's log has no record of request {target}")
            return indices

    def _release(
        self, index: int, release: Release, actor: Actor
    ) -> tuple[bytes, tuple[Opening, ...]]:
        with transaction(self._database.engine) as session:
            row = audit_repo.audit_leaf(session, index)
            if row is None:
                raise NotFoundError(f"this node's log has no leaf {index}")
            kept = [
                Opening(name=o.name, value=o.value, salt=o.salt)
                for o in audit_repo.audit_openings(session, index)
            ]
            released = released_to(release.role, kept)
            public = Leaf.from_bytes(row.leaf).public
            now = self._clock()
            sensitive = {
                OpeningName.EXACT_TIME_MS: str(now),
                OpeningName.OPENED_LEAF: str(index),
                OpeningName.ROLE: release.role,
                OpeningName.RELEASED_FIELDS: ",".join(o.name for o in released),
                OpeningName.REASON: release.reason,
                **({OpeningName.ORDER: release.order} if release.order else {}),
                **officer_fields(actor),
            }
            recipient = release.recipient or ("court" if release.role == "court" else self._me)
            disclosed = self._public("disclosure.opened", public, recipient, now)
            append_leaf(session, disclosed, sensitive, now_ms=now)
            return row.leaf, released

    async def access_log(self, query: AccessQuery) -> list[AccessEntry]:
        """Who did and read what here, from the private openings (see
        :mod:`node.services.attribution`); the query itself is logged as ``access-log.read``
        in the same transaction."""
        actor = current_actor()

        def load() -> list[AccessEntry]:
            now = self._clock()
            with transaction(self._database.engine) as session:
                entries = access_entries(session, query, me=self._me)
                record_local(
                    session,
                    event="access-log.read",
                    me=self._me,
                    actor=actor,
                    now_ms=now,
                    subject=describe(query),
                    detail=f"{len(entries)} entries",
                )
                return entries

        return await self._database.run(load)

    def _public(self, event: str, of: PublicFields, recipient: str, now: int) -> PublicFields:
        return PublicFields(
            event=event,
            request_type=of.request_type,
            legal_basis=of.legal_basis,
            sender=self._me,
            recipient=recipient,
            exchange_id=of.exchange_id,
            hour=hour_of(now),
        )

    async def erase_expired(self) -> Erasure:
        """Erase the openings of every leaf whose legal basis's retention has ended."""
        retention = {p.code: p.retention_days * DAY_MS for p in profiles()}
        total, exchanges, after = 0, 0, -1
        while True:
            batch = await self._database.run(partial(self._erase_batch, retention, after=after))
            if batch is None:
                return Erasure(leaves=total, exchanges=exchanges)
            after, erased = batch
            total += sum(erased.values())
            exchanges += len(erased)

    def _erase_batch(
        self, retention: Mapping[str, int], *, after: int
    ) -> tuple[int, dict[str, int]] | None:
        """One batch: (last index looked at, leaves erased per exchange), or None when no
        leaf with openings is left to look at."""
        now = self._clock()
        shortest, longest = min(retention.values()), max(retention.values())
        with transaction(self._database.engine) as session:
            rows = audit_repo.leaves_with_openings(
                session, created_before_ms=now - shortest, after=after, limit=ERASE_BATCH
            )
            if not rows:
                return None
            expired: dict[str, list[AuditLeaf]] = defaultdict(list)
            for row in rows:
                public = Leaf.from_bytes(row.leaf).public
                # An unknown basis keeps its openings for the longest period any basis has.
                if row.created_at_ms + retention.get(public.legal_basis, longest) <= now:
                    expired[public.exchange_id].append(row)
            erasures: list[tuple[PublicFields, dict[OpeningName, str]]] = []
            for group in expired.values():
                audit_repo.erase_openings(session, [row.idx for row in group])
                of = Leaf.from_bytes(group[0].leaf).public
                # Nothing sensitive is committed: an erasure record never needs erasing itself.
                erasures.append((self._public("data.erased", of, self._me, now), {}))
            if erasures:
                append_leaves(session, erasures, now_ms=now)
            return rows[-1].idx, {e: len(g) for e, g in expired.items()}
