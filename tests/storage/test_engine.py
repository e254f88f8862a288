# SPDX-License-Identifier: Apache-2.0
"""Engine factory, migrations and transactions, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from node.errors import ConfigError, StorageUnavailableError
from node.storage import exchange_repo
from node.storage.engine import (
    create_engine,
    current_revision,
    downgrade,
    head_revision,
    redact_url,
    transaction,
    upgrade,
)
from node.storage.schema import metadata
from tests import dbutil


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    assert current_revision(engine) == head_revision()


def test_upgrade_is_idempotent_and_downgrade_removes_everything(engine: Engine) -> None:
    upgrade(engine)
    downgrade(engine)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert {"exchange", "message"} <= set(inspect(engine).get_table_names())


def test_sqlite_runs_with_wal_and_full_sync(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'n.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("sqlite:///:memory:", "needs a file"),
        ("sqlite://", "needs a file"),
        ("mysql://root@localhost/test", "use sqlite"),
        ("sqlite:////no/such/dir/n.db", "does not exist"),
        ("::::", "cannot be parsed"),
    ],
)
def test_unusable_urls_are_refused(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_engine(url)


def test_transaction_rolls_back_on_error(engine: Engine) -> None:
    def fail_midway() -> None:
        with transaction(engine) as session:
            add_exchange(session, "0b8e6c3e-1111-4111-8111-111111111111")
            session.flush()
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_midway()
    with transaction(engine) as session:
        counts = dbutil.count_rows(session)
    assert counts["exchange"] == 0
    assert set(counts.values()) == {0}


def add_exchange(session: Session, exchange_id: str) -> None:
    exchange_repo.insert_exchange(
        session,
        exchange_id=exchange_id,
        request_type="preservation",
        direction="outbound",
        peer="bb-authority",
        state="submitted",
        form_json=b"{}",
        now_ms=1,
    )


def test_duplicate_keys_raise_integrity_error(engine: Engine) -> None:
    exchange_id = "0b8e6c3e-2222-4222-8222-222222222222"
    with transaction(engine) as session:
        add_exchange(session, exchange_id)
    with pytest.raises(IntegrityError), transaction(engine) as session:
        add_exchange(session, exchange_id)


def test_direction_is_constrained(engine: Engine) -> None:
    with pytest.raises(IntegrityError), transaction(engine) as session:
        exchange_repo.insert_exchange(
            session,
            exchange_id="0b8e6c3e-3333-4333-8333-333333333333",
            request_type="preservation",
            direction="sideways",
            peer="bb-authority",
            state="submitted",
            form_json=b"{}",
            now_ms=1,
        )


@pytest.mark.postgres
def test_unreachable_postgres_is_storage_unavailable_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_engine("postgresql+psycopg://root:s3cret@127.0.0.1:1/test?connect_timeout=2")
    with pytest.raises(StorageUnavailableError) as caught, transaction(engine) as session:
        dbutil.count_rows(session)
    # The error may travel to a peer: it says what happened, not where the database is.
    assert "database is unavailable" in caught.value.message
    assert "127.0.0.1" not in caught.value.message
    # The operator's log names it, password masked.
    assert "127.0.0.1:1" in caplog.text
    assert "s3cret" not in caplog.text


def test_redact_url_masks_passwords() -> None:
    assert "s3cret" not in redact_url("postgresql+psycopg://u:s3cret@h/db")


def test_sqlite_files_are_private_to_the_node_user(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'n.db'}")
    upgrade(engine)
    engine.dispose()
    files = [tmp_path / name for name in ("n.db", "n.db-wal", "n.db-shm")]
    assert {path.stat().st_mode & 0o777 for path in files if path.exists()} == {0o600}


def test_a_migration_that_fails_rolls_back_its_ddl_and_names_the_cause(engine: Engine) -> None:
    downgrade(engine, "0015")
    with engine.begin() as connection:
        # A table in the way of migration 0017: 0016 applies, then 0017 fails.
        connection.execute(text("CREATE TABLE sighting_report (x INTEGER)"))
    with pytest.raises(StorageUnavailableError, match=r"cannot migrate .*sighting_report"):
        upgrade(engine)
    # Both migrations ran in one transaction: 0016's tables went with 0017's failure.
    assert current_revision(engine) == "0015"
    assert "indicator_offer" not in inspect(engine).get_table_names()


def test_tables_without_a_schema_version_are_refused_with_the_cause(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
    with pytest.raises(StorageUnavailableError, match="no schema version"):
        upgrade(engine)


def test_two_nodes_migrating_one_sqlite_file_at_once_both_start(tmp_path: Path) -> None:
    engines = [create_engine(f"sqlite:///{tmp_path / 'shared.db'}") for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(upgrade, engines))  # the second waits for the first, then has nothing to do
    assert {current_revision(engine) for engine in engines} == {head_revision()}
    for engine in engines:
        engine.dispose()
