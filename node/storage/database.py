# SPDX-License-Identifier: Apache-2.0
"""A node's database: its engine and the worker threads that run blocking database work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Engine

from node.storage.engine import database_workers

T = TypeVar("T")


class Database:
    """Runs database work off the event loop, on threads sized for the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._executor = ThreadPoolExecutor(
            max_workers=database_workers(engine), thread_name_prefix="comity-db"
        )

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close(self) -> None:
        """Wait for work in progress, release the threads, close the connections."""
        self._executor.shutdown(wait=True)
        self.engine.dispose()
