# SPDX-License-Identifier: Apache-2.0
"""The engine factory, migrations, and the one-transaction-per-unit-of-work helper.

There is no global engine: each node creates its own from its configuration. SQLite runs
with WAL and ``synchronous=FULL`` (a committed transaction survives a crash of the process
and of the machine); PostgreSQL is used through psycopg 3.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlmodel import Session

from node.errors import ConfigError, StorageUnavailableError

_LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
_SYNCHRONOUS_FULL = 2
POSTGRES_WORKERS = 8
POSTGRES_CONNECT_TIMEOUT_S = 10


def redact_url(url: str) -> str:
    """The URL with any password masked, for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def create_engine(url: str) -> Engine:
    """An engine for ``sqlite:///FILE`` or ``postgresql+psycopg://…``.

    Raises:
        ConfigError: an unsupported or unusable URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigError(f"storage URL {redact_url(url)} cannot be parsed") from e
    if parsed.drivername == "sqlite":
        return _sqlite_engine(parsed.database)
    if parsed.drivername in ("postgresql+psycopg", "postgresql"):
        # Without a connect timeout a database host that accepts and never answers would
        # hold a worker thread forever; the URL may still set its own.
        connect_args = (
            {}
            if "connect_timeout" in parsed.query
            else {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        )
        return sqlalchemy.create_engine(
            parsed.set(drivername="postgresql+psycopg"),
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    raise ConfigError(
        f"storage URL {redact_url(url)}: use sqlite:///FILE or postgresql+psycopg://…"
    )


def _sqlite_engine(database: str | None) -> Engine:
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ConfigError("SQLite storage needs a file (WAL does not work in memory)")
    path = Path(database)
    if not path.parent.is_dir():
        raise ConfigError(f"directory {path.parent} for the SQLite database does not exist")
    engine = sqlalchemy.create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        synchronous = cursor.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        cursor.close()
    # Durability is a promise to users: refuse to run without it rather than degrade silently.
    if str(mode).lower() != "wal" or synchronous != _SYNCHRONOUS_FULL:
        raise ConfigError(f"SQLite refused WAL/synchronous=FULL (got {mode}, {synchronous})")


def database_workers(engine: Engine) -> int:
    """How many threads should run database work for ``engine`` at once.

    SQLite has one writer at a time; threads that wait for its lock sleep in growing steps
    and make latency spiky, so its work is queued on one thread instead. PostgreSQL takes
    concurrent transactions.
    """
    return 1 if engine.dialect.name == "sqlite" else POSTGRES_WORKERS


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Migrate the database to the newest schema (idempotent).

    Raises:
        StorageUnavailableError: the database cannot be reached.
    """
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except DBAPIError as e:
        raise StorageUnavailableError(f"cannot migrate {redact_url(str(engine.url))}") from e


def downgrade(engine: Engine, revision: str = "base") -> None:
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits once at the end, rolls back on any exception.

    Integrity errors (a unique key already taken) pass through for the caller to interpret;
    other database errors become StorageUnavailableError without their SQL parameters,
    which may hold case content.

    Raises:
        StorageUnavailableError: the database could not be reached or refused the work.
        IntegrityError: a constraint was violated.
    """
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    except IntegrityError:
        raise
    except DBAPIError as e:
        reason = type(e.orig).__name__ if e.orig is not None else type(e).__name__
        # Where the database lives is for this node's operators, not for peers that the
        # error may be relayed to: it goes to the log, the error says what happened.
        _LOG.warning("database %s failed: %s", redact_url(str(engine.url)), reason)
        raise StorageUnavailableError(
            f"this node's database is unavailable ({reason}); try again later"
        ) from e
