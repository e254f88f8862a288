# SPDX-License-Identifier: Apache-2.0
"""Named kill points for crash tests: the process dies at an exact moment, as with kill -9.

Inert unless the environment variable ``COMITY_UNSAFE_KILL_POINT`` names the point; never set
it on a node that serves real work. Tests set it on a node process they started themselves,
to crash it between a commit and the reply that would have announced it.
"""

from __future__ import annotations

import os

KILL_POINT_ENV = "COMITY_UNSAFE_KILL_POINT"

POINTS = frozenset(
    {
        "receive.after_commit",  # receiver: request and receipt stored, reply not yet sent
        "deliver.before_record",  # sender: receipt in hand, not yet stored
        "file.after_commit",  # sender: request and outbox row stored, caller not yet told
        "migrate.after_step",  # any node: one migration applied, not yet committed
    }
)


def kill_point(name: str) -> None:
    """Die here, at once and without cleaning up, if the environment names this point."""
    if os.environ.get(KILL_POINT_ENV) == name:
        os._exit(137)
