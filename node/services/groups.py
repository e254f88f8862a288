# SPDX-License-Identifier: Apache-2.0
"""Sharing groups: members match indicators by blinded tags, never by exchanging values.

The owner creates a group and hands each member the key of each epoch, sealed to the member's
encryption key and signed (node/indicators/groups.py). A member publishes its own sets into the
group — only sets whose TLP label allows every member — and keeps, per group, a log of tag
entries numbered without gaps: additions for the live indicators of its published sets,
tombstones for those that are no longer live (revoked set, removed or expired indicator). The
log is brought up to date before it is served, so a revocation reaches every member at the
next pull. Members copy each other's logs from the last number they hold. Rotation starts a
new epoch without the removed members; every member then republishes under the new key.
Logs name group ids, agencies and counts, never an indicator value or a tag.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Protocol

from sqlmodel import Session

from node.crypto.keys import AgencyKeys
from node.errors import ComityError, ErrorKind, NotFoundError, ReplayError, UnknownAgencyError
from node.ids import AgencyId
from node.indicators.groups import MAX_PAGE as PAGE
from node.indicators.groups import (
    Group,
    GroupError,
    GroupKeyError,
    GroupKeyOffer,
    GroupMembershipError,
    TagPage,
    check_pull,
    live_tags,
    new_group_key,
    next_entries,
    open_group_key,
    seal_group_key,
    sign_offer,
    tag,
    verify_offer,
    verify_page,
)
from node.indicators.sets import IndicatorError, IndicatorSet
from node.indicators.tlp import Tlp, TlpEgressError, may_hold
from node.members import Directory, Member
from node.services.group_views import GroupMatches, GroupView, SyncOutcome, TagMatch
from node.storage import group_repo, indicator_repo
from node.storage.database import Database
from node.storage.engine import transaction

_LOG = logging.getLogger(__name__)


PAGES_PER_SYNC = 10_000
"""At most this many pages of one member's log per sync (ten million entries): a publisher that
answers one entry at a time cannot hold a sync forever; the next sync goes on from there."""


class GroupTransport(Protocol):
    async def offer_group_key(self, member: Member, document: bytes, signature: bytes) -> None: ...

    async def pull_tags(
        self, member: Member, *, group_id: str, after_seq: int, limit: int
    ) -> TagPage: ...


class StaleGroupKeyError(ComityError):
    kind = ErrorKind.PRECONDITION
    code = "stale_group_key"


class GroupService:
    def __init__(
        self,
        *,
        database: Database,
        directory: Directory,
        keys: Callable[[], AgencyKeys],
        transport: GroupTransport,
        agency_id: AgencyId,
        clock: Callable[[], int],
    ) -> None:
        self._database = database
        self._directory = directory
        self._keys = keys
        self._transport = transport
        self._me = agency_id
        self._clock = clock

    # --- the owner: groups and their keys -----------------------------------------------------

    async def create(self, name: str, members: Sequence[AgencyId]) -> GroupView:
        """A new group owned by this agency; the first key goes to every other member.

        Raises:
            UnknownAgencyError: a member that is not another federation member.
            GroupError: a bad name, a member named twice, too few or too many members.
        """
        for agency in members:
            if agency == self._me or self._directory.find(agency) is None:
                raise UnknownAgencyError(f"{agency} is not another federation member")
        if len(set(members)) != len(members):
            raise GroupError("a member is named twice")
        group = Group(
            group_id=str(uuid.uuid4()),
            name=name,
            owner=self._me,
            members=tuple(sorted({*members, self._me})),
            epoch=1,
        )
        return await self._start_epoch(group, stored=None)

    async def rotate(
        self, group_id: str, remove: Sequence[AgencyId], add: Sequence[AgencyId] = ()
    ) -> GroupView:
        """A new epoch and key, without the members in ``remove`` and with those in ``add``;
        the key goes to every member but this one.

        Raises:
            NotFoundError, GroupMembershipError (not the owner, or not a member to remove),
            GroupError (the owner itself removed, a member added twice, too few members left),
            UnknownAgencyError (an agency to add that is not another federation member),
            TlpEgressError (a set published into the group whose label does not allow an
            agency to add; logged, nothing changes).
        """
        current = await self._database.run(lambda: self._group(group_id))
        if current.owner != self._me:
            raise GroupMembershipError(f"group {group_id} is owned by {current.owner}")
        for agency in remove:
            current.check_member(agency)
        if self._me in remove:
            raise GroupError("the owner cannot leave its own group")
        self._check_joining(current, add)
        rotated = Group(
            group_id=group_id,
            name=current.name,
            owner=self._me,
            members=tuple(sorted({*(m for m in current.members if m not in remove), *add})),
            epoch=current.epoch + 1,
        )
        if add:
            # A new member will read every tag already published: each set must allow it.
            await self._database.run(lambda: self._check_published(rotated, joining=add))
        return await self._start_epoch(rotated, stored=current.epoch)

    def _check_joining(self, group: Group, add: Sequence[AgencyId]) -> None:
        for agency in add:
            if agency == self._me or self._directory.find(agency) is None:
                raise UnknownAgencyError(f"{agency} is not another federation member")
            if agency in group.members:
                raise GroupError(f"{agency} is a member already")
        if len(set(add)) != len(add):
            raise GroupError("a member is named twice")

    def _check_published(self, group: Group, *, joining: Sequence[AgencyId]) -> None:
        with transaction(self._database.engine) as session:
            for set_id in group_repo.published_sets(session, group.group_id):
                row = indicator_repo.get_set(session, set_id)
                if row is not None and not row.revoked:
                    self._check_labels(IndicatorSet.from_bytes(row.document), group, joining)

    async def _start_epoch(self, group: Group, *, stored: int | None) -> GroupView:
        key = new_group_key()

        def save() -> None:
            with transaction(self._database.engine) as session:
                held = group_repo.get_group(session, group.group_id, lock=True)
                if (held.epoch if held else None) != stored:
                    raise StaleGroupKeyError(f"group {group.group_id} changed meanwhile")
                group_repo.save_group(session, group, key=key, now_ms=self._clock())
                self._refresh(session, group)

        await self._database.run(save)
        _LOG.info("group %s at epoch %d", group.group_id, group.epoch)
        undelivered = [a for a in group.others(self._me) if not await self._hand_key(group, key, a)]
        view = await self.get(group.group_id)
        return GroupView(
            group=view.group,
            published_sets=view.published_sets,
            own_seq=view.own_seq,
            undelivered=tuple(undelivered),
        )

    async def _hand_key(self, group: Group, key: bytes, agency: AgencyId) -> bool:
        """Seal, sign and offer the key to one member; False (logged) if it cannot be now."""
        member = self._directory.find(agency)
        try:
            if member is None:
                raise UnknownAgencyError(f"{agency} is no longer a federation member")
            keys = self._keys()
            offer = GroupKeyOffer(
                group=group,
                recipient=agency,
                sealed_to=member.encryption_key_id,
                sealed_by=keys.encryption_key_id,
                sealed_key=seal_group_key(
                    key, owner_secret=keys.encryption, recipient_public=member.encryption_key
                ),
                created_ms=self._clock(),
            )
            document = offer.to_bytes()
            await self._transport.offer_group_key(
                member, document, sign_offer(document, keys.signing)
            )
        except ComityError as e:
            _LOG.warning(
                "group %s epoch %d key not handed to %s: %s",
                group.group_id,
                group.epoch,
                agency,
                e.code,
            )
            return False
        return True

    # --- a member: receiving a key ------------------------------------------------------------

    async def receive_key(self, document: bytes, signature: bytes, *, peer: Member) -> Group:
        """Check and store a key the group's owner, the member ``peer``, offers this node.

        Raises:
            GroupMembershipError: the peer is not the owner, or this node is not named.
            GroupKeyError: a bad signature or seal.
            GroupError: a malformed offer.
            StaleGroupKeyError, ReplayError: an older epoch, or this epoch with another key.
        """
        offer = GroupKeyOffer.from_bytes(document)
        group = offer.group
        if group.owner != peer.agency_id:
            raise GroupMembershipError(f"{peer.agency_id} does not own the group it offers")
        verify_offer(document, signature, list(peer.signing_keys.values()))
        if offer.recipient != self._me:
            raise GroupMembershipError(f"the key is for {offer.recipient}, not this node")
        group.check_member(self._me)
        key = self._open(offer, peer)
        stored = await self._database.run(lambda: self._store_key(group, key))
        if stored:
            _LOG.info("group %s key for epoch %d received", group.group_id, group.epoch)
        return group

    def _open(self, offer: GroupKeyOffer, owner: Member) -> bytes:
        secret = self._keys().encryption_keys().get(offer.sealed_to)
        owner_public = owner.encryption_keys.get(offer.sealed_by)
        if secret is None or owner_public is None:
            raise GroupKeyError("the group key is sealed with a key that is not active")
        return open_group_key(offer.sealed_key, recipient_secret=secret, owner_public=owner_public)

    def _store_key(self, group: Group, key: bytes) -> bool:
        """Store a newer epoch and republish under it; False when this epoch is here."""
        with transaction(self._database.engine) as session:
            held = group_repo.get_group(session, group.group_id, lock=True)
            if held is not None:
                if held.owner != group.owner:
                    raise GroupMembershipError(f"group {group.group_id} has another owner")
                if held.epoch > group.epoch:
                    raise StaleGroupKeyError(
                        f"this node holds epoch {held.epoch} of group {group.group_id}"
                    )
                if held.epoch == group.epoch:
                    if group_repo.group_key(session, group.group_id, group.epoch) != key:
                        raise ReplayError(
                            f"epoch {group.epoch} of group {group.group_id} has another key here"
                        )
                    return False
            group_repo.save_group(session, group, key=key, now_ms=self._clock())
            self._refresh(session, group)
            return True

    # --- publishing -----------------------------------------------------------------------------

    async def publish(self, group_id: str, set_id: str) -> GroupView:
        """Publish one of this agency's sets into a group: its live indicators become tags.

        Raises:
            NotFoundError: no such group or set here.
            GroupMembershipError: this node is not a member.
            IndicatorError: not this agency's set, or revoked.
            TlpEgressError: the set's label does not allow every member (logged; nothing kept).
        """

        def store() -> None:
            with transaction(self._database.engine) as session:
                group = self._member_group(session, group_id, lock=True)
                self._check_publishable(session, group, set_id)
                group_repo.publish_set(
                    session, group_id=group_id, set_id=set_id, now_ms=self._clock()
                )
                self._refresh(session, group)

        await self._database.run(store)
        return await self.get(group_id)

    def _check_publishable(self, session: Session, group: Group, set_id: str) -> None:
        row = indicator_repo.get_set(session, set_id)
        if row is None:
            raise NotFoundError(f"no indicator set {set_id} at this node")
        indicator_set = IndicatorSet.from_bytes(row.document)
        if indicator_set.owner != self._me:
            raise IndicatorError(f"set {set_id} belongs to {indicator_set.owner}")
        if indicator_set.revoked:
            raise IndicatorError(f"set {set_id} is revoked")
        self._check_labels(indicator_set, group, group.others(self._me))

    def _check_labels(
        self, indicator_set: IndicatorSet, group: Group, agencies: Sequence[AgencyId]
    ) -> None:
        """Every one of ``agencies`` may see the set's tags, under its label.

        Raises:
            TlpEgressError: naming the first that may not (logged).
        """
        refused = self._refusal(indicator_set, agencies)
        if refused is None:
            return
        agency, error = refused
        _LOG.warning(
            "set %s not published into group %s (member %s): %s",
            indicator_set.set_id,
            group.group_id,
            agency,
            error.message,
        )
        raise TlpEgressError(f"group member {agency}: {error.message}") from error

    def _refusal(
        self, indicator_set: IndicatorSet, agencies: Sequence[AgencyId]
    ) -> tuple[str, TlpEgressError] | None:
        members = {m.agency_id for m in self._directory.members()}
        for agency in agencies:
            try:
                indicator_set.check_passing(sender=self._me, recipient=agency, members=members)
            except TlpEgressError as e:
                return agency, e
        return None

    def _refresh(self, session: Session, group: Group) -> int:
        """Bring this node's own log up to date with its published sets: add the tags of live
        indicators, tombstone the rest. How many entries were appended."""
        key = group_repo.group_key(session, group.group_id, group.epoch)
        if key is None or self._me not in group.members:
            return 0
        set_ids = [
            set_id
            for set_id in group_repo.published_sets(session, group.group_id)
            if self._may_tag(session, group, set_id)
        ]
        items = indicator_repo.own_live_indicators(
            session, owner=self._me, set_ids=set_ids, now_ms=self._clock()
        )
        wanted = {tag(key, group.group_id, kind, value) for kind, value in items}
        where = {"group_id": group.group_id, "publisher": self._me}
        live = live_tags(
            group_repo.entries_of_epoch(session, **where, epoch=group.epoch), group.epoch
        )
        entries = next_entries(
            live=live,
            wanted=wanted,
            epoch=group.epoch,
            after_seq=group_repo.last_seq(session, **where),
        )
        return group_repo.append_entries(session, **where, entries=entries)

    def _may_tag(self, session: Session, group: Group, set_id: str) -> bool:
        """Whether the set's label still allows every member: one that joined after the set
        was published may not be allowed (its tags are then tombstoned, not republished)."""
        row = indicator_repo.get_set(session, set_id)
        if row is None:
            return False

        @cache
        def given_to() -> frozenset[str]:
            # The owner publishes to every member itself: only the recipients it named, while
            # they are still federation members, may hold the set (no clients of theirs).
            members = {m.agency_id for m in self._directory.members()}
            return frozenset(IndicatorSet.from_bytes(row.document).recipients) & members

        label = Tlp(row.tlp)
        return all(may_hold(label, a, given_to=given_to) for a in group.others(self._me))

    # --- serving and copying logs ----------------------------------------------------------------

    async def serve_pull(
        self,
        *,
        group_id: str,
        publisher: str,
        after_seq: int,
        limit: int,
        peer: Member,
    ) -> TagPage:
        """A page of this node's own log, for ``peer``, a member of the group.

        Raises:
            GroupMembershipError: it is not a member of the group (or the group is unknown).
            GroupError: numbers out of range, or another publisher than this node.
        """
        size = check_pull(after_seq=after_seq, limit=limit)
        if publisher != self._me:
            raise GroupError(f"this node serves only its own log ({self._me})")

        def load() -> TagPage:
            with transaction(self._database.engine) as session:
                group = group_repo.get_group(session, group_id, lock=True)
                if group is None or peer.agency_id == self._me:
                    raise GroupMembershipError(
                        f"{peer.agency_id} is not a member of group {group_id}"
                    )
                group.check_member(peer.agency_id)
                self._refresh(session, group)
                where = {"group_id": group_id, "publisher": self._me}
                entries = group_repo.entries_after(
                    session, **where, after_seq=after_seq, limit=size
                )
                return TagPage(
                    entries=tuple(entries), last_seq=group_repo.last_seq(session, **where)
                )

        return await self._database.run(load)

    async def sync(self, group_id: str | None = None) -> list[SyncOutcome]:
        """Copy every other member's log (of one group, or all) from where this node left off.
        A member that cannot be reached or refuses is reported, not raised.

        Raises:
            NotFoundError, GroupMembershipError: the named group is not here, or this node is
            not a member.
        """

        def groups() -> list[Group]:
            with transaction(self._database.engine) as session:
                if group_id is not None:
                    found = [self._member_group(session, group_id, lock=True)]
                else:
                    found = [g for g in group_repo.list_groups(session) if self._me in g.members]
                for group in found:
                    self._refresh(session, group)
                return found

        return [
            await self._copy_log(group, agency)
            for group in await self._database.run(groups)
            for agency in group.others(self._me)
        ]

    async def _copy_log(self, group: Group, publisher: str) -> SyncOutcome:
        where = {"group_id": group.group_id, "publisher": publisher}

        def held() -> int:
            with transaction(self._database.engine) as session:
                return group_repo.last_seq(session, **where)

        fetched, after = 0, await self._database.run(held)
        try:
            member = self._directory.find(publisher)
            if member is None:
                raise UnknownAgencyError(f"{publisher} is not a federation member")
            for _ in range(PAGES_PER_SYNC):
                page = await self._transport.pull_tags(
                    member, group_id=group.group_id, after_seq=after, limit=PAGE
                )
                verify_page(page, after_seq=after, limit=PAGE)
                fetched += await self._database.run(partial(self._store_page, page, **where))
                after += len(page.entries)
                if not page.entries or after >= page.last_seq:
                    break
        except ComityError as e:
            _LOG.warning(
                "group %s: log of %s not copied after entry %d: %s",
                group.group_id,
                publisher,
                after,
                e.code,
            )
            return SyncOutcome(
                group_id=group.group_id,
                publisher=publisher,
                fetched=fetched,
                held_seq=after,
                error=e,
            )
        return SyncOutcome(
            group_id=group.group_id, publisher=publisher, fetched=fetched, held_seq=after
        )

    def _store_page(self, page: TagPage, *, group_id: str, publisher: str) -> int:
        """Append the entries not yet here (another sync may have stored some meanwhile)."""
        with transaction(self._database.engine) as session:
            group_repo.get_group(session, group_id, lock=True)
            held = group_repo.last_seq(session, group_id=group_id, publisher=publisher)
            fresh = [e for e in page.entries if e.seq > held]
            return group_repo.append_entries(
                session, group_id=group_id, publisher=publisher, entries=fresh
            )

    # --- reading --------------------------------------------------------------------------------

    async def matches(self, group_id: str) -> GroupMatches:
        """This agency's own live indicators whose tag, at the group's current epoch, another
        member's log holds live, with those members.

        Raises:
            NotFoundError, GroupMembershipError: the group is not here, or this node is not a
            member of it.
        """

        def load() -> GroupMatches:
            with transaction(self._database.engine) as session:
                group = self._member_group(session, group_id)
                key = group_repo.group_key(session, group_id, group.epoch)
                if key is None:
                    raise NotFoundError(f"no key for epoch {group.epoch} of group {group_id}")
                items = indicator_repo.own_live_indicators(
                    session, owner=self._me, set_ids=None, now_ms=self._clock()
                )
                tags = [tag(key, group_id, kind, value) for kind, value in items]
                holders = group_repo.publishers_of_tags(
                    session, group_id=group_id, epoch=group.epoch, tags=tags
                )
            found = []
            for (kind, value), item_tag in zip(items, tags, strict=True):
                others = sorted(holders.get(item_tag, set()) - {self._me})
                if others:
                    found.append(TagMatch(type=kind, value=value, agencies=tuple(others)))
            return GroupMatches(group=group, matches=tuple(found))

        return await self._database.run(load)

    async def list_groups(self) -> list[GroupView]:
        def load() -> list[GroupView]:
            with transaction(self._database.engine) as session:
                return [self._view(session, g) for g in group_repo.list_groups(session)]

        return await self._database.run(load)

    async def get(self, group_id: str) -> GroupView:
        """Raises: NotFoundError."""

        def load() -> GroupView:
            with transaction(self._database.engine) as session:
                return self._view(session, self._group_in(session, group_id))

        return await self._database.run(load)

    def _view(self, session: Session, group: Group) -> GroupView:
        return GroupView(
            group=group,
            published_sets=tuple(group_repo.published_sets(session, group.group_id)),
            own_seq=group_repo.last_seq(session, group_id=group.group_id, publisher=self._me),
        )

    def _group(self, group_id: str) -> Group:
        with transaction(self._database.engine) as session:
            return self._group_in(session, group_id)

    def _group_in(self, session: Session, group_id: str, *, lock: bool = False) -> Group:
        group = group_repo.get_group(session, group_id, lock=lock)
        if group is None:
            raise NotFoundError(f"no sharing group {group_id} at this node")
        return group

    def _member_group(self, session: Session, group_id: str, *, lock: bool = False) -> Group:
        group = self._group_in(session, group_id, lock=lock)
        group.check_member(self._me)
        return group
