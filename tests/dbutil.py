# SPDX-License-Identifier: Apache-2.0
"""Databases for tests: a fresh SQLite file, or a fresh schema in the PostgreSQL server; what
they hold."""

from __future__ import annotations

import os
import uuid
from functools import cache
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from node.storage.tables import (
    AuditLeaf,
    Campaign,
    CampaignCase,
    Exchange,
    IndicatorRow,
    IndicatorSetRow,
    Message,
    Outbox,
)

DEFAULT_POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("COMITY_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _libpq_url() -> str:
    return postgres_url().replace("postgresql+psycopg://", "postgresql://", 1)


@cache
def postgres_unreachable_reason() -> str | None:
    """None when the server answers; otherwise why not (checked once per run)."""
    try:
        with psycopg.connect(_libpq_url(), connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def require_postgres() -> None:
    """Skip, or fail when COMITY_REQUIRE_POSTGRES=1, if PostgreSQL is unreachable."""
    reason = postgres_unreachable_reason()
    if reason is None:
        return
    message = f"PostgreSQL unreachable at {postgres_url()}: {reason}"
    if os.environ.get("COMITY_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL required (COMITY_REQUIRE_POSTGRES=1) but {message}")
    pytest.skip(message)


def sqlite_url(directory: Path, name: str = "comity") -> str:
    return f"sqlite:///{directory / name}.db"


def create_schema() -> str:
    """A new, empty schema in the test server; returns its name."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq_url(), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def drop_schema(schema: str) -> None:
    with psycopg.connect(_libpq_url(), autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def schema_url(schema: str) -> str:
    """The server URL with every connection's search_path set to ``schema``."""
    separator = "&" if "?" in postgres_url() else "?"
    return f"{postgres_url()}{separator}options={quote(f'-csearch_path={schema}')}"


def count_rows(session: Session) -> dict[str, int]:
    """Rows per table: tests use it to show that refused input changed nothing."""
    return {
        table.__tablename__: session.exec(select(func.count()).select_from(table)).one()
        for table in (
            Exchange,
            Message,
            Outbox,
            AuditLeaf,
            IndicatorSetRow,
            IndicatorRow,
            Campaign,
            CampaignCase,
        )
    }
