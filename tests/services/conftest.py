# SPDX-License-Identifier: Apache-2.0
"""Two agencies of an in-memory federation, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.services.federation import AUTHORITY, UNIT, Federation, in_memory_federation


@pytest.fixture
async def fed(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    async with in_memory_federation(
        [UNIT, AUTHORITY], directory_dir=tmp_path, database_url=node_database_urls
    ) as federation:
        yield federation
