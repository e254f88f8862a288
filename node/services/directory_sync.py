# SPDX-License-Identifier: Apache-2.0
"""Keeping a node's directory current: from the secretariat, and from peers that are ahead.

A node asks the secretariat's node for its newest version on a timer, and asks a peer at
once when the peer shows a newer version (in an envelope or in a Deliver answer). It walks
the versions in order, so each one is checked against the one before it: a root rotation is
trusted only through the version that both old and new roots signed. The source is never
trusted, only the signatures; a peer serving garbage just fails the rules.
"""

from __future__ import annotations

import asyncio
import logging

from node.errors import ComityError, DirectoryError, PeerRejectedError
from node.federation.document import parse_directory
from node.federation.trusted import FederationDirectory
from node.ids import AgencyId
from node.members import Member
from node.services.peers import DirectorySource

_LOG = logging.getLogger(__name__)

SECRETARIAT_ROLE = "secretariat"


class DirectorySync:
    """Fetches and installs newer directory versions, one catch-up at a time."""

    def __init__(
        self, *, directory: FederationDirectory, source: DirectorySource, agency_id: AgencyId
    ) -> None:
        self._directory = directory
        self._source = source
        self._me = agency_id
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def catch_up(self, member: Member) -> bool:
        """Install every newer version ``member``'s node trusts; True if anything changed.

        Raises:
            ComityError: the peer could not be asked, or a version breaks a trust rule.
        """
        async with self._lock:
            newest = await self._source.fetch_directory(member, 0)
            target = parse_directory(newest).version
            changed = False
            for version in range(self._directory.version + 1, target):
                changed |= await self._install_version(member, version)
            if target > self._directory.version:
                changed |= await self._directory.install(newest)
            return changed

    async def _install_version(self, member: Member, version: int) -> bool:
        try:
            data = await self._source.fetch_directory(member, version)
        except PeerRejectedError:
            return False  # the peer skipped it; the next version may still verify
        return await self._directory.install(data, intermediate=True)

    def announce(self, agency_id: AgencyId, version: int) -> None:
        """A peer showed ``version``: catch up from it in the background if that is newer."""
        if version <= self._directory.version or self._lock.locked():
            return
        member = self._directory.find(agency_id)
        if member is None:
            return
        task = asyncio.create_task(self._quietly(member), name="comity-directory-catch-up")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def catch_up_to(self, agency_id: AgencyId, version: int, *, timeout_s: float) -> None:
        """Try, for at most ``timeout_s``, to reach ``version`` from ``agency_id``'s node."""
        member = self._directory.find(agency_id)
        if member is None or version <= self._directory.version:
            return
        try:
            await asyncio.wait_for(self._quietly(member), timeout_s)
        except TimeoutError:
            _LOG.warning("catching up the directory from %s timed out", agency_id)

    async def sync_once(self) -> None:
        """Pick up versions a replica stored, then ask every secretariat node for newer ones."""
        await self._directory.refresh()
        for member in self._directory.members():
            if SECRETARIAT_ROLE in member.roles and member.agency_id != self._me:
                await self._quietly(member)

    async def _quietly(self, member: Member) -> None:
        try:
            await self.catch_up(member)
        except DirectoryError as e:
            _LOG.warning("directory from %s refused: %s", member.agency_id, e.message)
        except ComityError as e:
            _LOG.info("directory from %s not fetched: %s", member.agency_id, e.code)

    async def run(self, interval_s: float) -> None:
        """Sync every ``interval_s`` until cancelled."""
        while True:
            await self.sync_once()
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
