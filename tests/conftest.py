# SPDX-License-Identifier: Apache-2.0
"""Fixtures every test area shares: databases on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from node.storage.engine import create_engine, upgrade
from tests import dbutil

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=DATABASES)
def database_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres":
        dbutil.require_postgres()
    return kind


@pytest.fixture
def node_database_urls(database_kind: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A factory: one fresh database URL per name (one per node), of the chosen kind."""
    schemas: list[str] = []

    def make(name: str) -> str:
        if database_kind == "sqlite":
            return dbutil.sqlite_url(tmp_path, name)
        schemas.append(dbutil.create_schema())
        return dbutil.schema_url(schemas[-1])

    yield make
    for schema in schemas:
        dbutil.drop_schema(schema)


@pytest.fixture
def database_url(node_database_urls: Callable[[str], str]) -> str:
    return node_database_urls("comity")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()
