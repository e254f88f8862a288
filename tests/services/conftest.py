# SPDX-License-Identifier: Apache-2.0
"""Two agencies of an in-memory federation, on SQLite and on PostgreSQL.

SQLite databases start as copies of one database migrated once per run: migrating takes
longer than most of these tests (each agency still runs the migrations, which find nothing
to do).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from node.storage.engine import create_engine, upgrade
from tests import dbutil
from tests.services.federation import AUTHORITY, UNIT, Federation, in_memory_federation


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    url = dbutil.sqlite_url(tmp_path_factory.mktemp("migrated"))
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()  # the last connection closing folds the WAL into the file
    return Path(url.removeprefix("sqlite:///"))


@pytest.fixture
def agency_database_urls(
    database_kind: str,
    node_database_urls: Callable[[str], str],
    migrated_sqlite: Path,
    tmp_path: Path,
) -> Callable[[str], str]:
    """One database URL per agency name: a migrated SQLite copy, or a fresh schema."""

    def make(name: str) -> str:
        if database_kind != "sqlite":
            return node_database_urls(name)
        url = dbutil.sqlite_url(tmp_path, name)
        shutil.copyfile(migrated_sqlite, url.removeprefix("sqlite:///"))
        return url

    return make


@pytest.fixture
async def fed(
    tmp_path: Path, agency_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    async with in_memory_federation(
        [UNIT, AUTHORITY], directory_dir=tmp_path, database_url=agency_database_urls
    ) as federation:
        yield federation
