# SPDX-License-Identifier: Apache-2.0
"""A node's database: its engine and the worker threads that run blocking database work."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
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
        """Run ``work`` on a database thread, in the caller's context (as ``asyncio.to_thread``
        does): its log lines carry the trace of the call that asked for it."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, partial(context.run, work)
        )

    def close(self) -> None:
        """Wait for work in progress, release the threads, close the connections."""
        self._executor.shutdown(wait=True)
        self.engine.dispose()
