# SPDX-License-Identifier: Apache-2.0
"""This process as one run (an incarnation) of one replica of a node.

Rows a node owes other agencies are attempted under claims that name their owner. A replica is
one process serving one local socket on one host; it keeps its name across restarts, and each
run of it adds an incarnation id of its own: claims read ``REPLICA/INCARNATION``. While it runs,
a replica holds an exclusive lock on a file beside its socket, so a run that got the lock knows
every earlier run of its replica is dead (the kernel drops the lock of a killed process) and
may release their claims at once, instead of waiting out their leases. Replicas sharing a
database (other sockets, other hosts) never touch each other's claims.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from typing import IO

from node.config import NodeConfig
from node.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Incarnation:
    """One run of a replica: its replica name, its owner id in claims, and its lock."""

    replica: str
    """Stable across restarts: the agency, host and local socket, hashed (16 hex digits)."""
    owner: str
    """``replica/pid-random``: unique to this run."""
    lock: IO[bytes]

    def close(self) -> None:
        """Release the lock (a killed process releases it by dying)."""
        self.lock.close()


def replica_name(config: NodeConfig) -> str:
    identity = f"{config.agency_id}\0{socket.gethostname()}\0{config.local_socket.resolve()}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def start_incarnation(config: NodeConfig) -> Incarnation:
    """Take this replica's lock and name this run.

    Raises:
        ConfigError: another process runs this replica now (same socket on this host), or the
            lock file cannot be opened.
    """
    path = config.local_socket.with_name(config.local_socket.name + ".lock")
    try:
        lock = path.open("ab")
    except OSError as e:
        raise ConfigError(f"cannot open the node's lock file {path}: {e.strerror}") from e
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        lock.close()
        raise ConfigError(
            f"another process serves this node's socket {config.local_socket} (it holds "
            f"{path}); stop it first, or give this one a socket of its own"
        ) from e
    replica = replica_name(config)
    owner = f"{replica}/{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return Incarnation(replica=replica, owner=owner, lock=lock)
