# SPDX-License-Identifier: Apache-2.0
"""Which machine login is calling: learned from the kernel, handed out as a login ticket.

gRPC does not tell a server which process is at the other end of a Unix socket, so the node
listens on a second socket beside the local one (``<socket>.id``, same permissions). A client
connects, the node asks the kernel for the peer's credentials (``SO_PEERCRED``: the caller
cannot choose them), and answers with a random ticket that stands for that login for a few
minutes. The client sends the ticket with each local call (``comity-login-ticket``
metadata); the node maps the login to a Comity user.
"""

from __future__ import annotations

import asyncio
import logging
import pwd
import secrets
import socket
import struct
import time
from collections import OrderedDict
from pathlib import Path

TICKET_METADATA = "comity-login-ticket"
TICKET_TTL_S = 600.0
MAX_TICKETS = 10_000
"""Outstanding tickets kept; the oldest go first, so a local flood cannot grow memory."""
_PEERCRED = struct.Struct("3i")  # pid, uid, gid

_LOG = logging.getLogger(__name__)


def identity_socket(local_socket: Path) -> Path:
    return local_socket.with_name(local_socket.name + ".id")


class LoginTickets:
    """Tickets issued to logins proven by the kernel, each valid for ``ttl_s`` seconds."""

    def __init__(self, *, ttl_s: float = TICKET_TTL_S, capacity: int = MAX_TICKETS) -> None:
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._tickets: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def issue(self, login: str) -> str:
        ticket = secrets.token_urlsafe(32)
        self._tickets[ticket] = (login, time.monotonic() + self._ttl_s)
        while len(self._tickets) > self._capacity:
            self._tickets.popitem(last=False)
        return ticket

    def login_of(self, ticket: str) -> str | None:
        """The login ``ticket`` stands for, or ``None`` if it is unknown or expired."""
        held = self._tickets.get(ticket)
        if held is None:
            return None
        login, expires = held
        if time.monotonic() >= expires:
            del self._tickets[ticket]
            return None
        return login


async def serve_identity(path: Path, tickets: LoginTickets, *, mode: int) -> asyncio.Server:
    """Listen on ``path``; each connection receives one ticket for its peer's login."""

    async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            login = _peer_login(writer.get_extra_info("socket"))
            if login is not None:
                writer.write(tickets.issue(login).encode() + b"\n")
                await writer.drain()
        except OSError as e:
            _LOG.warning("identity socket: %s", e.strerror or type(e).__name__)
        finally:
            writer.close()

    _remove_stale(path)
    server = await asyncio.start_unix_server(answer, path=str(path))
    _set_mode(path, mode)
    return server


def _remove_stale(path: Path) -> None:
    path.unlink(missing_ok=True)  # left behind by a node that did not shut down cleanly


def _set_mode(path: Path, mode: int) -> None:
    path.chmod(mode)


def _peer_login(sock: socket.socket) -> str | None:
    _pid, uid, _gid = _PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    )
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        _LOG.warning("identity socket: uid %d has no login name", uid)
        return None


def fetch_ticket(local_socket: Path, *, timeout_s: float = 5.0) -> str | None:
    """A ticket for this process's login from the node, or ``None`` if the node offers none
    (it is not running, or predates identity sockets)."""
    path = identity_socket(local_socket)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout_s)
            client.connect(str(path))
            answer = client.makefile("rb").readline(256)
    except OSError:
        return None
    ticket = answer.decode(errors="replace").strip()
    return ticket or None
