# SPDX-License-Identifier: Apache-2.0
"""Who may call the federation server, and how many calls each may have open at once.

The server interceptor (node/transport/interceptors.py) admits every Comity call on the
federation port through :meth:`PeerGate.admit` before its servicer runs:

- the SHA-256 fingerprint of the client certificate must be one the trusted directory lists
  now, for a member with active keys. The check runs on every call, not once per connection:
  a member removed by a newer directory version is refused at its next call, even on a
  connection it opened before;
- each member may have at most ``max_calls_per_peer`` calls open at once, streams included, so
  that one member's idle streams cannot take the server's ``maximum_concurrent_rpcs`` from the
  others (gRPC's own health service is not counted);
- the member found is the call's :func:`current_peer`: servicers hand it to services instead
  of looking the certificate up again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar

from node.errors import ComityError, ErrorKind
from node.ids import AgencyId
from node.members import Directory, Member
from node.tls import peer_certificate_fingerprint


class NotAMemberError(ComityError):
    """The TLS client's certificate is not one the trusted directory lists for a member."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "peer_not_member"


class PeerCallLimitError(ComityError):
    """The member already has as many calls open at this node as it may."""

    kind = ErrorKind.OVERLOADED
    code = "peer_call_limit"


_PEER: ContextVar[Member | None] = ContextVar("comity_federation_peer", default=None)


def current_peer() -> Member:
    """The federation member making the current call, as :class:`PeerGate` admitted it.

    Raises:
        NotAMemberError: no member was admitted for this call (a servicer served without
            the gate): refusing is the only safe answer.
    """
    member = _PEER.get()
    if member is None:
        raise NotAMemberError("the call was not admitted as a federation member's")
    return member


class PeerGate:
    """Admits the calls of current directory members, a bounded number each at a time."""

    def __init__(self, *, directory: Directory, max_calls_per_peer: int) -> None:
        self._directory = directory
        self._max_calls = max_calls_per_peer
        self._open: dict[AgencyId, int] = {}
        self._listed: dict[str, AgencyId] = {}
        self._listed_version = -1

    @asynccontextmanager
    async def admit(self, auth_context: Mapping[str, Iterable[bytes]]) -> AsyncIterator[Member]:
        """The calling member, for as long as its call runs.

        Raises:
            NotAMemberError: no certificate, or one no current member is listed with.
            PeerCallLimitError: the member has ``max_calls_per_peer`` calls open already.
        """
        member = self.member(peer_certificate_fingerprint(auth_context))
        agency = member.agency_id
        open_calls = self._open.get(agency, 0)
        if open_calls >= self._max_calls:
            raise PeerCallLimitError(
                f"{agency} has {open_calls} calls open at this node, the most it may; "
                "retry once one has finished"
            )
        self._open[agency] = open_calls + 1
        token = _PEER.set(member)
        try:
            yield member
        finally:
            _PEER.reset(token)
            self._open[agency] -= 1
            if not self._open[agency]:
                del self._open[agency]

    def member(self, fingerprint: str | None) -> Member:
        """The current member whose listed certificate has ``fingerprint``.

        Raises:
            NotAMemberError: none.
        """
        if fingerprint is not None:
            # Cached per directory version; a miss looks again, as a member's keys may have
            # become active since.
            for fresh in (False, True):
                agency = self._agencies(fresh=fresh).get(fingerprint)
                member = self._directory.find(agency) if agency is not None else None
                if member is not None and member.tls_fingerprint == fingerprint:
                    return member
        raise NotAMemberError(
            "the TLS client certificate is not one the federation directory lists for a "
            "current member"
        )

    def _agencies(self, *, fresh: bool) -> Mapping[str, AgencyId]:
        """Agency ids by the fingerprint of their listed certificate."""
        version = self._directory.version
        if fresh or version != self._listed_version:
            self._listed = {m.tls_fingerprint: m.agency_id for m in self._directory.members()}
            self._listed_version = version
        return self._listed
