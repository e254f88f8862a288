# SPDX-License-Identifier: Apache-2.0
"""Whether a node can do its work now: the answer behind ``/readyz``.

Ready means the database answers with the node's schema, the trusted directory has not
expired, and the node holds a signing and an encryption key that the directory lists as active
for it. Each failing check is named with a short reason (no URLs, no case content).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from node.crypto.keys import AgencyKeys
from node.errors import ComityError
from node.federation.document import format_instant
from node.federation.trusted import FederationDirectory
from node.storage.database import Database
from node.storage.engine import check_reachable

CHECKS = ("database", "directory", "keys")
DATABASE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ReadinessResult:
    """The checks that failed, by name, each with its reason; none when ready."""

    failing: Mapping[str, str]

    @property
    def ready(self) -> bool:
        return not self.failing


class ReadinessService:
    """Runs the readiness checks of one node."""

    def __init__(
        self,
        *,
        database: Database,
        directory: FederationDirectory,
        keys: Callable[[], AgencyKeys],
        clock: Callable[[], int],
        database_timeout_s: float = DATABASE_TIMEOUT_S,
    ) -> None:
        self._database = database
        self._directory = directory
        self._keys = keys
        self._clock = clock
        self._database_timeout_s = database_timeout_s

    async def check(self) -> ReadinessResult:
        reasons = {
            "database": await self._database_reason(),
            "directory": self._directory_reason(),
            "keys": self._keys_reason(),
        }
        return ReadinessResult(
            failing={name: reason for name, reason in reasons.items() if reason is not None}
        )

    async def _database_reason(self) -> str | None:
        engine = self._database.engine
        try:
            await asyncio.wait_for(
                self._database.run(lambda: check_reachable(engine)), self._database_timeout_s
            )
        except TimeoutError:
            return f"no answer within {self._database_timeout_s:g} s"
        except ComityError as e:
            return e.message
        return None

    def _directory_reason(self) -> str | None:
        expires = self._directory.expires_ms
        if self._clock() >= expires:
            return (
                f"directory version {self._directory.version} expired at {format_instant(expires)}"
            )
        return None

    def _keys_reason(self) -> str | None:
        try:
            self._keys()
        except ComityError as e:
            return e.message
        return None
