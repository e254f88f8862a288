# SPDX-License-Identifier: Apache-2.0
"""Who may call the federation server, and how many calls each may have open at once.

The server interceptor (node/transport/interceptors.py) admits every Comity call on the
federation port through :meth:`PeerGate.admit` before its servicer runs:

- the SHA-256 fingerprint of the client certificate must be the one the trusted directory
  lists now for a member. The check runs on every call, not once per connection: a member
  removed by a newer directory version is refused at its next call, even on a connection it
  opened before. A member listed without active keys is still admitted (it needs the
  newer directory that may list its next key); every service that needs its keys refuses it;
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
from dataclasses import dataclass

from node.errors import ComityError, ErrorKind, RevokedKeyError
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


@dataclass(frozen=True)
class _Admitted:
    agency_id: AgencyId
    member: Member | None
    """The member as it stands at admission; None when it has no active keys."""


_PEER: ContextVar[_Admitted | None] = ContextVar("comity_federation_peer", default=None)


def current_peer() -> Member:
    """The federation member making the current call, as :class:`PeerGate` admitted it.

    Raises:
        RevokedKeyError: the member is listed, but has no active signing or encryption key.
        NotAMemberError: no member was admitted for this call (a servicer served without
            the gate): refusing is the only safe answer.
    """
    admitted = _PEER.get()
    if admitted is None:
        raise NotAMemberError("the call was not admitted as a federation member's")
    if admitted.member is None:
        raise RevokedKeyError(
            f"every key of {admitted.agency_id} is revoked or outside its validity in the "
            "directory this node trusts"
        )
    return admitted.member


class PeerGate:
    """Admits the calls of listed members, a bounded number each at a time."""

    def __init__(self, *, directory: Directory, max_calls_per_peer: int) -> None:
        self._directory = directory
        self._max_calls = max_calls_per_peer
        self._open: dict[AgencyId, int] = {}
        self._listed: dict[str, AgencyId] = {}
        self._listed_version = -1

    @asynccontextmanager
    async def admit(self, auth_context: Mapping[str, Iterable[bytes]]) -> AsyncIterator[None]:
        """Admit the caller for as long as its call runs, as :func:`current_peer`.

        Raises:
            NotAMemberError: no certificate, or one the directory lists for no member.
            PeerCallLimitError: the member has ``max_calls_per_peer`` calls open already.
        """
        agency = self.identify(peer_certificate_fingerprint(auth_context))
        open_calls = self._open.get(agency, 0)
        if open_calls >= self._max_calls:
            raise PeerCallLimitError(
                f"{agency} has {open_calls} calls open at this node, the most it may; "
                "retry once one has finished"
            )
        self._open[agency] = open_calls + 1
        token = _PEER.set(_Admitted(agency, self._directory.find(agency)))
        try:
            yield
        finally:
            _PEER.reset(token)
            self._open[agency] -= 1
            if not self._open[agency]:
                del self._open[agency]

    def identify(self, fingerprint: str | None) -> AgencyId:
        """The member the directory lists with the certificate of ``fingerprint``.

        Raises:
            NotAMemberError: none.
        """
        version = self._directory.version
        if version != self._listed_version:  # the map is made once per directory version
            self._listed = {e.tls_fingerprint: e.agency_id for e in self._directory.entries()}
            self._listed_version = version
        agency = self._listed.get(fingerprint) if fingerprint is not None else None
        if agency is None:
            raise NotAMemberError(
                "the TLS client certificate is not one the federation directory lists"
            )
        return agency
