# SPDX-License-Identifier: Apache-2.0
"""The engine factory, migrations, and the one-transaction-per-unit-of-work helper.

There is no global engine: each node creates its own from its configuration. SQLite runs
with WAL and ``synchronous=FULL`` (a committed transaction survives a crash of the process
and of the machine); PostgreSQL is used through psycopg 3.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from node.errors import ConfigError, StorageUnavailableError
from node.storage.schema import metadata

_LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
MIGRATION_BUSY_TIMEOUT_MS = 120_000
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
    _create_private(path)
    engine = sqlalchemy.create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", _configure_sqlite)
    return engine


def _create_private(path: Path) -> None:
    """Create the database file readable by this user alone, if it does not exist yet.

    SQLite would create it with the umask's mode (usually 0644), letting every local user
    read case data; it gives the -wal and -shm files the mode of the database file.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as e:
        raise ConfigError(f"cannot create the SQLite database {path}: {e.strerror}") from e
    os.close(descriptor)


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

    All pending migrations and the version stamp commit together, or none of them does:
    a process killed mid-migration leaves the schema it started from.

    Raises:
        StorageUnavailableError: the database cannot be reached, or cannot be migrated.
    """
    config = _alembic_config()
    try:
        with _migration_connection(engine) as connection:
            _refuse_unversioned(connection, engine)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except DBAPIError as e:
        raise StorageUnavailableError(
            f"cannot migrate {redact_url(str(engine.url))}: {_cause(e)}"
        ) from e


def _cause(error: DBAPIError) -> str:
    # The first line names the failure (a table that exists, a lock held); a PostgreSQL
    # error's later lines may quote row values, which stay out of the message.
    orig = error.orig if error.orig is not None else error
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first_line}"


def _refuse_unversioned(connection: Connection, engine: Engine) -> None:
    """Refuse a database that holds tables but no schema version.

    Releases before crash-safe migrations left this state behind when killed during a
    first start; migrating it again would fail on the first table that already exists.
    """
    if MigrationContext.configure(connection).get_current_revision() is not None:
        return
    # Only this node's own tables count: a shared schema may hold other applications' tables.
    ours = sorted(set(inspect(connection).get_table_names()) & set(metadata.tables))
    if ours:
        raise StorageUnavailableError(
            f"cannot migrate {redact_url(str(engine.url))}: it holds tables of this node "
            f"({', '.join(ours[:3])}{', …' if len(ours) > 3 else ''}) but no schema version, "
            "left by a migration that was interrupted; restore the database from a backup, "
            "or remove it if the node never served"
        )


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction that covers DDL as well as data.

    PostgreSQL's DDL is transactional as it is. Python's sqlite3 module commits before
    each DDL statement on its own, so a migration killed halfway kept its tables and lost
    its version stamp; here the driver's transaction handling is turned off and the
    transaction is opened explicitly, as SQLAlchemy documents for pysqlite.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    migrating = sqlalchemy.create_engine(
        engine.url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        poolclass=NullPool,
    )
    event.listen(migrating, "connect", _configure_sqlite_for_ddl)
    event.listen(migrating, "begin", _begin_immediate)
    try:
        with migrating.begin() as connection:
            yield connection
    finally:
        migrating.dispose()


def _configure_sqlite_for_ddl(dbapi_connection: Any, record: Any) -> None:
    _configure_sqlite(dbapi_connection, record)
    dbapi_connection.isolation_level = None  # no implicit BEGIN, no commit before DDL
    # A replica starting beside one that is migrating waits for it rather than failing.
    dbapi_connection.execute(f"PRAGMA busy_timeout={MIGRATION_BUSY_TIMEOUT_MS}")


def _begin_immediate(connection: Connection) -> None:
    # IMMEDIATE takes the write lock at once: a second node starting on the same file
    # waits here instead of failing on an upgrade from a shared lock halfway through.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def downgrade(engine: Engine, revision: str = "base") -> None:
    config = _alembic_config()
    with _migration_connection(engine) as connection:
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


def check_reachable(engine: Engine) -> None:
    """Raise unless the database answers and holds a node's schema (the readiness probe).

    A SQLite file removed under a running node still answers through the connections already
    open, and what is written to it then is lost: its path is checked as well.

    Raises:
        StorageUnavailableError: the database does not answer, its file is gone, or it holds
            no schema version.
    """
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and not Path(database).exists():
        raise StorageUnavailableError("the SQLite database file is gone")
    with transaction(engine) as session:
        revision = MigrationContext.configure(session.connection()).get_current_revision()
    if revision is None:
        raise StorageUnavailableError("the database holds no schema version")
