# SPDX-License-Identifier: Apache-2.0
"""Listen ports for the nodes tests start, many per test run in one process."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from node.cli.processes import listen_range, port_is_free


def free_port() -> int:
    """A loopback TCP port that was free a moment ago, below the range the kernel gives to
    outgoing connections (a client socket opened before the node binds it cannot take it), and
    not handed out before by this process (two nodes started together never get the same one,
    nor a node a port an earlier test's node may still hold): the ports are taken in turn from
    a random starting point."""
    low, high = listen_range()
    for _ in range(high - low):
        port = next(_PORTS)
        if port_is_free(port):
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def _ports() -> Iterator[int]:
    low, high = listen_range()
    offset = random.randrange(high - low)  # noqa: S311 (not a secret)
    for n in itertools.count(offset):
        yield low + n % (high - low)


_PORTS = _ports()
